using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

public sealed class DirectoryTests : IAsyncLifetime
{
    private Node _node = null!;
    public async ValueTask InitializeAsync() => _node = await Node.StartAsync();
    public async ValueTask DisposeAsync() => await _node.DisposeAsync();

    private async Task<JsonArray> Items(string query) => (await _node.GetJson("/api/v1/devices" + query))["items"]!.AsArray();

    [Fact]
    public async Task Directory_lists_online_and_offline_devices_with_filters_and_paging()
    {
        var routers = new List<PretendRouter>();
        for (var i = 0; i < 5; i++)
            routers.Add(await PretendRouter.ConnectAsync(_node.WebSocketUri(), $"dir-{i}",
                gateways: i % 2 == 0 ? PretendRouter.DefaultGateways : """[{"gw_id":"gw-odd","auth_mode":1}]"""));
        await routers[4].DisposeAsync();
        await Eventually.True(async () => (await Items("?online=false")).Count == 1, "one offline");
        await Eventually.True(async () => (await Items("?online=true")).Count == 4, "four online");

        var offline = (await Items("?online=false")).Single()!;
        Assert.Equal("dir-4", (string?)offline["device_id"]);
        Assert.False((bool)offline["online"]!);
        Assert.Equal("lobby-dir-4", (string?)offline["location_id"]);

        Assert.Equal(["dir-1", "dir-3"], (await Items("?gw_id=gw-odd")).Select(d => (string)d!["device_id"]!));
        Assert.Equal(["dir-3"], (await Items("?q=LOBBY-DIR-3")).Select(d => (string)d!["device_id"]!));

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await _node.GetJson("/api/v1/devices?limit=2" + (cursor is null ? "" : "&cursor=" + cursor));
            Assert.True(page["items"]!.AsArray().Count <= 2);
            seen.AddRange(page["items"]!.AsArray().Select(d => (string)d!["device_id"]!));
            cursor = (string?)page["next_cursor"];
        } while (cursor is not null);
        Assert.Equal(["dir-0", "dir-1", "dir-2", "dir-3", "dir-4"], seen);
        foreach (var r in routers.Take(4)) await r.DisposeAsync();
    }

    [Fact]
    public async Task Heartbeats_that_change_nothing_write_nothing_to_the_journal()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), "quiet");
        await router.HeartbeatAndReply(); // the first heartbeat may still be catching up with connect
        var before = await JournalRows();
        for (var i = 0; i < 5; i++) await router.HeartbeatAndReply();
        Assert.Equal(before, await JournalRows());
        await router.HeartbeatAndReply("""[{"gw_id":"gw-1","auth_mode":0}]""");
        Assert.Equal(before + 1, await JournalRows());
    }

    private async Task<long> JournalRows()
    {
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_node.DbPath}");
        await c.OpenAsync(TestContext.Current.CancellationToken);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = 'device-quiet'";
        return (long)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    [Fact]
    public async Task Operations_endpoints_answer()
    {
        Assert.Equal(200, (await _node.Send(HttpMethod.Get, "/healthz")).Status);
        Assert.Equal("ready", (string?)(await _node.GetJson("/readyz"))["status"]);
        var openapi = await _node.GetJson("/openapi/v1.json");
        var paths = openapi["paths"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Contains("/api/v1/devices/{deviceId}/commands", paths);
        Assert.Contains("/api/v1/devices/{deviceId}/gateways/{gwId}/auth-mode", paths);
        Assert.Contains("/api/v1/devices", paths);
    }
}

/// <summary>Stop a node and start another on the same SQLite file: nothing is lost, the device is offline.</summary>
public sealed class RecoveryTests
{
    [Fact]
    public async Task Restart_recovers_everything_but_the_socket()
    {
        var db = Node.NewDbPath();
        string queuedId;
        await using (var node = await Node.StartAsync(db))
        {
            await using (var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "survivor"))
            {
                var auth = node.Post("/api/v1/devices/survivor/commands?wait=10",
                    """{"type":"auth","token":"t","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""");
                await router.ReceiveType("auth");
                Assert.Equal("delivered", (string?)(await auth).Body!["status"]);
                var put = await node.Send(HttpMethod.Put, "/api/v1/devices/survivor/gateways/gw-1/auth-mode", """{"auth_mode":0}""");
                Assert.Equal(200, put.Status);
                var fw = node.Post("/api/v1/devices/survivor/commands?wait=10", """{"type":"get_firmware_info"}""");
                await router.ReceiveType("get_firmware_info");
                await router.Send("""{"type":"firmware_info_response","data":{"DISTRIB_RELEASE":"23.05"}}""");
                Assert.Equal("succeeded", (string?)(await fw).Body!["status"]);
            }
            await Eventually.True(async () => (bool?)(await node.GetJson("/api/v1/devices/survivor"))["online"] == false, "offline");
            var (_, queued, _) = await node.Post("/api/v1/devices/survivor/commands", """{"type":"get_sys_info"}""");
            queuedId = (string)queued!["command_id"]!;
        }

        await using (var node = await Node.StartAsync(db))
        {
            var device = await node.GetJson("/api/v1/devices/survivor");
            Assert.False((bool)device["online"]!);
            Assert.Equal("aa:bb:cc:dd:ee:ff", (string?)device["clients"]![0]!["client_mac"]);
            Assert.Equal(0, (int)device["gateways"]![0]!["desired_auth_mode"]!);
            Assert.Equal("23.05", (string?)device["firmware"]!["DISTRIB_RELEASE"]);
            var commands = (await node.GetJson("/api/v1/devices/survivor/commands"))["items"]!.AsArray();
            Assert.Equal(["get_sys_info", "get_firmware_info", "auth"], commands.Select(c => (string)c!["type"]!));
            Assert.Equal("queued", (string?)commands[0]!["status"]);
            await Eventually.True(async () =>
                (await node.GetJson("/api/v1/devices?q=survivor"))["items"]!.AsArray().SingleOrDefault()?["online"]?.GetValue<bool>() == false,
                "directory shows the device offline");

            await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "survivor");
            var frame = await router.ReceiveType("get_sys_info");
            Assert.Equal(queuedId, (string?)frame["req_id"]);
            // One frame in flight: the next (the reply to a heartbeat) waits for this answer.
            await router.Send($$$"""{"type":"get_sys_info_response","req_id":"{{{queuedId}}}","data":{"sys_uptime":5}}""");
            Assert.Equal(0, (int)(await router.HeartbeatAndReply())["gateway"]![0]!["auth_mode"]!);
        }
    }
}
