using System.Collections.Immutable;
using Fleet.Server.Serialization;

namespace Fleet.Server.Devices;

/// <summary>
/// What a DeviceEntity persists: only changes. Heartbeats that change nothing are not events.
/// Requests and answers are kept as the JSON that went over the wire, so the journal needs no
/// knowledge of protocol record shapes.
/// </summary>
public interface IDeviceEvent : IFleetSerializable;

public sealed record DeviceConnected(DateTimeOffset At, string Node) : IDeviceEvent;
public sealed record DeviceDisconnected(DateTimeOffset At) : IDeviceEvent;
public sealed record DeviceInfoReported(DeviceInfoState Info) : IDeviceEvent;
public sealed record GatewaysReported(ImmutableList<GatewayState> Gateways) : IDeviceEvent;
public sealed record DesiredAuthModeSet(string GwId, int AuthMode) : IDeviceEvent;
public sealed record ClientAuthorized(ClientState Client) : IDeviceEvent;
public sealed record ClientRemoved(string ClientMac, string Reason) : IDeviceEvent;
public sealed record FirmwareReported(ImmutableSortedDictionary<string, string> Firmware) : IDeviceEvent;

public sealed record CommandQueued(string CommandId, string Type, string RequestJson, DateTimeOffset At,
    DateTimeOffset ExpiresAt, int TimeoutSeconds) : IDeviceEvent;
public sealed record CommandSent(string CommandId, DateTimeOffset At) : IDeviceEvent;
/// <summary>The frame could not be written (the socket went away): back to the queue.</summary>
public sealed record CommandRequeued(string CommandId) : IDeviceEvent;
public sealed record CommandCompleted(string CommandId, CommandStatus Status, string? ResponseJson, string? Error,
    DateTimeOffset At) : IDeviceEvent;
