using Fleet.Cluster.Tests.Support;
using Fleet.Protocol;
using Fleet.Simulator;

namespace Fleet.Cluster.Tests.Chaos;

/// <summary>
/// The chaos run's checker on small synthetic inputs: a clean run reports nothing, and each kind of violation
/// it exists for is caught (and named with its evidence). No processes: plain facts.
/// </summary>
public class ChaosCheckerTests
{
    private const string Node1 = "akka.tcp://fleet@127.0.0.1:4053#";
    private const string Node2 = "akka.tcp://fleet@127.0.0.1:4054#";
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static string Key(string json) => DeviceLog.ContentKey(json);

    private const string Kick9 = """{"type":"kickoff","client_ip":"10.0.0.1","client_mac":"0a:00:00:00:00:01","gw_id":"gw-1"}""";
    private const string AuthSeed = """{"type":"auth","token":"t","client_ip":"10.0.0.2","client_mac":"0a:00:00:00:00:02","gw_id":"gw-1"}""";
    private const string Status2025 = """{"type":"get_status"}""";

    private static DeviceLogLine Exec(string device, string era, string kind, string? reqId, string content, bool number = false, int second = 0) =>
        new(T0.AddSeconds(second), device, era, DeviceLog.Events.Request, kind, reqId, number, Key(content), "{}",
            Line: $"{{\"device\":\"{device}\",\"ev\":\"request\",\"kind\":\"{kind}\"}}");

    private static DeviceRow Row(string id, string protocol, string node = Node1 + "1", bool online = true, string location = "loc-1") =>
        new(id, online, node, protocol, location, "02:00:00:00:00:01", ["gw-1"]);

    /// <summary>Three routers, one of each dialect, one command each, all executed once and final; every view agrees.</summary>
    private static ChaosInput Clean() => new()
    {
        Accepted =
        [
            new AcceptedCommand("c-9", "r9", "kickoff"),
            new AcceptedCommand("c-seed", "rs", "auth"),
            new AcceptedCommand("c-2025", "r25", "get_status", Attempts: 2),
        ],
        ApiCommands =
        [
            new ApiCommand("c-9", "r9", "kickoff", "succeeded", Key(Kick9), "node1"),
            new ApiCommand("c-9", "r9", "kickoff", "succeeded", Key(Kick9), "node2"),
            new ApiCommand("c-seed", "rs", "auth", "delivered", Key(AuthSeed), "node1"),
            new ApiCommand("c-2025", "r25", "get_status", "succeeded", Key(Status2025), "node1"),
        ],
        DeviceLog =
        [
            Exec("r9", "9", "kickoff", "17", Kick9, number: true),
            Exec("rs", "seed", "auth", "c-seed", AuthSeed),
            Exec("r25", "2025", "get_status", "c-2025", Status2025),
            new(T0, "r9", "9", DeviceLog.Events.Up),
        ],
        Routers =
        [
            new RouterTruth("r9", "9", "loc-1", "02:00:00:00:00:01"),
            new RouterTruth("rs", "seed", "loc-1", "02:00:00:00:00:01"),
            new RouterTruth("r25", "2025", "loc-1", "02:00:00:00:00:01"),
        ],
        Directory = [Row("r9", "9"), Row("rs", "seed"), Row("r25", "2025")],
        Entities = [Row("r9", "9"), Row("rs", "seed"), Row("r25", "2025")],
        LiveNodes = [Node1, Node2],
        NodeExits = [new NodeExit("node2", 1, 137, Signalled: true, T0.UtcDateTime, "node2-1.log")],
    };

    private static void Only(ChaosReport report, ViolationKind kind, string evidence)
    {
        Assert.True(report.Violations.Count > 0 && report.Violations.All(v => v.Kind == kind),
            $"expected only {kind}, got:\n{report.Render()}");
        Assert.Contains(report.Violations, v => v.Detail.Contains(evidence, StringComparison.Ordinal));
    }

    [Fact]
    public void A_clean_run_has_no_violations_and_its_figures()
    {
        var report = ChaosChecker.Check(Clean());
        Assert.True(report.Violations.Count == 0, report.Render());
        var figures = report.Figures.ToDictionary(f => f.Name, f => f.Value);
        Assert.Equal("3", figures["commands accepted"]);
        Assert.Equal("1", figures["submits retried (same Idempotency-Key)"]);
        Assert.Equal("3 of 3", figures["executions matched to a command"]);
        Assert.Equal("3 of 3", figures["routers online on a live node (entity view)"]);
        Assert.Equal("1", figures["node exits by the run's signals"]);
    }

    [Fact]
    public void The_content_key_is_the_same_for_a_request_whatever_carried_it()
    {
        // The API's view of the request has no req_id; the frame a 2025 router got has a string one, a 9.x router's an integer.
        var fromApi = DeviceLog.ContentKey("""{"type":"kickoff","client_mac":"0a:00:00:00:00:01","gw_id":"gw-1","client_ip":"10.0.0.1","device_id":"r9"}""");
        var fromFrame = DeviceLog.ContentKey(new KickoffRequest
            { ReqId = ReqId.Of("17"), ClientIp = "10.0.0.1", ClientMac = "0a:00:00:00:00:01", GwId = "gw-1", DeviceId = "r9" });
        Assert.Equal(fromApi, fromFrame);
        Assert.NotEqual(fromApi, DeviceLog.ContentKey(Kick9.Replace("10.0.0.1", "10.0.0.3")));
    }

    [Fact]
    public void An_accepted_command_no_node_lists_is_lost()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with { Accepted = [.. input.Accepted, new AcceptedCommand("c-gone", "r25", "reboot_device")] });
        Only(report, ViolationKind.CommandLost, "c-gone");
    }

    [Fact]
    public void A_command_still_sent_at_the_end_is_not_final()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            ApiCommands = input.ApiCommands.Select(c => c.CommandId == "c-seed" ? c with { Status = "sent" } : c).ToList(),
        });
        Only(report, ViolationKind.CommandNotFinal, "c-seed");
    }

    [Fact]
    public void Nodes_that_list_one_command_with_two_final_statuses_disagree()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            ApiCommands = input.ApiCommands.Select(c => c.ReadFrom == "node2" ? c with { Status = "timed_out" } : c).ToList(),
        });
        Only(report, ViolationKind.CommandStatusesDisagree, "node2 says timed_out");
    }

    [Fact]
    public void A_req_id_executed_twice_by_a_2025_router_is_caught()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            DeviceLog = [.. input.DeviceLog, Exec("r25", "2025", "get_status", "c-2025", Status2025, second: 5)],
        });
        Only(report, ViolationKind.ExecutedTwice, "req_id c-2025");
        Assert.Equal(1, report.Count(ViolationKind.ExecutedTwice)); // once, not again by content
    }

    [Fact]
    public void A_seed_router_executing_one_request_twice_is_caught_by_content()
    {
        var input = Clean();
        // Seed firmware has no req_id: the frame's is not trusted; the same auth twice is one too many.
        var report = ChaosChecker.Check(input with
        {
            DeviceLog = [.. input.DeviceLog, Exec("rs", "seed", "auth", null, AuthSeed, second: 9)],
        });
        Only(report, ViolationKind.ExecutedTwice, "rs (seed) executed auth 2 times, asked by 1 command(s) [c-seed delivered]");
    }

    [Fact]
    public void A_9x_router_executing_a_request_again_under_a_new_req_id_is_caught_by_content()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            DeviceLog = [.. input.DeviceLog, Exec("r9", "9", "kickoff", "18", Kick9, number: true, second: 31)],
        });
        Only(report, ViolationKind.ExecutedTwice, "r9 (9) executed kickoff 2 times");
    }

    [Fact]
    public void Two_commands_asking_the_same_thing_may_run_twice()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            Accepted = [.. input.Accepted, new AcceptedCommand("c-2025b", "r25", "get_status")],
            ApiCommands = [.. input.ApiCommands, new ApiCommand("c-2025b", "r25", "get_status", "succeeded", Key(Status2025), "node1")],
            DeviceLog = [.. input.DeviceLog, Exec("r25", "2025", "get_status", "c-2025b", Status2025, second: 3)],
        });
        Assert.True(report.Violations.Count == 0, report.Render());
    }

    [Fact]
    public void A_request_no_command_asked_for_is_caught()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            DeviceLog = [.. input.DeviceLog, Exec("r9", "9", "reboot_device", "40", """{"type":"reboot_device"}""", number: true)],
        });
        Only(report, ViolationKind.ExecutedUnknown, "r9 (9) executed reboot_device");
    }

    [Fact]
    public void A_command_that_succeeded_without_its_router_executing_it_is_caught()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with { DeviceLog = input.DeviceLog.Where(l => l.Kind != "kickoff").ToList() });
        Only(report, ViolationKind.CommandSucceededUnexecuted, "c-9");
    }

    [Fact]
    public void A_frame_lost_to_the_reader_is_caught()
    {
        var input = Clean();
        var loss = DeviceLogLine.Parse("""{"t":"2026-11-30T12:00:01.0000000+00:00","device":"r25","era":"2025","ev":"loss","loss":"BehindFirstFrame","opcode":1,"bytes":90,"kind":"get_status","req_id":"c-x"}""");
        var wedged = DeviceLogLine.Parse("""{"t":"2026-11-30T12:00:02.0000000+00:00","device":"rs","era":"seed","ev":"wedged","bytes":1030}""");
        var report = ChaosChecker.Check(input with { DeviceLog = [.. input.DeviceLog, loss, wedged] });
        Only(report, ViolationKind.FrameLost, "BehindFirstFrame");
        Assert.Equal(2, report.Count(ViolationKind.FrameLost));
    }

    [Fact]
    public void A_loss_right_after_the_simulator_itself_stalled_is_counted_not_blamed_on_the_node()
    {
        var input = Clean();
        var stall = DeviceLogLine.Parse("""{"t":"2026-11-30T12:00:01.0000000+00:00","ev":"stall","ms":900}""");
        var after = DeviceLogLine.Parse("""{"t":"2026-11-30T12:00:01.0200000+00:00","device":"r25","era":"2025","ev":"loss","loss":"BehindFirstFrame","opcode":1,"bytes":65,"kind":"heartbeat"}""");
        var later = DeviceLogLine.Parse("""{"t":"2026-11-30T12:00:09.0000000+00:00","device":"r9","era":"9","ev":"loss","loss":"BehindFirstFrame","opcode":1,"bytes":119,"kind":"reply"}""");
        var report = ChaosChecker.Check(input with { DeviceLog = [.. input.DeviceLog, stall, after, later] });
        // The loss 8 s after the stall is the node's to answer for; the one right after it is shown as the stall's.
        Only(report, ViolationKind.FrameLost, "\"device\":\"r9\"");
        Assert.Equal(1, report.Count(ViolationKind.FrameLost));
        var figures = report.Figures.ToDictionary(f => f.Name, f => f.Value);
        Assert.Equal("2", figures["frames lost by routers' readers"]);
        Assert.StartsWith("1 (r25 heartbeat at 12:00:01.020 after a 900 ms stall", figures.Single(f => f.Key.StartsWith("of which right after", StringComparison.Ordinal)).Value);
        // A short stall explains nothing.
        var shortStall = stall with { StallMs = 120 };
        Assert.Equal(2, ChaosChecker.Check(input with { DeviceLog = [.. input.DeviceLog, shortStall, after, later] }).Count(ViolationKind.FrameLost));
    }

    [Fact]
    public void A_router_offline_or_on_a_dead_node_is_caught()
    {
        var input = Clean();
        var dead = "akka.tcp://fleet@127.0.0.1:4055#9";
        var report = ChaosChecker.Check(input with
        {
            Entities = [Row("r9", "9", node: dead), Row("rs", "seed"), Row("r25", "2025")],
            Directory = [Row("r9", "9", node: dead), Row("rs", "seed"), Row("r25", "2025")],
        });
        Only(report, ViolationKind.RouterOffline, "r9: entity says online=True node=" + dead);
    }

    [Fact]
    public void A_directory_row_that_differs_from_its_entity_is_drift()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            Directory = [Row("r9", "9", online: false, node: null!), Row("rs", "seed", location: "old"), Row("r25", "2025")],
        });
        Only(report, ViolationKind.DirectoryDrift, "r9: directory vs entity: online False vs True");
        Assert.Contains(report.Violations, v => v.Detail.Contains("rs: directory vs entity: location_id old vs loc-1", StringComparison.Ordinal));
        Assert.Equal(ViolationKind.DirectoryDrift,
            ChaosChecker.Check(input with { Directory = [Row("rs", "seed"), Row("r25", "2025")] }).Violations.Single().Kind);
    }

    [Fact]
    public void An_entity_that_differs_from_its_router_is_caught()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            Routers = input.Routers.Select(r => r.DeviceId == "r25" ? r with { LocationId = "chaos-7" } : r).ToList(),
        });
        Only(report, ViolationKind.EntityDisagreesWithRouter, "r25: entity protocol=2025 location_id=loc-1");
    }

    [Fact]
    public void A_node_that_exited_without_the_runs_signal_is_caught()
    {
        var input = Clean();
        var report = ChaosChecker.Check(input with
        {
            NodeExits = [.. input.NodeExits, new NodeExit("node3", 2, 134, Signalled: false, T0.UtcDateTime, "node3-2.log")],
        });
        Only(report, ViolationKind.UnexpectedNodeExit, "node3 incarnation 2 exited with 134");
    }
}
