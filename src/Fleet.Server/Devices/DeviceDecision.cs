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
    private readonly ImmutableDictionary<string, IControllerRequest>? _handOvers;

    /// <summary>The device's current connection, or null while it is offline.</summary>
    public IActorRef? Connection { get; init; }
    /// <summary>The current connection failed to write a frame: it is ending, nothing more goes to it.</summary>
    public bool ConnectionFailing { get; init; }
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

    /// <summary>The credential the current connection was admitted with (none, fleet-key, device-key); null while offline or unknown.</summary>
    public string? Credential { get; init; }
    /// <summary>The WebSocket path the current (or last) connection came on, without its query: where a hand-over points the router.</summary>
    public string? UpgradePath { get; init; }
    /// <summary>Connections of this device replacing each other (null until the first replacement).</summary>
    public CloneWatch? Clones { get; init; }

    /// <summary>
    /// Key hand-overs (set_websocket_serv) by command id: the request as it goes to the router, key included. The
    /// persisted command holds the request with the key left out; a hand-over whose key is no longer here (the
    /// entity restarted) fails instead of going out.
    /// </summary>
    public ImmutableDictionary<string, IControllerRequest> HandOvers
    {
        get => _handOvers ?? ImmutableDictionary<string, IControllerRequest>.Empty;
        init => _handOvers = value;
    }

    /// <summary>
    /// Recovered while the device was online and the node holding its socket is live: until this time the entity waits
    /// for that socket to report before calling the device offline. Null otherwise.
    /// </summary>
    public DateTimeOffset? ReattachBy { get; init; }

    /// <summary>
    /// Frames an ended or replaced connection held unconfirmed: their commands stay sent until it says whether it wrote
    /// them, or until its time is up (then they are queued again). Null when none is owed.
    /// </summary>
    public OldWrites? OldWrites { get; init; }

    /// <summary>
    /// The shard asked this entity to stop (a handoff or passivation) while <see cref="OldWrites"/> was owed: it stops
    /// once that word has come or its time is up — stopped before, the commands would stay sent in the journal with no
    /// one left to queue them again.
    /// </summary>
    public bool StopWanted { get; init; }

    /// <summary>Admin requests waiting for a command to end (?wait=).</summary>
    public ImmutableDictionary<string, ImmutableList<IActorRef>> Waiters
    {
        get => _waiters ?? ImmutableDictionary<string, ImmutableList<IActorRef>>.Empty;
        init => _waiters = value;
    }
}

/// <summary>What an ended or replaced connection still owes word on: the commands whose frames it held, and until when.</summary>
public sealed record OldWrites(IActorRef Connection, ImmutableHashSet<string> Ids, DateTimeOffset Until);

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
/// <summary>Stop now (the shard asked, see <see cref="StopDevice"/>).</summary>
public sealed record Stop : DeviceEffect;
/// <summary>Queue again at this time what an ended or replaced connection has not said it wrote (<see cref="DeviceLive.OldWrites"/>).</summary>
public sealed record ScheduleOldWrites(DateTimeOffset Until) : DeviceEffect;
/// <summary>Give up waiting for the recovered device's socket to report at this time (<see cref="DeviceLive.ReattachBy"/>).</summary>
public sealed record ScheduleReattach(DateTimeOffset By) : DeviceEffect;
public sealed record Note(string Text, bool Warning = false) : DeviceEffect;
/// <summary>Count an episode of connections replacing each other (a cloned device_id) in this node's figures.</summary>
public sealed record CountCloneEpisode : DeviceEffect;

/// <summary>The one result shape of <see cref="DeviceDecider.Decide"/>: reply after persist, events to persist, effects to perform, memory to keep.</summary>
public sealed record Decision(IAdminReply? Reply, ImmutableList<IDeviceEvent> Events, ImmutableList<DeviceEffect> Effects, DeviceLive Live);

// The entity's own inputs besides the messages routed to it (never leave the process).
public sealed class DeadlineReached : INotInfluenceReceiveTimeout
{
    public static readonly DeadlineReached Instance = new();
}
/// <summary>Recovery ended. ReattachBy: the device was online and its socket's node is live; wait for that socket until then.</summary>
public sealed record Recovered(bool WasOnline, DateTimeOffset? ReattachBy = null);
public sealed class OldWritesOverdue : INotInfluenceReceiveTimeout
{
    public static readonly OldWritesOverdue Instance = new();
}
public sealed class ReattachOverdue : INotInfluenceReceiveTimeout
{
    public static readonly ReattachOverdue Instance = new();
}

/// <summary>
/// How the shard stops a device entity, for a handoff (sharding's HandOffStopMessage) and for passivation. An ordinary
/// message, unlike a PoisonPill: the entity handles it after its pending writes, so nothing it accepted is lost.
/// </summary>
public sealed class StopDevice
{
    public static readonly StopDevice Instance = new();
}
public sealed record ConnectionLost(IActorRef Connection);
public sealed class IdleTimeout
{
    public static readonly IdleTimeout Instance = new();
}
