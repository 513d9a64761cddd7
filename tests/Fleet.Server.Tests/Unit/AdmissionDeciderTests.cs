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

/// <summary>
/// The device entity's admission decisions as the pure function they are: pending and approved devices, key
/// hand-overs (the key in memory only, never in an event), revocation, and connections that keep replacing
/// each other (cloned).
/// </summary>
public class AdmissionDeciderTests
{
    private static readonly IActorRef Conn = new DeviceDeciderTests.FakeRef("conn");
    private const string Key = "fdk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

    private static readonly AdmissionGrant FleetKeyEnrol = new("fleet-key", AdmissionEffect.Enrol, "fleet key", "/ws/wifidogx");
    private static readonly AdmissionGrant OwnKey = new("device-key", AdmissionEffect.Approve, "device key", "/ws/wifidogx");
    private static readonly AdmissionGrant Open = new("none", AdmissionEffect.None, null, "/ws");

    private static ConnectMessage ConnectReport => new() { DeviceId = "r1", DeviceInfo = Report().DeviceInfo, Gateway = Report().Gateway };

    private static (DeviceState State, Decision Decision) Run(DeviceState s, DeviceLive live, object input, DateTimeOffset? now = null)
    {
        var d = DeviceDecider.Decide("r1", s, live, input, now ?? T0);
        return (s.ApplyAll(d.Events), d);
    }

    private static DeviceConnect Connect(AdmissionGrant? grant, IActorRef? conn = null, string protocol = "9") =>
        new("r1", ConnectReport, conn ?? Conn, "node-a", protocol, grant);

    private static (DeviceState State, DeviceLive Live) Online(AdmissionGrant? grant, string protocol = "9")
    {
        var (s, d) = Run(DeviceState.Empty, default, Connect(grant, protocol: protocol));
        return (s, d.Live);
    }

    private static HandOverKey HandOver(string commandId = "a1") => new("r1", Key, commandId, "test-admin", 3600, 30, null);

    private static IEnumerable<T> Told<T>(Decision d, IActorRef to) =>
        d.Effects.OfType<Tell>().Where(t => t.To.Equals(to)).Select(t => t.Message).OfType<T>();

    private static DeviceAnswer Success(string commandId) => new()
    {
        Type = "set_websocket_server_response", ReqId = ReqId.Of(commandId), RequestType = "set_websocket_serv",
        Body = JsonElement.Parse("""{"type":"set_websocket_server_response","status":"success"}"""),
    };

    [Fact]
    public void An_unknown_device_enrolled_with_a_fleet_key_is_pending_and_shows_it()
    {
        var (s, d) = Run(DeviceState.Empty, default, Connect(FleetKeyEnrol));
        var admission = Assert.Single(d.Events.OfType<AdmissionChanged>());
        Assert.Equal(("pending", "fleet key"), (admission.Admission, admission.By));
        Assert.True(s.IsPending);
        var view = Assert.IsType<DeviceFound>(Run(s, d.Live, new GetDevice("r1")).Decision.Reply).View;
        Assert.Equal("pending", view.Admission);
        Assert.Equal("fleet-key", view.Credential);
        Assert.False(view.Cloned);
    }

    [Fact]
    public void A_pending_device_takes_reads_but_no_command_or_auth_mode()
    {
        var (s, live) = Online(FleetKeyEnrol);
        Assert.IsType<DevicePending>(Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_status" }, null, 60, 30)).Decision.Reply);
        Assert.IsType<DevicePending>(Run(s, live, new SetDesiredAuthMode("r1", "gw-1", 0)).Decision.Reply);
        Assert.IsType<DeviceFound>(Run(s, live, new GetDevice("r1")).Decision.Reply);
        Assert.IsType<CommandList>(Run(s, live, new GetCommands("r1")).Decision.Reply);
        // Its reports are answered as any device's are.
        Assert.Single(Told<ReplyToReport>(Run(s, live, Connect(FleetKeyEnrol)).Decision, Conn));
    }

    [Fact]
    public void A_device_presenting_its_own_key_is_approved_and_a_fleet_key_later_does_not_make_it_pending()
    {
        var (s, d) = Run(DeviceState.Empty, default, Connect(OwnKey));
        Assert.Equal(("approved", "device key"), (s.Admission, s.AdmissionBy));
        var (again, d2) = Run(s, d.Live, Connect(FleetKeyEnrol, new DeviceDeciderTests.FakeRef("other")));
        Assert.Empty(d2.Events.OfType<AdmissionChanged>());
        Assert.Equal("approved", again.Admission);
    }

    [Fact]
    public void Open_admission_records_nothing_about_admission()
    {
        var (s, d) = Run(DeviceState.Empty, default, Connect(Open));
        Assert.Empty(d.Events.OfType<AdmissionChanged>());
        Assert.Null(s.Admission);
        Assert.Equal("none", d.Live.Credential);
        Assert.IsType<CommandFound>(Run(s, d.Live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_status" }, null, 60, 30)).Decision.Reply);
    }

    [Fact]
    public void Approving_a_9x_router_stores_the_hand_over_without_its_key_and_sends_it_with_the_key()
    {
        var (s, live) = Online(FleetKeyEnrol);
        var (after, d) = Run(s, live, new ApproveDevice("r1", "test-admin", HandOver()));

        Assert.Equal(("approved", "test-admin"), (after.Admission, after.AdmissionBy));
        var queued = Assert.Single(d.Events.OfType<CommandQueued>());
        var stored = Assert.IsType<SetWebSocketServRequest>(queued.Request);
        Assert.Equal("/ws/wifidogx?key=" + DeviceDecider.KeyNotStored, stored.Path);
        Assert.Null(stored.Hostname); // only the path: host, port and TLS stay what the router reached us with
        Assert.Null(stored.UseSsl);
        Assert.DoesNotContain(Key, ProtocolCodec.EncodeToString(stored));
        Assert.DoesNotContain(d.Events, e => e.ToString()!.Contains(Key));
        Assert.Contains(d.Events, e => e is CommandSent { CommandId: "a1" });

        var sent = Assert.Single(Told<DeliverRequest>(d, Conn));
        Assert.Equal("/ws/wifidogx?key=" + Key, Assert.IsType<SetWebSocketServRequest>(sent.Request).Path);
        var reply = Assert.IsType<KeyHandedOver>(d.Reply);
        Assert.Equal(("approved", "9", "a1", "sent"), (reply.Admission, reply.Protocol, reply.HandOver!.CommandId, reply.HandOver.Status));
        Assert.True(d.Live.HandOvers.ContainsKey("a1"));
        // The view of the command shows the stored request: no key.
        var view = Assert.IsType<CommandFound>(Run(after, d.Live, new GetCommand("r1", "a1")).Decision.Reply).View;
        Assert.DoesNotContain(Key, view.Request.GetRawText());
    }

    [Fact]
    public void A_hand_over_the_router_takes_drops_its_connection_so_that_it_reconnects_with_the_key()
    {
        var (s, live) = Online(FleetKeyEnrol);
        var (approved, d) = Run(s, live, new ApproveDevice("r1", "test-admin", HandOver()));
        var (written, w) = Run(approved, d.Live, new FrameWritten("r1", "a1", AnswerExpected: true, Conn));
        var (done, a) = Run(written, w.Live, new AnswerReceived("r1", Success("a1"), Conn));

        Assert.Equal(CommandStatus.Succeeded, done.FindCommand("a1")!.Status);
        Assert.Single(Told<CloseConnection>(a, Conn));
        Assert.Empty(a.Live.HandOvers);
    }

    [Fact]
    public void A_failed_hand_over_keeps_the_connection_and_forgets_the_key()
    {
        var (s, live) = Online(FleetKeyEnrol);
        var (approved, d) = Run(s, live, new ApproveDevice("r1", "test-admin", HandOver()));
        var unknown = new DeviceAnswer
        {
            Type = "generic_response", ReqId = ReqId.Of("a1"), RequestType = "set_websocket_serv", Unsupported = true,
            Error = "Unknown operation (code 400)", Body = JsonElement.Parse("""{"type":"generic_response"}"""),
        };
        var (done, a) = Run(approved, d.Live, new AnswerReceived("r1", unknown, Conn));
        Assert.Equal(CommandStatus.Failed, done.FindCommand("a1")!.Status);
        Assert.Empty(Told<CloseConnection>(a, Conn));
        Assert.Contains(a.Effects, e => e is Note { Warning: true });
        Assert.Empty(a.Live.HandOvers);
    }

    [Fact]
    public void A_hand_over_whose_key_was_lost_with_a_restart_fails_instead_of_going_out()
    {
        // Approved while offline: queued, the key in memory only…
        var (s, live) = Online(FleetKeyEnrol);
        var (offline, gone) = Run(s, live, new ConnectionClosed("r1", Conn));
        var (queued, q) = Run(offline, gone.Live, new ApproveDevice("r1", "test-admin", HandOver()));
        Assert.Equal("queued", Assert.IsType<KeyHandedOver>(q.Reply).HandOver!.Status);
        Assert.Contains(new IdleTimer(false), q.Effects); // holding a key, the entity stays in memory

        // …and the entity restarts (memory lost) before the router comes back.
        var (after, d) = Run(queued, default, Connect(FleetKeyEnrol));
        Assert.Equal(CommandStatus.Failed, after.FindCommand("a1")!.Status);
        Assert.Contains("restarted", after.FindCommand("a1")!.Error);
        Assert.DoesNotContain(Told<DeliverRequest>(d, Conn), r => r.CommandId == "a1");
    }

    [Fact]
    public void A_seed_router_cannot_be_handed_a_key_and_the_reply_says_so()
    {
        var (s, live) = Online(FleetKeyEnrol, protocol: "seed");
        var (after, d) = Run(s, live, new ApproveDevice("r1", "test-admin", HandOver()));
        var reply = Assert.IsType<KeyHandedOver>(d.Reply);
        Assert.Null(reply.HandOver);
        Assert.Contains("configure it on the router", reply.NotHandedOver);
        Assert.Equal("approved", after.Admission);
        Assert.Empty(d.Events.OfType<CommandQueued>());
    }

    [Fact]
    public void A_pending_device_is_not_handed_a_key_before_approval()
    {
        var (s, live) = Online(FleetKeyEnrol);
        var reply = Assert.IsType<KeyHandedOver>(Run(s, live, HandOver()).Decision.Reply);
        Assert.Null(reply.HandOver);
        Assert.Contains("pending", reply.NotHandedOver);
    }

    [Fact]
    public void A_newer_hand_over_supersedes_one_still_queued()
    {
        var (s, live) = Online(OwnKey);
        var (offline, gone) = Run(s, live, new ConnectionClosed("r1", Conn));
        var (first, d1) = Run(offline, gone.Live, HandOver("a1"));
        var (second, d2) = Run(first, d1.Live, HandOver("a2"));
        Assert.Equal(CommandStatus.Failed, second.FindCommand("a1")!.Status);
        Assert.Contains("superseded", second.FindCommand("a1")!.Error);
        Assert.Equal(CommandStatus.Queued, second.FindCommand("a2")!.Status);
        Assert.Equal(["a2"], d2.Live.HandOvers.Keys);
    }

    [Fact]
    public void Revoking_keys_closes_the_socket_and_fails_queued_hand_overs()
    {
        var (s, live) = Online(OwnKey);
        var (busy, b) = Run(s, live, new SubmitCommand("r1", "c1", new SimpleRequest { Type = "get_status" }, null, 60, 30));
        var (queued, q) = Run(busy, b.Live, HandOver()); // waits behind c1 (one command in flight)
        Assert.Equal(CommandStatus.Queued, queued.FindCommand("a1")!.Status);
        var (after, d) = Run(queued, q.Live, new RevokeDeviceKeys("r1"));
        Assert.Equal(CommandStatus.Failed, after.FindCommand("a1")!.Status);
        Assert.Single(Told<CloseConnection>(d, Conn));
        Assert.True(Assert.IsType<KeysRevoked>(d.Reply).Closed);
        Assert.Empty(d.Live.HandOvers);
    }

    [Fact]
    public void Connections_replacing_each_other_more_than_five_times_in_five_minutes_flag_the_device_once()
    {
        var (s, live) = Online(Open);
        var warnings = 0;
        var counted = 0;
        for (var i = 1; i <= 7; i++)
        {
            var d = DeviceDecider.Decide("r1", s, live, Connect(Open, new DeviceDeciderTests.FakeRef($"c{i}")), T0.AddSeconds(20 * i));
            s = s.ApplyAll(d.Events);
            live = d.Live;
            warnings += d.Effects.Count(e => e is Note { Warning: true });
            counted += d.Effects.OfType<CountCloneEpisode>().Count();
            var view = Assert.IsType<DeviceFound>(DeviceDecider.Decide("r1", s, live, new GetDevice("r1"), T0.AddSeconds(20 * i)).Reply).View;
            Assert.Equal(i >= 6, view.Cloned); // the 6th replacement within 5 minutes
        }
        Assert.Equal((1, 1), (warnings, counted)); // one warning and one count per episode
        var later = Assert.IsType<DeviceFound>(DeviceDecider.Decide("r1", s, live, new GetDevice("r1"), T0.AddSeconds(140 + 301)).Reply).View;
        Assert.False(later.Cloned); // a whole window without replacements ends the episode
    }

    [Fact]
    public void A_router_that_reconnects_after_its_socket_ended_is_no_replacement()
    {
        var (s, live) = Online(Open);
        var first = DeviceDecider.Decide("r1", s, live, new ConnectionClosed("r1", Conn), T0);
        (s, live) = (s.ApplyAll(first.Events), first.Live);
        for (var i = 1; i <= 10; i++)
        {
            var conn = new DeviceDeciderTests.FakeRef($"c{i}");
            var d = DeviceDecider.Decide("r1", s, live, Connect(Open, conn), T0.AddSeconds(i));
            s = s.ApplyAll(d.Events);
            var closed = DeviceDecider.Decide("r1", s, d.Live, new ConnectionClosed("r1", conn), T0.AddSeconds(i));
            s = s.ApplyAll(closed.Events);
            live = closed.Live;
        }
        Assert.Null(live.Clones);
    }

    [Fact]
    public void Replacements_spread_wider_than_the_window_are_no_clone()
    {
        CloneWatch? w = null;
        for (var i = 0; i < 12; i++)
        {
            (w, var started) = CloneWatch.Replaced(w, T0.AddMinutes(i)); // one a minute: at most 5 in any 5 minutes
            Assert.False(started);
        }
        Assert.False(w!.ActiveAt(T0.AddMinutes(12)));
        Assert.Equal(5, w.Replacements.Length);
    }
}
