using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fleet.Protocol;

/// <summary>Any frame of the WiFiDogX protocol. <see cref="Type"/> is the wire "type".</summary>
public interface IWireMessage
{
    string Type { get; }
}

/// <summary>A frame a device sends to the controller.</summary>
public interface IDeviceFrame : IWireMessage;

/// <summary>A frame the controller sends to a device.</summary>
public interface IControllerFrame : IWireMessage;

/// <summary>A device's answer to a request; upstream firmware echoes the request's req_id.</summary>
public interface IAnswerFrame : IDeviceFrame
{
    ReqId? ReqId { get; }
    /// <summary>The device's error text when this is an error answer, else null.</summary>
    string? ErrorText { get; }
}

/// <summary>A request from the controller to a device.</summary>
public interface IControllerRequest : IControllerFrame
{
    ReqId? ReqId { get; init; }
}

// ---------------------------------------------------------------- shared shapes

public sealed record DeviceInfo
{
    [JsonPropertyName("ap_device_id")] public string? ApDeviceId { get; init; }
    [JsonPropertyName("ap_mac_address")] public string? ApMacAddress { get; init; }
    [JsonPropertyName("ap_longitude")] public string? ApLongitude { get; init; }
    [JsonPropertyName("ap_latitude")] public string? ApLatitude { get; init; }
    [JsonPropertyName("location_id")] public string? LocationId { get; init; }
}

public sealed record GatewayReport
{
    [JsonPropertyName("gw_id")] public string? GwId { get; init; }
    [JsonPropertyName("gw_channel")] public string? GwChannel { get; init; }
    [JsonPropertyName("gw_address_v4")] public string? GwAddressV4 { get; init; }
    [JsonPropertyName("gw_address_v6")] public string? GwAddressV6 { get; init; }
    [JsonPropertyName("auth_mode")] public int? AuthMode { get; init; }
    [JsonPropertyName("gw_interface")] public string? GwInterface { get; init; }
}

/// <summary>
/// The system figures firmware from 2025-07 on nests in every heartbeat as "sys_info" (never in connect).
/// Numbers may come as strings from some builds; they are read either way. Fractions must be finite (see
/// <see cref="FiniteNumberConverter"/>).
/// </summary>
public sealed record SystemFigures
{
    [JsonPropertyName("sys_uptime"), JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)] public long? SysUptime { get; init; }
    [JsonPropertyName("sys_memfree"), JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)] public long? SysMemfree { get; init; }
    [JsonPropertyName("sys_load"), JsonConverter(typeof(FiniteNumberConverter))] public double? SysLoad { get; init; }
    [JsonPropertyName("nf_conntrack_count"), JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)] public long? NfConntrackCount { get; init; }
    [JsonPropertyName("cpu_usage"), JsonConverter(typeof(FiniteNumberConverter))] public double? CpuUsage { get; init; }
    [JsonPropertyName("cpu_temp"), JsonConverter(typeof(FiniteNumberConverter))] public double? CpuTemp { get; init; }
    [JsonPropertyName("wifidog_uptime"), JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)] public long? WifidogUptime { get; init; }
    [JsonPropertyName("online_clients"), JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)] public long? OnlineClients { get; init; }
    [JsonPropertyName("offline_clients"), JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)] public long? OfflineClients { get; init; }

    [JsonIgnore] public bool IsEmpty => SysUptime is null && SysMemfree is null && SysLoad is null && NfConntrackCount is null
        && CpuUsage is null && CpuTemp is null && WifidogUptime is null && OnlineClients is null && OfflineClients is null;
}

/// <summary>
/// A fractional figure: a JSON number, or a string holding one (as some builds send them), that is finite. JSON has no
/// infinity, but 1e309 reads as one, and what cannot be written back (a device's view, a message to another node)
/// must not be read: it is a field of the wrong kind.
/// </summary>
public sealed class FiniteNumberConverter : JsonConverter<double>
{
    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var value = reader.TokenType switch
        {
            JsonTokenType.Number => reader.GetDouble(),
            JsonTokenType.String when double.TryParse(reader.GetString(), System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var parsed) => parsed,
            _ => throw new JsonException("expected a number"),
        };
        return double.IsFinite(value) ? value : throw new JsonException("expected a finite number");
    }

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}

// ---------------------------------------------------------------- device → server

/// <summary>connect and heartbeat carry the same report (seed 1.1 and 1.2).</summary>
public abstract record DeviceReport : IDeviceFrame
{
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => ReportType;
    /// <summary>Kept out of JSON: an overridden serialised property would be written twice.</summary>
    [JsonIgnore] protected abstract string ReportType { get; }
    [JsonPropertyName("device_id")] public string? DeviceId { get; init; }
    [JsonPropertyName("device_info")] public DeviceInfo? DeviceInfo { get; init; }
    [JsonPropertyName("gateway")] public IReadOnlyList<GatewayReport>? Gateway { get; init; }
    /// <summary>0 cloud, 1 bypass, 2 local (firmware of the op dialect, from 2026-03-30).</summary>
    [JsonPropertyName("mode")] public int? Mode { get; init; }
    /// <summary>Heartbeats of firmware from 2025-07 on: system figures.</summary>
    [JsonPropertyName("sys_info")] public SystemFigures? SysInfo { get; init; }
    /// <summary>Reports of the op dialect carry a req_id of the device's own (echoed in our reply).</summary>
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
}

public sealed record ConnectMessage : DeviceReport
{
    public const string TypeName = "connect";
    protected override string ReportType => TypeName;
}

public sealed record HeartbeatMessage : DeviceReport
{
    public const string TypeName = "heartbeat";
    protected override string ReportType => TypeName;
}

public sealed record KickoffResponse : IAnswerFrame
{
    public const string TypeName = "kickoff_response";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("status")] public string? Status { get; init; }
    [JsonPropertyName("client_ip")] public string? ClientIp { get; init; }
    [JsonPropertyName("client_mac")] public string? ClientMac { get; init; }
    [JsonPropertyName("message")] public string? Message { get; init; }
    [JsonIgnore] public string? ErrorText => null;
}

/// <summary>All four kickoff_error forms of the seed in one shape; absent fields stay null.</summary>
public sealed record KickoffError : IAnswerFrame
{
    public const string TypeName = "kickoff_error";
    public const string MissingFields = "Missing required fields in request";
    public const string ClientNotFound = "Client not found";
    public const string DeviceIdMismatch = "Device ID mismatch";
    public const string GatewayIdMismatch = "Gateway ID mismatch";

    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("error")] public string? Error { get; init; }
    [JsonPropertyName("client_ip")] public string? ClientIp { get; init; }
    [JsonPropertyName("client_mac")] public string? ClientMac { get; init; }
    [JsonPropertyName("expected_device_id")] public string? ExpectedDeviceId { get; init; }
    [JsonPropertyName("actual_device_id")] public string? ActualDeviceId { get; init; }
    [JsonPropertyName("expected_gw_id")] public string? ExpectedGwId { get; init; }
    [JsonPropertyName("actual_gw_id")] public string? ActualGwId { get; init; }
    [JsonIgnore] public string? ErrorText => Error ?? "kickoff_error";
}

public sealed record FirmwareInfoResponse : IAnswerFrame
{
    public const string TypeName = "firmware_info_response";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    /// <summary>Key/values of /etc/openwrt_release.</summary>
    [JsonPropertyName("data")] public IReadOnlyDictionary<string, JsonElement>? Data { get; init; }
    [JsonIgnore] public string? ErrorText => null;

    /// <summary>The data as strings (numbers and other values keep their JSON text).</summary>
    public IReadOnlyDictionary<string, string> DataAsStrings() =>
        Data is null
            ? new Dictionary<string, string>()
            : Data.ToDictionary(kv => kv.Key, kv => kv.Value.ValueKind == JsonValueKind.String ? kv.Value.GetString()! : kv.Value.GetRawText());
}

/// <summary>
/// Every other device answer: the seed's firmware_info_error, firmware_upgrade_response/_error and
/// the answers of EXTENSIONS.md. They differ only in which of these optional fields they carry.
/// </summary>
public sealed record GenericResponse : IAnswerFrame
{
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type { get; init; } = "";
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("status")] public string? Status { get; init; }
    [JsonPropertyName("message")] public string? Message { get; init; }
    [JsonPropertyName("error")] public string? Error { get; init; }
    [JsonPropertyName("data")] public JsonElement? Data { get; init; }
    [JsonPropertyName("domains")] public IReadOnlyList<string>? Domains { get; init; }
    /// <summary>request_error: the type the device did not know.</summary>
    [JsonPropertyName("requested_type")] public string? RequestedType { get; init; }
    /// <summary>Answers of the op dialect: 0 on success, else the firmware's error code.</summary>
    [JsonPropertyName("code")] public int? Code { get; init; }
    [JsonIgnore] public bool IsError => Type.EndsWith("_error", StringComparison.Ordinal);
    [JsonIgnore] public string? ErrorText => IsError ? Error ?? Type : null;
}

// ---------------------------------------------------------------- server → device

public sealed record GatewayAuthMode
{
    [JsonPropertyName("gw_id")] public string? GwId { get; init; }
    [JsonPropertyName("auth_mode")] public int? AuthMode { get; init; }
}

/// <summary>
/// The controller's reply to a device's connect or heartbeat: each gateway's auth_mode. The seed frames it as a
/// message of type "heartbeat"; other dialects frame it their own way (see <see cref="IDeviceDialect"/>).
/// </summary>
public sealed record ReportReply : IControllerFrame
{
    public const string TypeName = "heartbeat";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("gateway")] public IReadOnlyList<GatewayAuthMode>? Gateway { get; init; }
}

public sealed record AuthRequest : IControllerRequest
{
    public const string TypeName = "auth";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("token")] public string? Token { get; init; }
    [JsonPropertyName("client_ip")] public string? ClientIp { get; init; }
    [JsonPropertyName("client_mac")] public string? ClientMac { get; init; }
    [JsonPropertyName("client_name")] public string? ClientName { get; init; }
    [JsonPropertyName("gw_id")] public string? GwId { get; init; }
    [JsonPropertyName("once_auth")] public bool? OnceAuth { get; init; }
}

public sealed record KickoffRequest : IControllerRequest
{
    public const string TypeName = "kickoff";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("client_ip")] public string? ClientIp { get; init; }
    [JsonPropertyName("client_mac")] public string? ClientMac { get; init; }
    [JsonPropertyName("device_id")] public string? DeviceId { get; init; }
    [JsonPropertyName("gw_id")] public string? GwId { get; init; }
}

public sealed record TmpPassRequest : IControllerRequest
{
    public const string TypeName = "tmp_pass";
    public const int DefaultTimeoutSeconds = 300;
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("client_mac")] public string? ClientMac { get; init; }
    [JsonPropertyName("timeout")] public int? Timeout { get; init; }
}

public sealed record FirmwareUpgradeRequest : IControllerRequest
{
    public const string TypeName = "firmware_upgrade";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("url")] public string? Url { get; init; }
    [JsonPropertyName("force")] public bool? Force { get; init; }
}

public sealed record UpdateDeviceInfoRequest : IControllerRequest
{
    public const string TypeName = "update_device_info";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("device_info")] public DeviceInfo? DeviceInfo { get; init; }
}

public sealed record SetWifiInfoRequest : IControllerRequest
{
    public const string TypeName = "set_wifi_info";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    /// <summary>Per radio: channel, htmode, cell_density, interfaces[] — passed through as given.</summary>
    [JsonPropertyName("data")] public JsonElement? Data { get; init; }
}

public sealed record SyncDomainsRequest : IControllerRequest
{
    public const string TrustedTypeName = "sync_trusted_domain";
    public const string WildcardTypeName = "sync_trusted_wildcard_domains";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type { get; init; } = TrustedTypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("domains")] public IReadOnlyList<string>? Domains { get; init; }
}

/// <summary>sync_trusted_mac (current firmware): the MACs let through without the portal. The router replaces its whole list.</summary>
public sealed record SyncMacsRequest : IControllerRequest
{
    public const string TypeName = "sync_trusted_mac";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("macs")] public IReadOnlyList<string>? Macs { get; init; }
}

public sealed record GetClientInfoRequest : IControllerRequest
{
    public const string TypeName = "get_client_info";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("mac")] public string? Mac { get; init; }
}

/// <summary>
/// The requests that carry nothing but their type: get_firmware_info (seed) and get_status,
/// reboot_device, get_wifi_info, get_sys_info, get_trusted_domains, get_trusted_wildcard_domains.
/// </summary>
public sealed record SimpleRequest : IControllerRequest
{
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type { get; init; } = "";
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
}

// ---------------------------------------------------------------- 9.x only: privileged requests

/// <summary>
/// shell (9.x, api_handlers_auth.c handle_shell_request): runs <see cref="Command"/> as root on the router
/// and answers <c>shell_response</c> with <c>data.output</c> (up to 64 KB) and <c>data.exit_code</c>.
/// <see cref="Timeout"/> in seconds, clamped by the firmware to 1–30. Privileged (<see cref="RequestKind.Privileged"/>).
/// </summary>
public sealed record ShellRequest : IControllerRequest
{
    public const string TypeName = "shell";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("command")] public string? Command { get; init; }
    [JsonPropertyName("timeout")] public int? Timeout { get; init; }
}

/// <summary>
/// set_auth_serv (9.x, handle_set_auth_server_request): the portal's auth server. Every field is optional:
/// the router changes only those present, in memory and (when UCI names a selected_auth_server section)
/// in its configuration. Answers <c>set_auth_server_response</c>. Privileged.
/// </summary>
public sealed record SetAuthServRequest : IControllerRequest
{
    public const string TypeName = "set_auth_serv";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("hostname")] public string? Hostname { get; init; }
    [JsonPropertyName("port")] public int? Port { get; init; }
    [JsonPropertyName("path")] public string? Path { get; init; }
}

/// <summary>
/// set_mqtt_serv (9.x, handle_set_mqtt_server_request): the MQTT server the router reports to. Every field
/// optional, as for <see cref="SetAuthServRequest"/>. Answers <c>set_mqtt_server_response</c>. Privileged.
/// </summary>
public sealed record SetMqttServRequest : IControllerRequest
{
    public const string TypeName = "set_mqtt_serv";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("hostname")] public string? Hostname { get; init; }
    [JsonPropertyName("port")] public int? Port { get; init; }
    [JsonPropertyName("username")] public string? Username { get; init; }
    [JsonPropertyName("password")] public string? Password { get; init; }
    [JsonPropertyName("use_ssl")] public bool? UseSsl { get; init; }

    /// <summary>Never prints the password.</summary>
    public override string ToString() =>
        $"SetMqttServRequest {{ ReqId = {ReqId}, Hostname = {Hostname}, Port = {Port}, Username = {Username}, Password = {(Password is null ? "" : "(redacted)")}, UseSsl = {UseSsl} }}";
}

/// <summary>
/// set_websocket_serv (9.x from 2026-03-17, handle_set_websocket_server_request): where the router's WebSocket
/// goes. Every field optional: the router changes those present (hostname and path as strings, port read with
/// atoi, use_ssl as a boolean) in memory and, when UCI names a selected_auth_server section, in its
/// configuration (ws_server_hostname/port/path, long_conn_mode ws|wss). It does not reconnect by itself: the new
/// address is used from its next connection. Answers <c>set_websocket_server_response</c>. Privileged.
/// </summary>
public sealed record SetWebSocketServRequest : IControllerRequest
{
    public const string TypeName = "set_websocket_serv";
    [JsonPropertyName("type"), JsonPropertyOrder(-10)] public string Type => TypeName;
    [JsonPropertyName("req_id")] public ReqId? ReqId { get; init; }
    [JsonPropertyName("hostname")] public string? Hostname { get; init; }
    [JsonPropertyName("port")] public int? Port { get; init; }
    [JsonPropertyName("path")] public string? Path { get; init; }
    [JsonPropertyName("use_ssl")] public bool? UseSsl { get; init; }

    /// <summary>The path may carry a device key (?key=…): never printed (logs, dead letters, failure messages).</summary>
    public override string ToString() =>
        $"SetWebSocketServRequest {{ ReqId = {ReqId}, Hostname = {Hostname}, Port = {Port}, Path = {MaskKey(Path)}, UseSsl = {UseSsl} }}";

    /// <summary>The path with the value of its key parameter replaced by "(redacted)".</summary>
    public static string? MaskKey(string? path)
    {
        if (path is null) return null;
        var at = path.IndexOf("key=", StringComparison.Ordinal);
        if (at < 0 || (at > 0 && path[at - 1] is not ('?' or '&'))) return path;
        var end = path.IndexOf('&', at);
        return path[..(at + 4)] + "(redacted)" + (end < 0 ? "" : path[end..]);
    }
}
