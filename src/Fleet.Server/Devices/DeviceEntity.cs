using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;
using Fleet.Server.Hosting;
using Fleet.Server.Security;

namespace Fleet.Server.Devices;

/// <summary>
/// One router: the only writer of its state. Every decision is <see cref="DeviceDecider.Decide"/>'s; this
/// actor persists the events it returns, applies them, replies, and performs the effects (frames to the
/// connection, watching it, timers, waking waiters). Snapshots every N events; passivates when offline
/// and idle; recovers everything but the socket.
/// </summary>
public sealed class DeviceEntity : UntypedPersistentActor, IWithTimers
{
    // Arguments, not an expression: Props.Create(() => new …) compiles the argument expressions on
    // every call, and an entity is created per device (a reconnect storm creates thousands a second).
    public static Props Props(string deviceId, FleetSettings settings, TimeProvider clock, AdmissionMetrics? metrics = null,
        Metrics.FleetMetrics? fleetMetrics = null) =>
        Akka.Actor.Props.Create<DeviceEntity>(deviceId, settings, clock, metrics ?? Unmeasured, fleetMetrics ?? UnmeasuredFleet)
            .WithMailbox(LightMailbox.ConfigPath);

    private const string DeadlineTimer = "deadline";
    private const string ReattachTimer = "reattach";
    private const string OldWritesTimer = "old-writes";
    /// <summary>Beyond the silence limit, for the socket's node to close a silent socket and tell us.</summary>
    private const int ReattachMarginSeconds = 15;
    /// <summary>For entities made without a node's metrics (specs): counts go nowhere anyone reads.</summary>
    private static readonly AdmissionMetrics Unmeasured = new();
    private static readonly Metrics.FleetMetrics UnmeasuredFleet = new("Fleet.Server.Unmeasured");

    private readonly string _deviceId;
    private readonly FleetSettings _settings;
    private readonly TimeProvider _clock;
    private readonly AdmissionMetrics _metrics;
    private readonly Metrics.FleetMetrics _fleetMetrics;
    private DeviceState _state;
    private DeviceLive _live;
    private int _sinceSnapshot;
    private bool _recoveredOnline;

    public override string PersistenceId { get; }
    public ITimerScheduler Timers { get; set; } = null!;

    public DeviceEntity(string deviceId, FleetSettings settings, TimeProvider clock, AdmissionMetrics metrics, Metrics.FleetMetrics fleetMetrics)
    {
        _deviceId = deviceId;
        _metrics = metrics;
        _fleetMetrics = fleetMetrics;
        _settings = settings;
        _clock = clock;
        _state = DeviceState.Empty with { HistoryLimit = settings.Devices.CommandHistory, QueueLimit = settings.Devices.MaxQueuedCommands, TagRules = settings.Tags.Rules() };
        PersistenceId = FleetNames.PersistenceIdPrefix + deviceId;
    }

    // Untyped: a ReceivePersistentActor builds its handler tables per instance (~0.8 KB on every router).
    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case IDeviceEvent e:
                _state = _state.Apply(e);
                break;
            case SnapshotOffer { Snapshot: DeviceState s }:
                _state = s with { HistoryLimit = _settings.Devices.CommandHistory, QueueLimit = _settings.Devices.MaxQueuedCommands, TagRules = _settings.Tags.Rules() };
                break;
            case RecoveryCompleted:
                // A socket does not survive its node: if the node that held the device's socket is gone (or is this
                // node's earlier incarnation), the device is offline until it reconnects, and the view says so at
                // once. If that node is a live member (this entity was handed off or restarted while the socket
                // stayed up), the device stays online until the socket reports, ends, or stays silent too long.
                // Either way the decision is the Recovered message's, after what was stashed during recovery
                // (such as the report that woke us).
                _recoveredOnline = _state.Online;
                var socketMayLive = _recoveredOnline && _state.Node is { } node && SocketNodeIsLive(node);
                if (!socketMayLive) _state = _state with { Online = false };
                Self.Tell(new Recovered(_recoveredOnline, socketMayLive
                    ? _clock.GetUtcNow().AddSeconds(_settings.WebSocket.SilenceCloseSeconds + ReattachMarginSeconds)
                    : null));
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case IToDeviceEntity or Recovered or DeadlineReached or ReattachOverdue or OldWritesOverdue or StopDevice: Handle(message); break;
            case Terminated t: Handle(new ConnectionLost(t.ActorRef)); break;
            case ReceiveTimeout: Handle(IdleTimeout.Instance); break;
            case SaveSnapshotSuccess s: DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)); break;
            case SaveSnapshotFailure f: Log.Warning(f.Cause, "snapshot of {0} failed", _deviceId); break;
            case DeleteSnapshotsSuccess: break;
            case DeleteSnapshotsFailure f: Log.Warning(f.Cause, "deleting old snapshots of {0} failed", _deviceId); break;
            default: Unhandled(message); break;
        }
    }

    /// <summary>Whether the node named (address#uid) is a live member now: the socket it held may still be up.</summary>
    private bool SocketNodeIsLive(string node)
    {
        if (((ExtendedActorSystem)Context.System).Provider is not Akka.Cluster.ClusterActorRefProvider) return false;
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var state = cluster.State;
        foreach (var m in state.Members)
            if (m.Status is Akka.Cluster.MemberStatus.Up or Akka.Cluster.MemberStatus.WeaklyUp or Akka.Cluster.MemberStatus.Leaving
                    or Akka.Cluster.MemberStatus.Joining
                && !state.Unreachable.Contains(m) && NodeIdentity.Of(m.UniqueAddress) == node)
                return true;
        return false;
    }

    private void Handle(object input)
    {
        var decision = DeviceDecider.Decide(_deviceId, _state, _live, input, _clock.GetUtcNow());
        _live = decision.Live;
        var sender = Sender;
        if (decision.Events.IsEmpty)
        {
            Perform(decision, sender);
            return;
        }
        var remaining = decision.Events.Count;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        PersistAll(decision.Events, e =>
        {
            _state = _state.Apply(e);
            _sinceSnapshot++;
            Announce(e, decision.Events);
            if (--remaining > 0) return;
            _fleetMetrics.JournalWrite(started);
            if (_sinceSnapshot >= _settings.Devices.SnapshotEvery)
            {
                SaveSnapshot(_state);
                _sinceSnapshot = 0;
            }
            Perform(decision, sender);
        });
    }

    /// <summary>A persisted change operators may watch (online, offline, a command's status): to the cluster's event topic and the metrics.</summary>
    private void Announce(IDeviceEvent e, ImmutableList<IDeviceEvent> batch)
    {
        if (Events.FleetEvent.Of(_deviceId, e, _state, _clock.GetUtcNow()) is not { } announced) return;
        // A connect's dialect is persisted after it, in the same batch.
        if (e is DeviceConnected && batch.FindLast(b => b is ProtocolReported) is ProtocolReported p) announced = announced with { Protocol = p.Protocol };
        Events.FleetEvents.Publish(Context.System, announced);
        if (e is CommandCompleted done && _state.FindCommand(done.CommandId) is { } c)
            _fleetMetrics.CommandEnded(c.Type, c.Status.ToApi(), done.At - c.CreatedAt);
    }

    private void Perform(Decision decision, IActorRef sender)
    {
        foreach (var effect in decision.Effects)
        {
            switch (effect)
            {
                case Tell t: t.To.Tell(t.Message, Self); break;
                case Watch w: Context.Watch(w.Connection); break;
                case Unwatch u: Context.Unwatch(u.Connection); break;
                // A job asks again after a while for the same command (its answer may have been lost): one waiter per asker.
                case AddWaiter a when _live.Waiters.GetValueOrDefault(a.CommandId, []).Contains(sender):
                    break;
                case AddWaiter a:
                    _live = _live with
                    {
                        Waiters = _live.Waiters.SetItem(a.CommandId, _live.Waiters.GetValueOrDefault(a.CommandId, []).Add(sender)),
                    };
                    break;
                case ScheduleDeadline { At: { } at }:
                    Timers.StartSingleTimer(DeadlineTimer, DeadlineReached.Instance,
                        TimeSpan.FromTicks(Math.Max(0, (at - _clock.GetUtcNow()).Ticks)) + TimeSpan.FromMilliseconds(5));
                    break;
                case ScheduleDeadline: Timers.Cancel(DeadlineTimer); break;
                case IdleTimer i: SetReceiveTimeout(i.On ? TimeSpan.FromSeconds(_settings.Devices.PassivateAfterSeconds) : null); break;
                case ScheduleReattach { By: var by }:
                    Timers.StartSingleTimer(ReattachTimer, ReattachOverdue.Instance,
                        TimeSpan.FromTicks(Math.Max(0, (by - _clock.GetUtcNow()).Ticks)) + TimeSpan.FromMilliseconds(5));
                    break;
                case ScheduleOldWrites { Until: var until }:
                    Timers.StartSingleTimer(OldWritesTimer, OldWritesOverdue.Instance,
                        TimeSpan.FromTicks(Math.Max(0, (until - _clock.GetUtcNow()).Ticks)) + TimeSpan.FromMilliseconds(5));
                    break;
                // Our own stop message, not a PoisonPill: it waits behind pending writes (see DeviceDecider.OnStop).
                case Passivate: Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(StopDevice.Instance)); break;
                case Stop: Context.Stop(Self); break;
                case Note { Warning: true } n: Log.Warning(n.Text); break;
                case CountCloneEpisode:
                    _metrics.CloneEpisode();
                    Events.FleetEvents.Publish(Context.System, new Events.FleetEvent(Events.FleetEvent.DeviceCloned, _clock.GetUtcNow(), _deviceId,
                        Node: _state.Node, Detail: "connections keep replacing each other: two routers claim this device_id"));
                    break;
                case Note n: Log.Info(n.Text); break;
            }
        }
        if (decision.Reply is not null) sender.Tell(decision.Reply);
    }
}

/// <summary>
/// Every decision of a device entity, as one pure function: (state, memory, input, now) → decision.
/// The actor only persists the events, applies them, replies and performs the effects.
/// </summary>
public static partial class DeviceDecider
{
    private static readonly ImmutableList<DeviceEffect> NoEffects = [];

    /// <summary>
    /// The one decision for an input. An admin call first applies deadlines that have passed (an entity woken from
    /// passivation or recovered after a restart has had no timer running), so that it never answers with a command
    /// still "queued" or "sent" whose ttl or timeout is over.
    /// </summary>
    public static Decision Decide(string deviceId, DeviceState state, DeviceLive live, object input, DateTimeOffset now)
    {
        var d = DecideWithDeadlines(deviceId, state, live, input, now);
        // A stop put off until an old connection's word came (see OnStop): now that none is owed, it happens.
        if (d.Live is not { StopWanted: true, OldWrites: null } || input is StopDevice) return d;
        var stop = OnStop(deviceId, state.ApplyAll(d.Events), d.Live with { StopWanted = false });
        return new Decision(d.Reply, d.Events, d.Effects.AddRange(stop.Effects), stop.Live);
    }

    private static Decision DecideWithDeadlines(string deviceId, DeviceState state, DeviceLive live, object input, DateTimeOffset now)
    {
        if (input is not (GetDevice or GetCommands or GetCommand or AwaitCommand or SubmitCommand or CancelCommand or SetDesiredAuthMode or SetTags)
            || CommandLifecycle.NextDeadline(state) is not { } due || due > now)
            return DecideOne(deviceId, state, live, input, now);
        var overdue = DecideOne(deviceId, state, live, DeadlineReached.Instance, now);
        var then = DecideOne(deviceId, state.ApplyAll(overdue.Events), overdue.Live, input, now);
        return new Decision(then.Reply, overdue.Events.AddRange(then.Events), overdue.Effects.AddRange(then.Effects), then.Live);
    }

    private static Decision DecideOne(string deviceId, DeviceState state, DeviceLive live, object input, DateTimeOffset now) => input switch
    {
        DeviceConnect c => OnConnect(deviceId, state, live, c, now),
        DeviceHeartbeat h => OnHeartbeat(deviceId, state, live, h, now),
        AnswerReceived a => OnAnswer(deviceId, state, live with { LastSeen = now }, a.Answer, now),
        ConnectionClosed c => OnConnectionGone(deviceId, state, live, c.Connection, now),
        ConnectionLost c => OnConnectionGone(deviceId, state, live, c.Connection, now),
        // Write confirmations count from the current connection, and from an ended or replaced one for the frames it
        // held (AwaitOldWrites); anything else is late news about a command that has moved on (see FrameWritten).
        FrameWritten w when FromOld(live, w.Connection, w.CommandId) => Changed(deviceId, state, HeardFromOld(live, w.CommandId), null,
            CommandLifecycle.OnWritten(state, w.CommandId, w.AnswerExpected, now), NoEffects, null, now),
        FrameNotWritten w when FromOld(live, w.Connection, w.CommandId) => Changed(deviceId, state, HeardFromOld(live, w.CommandId), null,
            state.FindCommand(w.CommandId) is { Status: CommandStatus.Sent } ? [new CommandRequeued(w.CommandId)] : [], NoEffects, null, now),
        FrameExpired x when FromOld(live, x.Connection, x.CommandId) => Changed(deviceId, state, HeardFromOld(live, x.CommandId), null,
            CommandLifecycle.OnExpired(state, x.CommandId, now), NoEffects, null, now),
        FrameTooLarge t when FromOld(live, t.Connection, t.CommandId) => Changed(deviceId, state, HeardFromOld(live, t.CommandId), null,
            CommandLifecycle.OnTooLarge(state, t.CommandId, t.Bytes, now), NoEffects, null, now),
        ConnectionDraining d => FromCurrent(live, d.Connection) ? Ignore(live with { ConnectionFailing = true }) : Ignore(live),
        FrameWritten w when !FromCurrent(live, w.Connection) => Ignore(live),
        FrameNotWritten w when !FromCurrent(live, w.Connection) => Ignore(live),
        FrameExpired x when !FromCurrent(live, x.Connection) => Ignore(live),
        FrameTooLarge t when !FromCurrent(live, t.Connection) => Ignore(live),
        FrameWritten w => Changed(deviceId, state, live with { Unconfirmed = live.Unconfirmed.Remove(w.CommandId) }, null,
            CommandLifecycle.OnWritten(state, w.CommandId, w.AnswerExpected, now), NoEffects, null, now),
        // Not written (the socket is failing): back to the queue, for the next connection.
        FrameNotWritten w => Changed(deviceId, state, live with { Unconfirmed = live.Unconfirmed.Remove(w.CommandId), ConnectionFailing = true }, null,
            state.FindCommand(w.CommandId) is { Status: CommandStatus.Sent } ? [new CommandRequeued(w.CommandId)] : [], NoEffects, null, now),
        FrameExpired x => Changed(deviceId, state, live with { Unconfirmed = live.Unconfirmed.Remove(x.CommandId) }, null,
            CommandLifecycle.OnExpired(state, x.CommandId, now), NoEffects, null, now),
        FrameTooLarge t => Changed(deviceId, state, live with { Unconfirmed = live.Unconfirmed.Remove(t.CommandId) }, null,
            CommandLifecycle.OnTooLarge(state, t.CommandId, t.Bytes, now), NoEffects, null, now),
        DeadlineReached => Changed(deviceId, state, live, null, CommandLifecycle.OnTick(state, now), NoEffects, null, now),
        Recovered r => OnRecovered(deviceId, state, live, r, now),
        ReattachOverdue => live.Connection is null && state.Online && live.ReattachBy is not null
            ? Finish(deviceId, state, live with { ReattachBy = null }, null, [new DeviceDisconnected(now)],
                [new Note($"device {deviceId}: its socket on {state.Node} did not report within the silence limit after this entity moved; offline")], null, now)
            : Ignore(live),
        IdleTimeout => new Decision(null, [],
            live is { Connection: null, ReattachBy: null, OldWrites: null } && live.Waiters.IsEmpty && live.HandOvers.IsEmpty ? [new Passivate()] : NoEffects, live),
        StopDevice => OnStop(deviceId, state, live),
        OldWritesOverdue => OnOldWritesOverdue(deviceId, state, live, now),

        GetDevice => Reply(live, state.Exists ? new DeviceFound(DeviceView.From(state, deviceId, live, now)) : new DeviceNotFound(deviceId)),
        SetDesiredAuthMode m => OnSetAuthMode(deviceId, state, live, m, now),
        SetTags t => OnSetTags(deviceId, state, live, t, now),
        SubmitCommand s => OnSubmit(deviceId, state, live, s, now),
        GetCommands => Reply(live, state.Exists
            ? new CommandList(state.Commands.Reverse().Select(c => CommandView.From(c, deviceId)).ToList())
            : new DeviceNotFound(deviceId)),
        GetCommand g => Reply(live, !state.Exists ? new DeviceNotFound(deviceId)
            : state.FindCommand(g.CommandId) is { } found ? new CommandFound(CommandView.From(found, deviceId))
            : new CommandNotFound(g.CommandId)),
        AwaitCommand a => OnAwait(deviceId, state, live, a),
        CancelCommand c => OnCancel(deviceId, state, live, c, now),
        ApproveDevice a => OnApprove(deviceId, state, live, a, now),
        HandOverKey h => OnHandOver(deviceId, state, live, h, now),
        RevokeDeviceKeys => OnRevokeKeys(deviceId, state, live, now),
        _ => throw new ArgumentException($"a device entity has no decision for {input.GetType().Name}", nameof(input)),
    };

    /// <summary>
    /// The reply to a report: every reported gateway with the desired auth_mode where one is set, else the mode
    /// it reported. A gateway with neither is left out: answering it with 0 would open its portal (fail-open).
    /// </summary>
    public static ReportReply ReplyFor(DeviceState state)
    {
        var gateways = new List<GatewayAuthMode>(state.Gateways.Count);
        foreach (var g in state.Gateways)
        {
            int? mode = state.DesiredAuthModes.TryGetValue(g.GwId, out var d) ? d : g.AuthMode;
            if (mode is { } m) gateways.Add(new GatewayAuthMode { GwId = g.GwId, AuthMode = m });
        }
        return new ReportReply { Gateway = gateways };
    }

    /// <summary>Events for a connect or heartbeat: the connection (when new) and whatever it reports differently.</summary>
    public static ImmutableList<IDeviceEvent> ReportEvents(DeviceState state, DeviceReport report, bool newConnection,
        DateTimeOffset now, string node, string protocol = TypeDialect.SeedName)
    {
        var events = ImmutableList<IDeviceEvent>.Empty;
        if (newConnection) events = events.Add(new DeviceConnected(now, node));
        // A 2025 device's connect looks like a seed device's (its heartbeats tell them apart): no step back on it.
        if (protocol != state.Protocol && !(protocol == TypeDialect.SeedName && state.Protocol == TypeDialect.V2025Name))
            events = events.Add(new ProtocolReported(protocol));
        if (report.DeviceInfo is { } info
            && new DeviceInfoState(info.ApDeviceId, info.ApMacAddress, info.ApLongitude, info.ApLatitude, info.LocationId) is var i
            && i != state.Info)
        {
            events = events.Add(new DeviceInfoReported(i));
            if (state.EffectiveTags(i, state.OperatorTags) is var tags && !tags.SequenceEqual(state.Tags))
                events = events.Add(new TagsChanged(tags, state.OperatorTags));
        }
        if (report.Gateway is { } gws)
        {
            if (!SameGateways(gws, state.Gateways))
                events = events.Add(new GatewaysReported(gws.Select(g =>
                    new GatewayState(g.GwId!, g.GwChannel, g.GwAddressV4, g.GwAddressV6, g.GwInterface, g.AuthMode)).ToImmutableList()));
        }
        else if (!state.Exists)
        {
            events = events.Add(new GatewaysReported([]));
        }
        return events;
    }

    // ------------------------------------------------------------------ device side

    private static Decision OnConnect(string deviceId, DeviceState state, DeviceLive live, DeviceConnect c, DateTimeOffset now)
    {
        var effects = NoEffects;
        var events = ImmutableList<IDeviceEvent>.Empty;
        if (!c.Connection.Equals(live.Connection))
        {
            if (live.Connection is { } old)
            {
                effects = effects.AddRange([
                    new Note($"device {deviceId}: a newer connection replaces {old.Path}"),
                    new Unwatch(old),
                    new Tell(old, new CloseConnection("replaced by a newer connection for the same device")),
                ]);
                (live, effects) = OnReplaced(deviceId, live, effects, now);
            }
            (live, events, effects) = AwaitOldWrites(deviceId, state, live, events, effects, now);
        }
        live = Seen(live with
        {
            Connection = c.Connection, Told = null, ConnectionFailing = c.Connection.Equals(live.Connection) && live.ConnectionFailing, ReattachBy = null,
            Credential = c.Admission?.Credential, UpgradePath = c.Admission?.Path ?? live.UpgradePath,
        }, c.Report, now);
        effects = effects.Add(new Watch(c.Connection));
        events = events.AddRange(ReportEvents(state, c.Report, newConnection: true, now, c.Node, c.Protocol))
            .AddRange(AdmissionEvents(state, c.Admission, now));
        return Finish(deviceId, state, live, null, events, effects, new Answering(c.Connection, c.Report), now);
    }

    private static Decision OnHeartbeat(string deviceId, DeviceState state, DeviceLive live, DeviceHeartbeat h, DateTimeOffset now)
    {
        var adopt = live.Connection is null; // the entity restarted or moved while the socket stayed up
        var effects = NoEffects;
        if (adopt)
        {
            live = live with { Connection = h.Connection, Told = null, ConnectionFailing = false, ReattachBy = null };
            effects = effects.Add(new Watch(h.Connection));
        }
        live = Seen(live, h.Report, now);
        // Adopting the very socket the state records (online, on that node: the entity moved, the socket stayed) is
        // no new connection; its connected_at stands.
        var events = ReportEvents(state, h.Report, adopt && !(state.Online && state.Node == h.Node), now, h.Node, h.Protocol);
        // Adopting also sends what waits for the device (commands queued while no socket was known) and reschedules.
        if (!events.IsEmpty || adopt) return Finish(deviceId, state, live, null, events, effects, new Answering(h.Connection, h.Report), now);
        // Nothing changed. Adopting a connection always answers: it may hold no reply of ours yet.
        if (!h.ReplyWanted && !adopt) return new Decision(null, [], effects, live);
        var reply = ReplyFor(state);
        if (h.Connection.Equals(live.Connection)) live = live with { Told = reply };
        return new Decision(null, [], effects.Add(new Tell(h.Connection, new ReplyToReport(deviceId, reply, h.Report.Type, h.Report.ReqId, Routine: true))), live);
    }

    /// <summary>Last seen now; mode and figures kept, a new object only when they changed.</summary>
    private static DeviceLive Seen(DeviceLive live, DeviceReport report, DateTimeOffset now) => live with
    {
        LastSeen = now,
        Mode = report.Mode,
        // The older equal object is kept: the report's own dies young.
        Figures = report.SysInfo is not { IsEmpty: false } figures ? null : figures == live.Figures ? live.Figures : figures,
    };

    private static Decision OnAnswer(string deviceId, DeviceState state, DeviceLive live, DeviceAnswer answer, DateTimeOffset now)
    {
        var (events, dropped) = CommandLifecycle.OnAnswer(state, answer, now);
        if (dropped is not null) return new Decision(null, [], [new Note($"device {deviceId}: {answer.Type} dropped: {dropped}")], live);
        var (effects, after) = AfterHandOverAnswer(deviceId, live, events);
        return Changed(deviceId, state, after, null, events, effects, null, now);
    }

    private static bool FromCurrent(DeviceLive live, IActorRef? connection) => connection is not null && connection.Equals(live.Connection);

    private static Decision Ignore(DeviceLive live) => new(null, [], NoEffects, live);

    /// <summary>
    /// Recovered (after a restart, a handoff or a passivation): a device that was online stays so while its socket
    /// may still be alive — the node that holds it is a live member, as after a handoff — until that socket reports
    /// (and is adopted) or ends, or the silence limit passes. A socket on a node that is gone is gone: offline now.
    /// </summary>
    private static Decision OnRecovered(string deviceId, DeviceState state, DeviceLive live, Recovered r, DateTimeOffset now)
    {
        if (!r.WasOnline || live.Connection is not null) return Finish(deviceId, state, live, null, [], NoEffects, null, now);
        if (r.ReattachBy is { } by && state.Online)
            return Finish(deviceId, state, live with { ReattachBy = by }, null, [], [new ScheduleReattach(by)], null, now);
        return Finish(deviceId, state, live, null, [new DeviceDisconnected(now)], NoEffects, null, now);
    }

    /// <summary>
    /// The shard stops this entity (a handoff after a rebalance or a node leaving, or its own passivation). It comes
    /// as an ordinary message, so it is handled only after every pending write and what was stashed behind it: nothing
    /// accepted goes unanswered. Waiters get the command as it stands (the API then answers 202 with where to look).
    /// The device's socket, if any, lives on; the entity's next incarnation adopts it at its next report.
    /// </summary>
    private static Decision OnStop(string deviceId, DeviceState state, DeviceLive live)
    {
        if (live.OldWrites is { } owed)
            return new Decision(null, [], [new Note($"device {deviceId}: stopping once its old connection says whether it wrote {owed.Ids.Count} frame(s), " +
                $"by {owed.Until:HH:mm:ss.fff}")], live with { StopWanted = true });
        var effects = NoEffects;
        foreach (var (id, list) in live.Waiters)
        {
            IAdminReply now = state.FindCommand(id) is { } c ? new CommandFound(CommandView.From(c, deviceId)) : new CommandNotFound(id);
            effects = effects.AddRange(list.Select(w => (DeviceEffect)new Tell(w, now)));
        }
        return new Decision(null, [], effects.Add(new Stop()), live with { Waiters = ImmutableDictionary<string, ImmutableList<IActorRef>>.Empty });
    }

    private static Decision OnConnectionGone(string deviceId, DeviceState state, DeviceLive live, IActorRef connection, DateTimeOffset now)
    {
        // Waiting for the socket of a device that was online when this entity recovered: a connection that ends
        // before it reported to us was that socket (or an older one; a newer one reports and is adopted).
        if (live is { Connection: null, ReattachBy: not null } && state.Online)
            return Finish(deviceId, state, live with { ReattachBy = null }, null, [new DeviceDisconnected(now)], NoEffects, null, now);
        if (!connection.Equals(live.Connection)) return new Decision(null, [], NoEffects, live);
        var (after, events, effects) = AwaitOldWrites(deviceId, state, live, [], [new Unwatch(connection)], now);
        live = after with { Connection = null, Told = null, ConnectionFailing = false };
        return Finish(deviceId, state, live, null, events.Add(new DeviceDisconnected(now)), effects, null, now);
    }

    /// <summary>How long an ended or replaced connection has to say whether it wrote the frames it held.</summary>
    public static readonly TimeSpan OldWritesGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The current connection ended or was replaced while frames it held were unconfirmed. It may have written them
    /// (the router ran the command) and its word is on its way: the notice that it stopped can overtake it (a watch's
    /// Terminated is a system message; its confirmations come through the shard region). Those commands stay sent and
    /// wait for that word: written, they are done as any write; not written, they go to the next connection. Without a
    /// word within <see cref="OldWritesGrace"/> (its node died with it), they are queued again: at least once, since a
    /// frame may have left with the node.
    /// </summary>
    private static (DeviceLive, ImmutableList<IDeviceEvent>, ImmutableList<DeviceEffect>) AwaitOldWrites(string deviceId, DeviceState state,
        DeviceLive live, ImmutableList<IDeviceEvent> events, ImmutableList<DeviceEffect> effects, DateTimeOffset now)
    {
        // An older connection still owing its word is superseded: what it held goes back to the queue now.
        if (live.OldWrites is { } older) (events, effects) = Requeue(deviceId, state, older.Ids, events, effects);
        var ids = live.Unconfirmed.Where(id => state.FindCommand(id) is { Status: CommandStatus.Sent }).ToImmutableHashSet();
        live = live with { Unconfirmed = [], OldWrites = null };
        if (ids.IsEmpty || live.Connection is not { } old) return (live, events, effects);
        var until = now + OldWritesGrace;
        return (live with { OldWrites = new OldWrites(old, ids, until) }, events, effects.Add(new ScheduleOldWrites(until)));
    }

    private static (ImmutableList<IDeviceEvent>, ImmutableList<DeviceEffect>) Requeue(string deviceId, DeviceState state,
        IEnumerable<string> ids, ImmutableList<IDeviceEvent> events, ImmutableList<DeviceEffect> effects)
    {
        var requeued = ids.Where(id => state.FindCommand(id) is { Status: CommandStatus.Sent })
            .Select(id => (IDeviceEvent)new CommandRequeued(id)).ToList();
        if (requeued.Count == 0) return (events, effects);
        return (events.AddRange(requeued), effects.Add(new Note(
            $"device {deviceId}: {requeued.Count} command(s) never confirmed written by an old connection, queued again")));
    }

    /// <summary>A word from the ended or replaced connection on a frame it held: taken like the current connection's.</summary>
    private static bool FromOld(DeviceLive live, IActorRef? connection, string commandId) =>
        live.OldWrites is { } o && connection is not null && connection.Equals(o.Connection) && o.Ids.Contains(commandId);

    private static DeviceLive HeardFromOld(DeviceLive live, string commandId) =>
        live.OldWrites is { } o && o.Ids.Remove(commandId) is var rest
            ? live with { OldWrites = rest.IsEmpty ? null : o with { Ids = rest } }
            : live;

    private static Decision OnOldWritesOverdue(string deviceId, DeviceState state, DeviceLive live, DateTimeOffset now)
    {
        if (live.OldWrites is not { } o || o.Until > now) return Ignore(live);
        var (events, effects) = Requeue(deviceId, state, o.Ids, [], NoEffects);
        return Changed(deviceId, state, live with { OldWrites = null }, null, events, effects, null, now);
    }

    // ------------------------------------------------------------------ admin side

    private static Decision OnSetAuthMode(string deviceId, DeviceState state, DeviceLive live, SetDesiredAuthMode m, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        if (state.IsPending) return Reply(live, new DevicePending(deviceId));
        if (state.FindGateway(m.GwId) is null) return Reply(live, new GatewayNotFound(deviceId, m.GwId));
        var events = ImmutableList.Create<IDeviceEvent>(new DesiredAuthModeSet(m.GwId, m.AuthMode));
        var after = state.ApplyAll(events);
        return Changed(deviceId, state, live, new GatewayUpdated(GatewayView.From(after.FindGateway(m.GwId)!, after)), events, NoEffects, null, now);
    }

    private static Decision OnSetTags(string deviceId, DeviceState state, DeviceLive live, SetTags t, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        var tags = state.EffectiveTags(state.Info, t.Tags);
        if (tags.SequenceEqual(state.Tags) && t.Tags.SequenceEqual(state.OperatorTags))
            return Reply(live, new TagsUpdated(deviceId, state.Tags, state.OperatorTags));
        return Changed(deviceId, state, live, new TagsUpdated(deviceId, tags, t.Tags), [new TagsChanged(tags, t.Tags)], NoEffects, null, now);
    }

    private static Decision OnSubmit(string deviceId, DeviceState state, DeviceLive live, SubmitCommand s, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        if (state.IsPending) return Reply(live, new DevicePending(deviceId));
        if (s.Problem is not null || s.Request is null) return Reply(live, new CommandInvalid(s.Problem ?? "no request"));
        var (queued, problem) = CommandLifecycle.Submit(state, s.CommandId, s.Request, s.TtlSeconds, s.TimeoutSeconds, now);
        if (queued is null) return Reply(live, new CommandInvalid(problem!));
        if (state.FindCommand(s.CommandId) is { } existing)
            return Reply(live, CommandLifecycle.SameRequest(existing.Request, queued.Request)
                ? new CommandFound(CommandView.From(existing, deviceId), Replayed: true)
                : new CommandConflict($"Idempotency-Key already named command {s.CommandId} with a different request; use a new key",
                    CommandView.From(existing, deviceId)));
        if (CommandLifecycle.QueueFull(state) is { } full) return Reply(live, new CommandRefused(429, "Too many queued commands", full));
        var events = ImmutableList.Create<IDeviceEvent>(queued);
        // Reply after persist: an accepted command survives a crash. The view is the command as accepted.
        var reply = new CommandFound(CommandView.From(state.ApplyAll(events).FindCommand(s.CommandId)!, deviceId));
        return Changed(deviceId, state, live, reply, events, NoEffects, null, now);
    }

    private static Decision OnAwait(string deviceId, DeviceState state, DeviceLive live, AwaitCommand a)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        var c = state.FindCommand(a.CommandId);
        if (c is null) return Reply(live, new CommandNotFound(a.CommandId));
        if (c.Status.IsFinal()) return Reply(live, new CommandFound(CommandView.From(c, deviceId)));
        return new Decision(null, [], [new AddWaiter(a.CommandId)], live);
    }

    private static Decision OnCancel(string deviceId, DeviceState state, DeviceLive live, CancelCommand c, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        if (state.FindCommand(c.CommandId) is not { } command) return Reply(live, new CommandNotFound(c.CommandId));
        var (cancelled, conflict) = CommandLifecycle.Cancel(command, now);
        if (cancelled is null) return Reply(live, new CommandConflict(conflict!, CommandView.From(command, deviceId)));
        var events = ImmutableList.Create<IDeviceEvent>(cancelled);
        var reply = new CommandFound(CommandView.From(state.ApplyAll(events).FindCommand(c.CommandId)!, deviceId));
        return Changed(deviceId, state, live, reply, events, NoEffects, null, now);
    }

    // ------------------------------------------------------------------ after a change

    private static Decision Reply(DeviceLive live, IAdminReply reply) => new(reply, [], NoEffects, live);

    /// <summary>A report waiting for our reply, and the connection it came on.</summary>
    private readonly record struct Answering(IActorRef Connection, DeviceReport Report);

    /// <summary>Finishes a decision that may or may not have changed anything (nothing changed: nothing follows).</summary>
    private static Decision Changed(string deviceId, DeviceState state, DeviceLive live, IAdminReply? reply,
        ImmutableList<IDeviceEvent> events, ImmutableList<DeviceEffect> effects, Answering? reportFrom, DateTimeOffset now) =>
        events.IsEmpty ? new Decision(reply, events, effects, live) : Finish(deviceId, state, live, reply, events, effects, reportFrom, now);

    /// <summary>
    /// What follows any change: answer the report that is waiting (or push a changed reply to the
    /// connection), send the commands that can go now, wake the waiters whose command ended, and
    /// reschedule the deadline and idle timers.
    /// </summary>
    private static Decision Finish(string deviceId, DeviceState state, DeviceLive live, IAdminReply? reply,
        ImmutableList<IDeviceEvent> events, ImmutableList<DeviceEffect> effects, Answering? reportFrom, DateTimeOffset now)
    {
        var after = state.ApplyAll(events);
        var answer = ReplyFor(after);
        if (reportFrom is { } report)
        {
            effects = effects.Add(new Tell(report.Connection, new ReplyToReport(deviceId, answer, report.Report.Type, report.Report.ReqId)));
            if (report.Connection.Equals(live.Connection)) live = live with { Told = answer };
        }
        else if (live is { Connection: { } current, Told: { } told } && !SameModes(told, answer))
        {
            effects = effects.Add(new Tell(current, new AuthModesChanged(deviceId, answer)));
            live = live with { Told = answer };
        }

        if (live is { Connection: not null, ConnectionFailing: false }) (events, after) = FailLostHandOvers(events, after, live, now);
        if (live is { Connection: { } connection, ConnectionFailing: false } && CommandLifecycle.ToSend(after, now) is { Count: > 0 } toSend)
        {
            // Sent (persisted) before the connection gets it: a crash may lose the frame, never send it twice.
            var sent = toSend.Select(c => (IDeviceEvent)new CommandSent(c.CommandId, now)).ToList();
            events = events.AddRange(sent);
            after = after.ApplyAll(sent);
            effects = effects.AddRange(toSend.Select(c =>
                (DeviceEffect)new Tell(connection, new DeliverRequest(deviceId, live.HandOvers.GetValueOrDefault(c.CommandId) ?? c.Request,
                    now.AddSeconds(c.TimeoutSeconds)))));
            live = live with { Unconfirmed = live.Unconfirmed.Union(toSend.Select(c => c.CommandId)) };
        }

        var waiters = live.Waiters;
        foreach (var (id, list) in live.Waiters)
        {
            var c = after.FindCommand(id);
            if (c is not null && !c.Status.IsFinal()) continue;
            IAdminReply done = c is null ? new CommandNotFound(id) : new CommandFound(CommandView.From(c, deviceId));
            effects = effects.AddRange(list.Select(w => (DeviceEffect)new Tell(w, done)));
            waiters = waiters.Remove(id);
        }
        live = ForgetEndedHandOvers(live with { Waiters = waiters }, after);

        // An entity holding a key hand-over stays in memory: the key is nowhere else.
        effects = effects.AddRange([new ScheduleDeadline(CommandLifecycle.NextDeadline(after)),
            new IdleTimer(live is { Connection: null, ReattachBy: null, OldWrites: null } && live.HandOvers.IsEmpty)]);
        return new Decision(reply, events, effects, live);
    }

    // Plain loops: these run on report paths.
    private static bool SameGateways(IReadOnlyList<GatewayReport> reported, ImmutableList<GatewayState> known)
    {
        if (reported.Count != known.Count) return false;
        for (var i = 0; i < reported.Count; i++)
        {
            var r = reported[i];
            var k = known[i];
            if (r.GwId != k.GwId || r.GwChannel != k.GwChannel || r.GwAddressV4 != k.GwAddressV4 || r.GwAddressV6 != k.GwAddressV6
                || r.GwInterface != k.GwInterface || r.AuthMode != k.AuthMode) return false;
        }
        return true;
    }

    public static bool SameModes(ReportReply a, ReportReply b)
    {
        var x = a.Gateway ?? [];
        var y = b.Gateway ?? [];
        if (x.Count != y.Count) return false;
        for (var i = 0; i < x.Count; i++)
            if (x[i].GwId != y[i].GwId || x[i].AuthMode != y[i].AuthMode) return false;
        return true;
    }
}
