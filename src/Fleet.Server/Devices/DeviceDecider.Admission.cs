using System.Collections.Immutable;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;

namespace Fleet.Server.Devices;

/// <summary>
/// The device entity's admission decisions (docs/SECURITY.md, "Device admission"): what a connection's admission records
/// (pending, approved), approval, handing a key to a 9.x router (set_websocket_serv as a command of its own,
/// the key kept in memory only), revocation, and connections that keep replacing each other (cloned).
/// </summary>
public static partial class DeviceDecider
{
    /// <summary>What stands for the key in a stored hand-over request (the journal never holds a device key).</summary>
    public const string KeyNotStored = "(not-stored)";

    /// <summary>A stored hand-over request: its key was left out (the API refuses '(' in a path, so no request of an admin looks like this).</summary>
    public static bool IsHandOverWithoutKey(IControllerRequest request) =>
        request is SetWebSocketServRequest { Path: { } p } && p.EndsWith("key=" + KeyNotStored, StringComparison.Ordinal);

    /// <summary>The hand-over request as it is stored: the key in its path replaced by <see cref="KeyNotStored"/>.</summary>
    public static SetWebSocketServRequest WithoutKey(SetWebSocketServRequest r)
    {
        var at = r.Path!.LastIndexOf("key=", StringComparison.Ordinal);
        return r with { Path = r.Path[..(at + "key=".Length)] + KeyNotStored };
    }

    /// <summary>The events a connect's admission adds: approve (if not yet), enrol as pending (if neither yet), or nothing.</summary>
    public static ImmutableList<IDeviceEvent> AdmissionEvents(DeviceState state, AdmissionGrant? grant, DateTimeOffset now) => grant switch
    {
        { Effect: AdmissionEffect.Approve } when state.Admission != DeviceState.Approved =>
            [new AdmissionChanged(DeviceState.Approved, grant.By ?? grant.Credential, now)],
        { Effect: AdmissionEffect.Enrol } when state.Admission is null =>
            [new AdmissionChanged(DeviceState.Pending, grant.By ?? grant.Credential, now)],
        _ => [],
    };

    /// <summary>A newer connection replaced the current one: the clone watch moves; an episode's start is a warning and a count.</summary>
    private static (DeviceLive, ImmutableList<DeviceEffect>) OnReplaced(string deviceId, DeviceLive live, ImmutableList<DeviceEffect> effects,
        DateTimeOffset now)
    {
        var (watch, started) = CloneWatch.Replaced(live.Clones, now);
        if (started)
            effects = effects.AddRange([
                new Note($"device {deviceId}: its connections replaced each other {watch.Replacements.Length} times within " +
                         $"{CloneWatch.Window.TotalMinutes:0} min: two routers (a cloned configuration, or a router and an impostor) " +
                         "claim this device_id; flagged cloned", Warning: true),
                new CountCloneEpisode(),
            ]);
        return (live with { Clones = watch }, effects);
    }

    // ------------------------------------------------------------------ admin side

    private static Decision OnApprove(string deviceId, DeviceState state, DeviceLive live, ApproveDevice a, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        var events = state.Admission == DeviceState.Approved
            ? ImmutableList<IDeviceEvent>.Empty
            : [new AdmissionChanged(DeviceState.Approved, a.By, now)];
        HandOverView? view = null;
        string? why = null;
        if (a.HandOver is { } h)
        {
            ImmutableList<IDeviceEvent> handOver;
            (handOver, live, view, why) = QueueHandOver(state.ApplyAll(events), live, h, now);
            events = events.AddRange(handOver);
        }
        return WithHandOverReply(Changed(deviceId, state, live, null, events, NoEffects, null, now), state, view, why);
    }

    private static Decision OnHandOver(string deviceId, DeviceState state, DeviceLive live, HandOverKey h, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        var (events, after, view, why) = QueueHandOver(state, live, h, now);
        return WithHandOverReply(Changed(deviceId, state, after, null, events, NoEffects, null, now), state, view, why);
    }

    /// <summary>The reply to an approval or hand-over, once <see cref="Finish"/> decided whether the hand-over goes out now.</summary>
    private static Decision WithHandOverReply(Decision d, DeviceState before, HandOverView? view, string? why)
    {
        var after = before.ApplyAll(d.Events);
        if (view is not null && d.Events.OfType<CommandSent>().Any(s => s.CommandId == view.CommandId)) view = view with { Status = "sent" };
        return d with { Reply = new KeyHandedOver(after.Admission, after.Protocol, view, why) };
    }

    /// <summary>
    /// Queues set_websocket_serv {path: …?key=…} for a 9.x router: only the path, so the router keeps the host,
    /// port and TLS setting it reached us with (a proxy's address, a port mapping). The command is stored without
    /// the key; the key stays in <see cref="DeviceLive.HandOvers"/>. A queued hand-over of an older key fails.
    /// </summary>
    private static (ImmutableList<IDeviceEvent>, DeviceLive, HandOverView?, string?) QueueHandOver(DeviceState state, DeviceLive live,
        HandOverKey h, DateTimeOffset now)
    {
        if (state.IsPending)
            return ([], live, null, "the device is pending approval: approve it (POST …/approve) to hand it a key");
        if (state.Protocol != OpDialect.DialectName)
            return ([], live, null, $"the router speaks protocol {state.Protocol ?? "unknown"}, which cannot be handed a key " +
                                    "(set_websocket_serv exists from 9.x firmware of 2026-03-17): configure it on the router, " +
                                    "as its WebSocket path with ?key=<key>");
        var path = $"{h.Path ?? live.UpgradePath ?? WebSocketEndpoint.Paths[0]}?key={h.Key}";
        var (queued, problem) = CommandLifecycle.Submit(state, h.CommandId, new SetWebSocketServRequest { Path = path },
            h.TtlSeconds, h.TimeoutSeconds, now);
        if (queued is null) return ([], live, null, problem);
        var superseded = state.Commands.Where(c => c.Status == CommandStatus.Queued && IsHandOverWithoutKey(c.Request)).ToList();
        var events = superseded
            .Select(c => (IDeviceEvent)new CommandCompleted(c.CommandId, CommandStatus.Failed, null, "superseded by a newer key hand-over", now))
            .ToImmutableList()
            .Add(queued with { Request = WithoutKey((SetWebSocketServRequest)queued.Request) });
        live = live with { HandOvers = live.HandOvers.RemoveRange(superseded.Select(c => c.CommandId)).SetItem(h.CommandId, queued.Request) };
        return (events, live, new HandOverView(h.CommandId, "queued"), null);
    }

    private static Decision OnRevokeKeys(string deviceId, DeviceState state, DeviceLive live, DateTimeOffset now)
    {
        if (!state.Exists) return Reply(live, new DeviceNotFound(deviceId));
        var events = state.Commands.Where(c => c.Status == CommandStatus.Queued && IsHandOverWithoutKey(c.Request))
            .Select(c => (IDeviceEvent)new CommandCompleted(c.CommandId, CommandStatus.Failed, null, "the device's keys were revoked", now))
            .ToImmutableList();
        var effects = NoEffects;
        if (live.Connection is { } connection)
            effects = effects.AddRange([
                new Note($"device {deviceId}: its keys were revoked; closing its connection"),
                new Tell(connection, new CloseConnection("the device's keys were revoked")),
            ]);
        live = live with { HandOvers = ImmutableDictionary<string, IControllerRequest>.Empty };
        var reply = new KeysRevoked(live.Connection is not null);
        return events.IsEmpty ? new Decision(reply, events, effects, live) : Finish(deviceId, state, live, reply, events, effects, null, now);
    }

    // ------------------------------------------------------------------ hand-overs in the command flow

    /// <summary>
    /// The router answered a hand-over: on success its connection is dropped (no close frame), so that it
    /// reconnects, 5 s later, on the path that carries its key (the firmware does not reconnect by itself).
    /// </summary>
    private static (ImmutableList<DeviceEffect>, DeviceLive) AfterHandOverAnswer(string deviceId, DeviceLive live, ImmutableList<IDeviceEvent> events)
    {
        var effects = NoEffects;
        foreach (var done in events.OfType<CommandCompleted>())
        {
            if (!live.HandOvers.ContainsKey(done.CommandId)) continue;
            live = live with { HandOvers = live.HandOvers.Remove(done.CommandId) };
            if (done.Status == CommandStatus.Succeeded && live.Connection is { } connection)
                effects = effects.AddRange([
                    new Note($"device {deviceId}: the router took its key (command {done.CommandId}); dropping its connection so that it reconnects with it"),
                    new Tell(connection, new CloseConnection("key handed over: the router reconnects with its own key")),
                ]);
            else if (done.Status != CommandStatus.Succeeded)
                effects = effects.Add(new Note($"device {deviceId}: key hand-over {done.CommandId} {done.Status.ToApi()}: {done.Error}", Warning: true));
        }
        return (effects, live);
    }

    /// <summary>
    /// Hand-overs next in line whose key is gone (the entity restarted since it was queued) fail instead of going
    /// out: sent without its key, the request would point the router at a path no node accepts.
    /// </summary>
    private static (ImmutableList<IDeviceEvent>, DeviceState) FailLostHandOvers(ImmutableList<IDeviceEvent> events, DeviceState after,
        DeviceLive live, DateTimeOffset now)
    {
        while (CommandLifecycle.ToSend(after, now) is [{ } next] && IsHandOverWithoutKey(next.Request) && !live.HandOvers.ContainsKey(next.CommandId))
        {
            var failed = new CommandCompleted(next.CommandId, CommandStatus.Failed, null,
                "the key this hand-over carried was kept in memory only and the device's entity restarted since: " +
                "issue another (POST …/approve or POST …/key)", now);
            events = events.Add(failed);
            after = after.Apply(failed);
        }
        return (events, after);
    }

    /// <summary>Keys of hand-overs that ended (any way) are forgotten.</summary>
    private static DeviceLive ForgetEndedHandOvers(DeviceLive live, DeviceState after)
    {
        if (live.HandOvers.IsEmpty) return live;
        var ended = live.HandOvers.Keys.Where(id => after.FindCommand(id) is not { } c || c.Status.IsFinal()).ToList();
        return ended.Count == 0 ? live : live with { HandOvers = live.HandOvers.RemoveRange(ended) };
    }
}
