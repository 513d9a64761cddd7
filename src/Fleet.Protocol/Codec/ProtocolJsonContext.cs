using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fleet.Protocol;

[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    AllowTrailingCommas = true,
    ReadCommentHandling = JsonCommentHandling.Skip)]
[JsonSerializable(typeof(ConnectMessage))]
[JsonSerializable(typeof(HeartbeatMessage))]
[JsonSerializable(typeof(KickoffResponse))]
[JsonSerializable(typeof(KickoffError))]
[JsonSerializable(typeof(FirmwareInfoResponse))]
[JsonSerializable(typeof(GenericResponse))]
[JsonSerializable(typeof(ReportReply))]
[JsonSerializable(typeof(AuthRequest))]
[JsonSerializable(typeof(KickoffRequest))]
[JsonSerializable(typeof(TmpPassRequest))]
[JsonSerializable(typeof(FirmwareUpgradeRequest))]
[JsonSerializable(typeof(UpdateDeviceInfoRequest))]
[JsonSerializable(typeof(SetWifiInfoRequest))]
[JsonSerializable(typeof(SyncDomainsRequest))]
[JsonSerializable(typeof(SyncMacsRequest))]
[JsonSerializable(typeof(GetClientInfoRequest))]
[JsonSerializable(typeof(SimpleRequest))]
[JsonSerializable(typeof(ShellRequest))]
[JsonSerializable(typeof(SetAuthServRequest))]
[JsonSerializable(typeof(SetMqttServRequest))]
[JsonSerializable(typeof(SetWebSocketServRequest))]
[JsonSerializable(typeof(DeviceInfo))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(JsonElement))]
public sealed partial class ProtocolJsonContext : JsonSerializerContext;
