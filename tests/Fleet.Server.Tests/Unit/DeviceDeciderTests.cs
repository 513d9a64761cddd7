using System.Collections.Immutable;
using System.Text.Json;
using Akka.Actor;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;
using Fleet.Server.Devices;
using Xunit;
using static Fleet.Server.Tests.Unit.CommandLifecycleTests;

namespace Fleet.Server.Tests.Unit;

/// <summary>Every decision of a device entity, as the pure function it is: (state, memory, input, now) → decision.</summary>
public class DeviceDeciderTests
{
    /// <summary>An actor reference that is only an identity (no actor system needed).</summary>
    internal sealed class FakeRef(string name) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka", "test")) / name;
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }

    private static readonly IActorRef Conn = new FakeRef("conn");
    private static readonly IActorRef Newer = new FakeRef("newer");
    private static readonly IActorRef Waiter = new FakeRef("waiter");

    private static ConnectMessage ConnectReport => new()
    {
        DeviceId = "r1", DeviceInfo = Report().DeviceInfo, Gateway = Report().Gateway,
    };

    /// <summary>Runs one input and returns the state after its events, with the decision.</summary>
    private static (DeviceState State, Decision Decision) Run(DeviceState s, DeviceLive live, object input, DateTimeOffset? now = null)
    {
        var d = DeviceDecider.Decide("r1", s, live, input, now ?? T0);
        return (s.ApplyAll(d.Events), d);
    }

    private static (DeviceState State, DeviceLive Live) Online()
    {
        var (s, d) = Run(DeviceState.Empty, default, new DeviceConnect("r1", ConnectReport, Conn, "node-a"));
        return (s, d.Live);
    }

    private static T Told<T>(Decision d, IActorRef to) =>
        d.Effects.OfType<Tell>().Where(t => t.To.Equals(to)).Select(t => t.Message).OfType<T>().Single();

    [Fact]
    public void Connect_persists_the_device_watches_the_socket_and_answers_it()
    {
        var (s, d) = Run(DeviceState.Empty, default, new DeviceConnect("r1", ConnectReport, Conn, "node-a"));
        Assert.Equal([typeof(DeviceConnected), typeof(ProtocolReported), typeof(DeviceInfoReported), typeof(GatewaysReported)],
            d.Events.Select(e => e.GetType()));
        Assert.True(s.Online);
        Assert.Contains(new Watch(Conn), d.Effects);
        var reply = Told<ReplyToReport>(d, Conn).Reply;
        Assert.Equal(1, reply.Gateway!.Single().AuthMode);
        Assert.Equal(Conn, d.Live.Connection);
        Assert.Same(reply, d.Live.Told);
        Assert.Contains(new IdleTimer(false), d.Effects);
    }

    [Fact]
    public void A_heartbeat_that_changes_nothing_persists_nothing_and_only_notes_the_device_was_seen()
    {
        var (s, live) = Online();
        var later = T0.AddSeconds(60);
        var (_, d) = Run(s, live, new DeviceHeartbeat("r1", Report(), Conn, "node-a", ReplyWanted: false), later);
        Assert.Empty(d.Events);
        Assert.Empty(d.Effects);
        Assert.Equal(later, d.Live.LastSeen);
        var (_, wanted) = Run(s, live, new DeviceHeartbeat("r1", Report(), Conn, "node-a", ReplyWanted: true), later);
        Assert.Empty(wanted.Events);
        Assert.Single(wanted.Effects.OfType<Tell>(), t => t.Message is ReplyToReport);
    }

    [Fact]
    public void Changed_gateways_and_device_info_are_events_and_the_heartbeat_is_answered()
    {
        var (s, live) = Online();
        var (after, d) = Run(s, live, new DeviceHeartbeat("r1", Report(authMode: 0, location: "hall"), Conn, "node-a", ReplyWanted: false));
        Assert.Contains(d.Events, e => e is GatewaysReported);
        Assert.Contains(d.Events, e => e is DeviceInfoReported { Info.LocationId: "hall" });
        Assert.DoesNotContain(d.Events, e => e is DeviceConnected);
        Assert.Equal(0, Told<ReplyToReport>(d, Conn).Reply.Gateway!.Single().AuthMode);
        Assert.Equal("hall", after.Info!.LocationId);
    }

    [Fact]
    public void A_heartbeat_from_a_socket_the_entity_forgot_adopts_it()
    {
        var (s, _) = Online();
        var offline = s.Apply(new DeviceDisconnected(T0));
        var (after, d) = Run(offline, default, new DeviceHeartbeat("r1", Report(), Conn, "node-b", ReplyWanted: false));
        Assert.True(after.Online);
        Assert.Equal("node-b", after.Node);
        Assert.Contains(new Watch(Conn), d.Effects);
        Told<ReplyToReport>(d, Conn);
    }

    [Fact]
    public void Reply_carries_desired_auth_mode_where_set_else_reported()
    {
        var (s, _) = Online();
        Assert.Equal(1, DeviceDecider.ReplyFor(s).Gateway!.Single().AuthMode);
        Assert.Equal(0, DeviceDecider.ReplyFor(s.Apply(new DesiredAuthModeSet("gw-1", 0))).Gateway!.Single().AuthMode);
    }

    [Fact]
    public void Reports_without_gateways_keep_existing_ones()
    {
        var (s, _) = Online();
        Assert.Empty(DeviceDecider.ReportEvents(s, new HeartbeatMessage { DeviceId = "r1", DeviceInfo = Report().DeviceInfo }, false, T0, "n"));
    }

    [Fact]
    public void An_operators_auth_mode_is_persisted_pushed_to_the_socket_and_answered()
    {
        var (s, live) = Online();
        var (after, d) = Run(s, live, new SetDesiredAuthMode("r1", "gw-1", 0));
        Assert.Equal(0, after.DesiredAuthModes["gw-1"]);
        Assert.Equal(0, Told<AuthModesChanged>(d, Conn).Reply.Gateway!.Single().AuthMode);
        Assert.Equal(0, Assert.IsType<GatewayUpdated>(d.Reply).View.DesiredAuthMode);
        Assert.IsType<GatewayNotFound>(Run(s, live, new SetDesiredAuthMode("r1", "gw-9", 0)).Decision.Reply);
    }

    [Fact]
    public void A_command_for_an_online_device_is_accepted_as_queued_and_sent_in_the_same_write()
    {
        var (s, live) = Online();
        var (after, d) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        Assert.Equal("queued", Assert.IsType<CommandFound>(d.Reply).View.Status); // the command as accepted
        // Sent is persisted before the connection gets the frame: a crash may lose it, never send it twice.
        Assert.Equal([typeof(CommandQueued), typeof(CommandSent)], d.Events.Select(e => e.GetType()));
        Assert.Equal(CommandStatus.Sent, after.FindCommand("c1")!.Status);
        var deliver = Told<DeliverRequest>(d, Conn);
        Assert.Equal(ReqId.Of("c1"), deliver.Request.ReqId);
        Assert.Equal(T0.AddSeconds(30), deliver.NotAfter); // the frame never goes out after the answer deadline
        Assert.Contains("c1", d.Live.Unconfirmed);
    }

    [Fact]
    public void A_second_command_waits_while_the_first_is_in_flight()
    {
        var (s, live) = Online();
        (s, var first) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        (s, var second) = Run(s, first.Live, new SubmitCommand("r1", "c2", new SimpleRequest { Type = "get_sys_info" }, null, 60, 30));
        Assert.DoesNotContain(second.Effects.OfType<Tell>(), t => t.Message is DeliverRequest);
        var answer = new DeviceAnswer { Type = "firmware_info_response", ReqId = ReqId.Of("c1"), RequestType = "get_firmware_info", Body = JsonElement.Parse("{}") };
        var (_, answered) = Run(s, second.Live, new AnswerReceived("r1", answer, Conn));
        Assert.Equal("c2", Told<DeliverRequest>(answered, Conn).CommandId);
    }

    [Fact]
    public void A_frame_too_large_for_the_devices_reader_fails_its_command()
    {
        var (s, live) = Online();
        (s, var handed) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (after, d) = Run(s, handed.Live, new FrameTooLarge("r1", "c1", 1400, Conn));
        var c = after.FindCommand("c1")!;
        Assert.Equal(CommandStatus.Failed, c.Status);
        Assert.Contains("1400 bytes", c.Error);
        Assert.Empty(d.Live.Unconfirmed);
    }

    [Fact]
    public void The_protocol_a_device_speaks_is_kept_and_a_2025_device_is_not_taken_back_to_seed_by_its_connect()
    {
        var (s, _) = Online();
        Assert.Equal("seed", s.Protocol);
        var hb = new DeviceHeartbeat("r1", Report(), Conn, "node-a", ReplyWanted: true, Protocol: "2025");
        var (s2025, _) = Run(s, default, hb);
        Assert.Equal("2025", s2025.Protocol);
        var (again, d) = Run(s2025 with { Online = false }, default, new DeviceConnect("r1", ConnectReport, Newer, "node-b", "seed"));
        Assert.Equal("2025", again.Protocol);
        Assert.DoesNotContain(d.Events, e => e is ProtocolReported);
        var (op, _) = Run(s2025, default, new DeviceConnect("r1", ConnectReport, Newer, "node-b", "9"));
        Assert.Equal("9", op.Protocol);
    }

    [Fact]
    public void A_command_for_an_offline_device_waits_queued()
    {
        var (s, _) = Online();
        var offline = s.Apply(new DeviceDisconnected(T0));
        var (after, d) = Run(offline, default, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        Assert.Equal(CommandStatus.Queued, after.FindCommand("c1")!.Status);
        Assert.Empty(d.Effects.OfType<Tell>());
        Assert.Contains(new ScheduleDeadline(T0.AddSeconds(60)), d.Effects);
    }

    [Fact]
    public void A_device_never_seen_is_not_found_for_everything_and_nothing_is_written()
    {
        foreach (var input in new object[]
                 {
                     new GetDevice("r1"), new SetDesiredAuthMode("r1", "gw-1", 0), new GetCommands("r1"), new GetCommand("r1", "c"),
                     new CancelCommand("r1", "c"), new AwaitCommand("r1", "c"),
                     new SubmitCommand("r1", "c", null, "client_mac 'zz' is not a MAC address", 1, 1),
                 })
        {
            var (_, d) = Run(DeviceState.Empty, default, input);
            Assert.IsType<DeviceNotFound>(d.Reply);
            Assert.Empty(d.Events);
        }
    }

    [Fact]
    public void An_invalid_command_is_refused_without_state()
    {
        var (s, live) = Online();
        var (_, d) = Run(s, live, new SubmitCommand("r1", "c", null, "client_mac 'zz' is not a MAC address", 1, 1));
        Assert.Equal("client_mac 'zz' is not a MAC address", Assert.IsType<CommandInvalid>(d.Reply).Problem);
        Assert.Empty(d.Events);
    }

    [Fact]
    public void A_newer_connection_closes_the_older_one_and_gets_its_unconfirmed_commands_once_the_old_one_had_its_say()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (after, d) = Run(s, sent.Live, new DeviceConnect("r1", ConnectReport, Newer, "node-b"));
        Assert.Contains(new Unwatch(Conn), d.Effects);
        Assert.Contains("newer connection", Told<CloseConnection>(d, Conn).Reason);
        // The old connection may have written c1 (its word can be overtaken): c1 stays sent, waiting for that word.
        Assert.DoesNotContain(d.Events, e => e is CommandRequeued);
        Assert.DoesNotContain(d.Effects.OfType<Tell>(), t => t.Message is DeliverRequest);
        Assert.Equal(Conn, d.Live.OldWrites!.Connection);
        Assert.Equal(["c1"], d.Live.OldWrites.Ids);
        Assert.Equal(T0 + DeviceDecider.OldWritesGrace, d.Live.OldWrites.Until);
        Assert.Contains(new ScheduleOldWrites(T0 + DeviceDecider.OldWritesGrace), d.Effects);
        Assert.Contains(new IdleTimer(false), d.Effects);

        // No word in time (its node died with it): queued again, and sent to the newer connection.
        var (s2, overdue) = Run(after, d.Live, OldWritesOverdue.Instance, T0 + DeviceDecider.OldWritesGrace);
        Assert.Contains(overdue.Events, e => e is CommandRequeued { CommandId: "c1" });
        Assert.Equal("c1", Told<DeliverRequest>(overdue, Newer).CommandId);
        Assert.Equal(CommandStatus.Sent, s2.FindCommand("c1")!.Status);
        Assert.Equal(["c1"], overdue.Live.Unconfirmed);
        Assert.Null(overdue.Live.OldWrites);
    }

    [Fact]
    public void A_replaced_connection_that_wrote_the_frame_makes_it_done_and_it_is_not_sent_again()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "a1",
            new AuthRequest { Token = "t", ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1" }, null, 60, 30));
        var (s2, replaced) = Run(s, sent.Live, new DeviceConnect("r1", ConnectReport, Newer, "node-b"));
        // Its word arrives after the newer connection's connect (or after the watch said it stopped).
        var (s3, written) = Run(s2, replaced.Live, new FrameWritten("r1", "a1", AnswerExpected: false, Conn));
        Assert.Equal(CommandStatus.Delivered, s3.FindCommand("a1")!.Status);
        Assert.Null(written.Live.OldWrites);
        Assert.DoesNotContain(written.Effects.OfType<Tell>(), t => t.Message is DeliverRequest);
        Assert.Empty(Run(s3, written.Live, OldWritesOverdue.Instance, T0.AddSeconds(10)).Decision.Events);

        // The same when the socket ended (no newer connection yet): nothing is queued again.
        var (gone, g) = Run(s, sent.Live, new ConnectionClosed("r1", Conn));
        Assert.False(gone.Online);
        Assert.DoesNotContain(g.Events, e => e is CommandRequeued);
        var (s4, _) = Run(gone, g.Live, new FrameWritten("r1", "a1", AnswerExpected: false, Conn));
        Assert.Equal(CommandStatus.Delivered, s4.FindCommand("a1")!.Status);
    }

    [Fact]
    public void A_replaced_connection_that_did_not_write_the_frame_hands_it_to_the_newer_one_at_once()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (s2, replaced) = Run(s, sent.Live, new DeviceConnect("r1", ConnectReport, Newer, "node-b"));
        var (_, d) = Run(s2, replaced.Live, new FrameNotWritten("r1", "c1", Conn));
        Assert.Contains(d.Events, e => e is CommandRequeued { CommandId: "c1" });
        Assert.Equal("c1", Told<DeliverRequest>(d, Newer).CommandId);
        Assert.Null(d.Live.OldWrites);
    }

    [Fact]
    public void A_confirmed_write_is_not_sent_again_on_the_next_connection()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (s2, written) = Run(s, sent.Live, new FrameWritten("r1", "c1", AnswerExpected: true, Conn));
        Assert.Empty(written.Live.Unconfirmed);
        var (_, d) = Run(s2, written.Live, new DeviceConnect("r1", ConnectReport, Newer, "node-b"));
        Assert.DoesNotContain(d.Events, e => e is CommandRequeued);
        Assert.DoesNotContain(d.Effects.OfType<Tell>(), t => t.Message is DeliverRequest);
    }

    [Fact]
    public void A_write_the_device_will_not_answer_is_delivered()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "a1",
            new AuthRequest { Token = "t", ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1" }, null, 60, 30));
        var (after, _) = Run(s, sent.Live, new FrameWritten("r1", "a1", AnswerExpected: false, Conn));
        Assert.Equal(CommandStatus.Delivered, after.FindCommand("a1")!.Status);
        Assert.True(after.Clients.ContainsKey("aa:bb:cc:dd:ee:ff"));
    }

    [Fact]
    public void A_failed_write_requeues_the_command()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (after, d) = Run(s, sent.Live, new FrameNotWritten("r1", "c1", Conn));
        Assert.Contains(d.Events, e => e is CommandRequeued { CommandId: "c1" });
        Assert.Empty(d.Live.Unconfirmed);
        // Not again to the failing socket (it is ending): to the next one.
        Assert.Equal(CommandStatus.Queued, after.FindCommand("c1")!.Status);
        Assert.DoesNotContain(d.Effects.OfType<Tell>(), t => t.Message is DeliverRequest);
        var (_, next) = Run(after, d.Live, new DeviceConnect("r1", ConnectReport, Newer, "node-a"));
        Assert.Equal("c1", Told<DeliverRequest>(next, Newer).CommandId);
    }

    [Fact]
    public void A_frame_held_past_its_deadline_times_the_command_out_unwritten()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (after, d) = Run(s, sent.Live, new FrameExpired("r1", "c1", Conn), T0.AddSeconds(30));
        var c = after.FindCommand("c1")!;
        Assert.Equal(CommandStatus.TimedOut, c.Status);
        Assert.Contains("not written within 30 s", c.Error);
        Assert.Empty(d.Live.Unconfirmed);
    }

    [Fact]
    public void A_waiter_is_remembered_and_told_when_its_command_ends()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (_, wait) = Run(s, sent.Live, new AwaitCommand("r1", "c1"));
        Assert.Null(wait.Reply);
        Assert.Contains(new AddWaiter("c1"), wait.Effects);

        var waiting = sent.Live with { Waiters = ImmutableDictionary<string, ImmutableList<IActorRef>>.Empty.Add("c1", [Waiter]) };
        var answer = new DeviceAnswer
        {
            Type = "firmware_info_response", ReqId = ReqId.Of("c1"), RequestType = "get_firmware_info",
            Firmware = new Dictionary<string, string> { ["DISTRIB_RELEASE"] = "1" }, Body = JsonElement.Parse("{}"),
        };
        var (after, d) = Run(s, waiting, new AnswerReceived("r1", answer, Conn));
        Assert.Equal("1", after.Firmware["DISTRIB_RELEASE"]);
        Assert.Equal("succeeded", Told<CommandFound>(d, Waiter).View.Status);
        Assert.Empty(d.Live.Waiters);
    }

    [Fact]
    public void An_answer_that_matches_nothing_is_noted_and_changes_nothing()
    {
        var (s, live) = Online();
        var (_, d) = Run(s, live, new AnswerReceived("r1", new DeviceAnswer { Type = "kickoff_response", ReqId = ReqId.Of("zz"), RequestType = "kickoff" }, Conn));
        Assert.Empty(d.Events);
        Assert.Contains("matches no command", Assert.IsType<Note>(Assert.Single(d.Effects)).Text);
    }

    [Fact]
    public void Only_the_current_connection_going_away_makes_the_device_offline()
    {
        var (s, live) = Online();
        Assert.Empty(Run(s, live, new ConnectionClosed("r1", Newer)).Decision.Events);
        var (after, d) = Run(s, live, new ConnectionLost(Conn));
        Assert.False(after.Online);
        Assert.Null(d.Live.Connection);
        Assert.Contains(new IdleTimer(true), d.Effects);
    }

    [Fact]
    public void An_idle_entity_passivates_only_while_offline_and_unawaited()
    {
        var (s, live) = Online();
        Assert.Empty(Run(s, live, IdleTimeout.Instance).Decision.Effects);
        Assert.IsType<Passivate>(Assert.Single(Run(s, default, IdleTimeout.Instance).Decision.Effects));
    }

    [Fact]
    public void After_recovery_a_device_that_was_online_is_recorded_offline()
    {
        var (s, _) = Online();
        var (after, d) = Run(s with { Online = false }, default, new Recovered(WasOnline: true));
        Assert.IsType<DeviceDisconnected>(Assert.Single(d.Events));
        Assert.False(after.Online);
        Assert.Empty(Run(s with { Online = false }, default, new Recovered(WasOnline: false)).Decision.Events);
    }

    /// <summary>A command sent on the old connection, which was then replaced: the command went again, to the newer one.</summary>
    private static (DeviceState State, DeviceLive Live) ResentOnNewer()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (after, replaced) = Run(s, sent.Live, new DeviceConnect("r1", ConnectReport, Newer, "node-b"));
        var (resent, overdue) = Run(after, replaced.Live, OldWritesOverdue.Instance, T0 + DeviceDecider.OldWritesGrace);
        Assert.Equal("c1", Told<DeliverRequest>(overdue, Newer).CommandId);
        return (resent, overdue.Live);
    }

    [Fact]
    public void A_late_failed_write_from_a_replaced_connection_does_not_queue_the_command_again()
    {
        var (s, live) = ResentOnNewer();
        var (after, d) = Run(s, live, new FrameNotWritten("r1", "c1", Conn));
        Assert.Empty(d.Events);
        Assert.DoesNotContain(d.Effects.OfType<Tell>(), t => t.Message is DeliverRequest);
        Assert.Equal(CommandStatus.Sent, after.FindCommand("c1")!.Status);
        Assert.False(d.Live.ConnectionFailing);
        Assert.Equal(["c1"], d.Live.Unconfirmed); // still the newer connection's to confirm
    }

    [Fact]
    public void A_late_confirmation_from_a_replaced_connection_does_not_mark_the_command_delivered()
    {
        var (s, live) = ResentOnNewer();
        var (_, late) = Run(s, live, new FrameWritten("r1", "c1", AnswerExpected: true, Conn));
        Assert.Empty(late.Events);
        Assert.Equal(["c1"], late.Live.Unconfirmed);
        // …so the newer connection's failure still puts it back in the queue.
        var (after, d) = Run(s, late.Live, new FrameNotWritten("r1", "c1", Newer));
        Assert.Contains(d.Events, e => e is CommandRequeued { CommandId: "c1" });
        Assert.Equal(CommandStatus.Queued, after.FindCommand("c1")!.Status);
        // Expired and too large from the old connection are ignored too.
        Assert.Empty(Run(s, live, new FrameExpired("r1", "c1", Conn), T0.AddSeconds(30)).Decision.Events);
        Assert.Empty(Run(s, live, new FrameTooLarge("r1", "c1", 1400, Conn)).Decision.Events);
        Assert.Empty(Run(s, live, new FrameWritten("r1", "c1", AnswerExpected: true, null)).Decision.Events);
    }

    [Fact]
    public void After_a_handoff_a_device_whose_socket_node_is_live_stays_online_until_the_socket_reports()
    {
        var (s, _) = Online();
        var by = T0.AddSeconds(195);
        var (waiting, d) = Run(s, default, new Recovered(WasOnline: true, ReattachBy: by));
        Assert.Empty(d.Events);
        Assert.True(waiting.Online);
        Assert.Contains(new ScheduleReattach(by), d.Effects);
        Assert.Contains(new IdleTimer(false), d.Effects);
        Assert.Empty(Run(waiting, d.Live, IdleTimeout.Instance).Decision.Effects); // no passivation while waiting

        // The socket's next heartbeat adopts it: still online, never recorded disconnected.
        var (adopted, hb) = Run(waiting, d.Live, new DeviceHeartbeat("r1", Report(), Conn, "node-a", ReplyWanted: false), T0.AddSeconds(30));
        Assert.DoesNotContain(hb.Events, e => e is DeviceDisconnected);
        Assert.True(adopted.Online);
        Assert.Equal(Conn, hb.Live.Connection);
        Assert.Null(hb.Live.ReattachBy);
        Assert.Empty(Run(adopted, hb.Live, ReattachOverdue.Instance, by).Decision.Events);
    }

    [Fact]
    public void A_command_queued_while_the_entity_waited_for_its_socket_goes_out_when_the_socket_is_adopted()
    {
        var (s, _) = Online();
        var (waiting, d) = Run(s, default, new Recovered(WasOnline: true, ReattachBy: T0.AddSeconds(195)));
        var (queued, q) = Run(waiting, d.Live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        Assert.Equal(CommandStatus.Queued, queued.FindCommand("c1")!.Status);
        var (after, hb) = Run(queued, q.Live, new DeviceHeartbeat("r1", Report(), Conn, "node-a", ReplyWanted: false), T0.AddSeconds(5));
        Assert.Equal("c1", Told<DeliverRequest>(hb, Conn).CommandId);
        Assert.Equal(CommandStatus.Sent, after.FindCommand("c1")!.Status);
    }

    [Fact]
    public void After_a_handoff_a_socket_that_ends_or_stays_silent_makes_the_device_offline()
    {
        var (s, _) = Online();
        var by = T0.AddSeconds(195);
        var (waiting, d) = Run(s, default, new Recovered(WasOnline: true, ReattachBy: by));
        var (closed, c) = Run(waiting, d.Live, new ConnectionClosed("r1", Conn), T0.AddSeconds(5));
        Assert.IsType<DeviceDisconnected>(Assert.Single(c.Events));
        Assert.False(closed.Online);
        Assert.Null(c.Live.ReattachBy);
        var (silent, o) = Run(waiting, d.Live, ReattachOverdue.Instance, by);
        Assert.IsType<DeviceDisconnected>(Assert.Single(o.Events));
        Assert.False(silent.Online);
        Assert.Contains(new IdleTimer(true), o.Effects);
    }

    [Fact]
    public void The_stop_message_answers_waiters_with_the_command_as_it_stands_and_stops()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var waiting = sent.Live with { Waiters = ImmutableDictionary<string, ImmutableList<IActorRef>>.Empty.Add("c1", [Waiter]) };
        var (_, d) = Run(s, waiting, StopDevice.Instance);
        Assert.Empty(d.Events); // nothing persisted: the socket lives on, the next incarnation adopts it
        Assert.Equal("sent", Told<CommandFound>(d, Waiter).View.Status);
        Assert.IsType<Stop>(d.Effects.Last());
        Assert.Empty(d.Live.Waiters);
    }

    /// <summary>c1 sent, its connection ended before saying whether it wrote it, and the shard asks the entity to stop.</summary>
    private static (DeviceState, Decision) StoppedWhileOldWritesOwed()
    {
        var (s, live) = Online();
        (s, var sent) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        var (s1, closed) = Run(s, sent.Live, new ConnectionClosed("r1", Conn));
        Assert.NotNull(closed.Live.OldWrites);
        return Run(s1, closed.Live, StopDevice.Instance);
    }

    [Fact]
    public void A_stop_while_an_ended_connection_owes_its_word_waits_for_it_then_queues_the_command_again_and_stops()
    {
        // The shard hands the entity off now: stopped at once, c1 would stay "sent" in the journal with no one to requeue it.
        var (s2, stop) = StoppedWhileOldWritesOwed();
        Assert.DoesNotContain(stop.Effects, e => e is Stop);
        Assert.True(stop.Live.StopWanted);

        var (s3, overdue) = Run(s2, stop.Live, OldWritesOverdue.Instance, T0 + DeviceDecider.OldWritesGrace);
        Assert.Contains(overdue.Events, e => e is CommandRequeued { CommandId: "c1" });
        Assert.Equal(CommandStatus.Queued, s3.FindCommand("c1")!.Status);
        Assert.IsType<Stop>(overdue.Effects.Last());
        Assert.False(overdue.Live.StopWanted);
    }

    [Fact]
    public void A_stop_while_an_ended_connection_owes_its_word_stops_as_soon_as_the_word_comes()
    {
        var (s2, stop) = StoppedWhileOldWritesOwed();
        var (s3, written) = Run(s2, stop.Live, new FrameWritten("r1", "c1", AnswerExpected: false, Conn));
        Assert.Equal(CommandStatus.Delivered, s3.FindCommand("c1")!.Status);
        Assert.DoesNotContain(written.Events, e => e is CommandRequeued);
        Assert.IsType<Stop>(written.Effects.Last());
    }

    [Fact]
    public void A_draining_connection_is_sent_nothing_more()
    {
        var (s, live) = Online();
        var (s1, draining) = Run(s, live, new ConnectionDraining("r1", Conn));
        Assert.True(draining.Live.ConnectionFailing);
        var (_, d) = Run(s1, draining.Live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        Assert.DoesNotContain(d.Effects.OfType<Tell>(), t => t.Message is DeliverRequest);
        // A draining connection that is no longer the device's changes nothing.
        Assert.False(Run(s, live, new ConnectionDraining("r1", Newer)).Decision.Live.ConnectionFailing);
    }

    [Fact]
    public void Only_a_queued_command_can_be_cancelled()
    {
        var (s, _) = Online();
        var offline = s.Apply(new DeviceDisconnected(T0));
        (offline, _) = Run(offline, default, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_status" }, null, 60, 30));
        var (after, d) = Run(offline, default, new CancelCommand("r1", "c1"));
        Assert.Equal("cancelled", Assert.IsType<CommandFound>(d.Reply).View.Status);
        Assert.IsType<CommandConflict>(Run(after, default, new CancelCommand("r1", "c1")).Decision.Reply);
        Assert.IsType<CommandNotFound>(Run(after, default, new CancelCommand("r1", "zz")).Decision.Reply);
    }

    [Fact]
    public void A_submit_naming_an_existing_command_replays_it_or_conflicts_and_never_queues_twice()
    {
        var (s, live) = Online();
        var kickoff = new KickoffRequest { ClientIp = "10.0.0.7", ClientMac = "AA:BB:CC:00:00:07", DeviceId = "r1", GwId = "gw-1" };
        (s, var first) = Run(s, live, new SubmitCommand("r1", "k1", kickoff, null, 60, 30));
        Assert.IsType<CommandQueued>(first.Events[0]); // and sent at once: the device is online
        (s, var retry) = Run(s, first.Live, new SubmitCommand("r1", "k1", kickoff with { ClientMac = "aa:bb:cc:00:00:07" }, null, 60, 30));
        Assert.Empty(retry.Events);
        Assert.DoesNotContain(retry.Effects.OfType<Tell>(), t => t.To.Equals(Conn));
        var replayed = Assert.IsType<CommandFound>(retry.Reply);
        Assert.True(replayed.Replayed);
        Assert.Equal("k1", replayed.View.CommandId);
        var (_, other) = Run(s, retry.Live, new SubmitCommand("r1", "k1", kickoff with { ClientIp = "10.0.0.8" }, null, 60, 30));
        Assert.Empty(other.Events);
        Assert.IsType<CommandConflict>(other.Reply);
        Assert.Single(s.Commands);
    }

    [Fact]
    public void A_device_with_its_queue_full_refuses_one_more_command_with_429()
    {
        var (s, live) = Run(DeviceState.Empty with { QueueLimit = 2 }, default, new DeviceConnect("r1", ConnectReport, Conn, "node-a")) is var (st, dc)
            ? (st, dc.Live) : default;
        (s, var a) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        (s, var b) = Run(s, a.Live, new SubmitCommand("r1", "c2", new SimpleRequest { Type = "get_status" }, null, 60, 30));
        var (_, c) = Run(s, b.Live, new SubmitCommand("r1", "c3", new SimpleRequest { Type = "get_sys_info" }, null, 60, 30));
        Assert.Empty(c.Events);
        var refused = Assert.IsType<CommandRefused>(c.Reply);
        Assert.Equal(429, refused.Status);
        Assert.Contains("2 unfinished commands", refused.Problem);
    }

    [Fact]
    public void A_gateway_whose_mode_is_unknown_is_left_out_of_the_reply_never_answered_open()
    {
        var report = ConnectReport with
        {
            Gateway = [new GatewayReport { GwId = "gw-known", AuthMode = 1 }, new GatewayReport { GwId = "gw-silent" }],
        };
        var (s, d) = Run(DeviceState.Empty, default, new DeviceConnect("r1", report, Conn, "node-a"));
        var reply = Told<ReplyToReport>(d, Conn).Reply;
        Assert.Equal([("gw-known", 1)], reply.Gateway!.Select(g => (g.GwId!, g.AuthMode!.Value)));
        // Once the operator says what it wants for that gateway, the reply carries it.
        Assert.Equal([("gw-known", 1), ("gw-silent", 2)],
            DeviceDecider.ReplyFor(s.Apply(new DesiredAuthModeSet("gw-silent", 2))).Gateway!.Select(g => (g.GwId!, g.AuthMode!.Value)));
    }

    [Fact]
    public void An_admin_read_after_a_passed_deadline_sees_the_command_ended_not_queued()
    {
        // Offline device: the command waits with a ttl of 60 s; no timer ran (the entity was passivated or restarted).
        var (s, _) = Run(DeviceState.Empty, default, new DeviceConnect("r1", ConnectReport, Conn, "node-a"));
        s = s.Apply(new DeviceDisconnected(T0));
        (s, _) = Run(s, default, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30));
        Assert.Equal(CommandStatus.Queued, s.FindCommand("c1")!.Status);

        var (after, d) = Run(s, default, new GetCommand("r1", "c1"), T0.AddSeconds(120));
        Assert.Equal("expired", Assert.IsType<CommandFound>(d.Reply).View.Status);
        Assert.Equal(CommandStatus.Expired, Assert.IsType<CommandCompleted>(Assert.Single(d.Events)).Status);
        Assert.Equal(CommandStatus.Expired, after.FindCommand("c1")!.Status);

        // Before the deadline nothing is decided early.
        var (_, early) = Run(s, default, new GetCommand("r1", "c1"), T0.AddSeconds(30));
        Assert.Empty(early.Events);
        Assert.Equal("queued", Assert.IsType<CommandFound>(early.Reply).View.Status);
    }
}
