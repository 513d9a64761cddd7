using System.Text.Json.Nodes;
using Fleet.Protocol;
using Fleet.Simulator;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// A real node and routers that read exactly as the firmware does (tests/Shared/RealReaderRouter.cs: one frame
/// per read, a 1,024-byte buffer, partial frames dropped, pings and close frames recorded), in each dialect.
/// Every router fails its test if it lost anything. The routers' event loops are busy 30 ms after each frame,
/// as a router reloading firewall rules is, so frames the node wrote too close together would be read together.
/// </summary>
public sealed class RealFirmwareTests : IAsyncLifetime
{
    private const int WorkMs = 30;
    private Node _node = null!;

    public async ValueTask InitializeAsync() =>
        _node = await Node.StartAsync(null, "--Fleet:WebSocket:SilenceCloseSeconds", "3");

    public async ValueTask DisposeAsync() => await _node.DisposeAsync();

    public static TheoryData<FirmwareEra> SeedAnd9 => new() { FirmwareEra.Seed, FirmwareEra.V9 };
    public static TheoryData<FirmwareEra> Every => new() { FirmwareEra.Seed, FirmwareEra.V2025, FirmwareEra.V9 };

    private RealReaderRouter Router(string id, FirmwareEra era, TimeSpan? heartbeat = null, ReconnectDelays? delays = null) =>
        new(_node.WebSocketUri(), id, era)
        {
            HeartbeatEvery = heartbeat ?? TimeSpan.FromSeconds(1),
            Delays = delays ?? ReconnectDelays.All(TimeSpan.FromMilliseconds(300)),
            WorkMs = WorkMs,
        };

    private static string Name(FirmwareEra era) => era switch { FirmwareEra.Seed => "seed", FirmwareEra.V2025 => "2025", _ => "9" };

    private async Task<string> Post(string device, string body, string query = "")
    {
        var (status, json, _) = await _node.Post($"/api/v1/devices/{device}/commands{query}", body);
        Assert.True(status is 200 or 202, $"POST → {status} {json?.ToJsonString()}");
        return (string)json!["command_id"]!;
    }

    private async Task<JsonNode> Final(string device, string id) =>
        await Eventually.Value(async () => await _node.GetJson($"/api/v1/devices/{device}/commands/{id}"),
            c => (string?)c["status"] is not ("queued" or "sent"), $"command {id} final", TimeSpan.FromSeconds(30));

    private async Task Online(string device, bool online) =>
        await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{device}"))["online"] == online,
            $"{device} online={online}", TimeSpan.FromSeconds(20));

    private static string Auth(string mac, string ip = "192.168.1.23") =>
        $$"""{"type":"auth","token":"t-{{mac}}","client_ip":"{{ip}}","client_mac":"{{mac}}","gw_id":"gw-1"}""";

    [Theory, MemberData(nameof(SeedAnd9))]
    public async Task Commands_queued_while_offline_reach_the_router_one_by_one_when_it_reconnects(FirmwareEra era)
    {
        var id = $"queue-{Name(era)}";
        await using (var first = Router(id, era).Start())
        {
            await first.WaitConnectedAsync();
            await Online(id, true);
        }
        await Online(id, false);
        var fw = await Post(id, """{"type":"get_firmware_info"}""");
        var kick = await Post(id, """{"type":"kickoff","client_ip":"192.168.1.99","client_mac":"aa:bb:cc:dd:ee:99","gw_id":"gw-1"}""");
        var pass = await Post(id, """{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:01","timeout":60}""");

        await using var router = Router(id, era).Start();
        var requests = await router.WaitForRequestsAsync(3);
        Assert.Equal(["get_firmware_info", "kickoff", "tmp_pass"], requests.Select(r => r.Name));
        Assert.Equal("succeeded", (string?)(await Final(id, fw))["status"]);
        var kicked = await Final(id, kick);
        Assert.Equal("failed", (string?)kicked["status"]);
        Assert.Contains("Client not found", (string?)kicked["error"]);
        if (era == FirmwareEra.V9) Assert.Contains("code 2000", (string?)kicked["error"]); // the 9.x router's code and message
        // seed firmware does not answer tmp_pass: delivered once written; 9.x answers it
        Assert.Equal(era == FirmwareEra.V9 ? "succeeded" : "delivered", (string?)(await Final(id, pass))["status"]);
        Assert.True(router.Clients.ContainsKey("aa:bb:cc:dd:ee:01"));
        router.AssertNoLoss();
    }

    [Theory, MemberData(nameof(SeedAnd9))]
    public async Task A_burst_of_five_auth_commands_all_reach_a_busy_router(FirmwareEra era)
    {
        var id = $"burst-{Name(era)}";
        await using var router = Router(id, era).Start();
        await router.WaitConnectedAsync();
        await Online(id, true);
        var macs = Enumerable.Range(1, 5).Select(i => $"aa:bb:cc:00:00:0{i}").ToList();
        var ids = await Task.WhenAll(macs.Select((m, i) => Post(id, Auth(m, $"192.168.1.{10 + i}"))));
        foreach (var c in ids)
            Assert.Equal(era == FirmwareEra.V9 ? "succeeded" : "delivered", (string?)(await Final(id, c))["status"]);
        await router.WaitForAsync(r => macs.All(r.Clients.ContainsKey), "all five clients let through");
        var view = await _node.GetJson($"/api/v1/devices/{id}");
        Assert.Equal(5, view["clients"]!.AsArray().Count);
        router.AssertNoLoss();
    }

    [Theory, MemberData(nameof(Every))]
    public async Task An_operators_auth_mode_reaches_the_router_in_its_dialect(FirmwareEra era)
    {
        var id = $"mode-{Name(era)}";
        await using var router = Router(id, era).Start();
        await router.WaitConnectedAsync();
        await Online(id, true);
        Assert.Equal(1, router.GatewayModes["gw-1"]);
        var put = await _node.Send(HttpMethod.Put, $"/api/v1/devices/{id}/gateways/gw-1/auth-mode", """{"auth_mode":0}""");
        Assert.Equal(200, put.Status);
        await router.WaitForModeAsync("gw-1", 0);
        // 9.x ignores modes in a heartbeat reply: they came as gateway_heartbeat. seed/2025 take the pushed reply.
        var applied = router.Replies.Last(r => r.Changed);
        Assert.Equal(era == FirmwareEra.V9 ? "gateway_heartbeat" : "heartbeat", applied.Name);
        await Eventually.True(async () =>
            (int?)(await _node.GetJson($"/api/v1/devices/{id}"))["gateways"]![0]!["auth_mode"] == 0, "the router reports mode 0");
        router.AssertNoLoss();
    }

    [Theory]
    [InlineData(FirmwareEra.V2025)]
    [InlineData(FirmwareEra.V9)]
    public async Task A_list_the_router_could_not_read_is_refused_and_one_that_fits_arrives_whole(FirmwareEra era)
    {
        var id = $"list-{Name(era)}";
        await using var router = Router(id, era).Start();
        await router.WaitConnectedAsync();
        await Online(id, true);
        var many = string.Join(",", Enumerable.Range(0, 80).Select(i => $"\"portal-{i}.example.com\""));
        var (status, problem, _) = await _node.Post($"/api/v1/devices/{id}/commands", $$"""{"type":"sync_trusted_domain","domains":[{{many}}]}""");
        Assert.Equal(400, status);
        Assert.Contains("1023 bytes", (string?)problem!["detail"]);
        Assert.Contains("cannot be split", (string?)problem["detail"]);

        var fits = string.Join(",", Enumerable.Range(0, 20).Select(i => $"\"portal-{i}.example.com\""));
        var c = await Post(id, $$"""{"type":"sync_trusted_domain","domains":[{{fits}}]}""");
        Assert.Equal("succeeded", (string?)(await Final(id, c))["status"]);
        var received = Assert.IsType<SyncDomainsRequest>(router.Requests.Single(r => r.Name == "sync_trusted_domain").Request);
        Assert.Equal(20, received.Domains!.Count);
        router.AssertNoLoss();
    }

    [Theory, MemberData(nameof(SeedAnd9))]
    public async Task A_newer_socket_replaces_the_older_which_is_dropped_without_a_close_frame(FirmwareEra era)
    {
        var id = $"twice-{Name(era)}";
        // The first one comes back only after a minute: long enough not to take the device back during the test.
        await using var first = Router(id, era, delays: ReconnectDelays.All(TimeSpan.FromMinutes(1))).Start();
        await first.WaitConnectedAsync();
        await Online(id, true);
        await using var second = Router(id, era).Start();
        await second.WaitConnectedAsync();
        await first.WaitForAsync(r => !r.Connected, "the older socket dropped");
        var c = await Post(id, """{"type":"get_firmware_info"}""");
        Assert.Equal("succeeded", (string?)(await Final(id, c))["status"]);
        Assert.Contains(second.Requests, r => r.ReqId is not null || r.Name == "get_firmware_info");
        Assert.DoesNotContain(first.Requests, r => r.Name == "get_firmware_info");
        first.AssertNoLoss(); // no close frame: firmware of 2025-07 to 2026-03 never reconnects after one
        second.AssertNoLoss();
    }

    [Fact]
    public async Task Three_dialects_on_one_node_register_heartbeat_and_answer_every_seed_command_in_their_own_dialect()
    {
        var routers = new[] { FirmwareEra.Seed, FirmwareEra.V2025, FirmwareEra.V9 }.Select(e => Router($"mixed-{Name(e)}", e).Start()).ToList();
        try
        {
            foreach (var r in routers) await r.WaitConnectedAsync();
            foreach (var r in routers)
            {
                await Online(r.DeviceId, true);
                await r.WaitForAsync(x => x.HeartbeatsSent >= 2, "two heartbeats sent");
                var view = await _node.GetJson($"/api/v1/devices/{r.DeviceId}");
                Assert.Equal(r.Dialect, (string?)view["protocol"]);
                if (r.Era != FirmwareEra.Seed) Assert.NotNull(view["system"]?["sys_uptime"]); // nested sys_info, read
            }
            await Eventually.True(async () =>
            {
                var nine = (await _node.GetJson("/api/v1/devices?protocol=9"))["items"]!.AsArray();
                return nine.Count == 1 && (string?)nine[0]!["device_id"] == "mixed-9";
            }, "the directory filters by protocol");

            await Task.WhenAll(routers.Select(async r =>
            {
                var id = r.DeviceId;
                var auth = await Post(id, Auth("aa:bb:cc:dd:ee:11"));
                var kick = await Post(id, """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:11","gw_id":"gw-1"}""");
                var pass = await Post(id, """{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:12"}""");
                var fw = await Post(id, """{"type":"get_firmware_info"}""");
                var up = await Post(id, """{"type":"firmware_upgrade","url":"http://fw.example.com/openwrt-sysupgrade.bin"}""");
                var oneWay = r.Era == FirmwareEra.V9 ? "succeeded" : "delivered";
                Assert.Equal(oneWay, (string?)(await Final(id, auth))["status"]);
                Assert.Equal("succeeded", (string?)(await Final(id, kick))["status"]);
                Assert.Equal(oneWay, (string?)(await Final(id, pass))["status"]);
                var info = await Final(id, fw);
                Assert.Equal("succeeded", (string?)info["status"]);
                Assert.Equal("succeeded", (string?)(await Final(id, up))["status"]);
                var view = await _node.GetJson($"/api/v1/devices/{id}");
                Assert.False(string.IsNullOrEmpty((string?)view["firmware"]!["DISTRIB_RELEASE"]));
                Assert.Equal(["auth", "kickoff", "tmp_pass", "get_firmware_info", "firmware_upgrade"],
                    r.Requests.Select(x => x.Name).Where(n => n != "gateway_heartbeat").ToList());
            }));
            foreach (var r in routers) r.AssertNoLoss();
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Theory, MemberData(nameof(SeedAnd9))]
    public async Task A_silent_socket_is_dropped_without_a_ping_or_close_frame_and_the_router_comes_back(FirmwareEra era)
    {
        var id = $"silent-{Name(era)}";
        // No heartbeat for a minute: the node (silence limit 3 s here) drops it; the router reconnects after EOF.
        await using var router = Router(id, era, heartbeat: TimeSpan.FromMinutes(1)).Start();
        await router.WaitConnectedAsync();
        await Online(id, true);
        await router.WaitConnectedAsync(TimeSpan.FromSeconds(20), connections: 2);
        var node = await _node.GetJson("/api/v1/node");
        Assert.True((long)node["connections"]!["closed_for_silence"]! >= 1);
        router.AssertNoLoss(); // no WebSocket ping, no close frame on the way
    }

    [Fact]
    public async Task Requests_only_current_firmware_has_are_answered_by_a_9_router_and_time_out_on_a_seed_router()
    {
        await using var nine = Router("only-9", FirmwareEra.V9).Start();
        await using var seed = Router("only-seed", FirmwareEra.Seed).Start();
        await nine.WaitConnectedAsync();
        await seed.WaitConnectedAsync();
        await Online("only-9", true);
        await Online("only-seed", true);

        var clients = await Post("only-9", """{"type":"get_clients"}""");
        var info = await Post("only-9", """{"type":"get_device_info"}""");
        var macs = await Post("only-9", """{"type":"sync_trusted_mac","macs":["AA:BB:CC:DD:EE:01","aa:bb:cc:dd:ee:02"]}""");
        Assert.Equal("succeeded", (string?)(await Final("only-9", clients))["status"]);
        var device = await Final("only-9", info);
        Assert.Equal("succeeded", (string?)device["status"]);
        Assert.Equal("only-9", (string?)device["response"]!["data"]!["data"]!["ap_device_id"]);
        Assert.Equal("succeeded", (string?)(await Final("only-9", macs))["status"]);
        var sent = Assert.IsType<SyncMacsRequest>(nine.Requests.Single(r => r.Name == "sync_trusted_mac").Request);
        Assert.Equal(["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"], sent.Macs);

        // Seed-era firmware ignores what it has no handler for: the command times out, and the next one still goes.
        var ignored = await Post("only-seed", """{"type":"get_clients"}""", "?timeout=2");
        Assert.Equal("timed_out", (string?)(await Final("only-seed", ignored))["status"]);
        var fw = await Post("only-seed", """{"type":"get_firmware_info"}""");
        Assert.Equal("succeeded", (string?)(await Final("only-seed", fw))["status"]);
        nine.AssertNoLoss();
        seed.AssertNoLoss();
    }

    [Fact]
    public async Task A_9_router_gets_one_reply_per_report_each_in_its_own_kind_even_before_its_entity_has_answered_the_connect()
    {
        // Heartbeats faster than the first reply (a new entity persists before it answers): each report still
        // gets its own reply, the connect a "connect" one (the only kind 9.x takes modes from), and no
        // gateway_heartbeat goes out while the router's modes are the ones wanted.
        await using var router = new RealReaderRouter(_node.WebSocketUri(), "fast-9", FirmwareEra.V9)
        {
            HeartbeatEvery = TimeSpan.FromMilliseconds(100), Delays = ReconnectDelays.All(TimeSpan.FromMilliseconds(300)),
        }.Start();
        await router.WaitForAsync(r => r.HeartbeatsSent >= 8, "8 heartbeats sent");
        await router.WaitForRepliesAsync(9);
        var replies = router.Replies;
        Assert.Equal("connect", replies[0].Name);
        Assert.True(replies[0].Applied);
        Assert.All(replies.Skip(1), r => Assert.Equal("heartbeat", r.Name));
        Assert.DoesNotContain(replies, r => r.Name == "gateway_heartbeat");
        router.AssertNoLoss();
    }
}
