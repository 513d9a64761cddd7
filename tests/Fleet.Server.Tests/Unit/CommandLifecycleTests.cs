using System.Collections.Immutable;
using System.Text.Json;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Devices;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>The command lifecycle as plain functions: no actor, no clock, no database.</summary>
public class CommandLifecycleTests
{
    internal static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    internal static HeartbeatMessage Report(int authMode = 1, string location = "lobby") => new()
    {
        DeviceId = "r1",
        DeviceInfo = new DeviceInfo { ApDeviceId = "r1", LocationId = location },
        Gateway = [new GatewayReport { GwId = "gw-1", GwChannel = "apfree", AuthMode = authMode }],
    };

    internal static DeviceState Connected() =>
        DeviceState.Empty.ApplyAll(DeviceDecider.ReportEvents(DeviceState.Empty, Report(), true, T0, "node-a"));

    private static (DeviceState State, CommandRecord Command) Submit(DeviceState s, string id, IControllerRequest r, int timeout = 30)
    {
        s = s.Apply(CommandLifecycle.Submit(s, id, r, 60, timeout, T0).Queued!).Apply(new CommandSent(id, T0));
        return (s, s.FindCommand(id)!);
    }

    private static DeviceAnswer Answer(string type, string? reqId = null, string? error = null, string? requestType = null,
        string? clientMac = null, bool unsupported = false, IReadOnlyDictionary<string, string>? firmware = null) => new()
    {
        Type = type, ReqId = reqId is null ? null : ReqId.Of(reqId), Error = error, ClientMac = clientMac, Unsupported = unsupported,
        RequestType = requestType ?? RequestKinds.ForAnswer(type)?.Type, Firmware = firmware,
        Body = JsonElement.Parse($$"""{"type":"{{type}}"}"""),
    };

    private static readonly KickoffRequest Kick = new() { ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1" };

    [Fact]
    public void Submit_rejects_an_unknown_gateway_and_normalises_the_mac()
    {
        var s = Connected();
        var bad = CommandLifecycle.Submit(s, "c1", Kick with { ClientMac = "AA:BB:CC:DD:EE:FF", GwId = "gw-2" }, 60, 30, T0);
        Assert.Null(bad.Queued);
        Assert.Contains("gw-2", bad.Problem);
        var ok = CommandLifecycle.Submit(s, "c1", Kick with { ClientMac = "AA:BB:CC:DD:EE:FF" }, 60, 30, T0).Queued!;
        var request = Assert.IsType<KickoffRequest>(ok.Request);
        Assert.Equal("aa:bb:cc:dd:ee:ff", request.ClientMac);
        Assert.Equal(ReqId.Of("c1"), request.ReqId);
        Assert.Equal(T0.AddSeconds(60), ok.ExpiresAt);
    }

    [Fact]
    public void Submit_fills_in_the_defaults_the_device_needs()
    {
        var s = Connected();
        var pass = Assert.IsType<TmpPassRequest>(CommandLifecycle.Submit(s, "p", new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:ff" }, 60, 30, T0).Queued!.Request);
        Assert.Equal(TmpPassRequest.DefaultTimeoutSeconds, pass.Timeout);
        var upgrade = Assert.IsType<FirmwareUpgradeRequest>(CommandLifecycle.Submit(s, "u", new FirmwareUpgradeRequest { Url = "http://fw/a.bin" }, 60, 30, T0).Queued!.Request);
        Assert.False(upgrade.Force);
    }

    [Fact]
    public void One_command_is_in_flight_per_device_oldest_first()
    {
        var s = Connected();
        foreach (var id in new[] { "a", "b" })
            s = s.Apply(CommandLifecycle.Submit(s, id, new SimpleRequest { Type = "get_firmware_info" }, 60, 30, T0).Queued!);
        s = s.Apply(CommandLifecycle.Submit(s, "c", new SimpleRequest { Type = "get_sys_info" }, 60, 30, T0).Queued!);
        Assert.Equal(["a"], CommandLifecycle.ToSend(s, T0).Select(c => c.CommandId));
        s = s.Apply(new CommandSent("a", T0));
        Assert.Empty(CommandLifecycle.ToSend(s, T0));
        s = s.Apply(new CommandCompleted("a", CommandStatus.Succeeded, null, null, T0));
        Assert.Equal(["b"], CommandLifecycle.ToSend(s, T0).Select(c => c.CommandId));
        Assert.Empty(CommandLifecycle.ToSend(s, T0.AddSeconds(61))); // expired ones never go
    }

    [Fact]
    public void Answer_by_req_id_completes_that_command_and_keeps_the_answer()
    {
        var (s, _) = Submit(Connected(), "k1", Kick);
        var (events, dropped) = CommandLifecycle.OnAnswer(s, Answer("kickoff_response", "k1", clientMac: "aa:bb:cc:dd:ee:ff"), T0);
        Assert.Null(dropped);
        var c = s.ApplyAll(events).FindCommand("k1")!;
        Assert.Equal(CommandStatus.Succeeded, c.Status);
        Assert.Equal("kickoff_response", c.Response!.Value.GetProperty("type").GetString());
    }

    [Fact]
    public void Seed_era_answer_is_matched_by_kind_and_client_mac_is_a_cross_check()
    {
        var (s, _) = Submit(Connected(), "k1", Kick);
        Assert.NotNull(CommandLifecycle.OnAnswer(s, Answer("kickoff_error", error: "Client not found", clientMac: "11:22:33:44:55:66"), T0).Dropped);
        var mine = CommandLifecycle.OnAnswer(s, Answer("kickoff_error", error: "Client not found", clientMac: "AA:BB:CC:DD:EE:FF"), T0);
        var c = s.ApplyAll(mine.Events).FindCommand("k1")!;
        Assert.Equal(CommandStatus.Failed, c.Status);
        Assert.Equal("Client not found", c.Error);
    }

    [Fact]
    public void Answers_that_match_nothing_are_dropped_with_a_reason()
    {
        var s = Connected();
        Assert.Contains("matches no command", CommandLifecycle.OnAnswer(s, Answer("kickoff_response", "zz"), T0).Dropped);
        Assert.Contains("no kickoff command", CommandLifecycle.OnAnswer(s, Answer("kickoff_response"), T0).Dropped);
        Assert.Contains("without req_id", CommandLifecycle.OnAnswer(s, Answer("request_error", error: "x", unsupported: true), T0).Dropped);
        var (sent, _) = Submit(s, "f1", new SimpleRequest { Type = "get_firmware_info" });
        Assert.Contains("does not answer", CommandLifecycle.OnAnswer(sent, Answer("kickoff_response", "f1"), T0).Dropped);
    }

    [Fact]
    public void Request_error_with_req_id_fails_the_command()
    {
        var (s, _) = Submit(Connected(), "w1", new SimpleRequest { Type = "get_wifi_info" });
        var (events, dropped) = CommandLifecycle.OnAnswer(s, Answer("request_error", "w1", error: "Unknown WebSocket message type", unsupported: true), T0);
        Assert.Null(dropped);
        Assert.Equal(CommandStatus.Failed, s.ApplyAll(events).FindCommand("w1")!.Status);
    }

    [Fact]
    public void Late_answer_after_timeout_is_dropped()
    {
        var (s, _) = Submit(Connected(), "f1", new SimpleRequest { Type = "get_firmware_info" }, timeout: 5);
        s = s.ApplyAll(CommandLifecycle.OnTick(s, T0.AddSeconds(6)));
        Assert.Equal(CommandStatus.TimedOut, s.FindCommand("f1")!.Status);
        Assert.Contains("late", CommandLifecycle.OnAnswer(s, Answer("firmware_info_response", "f1"), T0).Dropped);
    }

    [Fact]
    public void Firmware_info_answer_updates_firmware()
    {
        var (s, _) = Submit(Connected(), "f1", new SimpleRequest { Type = "get_firmware_info" });
        var data = new Dictionary<string, string> { ["DISTRIB_RELEASE"] = "24.10" };
        s = s.ApplyAll(CommandLifecycle.OnAnswer(s, Answer("firmware_info_response", firmware: data), T0).Events);
        Assert.Equal("24.10", s.Firmware["DISTRIB_RELEASE"]);
        // The same firmware again completes the command and changes nothing else.
        var (again, _) = Submit(s, "f2", new SimpleRequest { Type = "get_firmware_info" });
        var events = CommandLifecycle.OnAnswer(again, Answer("firmware_info_response", firmware: data), T0).Events;
        Assert.IsType<CommandCompleted>(Assert.Single(events));
    }

    [Fact]
    public void Delivered_auth_adds_the_client_and_once_auth_sets_desired_zero()
    {
        var auth = new AuthRequest { Token = "t", ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1" };
        var (s, _) = Submit(Connected(), "a1", auth);
        s = s.ApplyAll(CommandLifecycle.OnWritten(s, "a1", answerExpected: false, T0));
        Assert.Equal(CommandStatus.Delivered, s.FindCommand("a1")!.Status);
        Assert.True(s.Clients.ContainsKey("aa:bb:cc:dd:ee:ff"));

        var (s2, _) = Submit(Connected(), "a2", auth with { OnceAuth = true });
        s2 = s2.ApplyAll(CommandLifecycle.OnWritten(s2, "a2", answerExpected: false, T0));
        Assert.Equal(0, s2.DesiredAuthModes["gw-1"]);
        Assert.Empty(s2.Clients);
    }

    [Fact]
    public void An_auth_the_dialect_answers_stays_sent_until_its_answer_and_then_adds_the_client()
    {
        var (s, _) = Submit(Connected(), "a1", new AuthRequest { Token = "t", ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1" });
        Assert.Empty(CommandLifecycle.OnWritten(s, "a1", answerExpected: true, T0));
        var (events, _) = CommandLifecycle.OnAnswer(s, Answer("auth_response", "a1", requestType: "auth"), T0);
        s = s.ApplyAll(events);
        Assert.Equal(CommandStatus.Succeeded, s.FindCommand("a1")!.Status);
        Assert.True(s.Clients.ContainsKey("aa:bb:cc:dd:ee:ff"));
    }

    [Fact]
    public void A_successful_kickoff_removes_the_client()
    {
        var s = Connected().Apply(new ClientAuthorized(new ClientState("aa:bb:cc:dd:ee:ff", "1.2.3.4", null, "gw-1", T0, null)));
        (s, _) = Submit(s, "k1", Kick);
        s = s.ApplyAll(CommandLifecycle.OnAnswer(s, Answer("kickoff_response", "k1"), T0).Events);
        Assert.Empty(s.Clients);
    }

    [Fact]
    public void Tmp_pass_expires_through_tick()
    {
        var (s, _) = Submit(Connected(), "p1", new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:ff", Timeout = 10 });
        s = s.ApplyAll(CommandLifecycle.OnWritten(s, "p1", answerExpected: false, T0));
        Assert.Equal(T0.AddSeconds(10), s.Clients["aa:bb:cc:dd:ee:ff"].ExpiresAt);
        Assert.Equal(T0.AddSeconds(10), CommandLifecycle.NextDeadline(s));
        Assert.Empty(CommandLifecycle.OnTick(s, T0.AddSeconds(9)));
        s = s.ApplyAll(CommandLifecycle.OnTick(s, T0.AddSeconds(10)));
        Assert.Empty(s.Clients);
        Assert.Null(CommandLifecycle.NextDeadline(s));
    }

    [Fact]
    public void Queued_commands_expire_and_only_queued_ones_can_be_cancelled()
    {
        var s = Connected();
        s = s.Apply(CommandLifecycle.Submit(s, "q1", new SimpleRequest { Type = "get_status" }, 5, 30, T0).Queued!);
        Assert.Equal(T0.AddSeconds(5), CommandLifecycle.NextDeadline(s));
        var expired = s.ApplyAll(CommandLifecycle.OnTick(s, T0.AddSeconds(5)));
        Assert.Equal(CommandStatus.Expired, expired.FindCommand("q1")!.Status);
        Assert.Contains("expired", CommandLifecycle.Cancel(expired.FindCommand("q1")!, T0).Conflict);
        var (cancelled, _) = CommandLifecycle.Cancel(s.FindCommand("q1")!, T0);
        Assert.Equal(CommandStatus.Cancelled, s.Apply(cancelled!).FindCommand("q1")!.Status);
    }

    [Fact]
    public void Command_history_keeps_unfinished_commands_and_the_newest_finished()
    {
        var s = Connected() with { HistoryLimit = 2 };
        for (var i = 0; i < 5; i++)
        {
            s = s.Apply(new CommandQueued($"c{i}", new SimpleRequest { Type = "get_status", ReqId = ReqId.Of($"c{i}") }, T0, T0.AddDays(1), 30));
            if (i < 4) s = s.Apply(new CommandCompleted($"c{i}", CommandStatus.Cancelled, null, null, T0));
        }
        Assert.Equal(["c2", "c3", "c4"], s.Commands.Select(c => c.CommandId));
    }

    [Fact]
    public void Requests_that_no_device_could_read_are_refused_with_the_limit()
    {
        var s = Connected();
        var domains = Enumerable.Range(0, 60).Select(i => $"portal-{i}.example.com").ToList();
        var (queued, problem) = CommandLifecycle.Submit(s, "d1", new SyncDomainsRequest { Domains = domains }, 60, 30, T0);
        Assert.Null(queued);
        Assert.Contains("1023 bytes", problem);
        Assert.Contains("cannot be split", problem);
        var url = "http://fw.example.com/" + new string('a', 480) + ".bin";
        var (q2, p2) = CommandLifecycle.Submit(s, "u1", new FirmwareUpgradeRequest { Url = url }, 60, 30, T0);
        Assert.Null(q2);
        Assert.Contains("512-byte buffer", p2);
        Assert.NotNull(CommandLifecycle.Submit(s, "d2", new SyncDomainsRequest { Domains = domains.Take(20).ToList() }, 60, 30, T0).Queued);
    }

    [Fact]
    public void Requeued_command_is_sent_again()
    {
        var (s, _) = Submit(Connected(), "f1", new SimpleRequest { Type = "get_firmware_info" });
        Assert.Empty(CommandLifecycle.ToSend(s, T0));
        s = s.Apply(new CommandRequeued("f1"));
        Assert.Equal(["f1"], CommandLifecycle.ToSend(s, T0).Select(c => c.CommandId));
    }
}
