using Fleet.Server.Serialization;

namespace Fleet.Server.Devices;

// Device admission as a device entity sees it (docs/SECURITY.md, "Device admission"): what a connection was admitted
// with, approval, key hand-over and revocation. Keys cross nodes in HandOverKey and ApproveDevice only (never
// persisted: the entity keeps a hand-over's key in memory until the router took it).

/// <summary>What the entity records about a socket's admission.</summary>
public enum AdmissionEffect
{
    /// <summary>Open admission: nothing is recorded.</summary>
    None,
    /// <summary>The device is approved (its own key, a fleet key in fleet-key mode, or auto-approve).</summary>
    Approve,
    /// <summary>device-key admission with an enrolment key: the device is pending until an admin approves it.</summary>
    Enrol,
}

/// <summary>
/// What a socket was admitted with, carried by its DeviceConnect: the credential it presented (none, fleet-key,
/// device-key), what the entity records, by whom, and the WebSocket path it connected on (without the query).
/// </summary>
public sealed record AdmissionGrant(string Credential, AdmissionEffect Effect, string? By, string Path);

/// <summary>
/// Hand <see cref="Key"/> to the device's router: a 9.x router gets <c>set_websocket_serv {path: Path?key=Key}</c>
/// as command <see cref="CommandId"/>; once it answers success its connection is dropped and it reconnects with
/// the key. Routers of other protocols cannot be handed a key (the reply says so). Not for a pending device.
/// </summary>
public sealed record HandOverKey(string DeviceId, string Key, string CommandId, string By, int TtlSeconds, int TimeoutSeconds,
    string? Path) : IToDeviceEntity
{
    /// <summary>Never prints the key (dead letters and failure messages print messages).</summary>
    public override string ToString() =>
        $"HandOverKey {{ DeviceId = {DeviceId}, Key = (redacted), CommandId = {CommandId}, By = {By}, TtlSeconds = {TtlSeconds}, TimeoutSeconds = {TimeoutSeconds}, Path = {Path} }}";
}

/// <summary>An admin approves the device; <see cref="HandOver"/> (its new key) goes to the router when it can take it.</summary>
public sealed record ApproveDevice(string DeviceId, string By, HandOverKey? HandOver) : IToDeviceEntity;

/// <summary>The device's keys were revoked: its socket is closed, key hand-overs still queued fail.</summary>
public sealed record RevokeDeviceKeys(string DeviceId) : IToDeviceEntity;

/// <summary>A command or auth-mode change for a device that awaits approval (409).</summary>
public sealed record DevicePending(string DeviceId) : IAdminReply;

/// <summary>The command that carries a key to the router, and where it is (queued or sent).</summary>
public sealed record HandOverView(string CommandId, string Status);

/// <summary>
/// The answer to ApproveDevice or HandOverKey: the device's admission now, its protocol, the hand-over command
/// (null when the key could not be handed over, and <see cref="NotHandedOver"/> says why).
/// </summary>
public sealed record KeyHandedOver(string? Admission, string? Protocol, HandOverView? HandOver, string? NotHandedOver) : IAdminReply;

/// <summary>The answer to RevokeDeviceKeys: whether a socket was closed.</summary>
public sealed record KeysRevoked(bool Closed) : IAdminReply;
