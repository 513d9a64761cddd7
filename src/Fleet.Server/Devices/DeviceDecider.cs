using System.Collections.Immutable;
using Akka.Actor;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;

namespace Fleet.Server.Devices;

/// <summary>
/// What a device entity holds in memory only: the socket it talks through and what it told it, when the
/// device was last seen, its latest mode and system figures, commands handed to the socket whose write
/// is unconfirmed, and who waits for which command. A value (a struct: no object per heartbeat).
/// </summary>
public readonly record struct DeviceLive
{
    private readonly ImmutableHashSet<string>? _unconfirmed;
    private readonly ImmutableDictionary<string, ImmutableList<IActorRef>>? _waiters;

    /// <summary>The device's current connection, or null while it is offline.</summary>
    public IActorRef? Connection { get; init; }
    /// <summary>The reply the current connection last got from us (it answers unchanged heartbeats with it).</summary>
    public ReportReply? Told { get; init; }
    public DateTimeOffset? LastSeen { get; init; }
    public int? Mode { get; init; }
    public SystemFigures? Figures { get; init; }

    /// <summary>
    /// Commands handed to the current connection whose write it has not confirmed yet. If that connection
    /// goes away first (its node died: no FrameNotWritten will ever come), they are queued again.
    /// </summary>
    public ImmutableHashSet<string> Unconfirmed { get => _unconfirmed ?? []; init => _unconfirmed = value; }

    /// <summary>Admin requests waiting for a command to end (?wait=).</summary>
    public ImmutableDictionary<string, ImmutableList<IActorRef>> Waiters
    {
        get => _waiters ?? ImmutableDictionary<string, ImmutableList<IActorRef>>.Empty;
        init => _waiters = value;
    }
}

/// <summary>What the entity does after its events are persisted, in order.</summary>
public abstract record DeviceEffect;
/// <summary>Send a message: to the device's connection, or to an admin request waiting for a command.</summary>
public sealed record Tell(IActorRef To, object Message) : DeviceEffect;
public sealed record Watch(IActorRef Connection) : DeviceEffect;
public sealed record Unwatch(IActorRef Connection) : DeviceEffect;
/// <summary>The sender of the message waits for this command to end (<see cref="DeviceLive.Waiters"/>).</summary>
public sealed record AddWaiter(string CommandId) : DeviceEffect;
/// <summary>Wake the entity at this time (or never) to apply deadlines.</summary>
public sealed record ScheduleDeadline(DateTimeOffset? At) : DeviceEffect;
/// <summary>Whether the entity may passivate after being idle for a while (only while offline).</summary>
public sealed record IdleTimer(bool On) : DeviceEffect;
public sealed record Passivate : DeviceEffect;
public sealed record Note(string Text, bool Warning = false) : DeviceEffect;

/// <summary>The one result shape of <see cref="DeviceDecider.Decide"/>: reply after persist, events to persist, effects to perform, memory to keep.</summary>
public sealed record Decision(IAdminReply? Reply, ImmutableList<IDeviceEvent> Events, ImmutableList<DeviceEffect> Effects, DeviceLive Live);

// The entity's own inputs besides the messages routed to it (never leave the process).
public sealed class DeadlineReached : INotInfluenceReceiveTimeout
{
    public static readonly DeadlineReached Instance = new();
}
public sealed record Recovered(bool WasOnline);
public sealed record ConnectionLost(IActorRef Connection);
public sealed class IdleTimeout
{
    public static readonly IdleTimeout Instance = new();
}

/// <summary>
/// Every decision of a device entity, as one pure function: (state, memory, input, now) → decision.
/// The actor only persists the events, applies them, replies and performs the effects.
/// </summary>
public static class DeviceDecider
{
    private static readonly ImmutableList<DeviceEffect> NoEffects = [];

    public static Decision Decide(string deviceId, DeviceState state, DeviceLive live, object input, DateTimeOffset now) => input switch
    {
        DeviceConnect c => OnConnect(deviceId, state, live, c, now),
        DeviceHeartbeat h => OnHeartbeat(deviceId, state, live, h, now),
        AnswerReceived a => OnAnswer(deviceId, state, live with { LastSeen = now }, a.Answer, now),
        ConnectionClosed c => OnConnectionGone(deviceId, state, live, c.Connection, now),
        ConnectionLost c => OnConnectionGone(deviceId, state, live, c.Connection, now),
        FrameWritten w => Changed(deviceId, state, live with { Unconfirmed = live.Unconfirmed.Remove(w.CommandId) }, null,
            CommandLifecycle.OnWritten(state, w.CommandId, w.AnswerExpected, now), NoEffects, null, now),
        FrameNotWritten w => Changed(deviceId, state, live with { Unconfirmed = live.Unconfirmed.Remove(w.CommandId) }, null,
            state.FindCommand(w.CommandId) is { Status: CommandStatus.Sent } ? [new CommandRequeued(w.CommandId)] : [], NoEffects, null, now),
        DeadlineReached => Changed(deviceId, state, live, null, CommandLifecycle.OnTick(state, now), NoEffects, null, now),
        Recovered r => Finish(deviceId, state, live, null,
            r.WasOnline && live.Connection is null ? [new DeviceDisconnected(now)] : [], NoEffects, null, now),
        IdleTimeout => new Decision(null, [], live.Connection is null && live.Waiters.IsEmpty ? [new Passivate()] : NoEffects, live),

        GetDevice => Reply(live, state.Exists ? new DeviceFound(DeviceView.From(state, deviceId, live)) : new DeviceNotFound(deviceId)),
        SetDesiredAuthMode m => OnSetAuthMode(deviceId, state, live, m, now),
        SubmitCommand s => OnSubmit(deviceId, state, live, s, now),
        GetCommands => Reply(live, state.Exists
            ? new CommandList(state.Commands.Reverse().Select(c => CommandView.From(c, deviceId)).ToList())
            : new DeviceNotFound(deviceId)),
        GetCommand g => Reply(live, !state.Exists ? new DeviceNotFound(deviceId)
            : state.FindCommand(g.CommandId) is { } found ? new CommandFound(CommandView.From(found, deviceId))
            : new CommandNotFound(g.CommandId)),
        AwaitCommand a => OnAwait(deviceId, state, live, a),
        CancelCommand c => OnCancel(deviceId, state, live, c, now),
        _ => throw new ArgumentException($"a device entity has no decision for {input.GetType().Name}", nameof(input)),
    };

    /// <summary>The reply to a report: every reported gateway with the desired auth_mode where one is set.</summary>
    public static ReportReply ReplyFor(DeviceState state)
    {
        var gateways = new GatewayAuthMode[state.Gateways.Count];
        for (var i = 0; i < gateways.Length; i++)
        {
            var g = state.Gateways[i];
            gateways[i] = new GatewayAuthMode { GwId = g.GwId, AuthMode = state.DesiredAuthModes.TryGetValue(g.GwId, out var d) ? d : g.AuthMode ?? 0 };
        }
        return new ReportReply { Gateway = gateways };
    }

    /// <summary>Events for a connect or heartbeat: the connection (when new) and whatever it reports differently.</summary>
    public static ImmutableList<IDeviceEvent> ReportEvents(DeviceState state, DeviceReport report, bool newConnection,
        DateTimeOffset now, string node)
    {
        var events = ImmutableList<IDeviceEvent>.Empty;
        if (newConnection) events = events.Add(new DeviceConnected(now, node));
        if (report.DeviceInfo is { } info
            && new DeviceInfoState(info.ApDeviceId, info.ApMacAddress, info.ApLongitude, info.ApLatitude, info.LocationId) is var i
            && i != state.Info)
            events = events.Add(new DeviceInfoReported(i));
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
                effects = effects.AddRange([
                    new Note($"device {deviceId}: a newer connection replaces {old.Path}"),
                    new Unwatch(old),
                    new Tell(old, new CloseConnection("replaced by a newer connection for the same device")),
                ]);
            (events, effects) = Requeue(deviceId, state, live, events, effects);
            live = live with { Unconfirmed = [] };
        }
        live = Seen(live with { Connection = c.Connection, Told = null }, c.Report, now);
        effects = effects.Add(new Watch(c.Connection));
        events = events.AddRange(ReportEvents(state, c.Report, newConnection: true, now, c.Node));
        return Finish(deviceId, state, live, null, events, effects, c.Connection, now);
    }

    private static Decision OnHeartbeat(string deviceId, DeviceState state, DeviceLive live, DeviceHeartbeat h, DateTimeOffset now)
    {
        var adopt = live.Connection is null; // the entity restarted or moved while the socket stayed up
        var effects = NoEffects;
        if (adopt)
        {
            live = live with { Connection = h.Connection, Told = null };
            effects = effects.Add(new Watch(h.Connection));
        }
        live = Seen(live, h.Report, now);
        var events = ReportEvents(state, h.Report, adopt, now, h.Node);
        if (!events.IsEmpty) return Finish(deviceId, state, live, null, events, effects, h.Connection, now);
        // Nothing changed. Adopting a connection always answers: it may hold no reply of ours yet.
        if (!h.ReplyWanted && !adopt) return new Decision(null, [], effects, live);
        var reply = ReplyFor(state);
        if (h.Connection.Equals(live.Connection)) live = live with { Told = reply };
        return new Decision(null, [], effects.Add(new Tell(h.Connection, new ReplyToReport(deviceId, reply))), live);
    }

    /// <summary>Last seen now; mode and figures kept, a new object only when they changed.</summary>
    private static DeviceLive Seen(DeviceLive live, DeviceReport report, DateTimeOffset now) => live with
    {
        LastSeen = now,
        Mode = report.Mode,
        Figures = !report.HasFigures ? null
            : live.Figures is { } f && report.SameFigures(f) ? f : report.Figures(),
    };

    private static Decision OnAnswer(string deviceId, DeviceState state, DeviceLive live, DeviceAnswer answer, DateTimeOffset now)
    {
        var (events, dropped) = CommandLifecycle.OnAnswer(state, answer, now);
        return dropped is not null
            ? new Decision(null, [], [new Note($"device {deviceId}: {answer.Type} dropped: {dropped}")], live)
            : Changed(deviceId, state, live, null, events, NoEffects, null, now);
    }

    private static Decision OnConnectionGone(string deviceId, DeviceState state, DeviceLive live, IActorRef connection, DateTimeOffset now)
    {
        if (!connection.Equals(live.Connection)) return new Decision(null, [], NoEffects, live);
        var (events, effects) = Requeue(deviceId, state, live, [], [new Unwatch(connection)]);
        live = live with { Connection = null, Told = null, Unconfirmed = [] };
        return Finish(deviceId, state, live, null, events.Add(new DeviceDisconnected(now)), effects, null, now);
    }

    /// <summary>Sent commands whose frame the outgoing connection never confirmed writing go back to the queue.</summary>
    private static (ImmutableList<IDeviceEvent>, ImmutableList<DeviceEffect>) Requeue(string deviceId, DeviceState state, DeviceLive live,
        ImmutableList<IDeviceEvent> events, ImmutableList<DeviceEffect> effects)
    {
        var requeued = live.Unconfirmed.Where(id => state.FindCommand(id) is { Status: CommandStatus.Sent })
            .Select(id => (IDeviceEvent)new CommandRequeued(id)).ToList();
        if (requeued.Count == 0) return (events, effects);
        return (events.AddRange(requeued), effects.Add(new Note(
            $"device {deviceId}: {requeued.Count} command(s) never confirmed written by the old connection, queued again")));
    }

    // ------------------------------------------------------------------ admin side

    private static Decision OnSetAuthMode(string deviceId, DeviceState state, DeviceLive live, SetDesiredAuthMode m, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        if (state.FindGateway(m.GwId) is null) return Reply(live, new GatewayNotFound(deviceId, m.GwId));
        var events = ImmutableList.Create<IDeviceEvent>(new DesiredAuthModeSet(m.GwId, m.AuthMode));
        var after = state.ApplyAll(events);
        return Changed(deviceId, state, live, new GatewayUpdated(GatewayView.From(after.FindGateway(m.GwId)!, after)), events, NoEffects, null, now);
    }

    private static Decision OnSubmit(string deviceId, DeviceState state, DeviceLive live, SubmitCommand s, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        if (s.Problem is not null || s.Request is null) return Reply(live, new CommandInvalid(s.Problem ?? "no request"));
        var (queued, problem) = CommandLifecycle.Submit(state, s.CommandId, s.Request, s.TtlSeconds, s.TimeoutSeconds, now);
        if (queued is null) return Reply(live, new CommandInvalid(problem!));
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

    /// <summary>Finishes a decision that may or may not have changed anything (nothing changed: nothing follows).</summary>
    private static Decision Changed(string deviceId, DeviceState state, DeviceLive live, IAdminReply? reply,
        ImmutableList<IDeviceEvent> events, ImmutableList<DeviceEffect> effects, IActorRef? reportFrom, DateTimeOffset now) =>
        events.IsEmpty ? new Decision(reply, events, effects, live) : Finish(deviceId, state, live, reply, events, effects, reportFrom, now);

    /// <summary>
    /// What follows any change: answer the report that is waiting (or push a changed reply to the
    /// connection), send the commands that can go now, wake the waiters whose command ended, and
    /// reschedule the deadline and idle timers.
    /// </summary>
    private static Decision Finish(string deviceId, DeviceState state, DeviceLive live, IAdminReply? reply,
        ImmutableList<IDeviceEvent> events, ImmutableList<DeviceEffect> effects, IActorRef? reportFrom, DateTimeOffset now)
    {
        var after = state.ApplyAll(events);
        var answer = ReplyFor(after);
        if (reportFrom is not null)
        {
            effects = effects.Add(new Tell(reportFrom, new ReplyToReport(deviceId, answer)));
            if (reportFrom.Equals(live.Connection)) live = live with { Told = answer };
        }
        else if (live is { Connection: { } current, Told: { } told } && !SameModes(told, answer))
        {
            effects = effects.Add(new Tell(current, new AuthModesChanged(deviceId, answer)));
            live = live with { Told = answer };
        }

        if (live.Connection is { } connection && CommandLifecycle.ToSend(after, now) is { Count: > 0 } toSend)
        {
            var sent = toSend.Select(c => (IDeviceEvent)new CommandSent(c.CommandId, now)).ToList();
            events = events.AddRange(sent);
            after = after.ApplyAll(sent);
            effects = effects.AddRange(toSend.Select(c => (DeviceEffect)new Tell(connection, new DeliverRequest(deviceId, c.Request))));
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
        live = live with { Waiters = waiters };

        effects = effects.AddRange([new ScheduleDeadline(CommandLifecycle.NextDeadline(after)), new IdleTimer(live.Connection is null)]);
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
