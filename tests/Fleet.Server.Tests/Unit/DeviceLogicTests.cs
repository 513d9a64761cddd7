using System.Collections.Immutable;
using Fleet.Protocol;
using Fleet.Server.Devices;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>The entity's decisions as plain functions: no actor, no clock, no database.</summary>
public class DeviceLogicTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static HeartbeatMessage Report(int authMode = 1, string location = "lobby") => new()
    {
        DeviceId = "r1",
        DeviceInfo = new DeviceInfo { ApDeviceId = "r1", LocationId = location },
        Gateway = [new GatewayReport { GwId = "gw-1", GwChannel = "apfree", AuthMode = authMode }],
    };

    private static DeviceState Fold(DeviceState s, IEnumerable<IDeviceEvent> events) => events.Aggregate(s, (st, e) => st.Apply(e));

    private static DeviceState Connected() =>
        Fold(DeviceState.Empty, DeviceLogic.OnReport(DeviceState.Empty, Report(), true, T0, "node-a"));

    private static (DeviceState State, CommandRecord Command) Submit(DeviceState s, string id, IControllerRequest r, int timeout = 30)
    {
        var q = DeviceLogic.Submit(s, id, r, 60, timeout, T0).Queued!;
        s = s.Apply(q).Apply(new CommandSent(id, T0));
        return (s, s.FindCommand(id)!);
    }

    [Fact]
    public void A_heartbeat_that_changes_nothing_persists_nothing()
    {
        var s = Connected();
        Assert.Empty(DeviceLogic.OnReport(s, Report(), false, T0, "node-a"));
    }

    [Fact]
    public void Changed_gateways_and_device_info_are_events()
    {
        var s = Connected();
        var events = DeviceLogic.OnReport(s, Report(authMode: 0, location: "hall"), false, T0, "node-a");
        Assert.Contains(events, e => e is GatewaysReported);
        Assert.Contains(events, e => e is DeviceInfoReported { Info.LocationId: "hall" });
        Assert.DoesNotContain(events, e => e is DeviceConnected);
    }

    [Fact]
    public void Heartbeat_reply_carries_desired_auth_mode_where_set_else_reported()
    {
        var s = Connected();
        Assert.Equal(1, DeviceLogic.ReportReply(s).Gateway!.Single().AuthMode);
        s = s.Apply(new DesiredAuthModeSet("gw-1", 0));
        Assert.Equal(0, DeviceLogic.ReportReply(s).Gateway!.Single().AuthMode);
    }

    [Fact]
    public void Submit_rejects_an_unknown_gateway_and_normalises_the_mac()
    {
        var s = Connected();
        var bad = DeviceLogic.Submit(s, "c1", new KickoffRequest { ClientIp = "1.2.3.4", ClientMac = "AA:BB:CC:DD:EE:FF", DeviceId = "r1", GwId = "gw-2" }, 60, 30, T0);
        Assert.Null(bad.Queued);
        Assert.Contains("gw-2", bad.Problem);
        var ok = DeviceLogic.Submit(s, "c1", new KickoffRequest { ClientIp = "1.2.3.4", ClientMac = "AA:BB:CC:DD:EE:FF", DeviceId = "r1", GwId = "gw-1" }, 60, 30, T0);
        Assert.Contains("\"client_mac\":\"aa:bb:cc:dd:ee:ff\"", ok.Queued!.RequestJson);
        Assert.Contains("\"req_id\":\"c1\"", ok.Queued.RequestJson);
        Assert.Equal(T0.AddSeconds(60), ok.Queued.ExpiresAt);
    }

    [Fact]
    public void Only_one_request_of_a_kind_is_in_flight()
    {
        var s = Connected();
        foreach (var id in new[] { "a", "b" })
            s = s.Apply(DeviceLogic.Submit(s, id, new SimpleRequest { Type = "get_firmware_info" }, 60, 30, T0).Queued!);
        s = s.Apply(DeviceLogic.Submit(s, "c", new SimpleRequest { Type = "get_sys_info" }, 60, 30, T0).Queued!);
        Assert.Equal(["a", "c"], DeviceLogic.ToSend(s, T0).Select(c => c.CommandId));
        s = s.Apply(new CommandSent("a", T0));
        Assert.Equal(["c"], DeviceLogic.ToSend(s, T0).Select(c => c.CommandId));
    }

    [Fact]
    public void Answer_by_req_id_completes_that_command()
    {
        var (s, _) = Submit(Connected(), "k1", new KickoffRequest { ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1" });
        var answer = new KickoffResponse { ReqId = ReqId.Of("k1"), Status = "success", ClientMac = "aa:bb:cc:dd:ee:ff" };
        var r = DeviceLogic.OnAnswer(s, answer, "{}", T0);
        Assert.Null(r.Dropped);
        Assert.Equal(CommandStatus.Succeeded, Fold(s, r.Events).FindCommand("k1")!.Status);
    }

    [Fact]
    public void Seed_era_answer_is_matched_by_kind_and_client_mac_is_a_cross_check()
    {
        var (s, _) = Submit(Connected(), "k1", new KickoffRequest { ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1" });
        var other = DeviceLogic.OnAnswer(s, new KickoffError { Error = "Client not found", ClientMac = "11:22:33:44:55:66" }, "{}", T0);
        Assert.NotNull(other.Dropped);
        var mine = DeviceLogic.OnAnswer(s, new KickoffError { Error = "Client not found", ClientMac = "AA:BB:CC:DD:EE:FF" }, "{}", T0);
        var c = Fold(s, mine.Events).FindCommand("k1")!;
        Assert.Equal(CommandStatus.Failed, c.Status);
        Assert.Equal("Client not found", c.Error);
    }

    [Fact]
    public void Answers_that_match_nothing_are_dropped_with_a_reason()
    {
        var s = Connected();
        Assert.Contains("matches no command", DeviceLogic.OnAnswer(s, new KickoffResponse { ReqId = ReqId.Of("zz") }, "{}", T0).Dropped);
        Assert.Contains("no kickoff command", DeviceLogic.OnAnswer(s, new KickoffResponse(), "{}", T0).Dropped);
        Assert.Contains("without req_id", DeviceLogic.OnAnswer(s, new GenericResponse { Type = "request_error" }, "{}", T0).Dropped);
        var (sent, _) = Submit(s, "f1", new SimpleRequest { Type = "get_firmware_info" });
        Assert.Contains("does not answer", DeviceLogic.OnAnswer(sent, new KickoffResponse { ReqId = ReqId.Of("f1") }, "{}", T0).Dropped);
    }

    [Fact]
    public void Late_answer_after_timeout_is_dropped()
    {
        var (s, _) = Submit(Connected(), "f1", new SimpleRequest { Type = "get_firmware_info" }, timeout: 5);
        s = Fold(s, DeviceLogic.OnTick(s, T0.AddSeconds(6)));
        Assert.Equal(CommandStatus.TimedOut, s.FindCommand("f1")!.Status);
        Assert.Contains("late", DeviceLogic.OnAnswer(s, new FirmwareInfoResponse { ReqId = ReqId.Of("f1") }, "{}", T0).Dropped);
    }

    [Fact]
    public void Firmware_info_answer_updates_firmware()
    {
        var (s, _) = Submit(Connected(), "f1", new SimpleRequest { Type = "get_firmware_info" });
        var data = new Dictionary<string, System.Text.Json.JsonElement>
        {
            ["DISTRIB_RELEASE"] = System.Text.Json.JsonDocument.Parse("\"24.10\"").RootElement,
        };
        s = Fold(s, DeviceLogic.OnAnswer(s, new FirmwareInfoResponse { Data = data }, "{}", T0).Events);
        Assert.Equal("24.10", s.Firmware["DISTRIB_RELEASE"]);
        // The same firmware again completes the command and changes nothing else.
        var (again, _) = Submit(s, "f2", new SimpleRequest { Type = "get_firmware_info" });
        var events = DeviceLogic.OnAnswer(again, new FirmwareInfoResponse { Data = data }, "{}", T0).Events;
        Assert.IsType<CommandCompleted>(Assert.Single(events));
    }

    [Fact]
    public void Delivered_auth_adds_the_client_and_once_auth_sets_desired_zero()
    {
        var (s, _) = Submit(Connected(), "a1", new AuthRequest { Token = "t", ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1" });
        s = Fold(s, DeviceLogic.OnWritten(s, "a1", T0));
        Assert.Equal(CommandStatus.Delivered, s.FindCommand("a1")!.Status);
        Assert.True(s.Clients.ContainsKey("aa:bb:cc:dd:ee:ff"));

        var (s2, _) = Submit(Connected(), "a2", new AuthRequest { Token = "t", ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1", OnceAuth = true });
        s2 = Fold(s2, DeviceLogic.OnWritten(s2, "a2", T0));
        Assert.Equal(0, s2.DesiredAuthModes["gw-1"]);
        Assert.Empty(s2.Clients);
    }

    [Fact]
    public void Tmp_pass_expires_through_tick()
    {
        var (s, _) = Submit(Connected(), "p1", new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:ff", Timeout = 10 });
        s = Fold(s, DeviceLogic.OnWritten(s, "p1", T0));
        Assert.Equal(T0.AddSeconds(10), s.Clients["aa:bb:cc:dd:ee:ff"].ExpiresAt);
        Assert.Equal(T0.AddSeconds(10), DeviceLogic.NextDeadline(s));
        Assert.Empty(DeviceLogic.OnTick(s, T0.AddSeconds(9)));
        s = Fold(s, DeviceLogic.OnTick(s, T0.AddSeconds(10)));
        Assert.Empty(s.Clients);
        Assert.Null(DeviceLogic.NextDeadline(s));
    }

    [Fact]
    public void Queued_commands_expire_and_only_queued_ones_can_be_cancelled()
    {
        var s = Connected();
        s = s.Apply(DeviceLogic.Submit(s, "q1", new SimpleRequest { Type = "get_status" }, 5, 30, T0).Queued!);
        Assert.Equal(T0.AddSeconds(5), DeviceLogic.NextDeadline(s));
        var expired = Fold(s, DeviceLogic.OnTick(s, T0.AddSeconds(5)));
        Assert.Equal(CommandStatus.Expired, expired.FindCommand("q1")!.Status);
        Assert.Equal(DeviceLogic.CancelOutcome.NotQueued, DeviceLogic.Cancel(expired, "q1", T0).Outcome);
        Assert.Equal(DeviceLogic.CancelOutcome.NotFound, DeviceLogic.Cancel(s, "zz", T0).Outcome);
        var (outcome, ev) = DeviceLogic.Cancel(s, "q1", T0);
        Assert.Equal(DeviceLogic.CancelOutcome.Cancelled, outcome);
        Assert.Equal(CommandStatus.Cancelled, s.Apply(ev!).FindCommand("q1")!.Status);
    }

    [Fact]
    public void Command_history_keeps_unfinished_commands_and_the_newest_finished()
    {
        var s = Connected() with { HistoryLimit = 2 };
        for (var i = 0; i < 5; i++)
        {
            s = s.Apply(new CommandQueued($"c{i}", "get_status", "{\"type\":\"get_status\"}", T0, T0.AddDays(1), 30));
            if (i < 4) s = s.Apply(new CommandCompleted($"c{i}", CommandStatus.Cancelled, null, null, T0));
        }
        Assert.Equal(["c2", "c3", "c4"], s.Commands.Select(c => c.CommandId));
    }

    [Fact]
    public void Requeued_command_is_sent_again()
    {
        var (s, _) = Submit(Connected(), "f1", new SimpleRequest { Type = "get_firmware_info" });
        Assert.Empty(DeviceLogic.ToSend(s, T0));
        s = s.Apply(new CommandRequeued("f1"));
        Assert.Equal(["f1"], DeviceLogic.ToSend(s, T0).Select(c => c.CommandId));
    }

    [Fact]
    public void Reports_without_gateways_keep_existing_ones()
    {
        var s = Connected();
        var events = DeviceLogic.OnReport(s, new HeartbeatMessage { DeviceId = "r1", DeviceInfo = Report().DeviceInfo }, false, T0, "n");
        Assert.Empty(events);
        Assert.Single(Fold(s, events).Gateways);
        Assert.Equal(ImmutableList<IDeviceEvent>.Empty, events);
    }
}
