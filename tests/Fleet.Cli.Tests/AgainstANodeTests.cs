using System.Text.Json.Nodes;
using Fleet.Cli.Tests.Support;
using Xunit;

namespace Fleet.Cli.Tests;

/// <summary>fleetctl in-process against a real node: what it prints and the exit code a script tests.</summary>
public sealed class AgainstANodeTests(CliNode node) : IClassFixture<CliNode>
{
    private const string Kickoff = "--type kickoff --client-ip 192.168.1.23 --client-mac aa:bb:cc:dd:ee:ff --gw-id gw-1";

    private static void ExitsWith(int exit, CliRun run) => Assert.True(run.Exit == exit, $"expected exit {exit}, got {run}");

    private static string[] Args(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public async Task Devices_list_shows_a_connected_router_as_a_table_row_and_as_json()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        await node.Listed(router.DeviceId);

        var table = await node.Run("devices", "list", "--q", router.DeviceId);
        ExitsWith(ExitCodes.Ok, table);
        Assert.Equal(["DEVICE", "ONLINE", "PROTOCOL", "GATEWAYS", "LOCATION", "NODE", "LAST", "SEEN", "RELEASE", "TAGS"], Args(table.Lines[0]));
        var row = Args(table.Lines.Single(l => l.StartsWith(router.DeviceId, StringComparison.Ordinal)));
        Assert.Equal([router.DeviceId, "true", "seed", "gw-1", $"lobby-{router.DeviceId}"], row.Take(5));

        var json = await node.Run("devices", "list", "--q", router.DeviceId, "--online", "true", "--json");
        ExitsWith(ExitCodes.Ok, json);
        var item = Assert.Single(json.Json["items"]!.AsArray());
        Assert.Equal(router.DeviceId, (string?)item!["device_id"]);
        Assert.True((bool)item["online"]!);
        Assert.Contains("next_cursor", json.Json.AsObject().Select(p => p.Key));

        var offline = await node.Run("devices", "list", "--q", router.DeviceId, "--online", "false", "--json");
        Assert.Empty(offline.Json["items"]!.AsArray());
    }

    [Fact]
    public async Task Devices_list_all_follows_next_cursor_to_the_last_page()
    {
        var prefix = "pg-" + Guid.NewGuid().ToString("N")[..6];
        var routers = new List<PretendRouter>();
        try
        {
            for (var i = 0; i < 3; i++) routers.Add(await PretendRouter.ConnectAsync(node.WebSocketUri, $"{prefix}-{i}"));
            foreach (var r in routers) await node.Listed(r.DeviceId);

            var onePage = await node.Run("devices", "list", "--q", prefix, "--limit", "1", "--json");
            Assert.Single(onePage.Json["items"]!.AsArray());
            Assert.NotNull((string?)onePage.Json["next_cursor"]);

            var all = await node.Run("devices", "list", "--q", prefix, "--limit", "1", "--all", "--json");
            ExitsWith(ExitCodes.Ok, all);
            Assert.Equal(routers.Select(r => r.DeviceId).Order(), all.Json["items"]!.AsArray().Select(i => (string)i!["device_id"]!).Order());
            Assert.Null((string?)all.Json["next_cursor"]);

            var table = await node.Run("devices", "list", "--q", prefix, "--limit", "1", "--all");
            Assert.Equal(3, table.Lines.Count(l => l.StartsWith(prefix, StringComparison.Ordinal)));
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task Devices_get_shows_the_device_with_its_gateways_and_json_is_the_api_view()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        var table = await node.Run("devices", "get", router.DeviceId);
        ExitsWith(ExitCodes.Ok, table);
        Assert.Contains(table.Lines, l => Args(l) is ["device_id", var id] && id == router.DeviceId);
        Assert.Contains(table.Lines, l => Args(l) is ["online", "true"]);
        Assert.Contains(table.Lines, l => Args(l) is ["gw-1", "apfree", "192.168.1.1", "br-lan", "1", "-"]);

        var json = await node.Run("devices", "get", router.DeviceId, "--json");
        Assert.Equal(router.DeviceId, (string?)json.Json["device_id"]);
        Assert.Equal("gw-1", (string?)json.Json["gateways"]![0]!["gw_id"]);
    }

    [Fact]
    public async Task Unknown_device_exits_3_with_the_api_detail_on_stderr()
    {
        var id = CliNode.NewDeviceId();
        var run = await node.Run("devices", "get", id);
        ExitsWith(ExitCodes.NotFound, run);
        var detail = (string)(await node.Problem($"/api/v1/devices/{id}"))["detail"]!;
        Assert.Equal($"fleetctl: {detail}", run.Err.Trim());
        Assert.Contains(id, detail);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public async Task Kickoff_with_wait_to_a_router_that_answers_exits_0_with_status_succeeded()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        var answering = Task.Run(async () => await router.Answer(await router.ReceiveType("kickoff")), TestContext.Current.CancellationToken);

        var run = await node.Run([.. Args($"commands send {router.DeviceId} {Kickoff} --wait 15 --json")]);
        await answering;
        ExitsWith(ExitCodes.Ok, run);
        Assert.Equal("succeeded", (string?)run.Json["status"]);
        Assert.Equal("Client kicked off successfully", (string?)run.Json["response"]!["message"]);

        var list = await node.Run("commands", "list", router.DeviceId);
        var row = Args(list.Lines.Single(l => l.StartsWith((string)run.Json["command_id"]!, StringComparison.Ordinal)));
        Assert.Equal(["kickoff", "succeeded"], row.Skip(1).Take(2));
    }

    [Fact]
    public async Task Kickoff_answered_with_kickoff_error_exits_6_and_says_why()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        var answering = Task.Run(async () =>
        {
            var frame = await router.ReceiveType("kickoff");
            await router.Send(new JsonObject
            {
                ["type"] = "kickoff_error", ["req_id"] = frame["req_id"]!.DeepClone(), ["error"] = "Client not found",
            }.ToJsonString());
        }, TestContext.Current.CancellationToken);

        var run = await node.Run([.. Args($"commands send {router.DeviceId} {Kickoff} --wait 15")]);
        await answering;
        ExitsWith(ExitCodes.CommandNotSucceeded, run);
        Assert.Contains(run.Lines, l => Args(l) is ["status", "failed"]);
        Assert.Contains("ended failed: Client not found", run.Err);
    }

    [Fact]
    public async Task A_bad_mac_exits_2_with_the_api_detail()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        var run = await node.Run([.. Args($"commands send {router.DeviceId} --type kickoff --client-ip 192.168.1.23 --client-mac zz --gw-id gw-1")]);
        ExitsWith(ExitCodes.Usage, run);
        Assert.Equal("fleetctl: client_mac 'zz' is not a MAC address (expected aa:bb:cc:dd:ee:ff)", run.Err.Trim());
    }

    [Fact]
    public async Task Fields_and_body_build_the_request_with_json_values()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        var run = await node.Run("commands", "send", router.DeviceId, "--body", """{"type":"auth","token":"t0","client_ip":"10.0.0.1"}""",
            "--client-ip", "192.168.1.23", "--field", "client_mac=aa:bb:cc:dd:ee:01", "--field", "gw_id=gw-1", "--field", "once_auth=true",
            "--field", "client_name=my phone", "--json");
        ExitsWith(ExitCodes.Ok, run);
        var request = run.Json["request"]!;
        Assert.Equal("auth", (string?)request["type"]);
        Assert.Equal("t0", (string?)request["token"]);
        Assert.Equal("192.168.1.23", (string?)request["client_ip"]);
        Assert.Equal("aa:bb:cc:dd:ee:01", (string?)request["client_mac"]);
        Assert.True((bool)request["once_auth"]!);
        Assert.Equal("my phone", (string?)request["client_name"]);
    }

    [Fact]
    public async Task A_wrong_key_exits_4()
    {
        var run = await node.RunWithKey("not-a-key-of-this-fleet", "devices", "list");
        ExitsWith(ExitCodes.Unauthorized, run);
        Assert.StartsWith("fleetctl: ", run.Err);
        var none = await node.RunWithKey(null, "devices", "list");
        ExitsWith(ExitCodes.Unauthorized, none);
    }

    [Fact]
    public async Task A_viewer_key_sending_a_command_exits_4_and_may_still_read()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        var send = await node.RunWithKey(TestKeys.Viewer, [.. Args($"commands send {router.DeviceId} {Kickoff}")]);
        ExitsWith(ExitCodes.Unauthorized, send);
        ExitsWith(ExitCodes.Ok, await node.RunWithKey(TestKeys.Viewer, "devices", "get", router.DeviceId));
        var commands = await node.Run("commands", "list", router.DeviceId, "--json");
        Assert.Empty(commands.Json["items"]!.AsArray());
    }

    /// <summary>A device that was seen and went offline: its commands stay queued.</summary>
    private async Task<string> OfflineDevice()
    {
        var id = CliNode.NewDeviceId();
        await (await PretendRouter.ConnectAsync(node.WebSocketUri, id)).DisposeAsync();
        await Eventually.True(async () => (await node.Run("devices", "get", id, "--json")).Json["online"]!.GetValue<bool>() == false,
            $"{id} offline");
        return id;
    }

    [Fact]
    public async Task Cancel_a_queued_command_then_cancelling_it_again_exits_5()
    {
        var id = await OfflineDevice();
        var sent = await node.Run([.. Args($"commands send {id} {Kickoff} --json")]);
        ExitsWith(ExitCodes.Ok, sent);
        Assert.Equal("queued", (string?)sent.Json["status"]);
        var commandId = (string)sent.Json["command_id"]!;

        var cancel = await node.Run("commands", "cancel", id, commandId);
        ExitsWith(ExitCodes.Ok, cancel);
        Assert.Contains(cancel.Lines, l => Args(l) is ["status", "cancelled"]);

        var again = await node.Run("commands", "cancel", id, commandId);
        ExitsWith(ExitCodes.Conflict, again);
        Assert.StartsWith("fleetctl: ", again.Err);

        var get = await node.Run("commands", "get", id, commandId, "--json");
        Assert.Equal("cancelled", (string?)get.Json["status"]);
        ExitsWith(ExitCodes.NotFound, await node.Run("commands", "get", id, "c-no-such-command"));
    }

    [Fact]
    public async Task Wait_that_runs_out_while_queued_exits_7_and_get_wait_sees_the_final_status()
    {
        var id = await OfflineDevice();
        var run = await node.Run([.. Args($"commands send {id} {Kickoff} --wait 1 --json")]);
        ExitsWith(ExitCodes.StillPending, run);
        Assert.Equal("queued", (string?)run.Json["status"]);
        Assert.Contains("still queued after 1 s", run.Err);

        var commandId = (string)run.Json["command_id"]!;
        ExitsWith(ExitCodes.Ok, await node.Run("commands", "cancel", id, commandId));
        var get = await node.Run("commands", "get", id, commandId, "--wait", "5");
        ExitsWith(ExitCodes.CommandNotSucceeded, get);
        Assert.Contains("ended cancelled", get.Err);
    }

    [Fact]
    public async Task Keys_create_list_use_and_delete()
    {
        var name = "cli-" + Guid.NewGuid().ToString("N")[..8];
        var created = await node.Run("keys", "create", name, "--role", "viewer", "--json");
        ExitsWith(ExitCodes.Ok, created);
        Assert.Equal(name, (string?)created.Json["name"]);
        Assert.Equal("viewer", (string?)created.Json["role"]);
        var key = (string)created.Json["key"]!;

        var list = await node.Run("keys", "list");
        Assert.Contains(list.Lines, l => Args(l) is [var n, "viewer", "database", ..] && n == name);
        ExitsWith(ExitCodes.Ok, await node.RunWithKey(key, "devices", "list"));
        ExitsWith(ExitCodes.Unauthorized, await node.RunWithKey(key, "keys", "list"));
        ExitsWith(ExitCodes.Conflict, await node.Run("keys", "create", name, "--role", "viewer"));

        var deleted = await node.Run("keys", "delete", name);
        ExitsWith(ExitCodes.Ok, deleted);
        Assert.DoesNotContain(name, (await node.Run("keys", "list", "--json")).Out);
        ExitsWith(ExitCodes.Unauthorized, await node.RunWithKey(key, "devices", "list"));
        ExitsWith(ExitCodes.NotFound, await node.Run("keys", "delete", name));
        ExitsWith(ExitCodes.Usage, await node.Run("keys", "create", name, "--role", "root"));
    }

    [Fact]
    public async Task Auth_mode_set_records_the_desired_mode_and_an_unknown_gateway_exits_3()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        var set = await node.Run("auth-mode", "set", router.DeviceId, "gw-1", "0", "--json");
        ExitsWith(ExitCodes.Ok, set);
        Assert.Equal(0, (int?)set.Json["desired_auth_mode"]);
        var device = await node.Run("devices", "get", router.DeviceId, "--json");
        Assert.Equal(0, (int?)device.Json["gateways"]![0]!["desired_auth_mode"]);

        var unknown = await node.Run("auth-mode", "set", router.DeviceId, "gw-9", "0");
        ExitsWith(ExitCodes.NotFound, unknown);
        Assert.Contains("gw-9", unknown.Err);
    }

    [Fact]
    public async Task The_key_can_come_from_a_file()
    {
        var file = Path.Combine(Path.GetTempPath(), "fleet-tests", Guid.NewGuid().ToString("N") + ".key");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await File.WriteAllTextAsync(file, TestKeys.Admin + "\n", TestContext.Current.CancellationToken);
        ExitsWith(ExitCodes.Ok, await node.RunWithKey(null, "keys", "list", "--key-file", file));
        ExitsWith(ExitCodes.Usage, await node.RunWithKey(null, "keys", "list", "--key-file", file + ".missing"));
    }

    [Fact]
    public async Task Events_follows_the_real_stream_of_a_device_until_stopped()
    {
        var id = CliNode.NewDeviceId();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var stdout = new StringWriter();
        var before = node.EventSubscribers;
        var following = CliRun.InProcess(["events", "--device-id", id, "--url", node.BaseAddress.ToString()],
            new Dictionary<string, string?> { ["FLEET_KEY"] = TestKeys.Viewer }, stdout, stop.Token);
        await Eventually.True(() => Task.FromResult(node.EventSubscribers > before), "fleetctl subscribed");

        var router = await PretendRouter.ConnectAsync(node.WebSocketUri, id);
        await router.DisposeAsync();
        string Seen() { lock (stdout) return stdout.ToString(); }
        await Eventually.True(() => Task.FromResult(Seen().Contains(" device.offline " + id)), "online and offline printed",
            detail: () => Seen());
        await stop.CancelAsync();
        var run = await following;
        ExitsWith(ExitCodes.Ok, run);
        var lines = run.Lines;
        Assert.Contains(lines, l => l.Contains($" device.online {id} node=", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("keep-alive", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.Contains($" {id} ", l));
    }
}
