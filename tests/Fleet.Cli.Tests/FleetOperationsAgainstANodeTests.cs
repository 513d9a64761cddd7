using System.Text.Json.Nodes;
using Fleet.Cli.Tests.Support;
using Xunit;

namespace Fleet.Cli.Tests;

/// <summary>
/// fleetctl's jobs, rollouts, tags and clients against a real node and pretend routers (some with a firmware that really
/// upgrades): the exit codes a script tests and what it prints. Each test has devices of its own.
/// </summary>
public sealed class FleetOperationsAgainstANodeTests(CliNode node) : IClassFixture<CliNode>
{
    private static void ExitsWith(int exit, CliRun run) => Assert.True(run.Exit == exit, $"expected exit {exit}, got {run}");

    private static string[] Args(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static string Prefix() => "op-" + Guid.NewGuid().ToString("N")[..8];

    private ReconnectingRouter Router(string id, PretendFirmware? firmware = null) =>
        new ReconnectingRouter(node.WebSocketUri, id) { Firmware = firmware, HeartbeatEvery = TimeSpan.FromSeconds(5) }.Start();

    /// <summary>Online, and so listed by the directory (about a second behind), where selections are resolved.</summary>
    private Task Online(string id) => Eventually.True(async () =>
        (await node.Run("devices", "list", "--q", id, "--online", "true", "--json")).Json["items"]!.AsArray().Any(d => (string?)d!["device_id"] == id),
        $"{id} online in the directory");

    /// <summary>A device that was seen and went offline: a job's command waits in its queue.</summary>
    private async Task<string> OfflineDevice(string id)
    {
        await (await PretendRouter.ConnectAsync(node.WebSocketUri, id)).DisposeAsync();
        await Eventually.True(async () => (await node.Run("devices", "get", id, "--json")).Json["online"]!.GetValue<bool>() == false, $"{id} offline");
        await node.Listed(id);
        return id;
    }

    [Fact]
    public async Task A_dry_run_counts_the_devices_the_selection_names_and_creates_no_job()
    {
        var prefix = Prefix();
        await using var a = await PretendRouter.ConnectAsync(node.WebSocketUri, $"{prefix}-a");
        await using var b = await PretendRouter.ConnectAsync(node.WebSocketUri, $"{prefix}-b");
        await node.Listed(a.DeviceId);
        await node.Listed(b.DeviceId);
        var before = (await node.Run("jobs", "list", "--all", "--json")).Json["items"]!.AsArray().Count;

        var dry = await node.Run("jobs", "create", "--q", prefix, "--online", "--type", "get_firmware_info", "--dry-run", "--json");
        ExitsWith(ExitCodes.Ok, dry);
        Assert.True((bool)dry.Json["dry_run"]!);
        Assert.Equal(2, (int)dry.Json["count"]!);
        Assert.Equal([a.DeviceId, b.DeviceId], dry.Json["device_ids"]!.AsArray().Select(d => (string)d!).Order());

        var table = await node.Run("jobs", "create", "--q", prefix, "--type", "get_firmware_info", "--dry-run");
        ExitsWith(ExitCodes.Ok, table);
        Assert.Contains(table.Lines, l => Args(l) is ["devices", "2"]);
        Assert.Contains(a.DeviceId, table.Lines);

        var rollout = await node.Run("rollouts", "create", "--q", prefix, "--firmware-url", "https://fw.test/openwrt-24.10.1-sysupgrade.bin",
            "--release", "24.10.1", "--dry-run", "--json");
        ExitsWith(ExitCodes.Ok, rollout);
        Assert.Equal(2, (int)rollout.Json["count"]!);
        Assert.Equal(before, (await node.Run("jobs", "list", "--all", "--json")).Json["items"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_job_to_two_routers_is_watched_until_it_completes_and_every_device_succeeded()
    {
        var prefix = Prefix();
        await using var a = Router($"{prefix}-a");
        await using var b = Router($"{prefix}-b");
        await Online(a.DeviceId);
        await Online(b.DeviceId);

        var created = await node.Run("jobs", "create", "--device", a.DeviceId, "--device", b.DeviceId, "--type", "get_firmware_info",
            "--name", $"firmware info {prefix}", "--json");
        ExitsWith(ExitCodes.Ok, created);
        var id = (string)created.Json["job_id"]!;
        Assert.Equal("command", (string?)created.Json["kind"]);
        Assert.Equal(2, (int)created.Json["total"]!);

        var watch = await node.Run("jobs", "watch", id, "--interval", "0.3", "--wait", "60");
        ExitsWith(ExitCodes.Ok, watch);
        Assert.Contains(watch.Lines, l => Args(l) is ["status", "completed"]);
        Assert.Contains(watch.Lines, l => Args(l) is ["progress", "2/2", "finished"]);
        Assert.Contains(watch.Lines, l => Args(l) is ["succeeded", "2"]);
        Assert.Contains($"fleetctl: job {id} completed: 2/2 finished (succeeded 2)", watch.Err);

        var devices = await node.Run("jobs", "devices", id, "--json");
        ExitsWith(ExitCodes.Ok, devices);
        Assert.All(devices.Json["items"]!.AsArray(), d => Assert.Equal("succeeded", (string?)d!["status"]));
        var table = await node.Run("jobs", "devices", id, "--status", "succeeded");
        Assert.Equal(2, table.Lines.Count(l => l.StartsWith(prefix, StringComparison.Ordinal)));

        var list = await node.Run("jobs", "list", "--kind", "command");
        Assert.Contains(list.Lines, l => Args(l) is [var j, "command", "completed", "2/2", ..] && j == id);
        // The same command a device's history shows, named by the job.
        var commandId = (string)devices.Json["items"]![0]!["command_id"]!;
        var deviceId = (string)devices.Json["items"]![0]!["device_id"]!;
        ExitsWith(ExitCodes.Ok, await node.Run("commands", "get", deviceId, commandId));
    }

    [Fact]
    public async Task Pause_resume_and_cancel_exit_0_then_5_when_the_status_does_not_allow_it_and_watch_exits_8()
    {
        var id0 = await OfflineDevice(Prefix());
        var created = await node.Run("jobs", "create", "--device", id0, "--type", "get_sys_info", "--json");
        ExitsWith(ExitCodes.Ok, created);
        var id = (string)created.Json["job_id"]!;

        var paused = await node.Run("jobs", "pause", id);
        ExitsWith(ExitCodes.Ok, paused);
        Assert.Contains(paused.Lines, l => Args(l) is ["status", "paused"]);
        ExitsWith(ExitCodes.StillPending, await node.Run("jobs", "watch", id, "--wait", "1", "--interval", "0.3"));

        var resumed = await node.Run("jobs", "resume", id, "--json");
        ExitsWith(ExitCodes.Ok, resumed);
        Assert.Equal("running", (string?)resumed.Json["status"]);
        var again = await node.Run("jobs", "resume", id);
        ExitsWith(ExitCodes.Conflict, again);
        Assert.StartsWith("fleetctl: ", again.Err);

        var cancelled = await node.Run("jobs", "cancel", id, "--json");
        ExitsWith(ExitCodes.Ok, cancelled);
        Assert.Equal("cancelled", (string?)cancelled.Json["status"]);
        ExitsWith(ExitCodes.Conflict, await node.Run("jobs", "cancel", id));
        ExitsWith(ExitCodes.Conflict, await node.Run("jobs", "pause", id));

        var watch = await node.Run("jobs", "watch", id);
        ExitsWith(ExitCodes.JobNotCompleted, watch);
        Assert.EndsWith($"fleetctl: job {id} ended cancelled", watch.Err.Trim());
    }

    [Fact]
    public async Task An_unknown_job_or_rollout_exits_3_with_the_api_detail()
    {
        foreach (var line in new[] { "jobs get j-no-such", "jobs watch j-no-such", "jobs pause j-no-such", "jobs devices j-no-such",
                     "rollouts get j-no-such", "rollouts approve j-no-such" })
        {
            var run = await node.Run(Args(line));
            ExitsWith(ExitCodes.NotFound, run);
            Assert.StartsWith("fleetctl: ", run.Err);
            Assert.Equal("", run.Out);
        }
    }

    [Fact]
    public async Task A_viewer_may_list_jobs_but_not_create_or_pause_one()
    {
        var id0 = await OfflineDevice(Prefix());
        ExitsWith(ExitCodes.Unauthorized, await node.RunWithKey(TestKeys.Viewer, "jobs", "create", "--device", id0, "--type", "get_sys_info"));
        var created = await node.Run("jobs", "create", "--device", id0, "--type", "get_sys_info", "--json");
        var id = (string)created.Json["job_id"]!;
        ExitsWith(ExitCodes.Ok, await node.RunWithKey(TestKeys.Viewer, "jobs", "get", id));
        ExitsWith(ExitCodes.Unauthorized, await node.RunWithKey(TestKeys.Viewer, "jobs", "pause", id));
        ExitsWith(ExitCodes.Ok, await node.Run("jobs", "cancel", id));
    }

    private static PretendFirmware Firmware(PretendUpgrade upgrade = PretendUpgrade.Good) =>
        new("24.10.0", upgrade) { FlashDelay = TimeSpan.FromMilliseconds(200), RebootDelay = TimeSpan.FromSeconds(1) };

    private static readonly string[] Image = ["--firmware-url", "https://fw.test/openwrt-24.10.1-ramips-mt7621-sysupgrade.bin", "--release", "24.10.1"];

    [Fact]
    public async Task A_rollout_upgrades_three_pretend_routers_stage_by_stage_and_watch_exits_0()
    {
        var prefix = Prefix();
        var routers = Enumerable.Range(0, 3).Select(i => Router($"{prefix}-{i}", Firmware())).ToList();
        try
        {
            foreach (var r in routers) await Online(r.DeviceId);
            var created = await node.Run(["rollouts", "create", "--tag", $"location=lobby-{prefix}-0", .. Image, "--dry-run", "--json"]);
            ExitsWith(ExitCodes.Ok, created); // a derived tag selects too (location ← location_id)
            Assert.Equal(1, (int)created.Json["count"]!);

            var run = await node.Run(["rollouts", "create", "--q", prefix, .. Image, "--canary", "1", "--wave-factor", "2", "--rate", "600",
                "--device-timeout", "60", "--name", $"24.10.1 {prefix}", "--json"]);
            ExitsWith(ExitCodes.Ok, run);
            var id = (string)run.Json["job_id"]!;
            Assert.Equal("rollout", (string?)run.Json["kind"]);
            Assert.Equal([1, 2], run.Json["rollout"]!["stages"]!.AsArray().Select(s => (int)s!["size"]!));

            var watch = await node.Run("rollouts", "watch", id, "--interval", "0.5", "--wait", "120");
            ExitsWith(ExitCodes.Ok, watch);
            Assert.Contains(watch.Lines, l => Args(l) is ["status", "completed"]);
            Assert.Contains(watch.Lines, l => Args(l) is ["upgraded", "3"]);
            Assert.All(routers, r => Assert.Equal("24.10.1", r.Firmware!.Release));

            var devices = await node.Run("rollouts", "devices", id, "--stage", "1", "--json");
            Assert.Equal(2, devices.Json["items"]!.AsArray().Count);
            Assert.All(devices.Json["items"]!.AsArray(), d => Assert.Equal("upgraded", (string?)d!["status"]));
            var list = await node.Run("rollouts", "list");
            Assert.Contains(list.Lines, l => Args(l) is [var j, "rollout", "completed", "3/3", ..] && j == id);
            await Eventually.True(async () => (int?)(await node.Run("devices", "list", "--q", prefix, "--release", "24.10.1", "--count", "--json")).Json["count"] == 3,
                "the directory has the new release");
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_canary_that_comes_back_on_the_old_release_aborts_the_rollout_and_watch_exits_8()
    {
        var prefix = Prefix();
        var routers = Enumerable.Range(0, 3).Select(i => Router($"{prefix}-{i}", Firmware(PretendUpgrade.Bad))).ToList();
        try
        {
            foreach (var r in routers) await Online(r.DeviceId);
            var run = await node.Run(["rollouts", "create", "--q", prefix, .. Image, "--canary", "1", "--abort-percent", "0", "--abort-min", "1",
                "--retries", "0", "--device-timeout", "60", "--watch", "--json"]);
            ExitsWith(ExitCodes.JobNotCompleted, run);
            Assert.Equal("aborted", (string?)run.Json["status"]);
            Assert.EndsWith("ended aborted", run.Err.Trim());
            var failed = await node.Run("rollouts", "devices", (string)run.Json["job_id"]!, "--status", "failed", "--json");
            var device = Assert.Single(failed.Json["items"]!.AsArray());
            Assert.Contains("24.10.0", (string?)device!["error"]);
            Assert.Equal(1, routers.Sum(r => r.UpgradesReceived)); // the waves never started
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task Devices_tag_sets_the_operators_tags_that_list_and_selections_filter_on()
    {
        var prefix = Prefix();
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, $"{prefix}-t");
        await node.Listed(router.DeviceId);

        var tagged = await node.Run("devices", "tag", router.DeviceId, "site=paris", "tz=Europe/Paris", "--json");
        ExitsWith(ExitCodes.Ok, tagged);
        Assert.Equal("paris", (string?)tagged.Json["operator_tags"]!["site"]);
        Assert.Equal($"lobby-{router.DeviceId}", (string?)tagged.Json["tags"]!["location"]);

        await Eventually.True(async () => (await node.Run("devices", "list", "--tag", "site=paris", "--q", prefix)).Lines
            .Any(l => l.StartsWith(router.DeviceId, StringComparison.Ordinal)), "the directory has the tag");
        var row = (await node.Run("devices", "list", "--tag", "site=paris", "--tag", "tz=Europe/Paris", "--q", prefix)).Lines
            .Single(l => l.StartsWith(router.DeviceId, StringComparison.Ordinal));
        Assert.EndsWith($"location=lobby-{router.DeviceId},site=paris,tz=Europe/Paris", row);
        Assert.Contains(((await node.Run("devices", "get", router.DeviceId)).Lines), l => Args(l) is ["tags", var t] && t.Contains("site=paris"));
        var dry = await node.Run("jobs", "create", "--tag", "site=paris", "--q", prefix, "--type", "get_sys_info", "--dry-run", "--json");
        Assert.Equal(1, (int)dry.Json["count"]!);

        var bad = await node.Run("devices", "tag", router.DeviceId, "Not_A_Key=x");
        ExitsWith(ExitCodes.Usage, bad);
        Assert.StartsWith("fleetctl: ", bad.Err);
        ExitsWith(ExitCodes.NotFound, await node.Run("devices", "tag", "never-seen-" + prefix, "site=paris"));

        var cleared = await node.Run("devices", "tag", router.DeviceId, "--clear", "--json");
        ExitsWith(ExitCodes.Ok, cleared);
        Assert.Empty(cleared.Json["operator_tags"]!.AsObject());
        Assert.Equal($"lobby-{router.DeviceId}", (string?)cleared.Json["tags"]!["location"]);
    }

    [Fact]
    public async Task Clients_find_and_kickoff_reach_every_router_that_knows_the_client()
    {
        var probe = await node.Http.GetAsync("/api/v1/clients?mac=aa:bb:cc:dd:ee:ff", TestContext.Current.CancellationToken);
        if (probe.StatusCode == System.Net.HttpStatusCode.NotFound) Assert.Skip("this node has no client plane (GET /api/v1/clients) yet");

        var prefix = Prefix();
        var mac = "02:" + string.Join(':', Enumerable.Range(0, 5).Select(_ => Random.Shared.Next(256).ToString("x2")));
        await using var a = Router($"{prefix}-a");
        await using var b = Router($"{prefix}-b");
        foreach (var r in new[] { a, b })
        {
            await Online(r.DeviceId);
            // The router lets the client in: the controller's view (and so the client plane) has it.
            var auth = await node.Run("commands", "send", r.DeviceId, "--type", "auth", "--client-ip", "192.168.1.40", "--client-mac", mac,
                "--gw-id", "gw-1", "--field", "token=t0", "--wait", "10");
            ExitsWith(ExitCodes.Ok, auth);
        }
        await Eventually.True(async () => (await node.Run("clients", "find", "--mac", mac, "--json")).Json["items"]!.AsArray().Count == 2,
            "the client plane has the client on both routers");
        var found = await node.Run("clients", "find", "--mac", mac);
        ExitsWith(ExitCodes.Ok, found);
        Assert.Equal(2, found.Lines.Count(l => Args(l) is [var m, "192.168.1.40", ..] && m == mac));

        var kicked = await node.Run("clients", "kickoff", mac, "--wait", "10");
        ExitsWith(ExitCodes.Ok, kicked);
        Assert.Equal(2, kicked.Lines.Count(l => l.Contains(" succeeded ", StringComparison.Ordinal) || l.EndsWith(" succeeded -", StringComparison.Ordinal)));

        var unknown = await node.Run("clients", "kickoff", "02:00:00:00:00:01");
        ExitsWith(ExitCodes.NotFound, unknown);
        ExitsWith(ExitCodes.Usage, await node.Run("clients", "find", "--mac", "zz"));
    }
}
