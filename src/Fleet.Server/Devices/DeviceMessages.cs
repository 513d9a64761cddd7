using System.Text.Json.Serialization;
using Akka.Actor;
using Fleet.Protocol;
using Fleet.Server.Serialization;

namespace Fleet.Server.Devices;

/// <summary>Every message routed to a device entity carries its device id; the shard extractor reads it.</summary>
public interface IToDeviceEntity : IFleetSerializable
{
    string DeviceId { get; }
}

// ---- from a DeviceConnection (may cross nodes)

/// <summary>A socket bound itself to this device with a connect frame.</summary>
public sealed record DeviceConnect(string DeviceId, ConnectMessage Message, IActorRef Connection, string Node) : IToDeviceEntity;
/// <summary>
/// A heartbeat frame; also re-attaches a connection the entity forgot (restart, rebalance).
/// ReplyWanted is false when the connection already answered it from the entity's last reply
/// (nothing reported changed); the entity then only notes the device was seen.
/// </summary>
public sealed record DeviceHeartbeat(string DeviceId, HeartbeatMessage Message, IActorRef Connection, string Node,
    bool ReplyWanted = true) : IToDeviceEntity;
/// <summary>An answer frame, as the device sent it.</summary>
public sealed record AnswerReceived(string DeviceId, string Json, IActorRef Connection) : IToDeviceEntity;
public sealed record ConnectionClosed(string DeviceId, IActorRef Connection) : IToDeviceEntity;
public sealed record FrameWritten(string DeviceId, string CommandId) : IToDeviceEntity;
public sealed record FrameNotWritten(string DeviceId, string CommandId) : IToDeviceEntity;

// ---- to a DeviceConnection

/// <summary>
/// A frame for the device; CommandId set when the entity wants to hear it was written. ReportReply
/// marks the entity's current heartbeat answer, which the connection keeps to answer unchanged heartbeats.
/// </summary>
public sealed record SendFrame(string DeviceId, byte[] Frame, string? CommandId, bool ReportReply = false) : IFleetSerializable;
/// <summary>Close the socket (a newer connection replaced it).</summary>
public sealed record CloseConnection(string Reason) : IFleetSerializable;

// ---- from the admin API

public sealed record GetDevice(string DeviceId) : IToDeviceEntity;
public sealed record SetDesiredAuthMode(string DeviceId, string GwId, int AuthMode) : IToDeviceEntity;
/// <summary>Either RequestJson (already decoded and checked at the edge) or Problem (why it could not be).</summary>
public sealed record SubmitCommand(string DeviceId, string? RequestJson, string? Problem, int TtlSeconds, int TimeoutSeconds) : IToDeviceEntity;
public sealed record GetCommands(string DeviceId) : IToDeviceEntity;
public sealed record GetCommand(string DeviceId, string CommandId) : IToDeviceEntity;
public sealed record CancelCommand(string DeviceId, string CommandId) : IToDeviceEntity;
/// <summary>Replies with the command view once it is final (or now, if it already is).</summary>
public sealed record AwaitCommand(string DeviceId, string CommandId) : IToDeviceEntity;

// ---- replies (explicit results; the HTTP layer maps them to status codes)

public interface IAdminReply : IFleetSerializable;
public sealed record DeviceNotFound(string DeviceId) : IAdminReply;
public sealed record DeviceFound(DeviceView View) : IAdminReply;
public sealed record GatewayNotFound(string DeviceId, string GwId) : IAdminReply;
public sealed record GatewayUpdated(GatewayView View) : IAdminReply;
public sealed record CommandInvalid(string Problem) : IAdminReply;
public sealed record CommandNotFound(string CommandId) : IAdminReply;
public sealed record CommandConflict(string Problem, CommandView View) : IAdminReply;
public sealed record CommandFound(CommandView View) : IAdminReply;
public sealed record CommandList(IReadOnlyList<CommandView> Items) : IAdminReply;

// ---- views (the admin API's JSON, snake_case)

public sealed record DeviceView(
    string DeviceId, bool Online, DateTimeOffset? ConnectedAt, DateTimeOffset? LastSeen, string? Node,
    DeviceInfoView? DeviceInfo, IReadOnlyList<GatewayView> Gateways, IReadOnlyList<ClientView> Clients,
    IReadOnlyDictionary<string, string> Firmware, int? Mode, SystemFigures? System);

public sealed record DeviceInfoView(string? ApDeviceId, string? ApMacAddress, string? ApLongitude, string? ApLatitude, string? LocationId);

public sealed record GatewayView(
    string GwId, string? GwChannel,
    [property: JsonPropertyName("gw_address_v4")] string? GwAddressV4,
    [property: JsonPropertyName("gw_address_v6")] string? GwAddressV6,
    string? GwInterface, int? AuthMode, int? DesiredAuthMode);

public sealed record ClientView(string ClientMac, string? ClientIp, string? ClientName, string? GwId, DateTimeOffset AuthorizedAt, DateTimeOffset? ExpiresAt);

public sealed record CommandView(
    string CommandId, string DeviceId, string Type, string Status,
    System.Text.Json.JsonElement Request, System.Text.Json.JsonElement? Response, string? Error,
    DateTimeOffset CreatedAt, DateTimeOffset? SentAt, DateTimeOffset? CompletedAt, DateTimeOffset ExpiresAt);

public static class Views
{
    public static GatewayView Of(GatewayState g, DeviceState s) =>
        new(g.GwId, g.GwChannel, g.GwAddressV4, g.GwAddressV6, g.GwInterface, g.AuthMode,
            s.DesiredAuthModes.TryGetValue(g.GwId, out var d) ? d : null);

    public static CommandView Of(CommandRecord c, string deviceId) =>
        new(c.CommandId, deviceId, c.Type, c.Status.ToApi(), Parse(c.RequestJson)!.Value, Parse(c.ResponseJson), c.Error,
            c.CreatedAt, c.SentAt, c.CompletedAt, c.ExpiresAt);

    private static System.Text.Json.JsonElement? Parse(string? json) =>
        json is null ? null : System.Text.Json.JsonDocument.Parse(json).RootElement.Clone();

    public static DeviceView Of(DeviceState s, string deviceId, DateTimeOffset? lastSeen, int? mode, SystemFigures? figures) =>
        new(deviceId, s.Online, s.ConnectedAt, lastSeen ?? (s.Online ? s.ConnectedAt : s.DisconnectedAt), s.Node,
            s.Info is { } i ? new DeviceInfoView(i.ApDeviceId, i.ApMacAddress, i.ApLongitude, i.ApLatitude, i.LocationId) : null,
            s.Gateways.Select(g => Of(g, s)).ToList(),
            s.Clients.Values.Select(c => new ClientView(c.ClientMac, c.ClientIp, c.ClientName, c.GwId, c.AuthorizedAt, c.ExpiresAt)).ToList(),
            s.Firmware, mode, figures);
}
