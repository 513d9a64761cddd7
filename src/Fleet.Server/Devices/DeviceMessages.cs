using Akka.Actor;
using Fleet.Protocol;
using Fleet.Server.Serialization;

namespace Fleet.Server.Devices;

/// <summary>Every message routed to a device entity carries its device id; the shard extractor reads it.</summary>
public interface IToDeviceEntity : IFleetSerializable
{
    string DeviceId { get; }
}

/// <summary>What a device entity answers the admin API (explicit results; the HTTP layer maps them to status codes).</summary>
public interface IAdminReply : IFleetSerializable;

// ---- from a DeviceConnection (may cross nodes); reports and answers are decoded once, in the connection

/// <summary>
/// A socket bound itself to this device with a connect frame. Protocol: "seed", "2025" or "9" (what the device speaks).
/// Admission: what the socket was admitted with (null: made before admission existed, or by a test).
/// </summary>
public sealed record DeviceConnect(string DeviceId, ConnectMessage Report, IActorRef Connection, string Node,
    string Protocol = TypeDialect.SeedName, AdmissionGrant? Admission = null) : IToDeviceEntity;
/// <summary>
/// A heartbeat frame; also re-attaches a connection the entity forgot (restart, rebalance).
/// ReplyWanted is false when the connection already answered it from the entity's last reply
/// (nothing reported changed); the entity then only notes the device was seen.
/// </summary>
public sealed record DeviceHeartbeat(string DeviceId, HeartbeatMessage Report, IActorRef Connection, string Node,
    bool ReplyWanted = true, string Protocol = TypeDialect.SeedName) : IToDeviceEntity;
/// <summary>The device answered one of our requests.</summary>
public sealed record AnswerReceived(string DeviceId, DeviceAnswer Answer, IActorRef Connection) : IToDeviceEntity;
public sealed record ConnectionClosed(string DeviceId, IActorRef Connection) : IToDeviceEntity;
// Write confirmations name the connection that wrote (or did not write) the frame: the entity takes them only from its
// current connection. A replaced connection keeps draining for a moment, and its late word on a command that has
// since gone to the newer connection must neither queue it a second time nor call it delivered.

/// <summary>A command's frame reached the socket; AnswerExpected says whether the device's dialect answers it.</summary>
public sealed record FrameWritten(string DeviceId, string CommandId, bool AnswerExpected, IActorRef? Connection) : IToDeviceEntity;
/// <summary>A command's frame could not be written: its socket is failing (Connection says which).</summary>
public sealed record FrameNotWritten(string DeviceId, string CommandId, IActorRef Connection) : IToDeviceEntity;
/// <summary>
/// The connection is closing (its node is stopping): it writes nothing more; what it had queued comes back as
/// <see cref="FrameNotWritten"/>. Sent before the answer it still waits for, so the entity sends nothing more to it.
/// </summary>
public sealed record ConnectionDraining(string DeviceId, IActorRef Connection) : IToDeviceEntity;
/// <summary>The connection held a command's frame until its deadline without the device being ready for it: not written.</summary>
public sealed record FrameExpired(string DeviceId, string CommandId, IActorRef? Connection) : IToDeviceEntity;
/// <summary>A command's frame would be more than the device's reader can take: it was not written.</summary>
public sealed record FrameTooLarge(string DeviceId, string CommandId, int Bytes, IActorRef? Connection) : IToDeviceEntity;

// ---- from the admin API

public sealed record GetDevice(string DeviceId) : IToDeviceEntity;
public sealed record SetDesiredAuthMode(string DeviceId, string GwId, int AuthMode) : IToDeviceEntity;
/// <summary>Replaces the operator's tags (the effective set is recomputed with the derived ones).</summary>
public sealed record SetTags(string DeviceId, System.Collections.Immutable.ImmutableSortedDictionary<string, string> Tags) : IToDeviceEntity;

public sealed record DeviceNotFound(string DeviceId) : IAdminReply;
public sealed record DeviceFound(DeviceView View) : IAdminReply;
public sealed record GatewayNotFound(string DeviceId, string GwId) : IAdminReply;
public sealed record GatewayUpdated(GatewayView View) : IAdminReply;
public sealed record TagsUpdated(string DeviceId, System.Collections.Immutable.ImmutableSortedDictionary<string, string> Tags,
    System.Collections.Immutable.ImmutableSortedDictionary<string, string> OperatorTags) : IAdminReply;
