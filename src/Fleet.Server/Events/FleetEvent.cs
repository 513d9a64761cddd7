using System.Collections.Frozen;
using Fleet.Server.Alerts;
using Fleet.Server.Commands;
using Fleet.Server.Devices;
using Fleet.Server.Serialization;

namespace Fleet.Server.Events;

/// <summary>
/// Something an operator may want to see as it happens (docs/ADMIN_API.md, "Event stream"): published on the
/// cluster's "fleet-events" topic by whichever node it happened on, read by every node's SSE subscribers and the
/// alert manager. Fields that do not apply to a type are null (and left out of the JSON).
/// </summary>
public sealed record FleetEvent(string Type, DateTimeOffset At, string? DeviceId,
    string? Node = null, string? Protocol = null, string? Reason = null,
    string? CommandId = null, string? CommandType = null, string? Status = null, string? Error = null,
    string? Detail = null, AlertView? Alert = null, string? JobId = null) : IFleetSerializable
{
    public const string DeviceOnline = "device.online";
    public const string DeviceOffline = "device.offline";
    public const string CommandStatusChanged = "command.status";
    public const string FrameRefused = "frame.refused";
    public const string DeviceCloned = "device.cloned";
    public const string AlertOpened = "alert.opened";
    public const string AlertResolved = "alert.resolved";
    /// <summary>A job or rollout changed status (running, paused, awaiting_approval, completed, cancelled, aborted) or stage.</summary>
    public const string JobStatusChanged = "job.status";

    public static readonly FrozenSet<string> Types =
        new[] { DeviceOnline, DeviceOffline, CommandStatusChanged, FrameRefused, DeviceCloned, AlertOpened, AlertResolved, JobStatusChanged }.ToFrozenSet();

    /// <summary>The events a device entity's persisted change means for operators (none for most).</summary>
    public static FleetEvent? Of(string deviceId, IDeviceEvent e, DeviceState after, DateTimeOffset now) => e switch
    {
        DeviceConnected c => new(DeviceOnline, c.At, deviceId, Node: c.Node, Protocol: after.Protocol),
        DeviceDisconnected d => new(DeviceOffline, d.At, deviceId, Node: after.Node),
        CommandQueued q => Command(deviceId, after, q.CommandId, q.At),
        CommandSent s => Command(deviceId, after, s.CommandId, s.At),
        CommandRequeued r => Command(deviceId, after, r.CommandId, now),
        CommandCompleted c => Command(deviceId, after, c.CommandId, c.At),
        _ => null,
    };

    private static FleetEvent? Command(string deviceId, DeviceState after, string commandId, DateTimeOffset at) =>
        after.FindCommand(commandId) is { } c
            ? new(CommandStatusChanged, at, deviceId, CommandId: commandId, CommandType: c.Type, Status: c.Status.ToApi(), Error: c.Error)
            : null;
}
