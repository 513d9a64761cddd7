using System.Collections.Immutable;
using Fleet.Server.Serialization;

namespace Fleet.Server.Devices;

/// <summary>
/// What a DeviceEntity persists: only changes. Heartbeats that change nothing are not events.
/// The command lifecycle's events (Commands/CommandEvents.cs) are device events too.
/// </summary>
public interface IDeviceEvent : IFleetSerializable;

public sealed record DeviceConnected(DateTimeOffset At, string Node) : IDeviceEvent;
public sealed record DeviceDisconnected(DateTimeOffset At) : IDeviceEvent;
public sealed record DeviceInfoReported(DeviceInfoState Info) : IDeviceEvent;
public sealed record GatewaysReported(ImmutableList<GatewayState> Gateways) : IDeviceEvent;
public sealed record DesiredAuthModeSet(string GwId, int AuthMode) : IDeviceEvent;
public sealed record ClientAuthorized(ClientState Client) : IDeviceEvent;
public sealed record ClientRemoved(string ClientMac, string Reason) : IDeviceEvent
{
    public const string KickedOff = "kicked off";
    public const string PassExpired = "pass expired";
    /// <summary>The router answered that it holds no such client (get_client_info, kickoff) or left it out of its list (get_clients).</summary>
    public const string RouterHasNone = "not on the router";
}

/// <summary>
/// The router restarted (a reboot or a firmware upgrade went through): its passes are gone, and its
/// authorised clients too unless <paramref name="KeepAuthorized"/> (firmware that restores its client list
/// from /etc/client_snapshot.json after a reboot). <paramref name="Reason"/>: "reboot" or "firmware upgrade".
/// </summary>
public sealed record ClientsCleared(string Reason, bool KeepAuthorized, DateTimeOffset At) : IDeviceEvent;
/// <summary>The device speaks another protocol dialect than before ("seed", "2025", "9").</summary>
public sealed record ProtocolReported(string Protocol) : IDeviceEvent;
public sealed record FirmwareReported(ImmutableSortedDictionary<string, string> Firmware) : IDeviceEvent;
/// <summary>The device's admission changed: "pending" (enrolled with a fleet key) or "approved", by whom ("fleet key", "device key", "auto-approve", an admin key's name).</summary>
public sealed record AdmissionChanged(string Admission, string By, DateTimeOffset At) : IDeviceEvent;
/// <summary>
/// The device's tags changed: <paramref name="Tags"/> the effective set (derived from device_info by rule, with the
/// operator's own over them), <paramref name="OperatorTags"/> those an operator set.
/// </summary>
public sealed record TagsChanged(ImmutableSortedDictionary<string, string> Tags, ImmutableSortedDictionary<string, string> OperatorTags) : IDeviceEvent;
