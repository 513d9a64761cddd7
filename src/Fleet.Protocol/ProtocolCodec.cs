using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Fleet.Protocol;

public enum DecodeErrorKind
{
    /// <summary>The frame is not well-formed JSON (or not UTF-8).</summary>
    NotJson,
    /// <summary>Well-formed JSON, but not an object.</summary>
    NotObject,
    /// <summary>No "type" field (or it is not a string).</summary>
    MissingType,
    /// <summary>A "type" this direction of the protocol does not have.</summary>
    UnknownType,
    /// <summary>A required field is absent or null.</summary>
    MissingField,
    /// <summary>A field has the wrong JSON kind (a string where a number belongs, …).</summary>
    WrongKind,
}

/// <summary>Why a frame could not be decoded. Type and ReqId are filled when they could be read.</summary>
public sealed record DecodeError(DecodeErrorKind Kind, string Message, string? Type = null, string? Field = null, ReqId? ReqId = null)
{
    public override string ToString() => Message;
}

/// <summary>Either a decoded message or the precise reason it is not one.</summary>
public readonly record struct Decoded<T>(T? Message, DecodeError? Error) where T : class, IWireMessage
{
    public bool IsOk => Message is not null;
}

/// <summary>
/// The wire codec: JSON text frames ⇄ protocol records, with System.Text.Json source generation.
/// Unknown extra fields are tolerated; missing required fields and wrong kinds are named.
/// </summary>
public static class ProtocolCodec
{
    private static readonly ProtocolJsonContext Ctx = ProtocolJsonContext.Default;

    // What a device sends uses relaxed escaping, so seed texts such as "Missing or invalid 'url' field"
    // go out byte for byte (the default encoder writes \u0027). What the controller sends keeps the
    // default encoder: a custom encoder turns off the source-generated fast path (5x the allocation),
    // and any escaping it does is plain JSON to the device's parser.
    private static readonly ProtocolJsonContext DeviceText = new(new JsonSerializerOptions(ProtocolJsonContext.Default.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    private sealed record Entry(JsonTypeInfo Info, Func<IWireMessage, string?> MissingField);

    private static readonly Func<IWireMessage, string?> NothingRequired = _ => null;

    private static Entry E<T>(JsonTypeInfo<T> info, Func<T, string?>? missing = null) where T : IWireMessage =>
        new(info, missing is null ? NothingRequired : m => missing((T)m));

    private static string? Report(DeviceReport r)
    {
        if (r.DeviceId is null) return "device_id";
        if (r.Gateway is null) return null;
        for (var i = 0; i < r.Gateway.Count; i++)
        {
            if (r.Gateway[i] is null) return $"gateway[{i}]";
            if (r.Gateway[i].GwId is null) return $"gateway[{i}].gw_id";
        }
        return null;
    }

    private static string? First(params (string Name, object? Value)[] fields) =>
        fields.FirstOrDefault(f => f.Value is null).Name;

    private static readonly Dictionary<string, Entry> FromDeviceTable = new(StringComparer.Ordinal)
    {
        [ConnectMessage.TypeName] = E(Ctx.ConnectMessage, Report),
        [HeartbeatMessage.TypeName] = E(Ctx.HeartbeatMessage, Report),
        [KickoffResponse.TypeName] = E(Ctx.KickoffResponse),
        [KickoffError.TypeName] = E(Ctx.KickoffError),
        [FirmwareInfoResponse.TypeName] = E(Ctx.FirmwareInfoResponse),
    };

    private static readonly Dictionary<string, Entry> FromServerTable = new(StringComparer.Ordinal)
    {
        [HeartbeatReply.TypeName] = E(Ctx.HeartbeatReply),
        [AuthRequest.TypeName] = E(Ctx.AuthRequest, m => First(("token", m.Token), ("client_ip", m.ClientIp), ("client_mac", m.ClientMac), ("gw_id", m.GwId))),
        [KickoffRequest.TypeName] = E(Ctx.KickoffRequest, m => First(("client_ip", m.ClientIp), ("client_mac", m.ClientMac), ("device_id", m.DeviceId), ("gw_id", m.GwId))),
        [TmpPassRequest.TypeName] = E(Ctx.TmpPassRequest, m => First(("client_mac", m.ClientMac))),
        [FirmwareUpgradeRequest.TypeName] = E(Ctx.FirmwareUpgradeRequest, m => First(("url", m.Url))),
        [UpdateDeviceInfoRequest.TypeName] = E(Ctx.UpdateDeviceInfoRequest, m => First(("device_info", m.DeviceInfo))),
        [SetWifiInfoRequest.TypeName] = E(Ctx.SetWifiInfoRequest, m => First(("data", m.Data))),
        [SyncDomainsRequest.TrustedTypeName] = E(Ctx.SyncDomainsRequest, m => First(("domains", m.Domains))),
        [SyncDomainsRequest.WildcardTypeName] = E(Ctx.SyncDomainsRequest, m => First(("domains", m.Domains))),
        [GetClientInfoRequest.TypeName] = E(Ctx.GetClientInfoRequest, m => First(("mac", m.Mac))),
    };

    /// <summary>Request types that carry only type and req_id.</summary>
    private static readonly HashSet<string> SimpleRequestTypes = RequestKinds.All
        .Select(k => k.Type).Where(t => !FromServerTable.ContainsKey(t)).ToHashSet(StringComparer.Ordinal);

    /// <summary>Decodes a frame a device sent (connect, heartbeat and every answer type).</summary>
    public static Decoded<IDeviceMessage> DecodeFromDevice(ReadOnlySpan<byte> utf8) =>
        Decode<IDeviceMessage>(utf8, type =>
            FromDeviceTable.GetValueOrDefault(type) ?? (RequestKinds.IsAnswerType(type) ? GenericEntry : null));

    /// <summary>Decodes a frame the controller sent (heartbeat reply and every request type).</summary>
    public static Decoded<IServerMessage> DecodeFromServer(ReadOnlySpan<byte> utf8) =>
        Decode<IServerMessage>(utf8, type =>
            FromServerTable.GetValueOrDefault(type) ?? (SimpleRequestTypes.Contains(type) ? SimpleEntry : null));

    public static Decoded<IDeviceMessage> DecodeFromDevice(string json) => DecodeFromDevice(System.Text.Encoding.UTF8.GetBytes(json));
    public static Decoded<IServerMessage> DecodeFromServer(string json) => DecodeFromServer(System.Text.Encoding.UTF8.GetBytes(json));

    private static readonly Entry GenericEntry = E(Ctx.GenericResponse);
    private static readonly Entry SimpleEntry = E(Ctx.SimpleRequest);

    private static Decoded<T> Decode<T>(ReadOnlySpan<byte> utf8, Func<string, Entry?> lookup) where T : class, IWireMessage
    {
        var (type, reqId, envelopeError) = ReadEnvelope(utf8);
        if (envelopeError is not null) return new(null, envelopeError);

        var entry = lookup(type!);
        if (entry is null)
            return Fail<T>(DecodeErrorKind.UnknownType, $"unknown message type '{type}'", type, null, reqId);

        IWireMessage? message;
        try
        {
            message = (IWireMessage?)JsonSerializer.Deserialize(utf8, entry.Info);
        }
        catch (JsonException ex)
        {
            var field = FieldOf(ex.Path);
            return Fail<T>(DecodeErrorKind.WrongKind,
                field is null ? $"{type}: {ex.Message}" : $"{type}: field '{field}' has the wrong kind ({Expected(ex)})",
                type, field, reqId);
        }
        if (message is null) return Fail<T>(DecodeErrorKind.NotObject, "frame is null", type, null, reqId);

        var missing = entry.MissingField(message);
        if (missing is not null)
            return Fail<T>(DecodeErrorKind.MissingField, $"{type}: required field '{missing}' is missing", type, missing, reqId);
        return new((T)message, null);
    }

    private static Decoded<T> Fail<T>(DecodeErrorKind kind, string message, string? type, string? field, ReqId? reqId)
        where T : class, IWireMessage => new(null, new DecodeError(kind, message, type, field, reqId));

    /// <summary>
    /// One cheap pass over the top level: checks the frame is one well-formed JSON object and reads
    /// "type" and "req_id" without allocating anything else.
    /// </summary>
    private static (string? Type, ReqId? ReqId, DecodeError? Error) ReadEnvelope(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        string? type = null;
        ReqId? reqId = null;
        var typeWrongKind = false;
        try
        {
            if (!reader.Read())
                return (null, null, new DecodeError(DecodeErrorKind.NotJson, "frame is empty, not JSON"));
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                return (null, null, new DecodeError(DecodeErrorKind.NotObject, $"frame is JSON {Describe(reader.TokenType)}, not an object"));
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String) type = reader.GetString();
                    else { typeWrongKind = true; reader.Skip(); }
                }
                else if (reader.ValueTextEquals("req_id"u8))
                {
                    reader.Read();
                    if (reader.TokenType is JsonTokenType.String or JsonTokenType.Number)
                        reqId = reader.TokenType == JsonTokenType.String
                            ? ReqId.Of(reader.GetString()!)
                            : new ReqId(ReqIdJsonConverter.ReadRaw(ref reader), true);
                    else reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (reader.Read())
                return (null, null, new DecodeError(DecodeErrorKind.NotJson, "frame has data after the JSON object"));
        }
        catch (JsonException ex)
        {
            return (null, null, new DecodeError(DecodeErrorKind.NotJson, $"frame is not valid JSON: {ex.Message}"));
        }
        catch (InvalidOperationException ex)
        {
            return (null, null, new DecodeError(DecodeErrorKind.NotJson, $"frame is not valid JSON: {ex.Message}"));
        }
        if (typeWrongKind)
            return (null, reqId, new DecodeError(DecodeErrorKind.MissingType, "field 'type' must be a string", null, "type", reqId));
        if (string.IsNullOrEmpty(type))
            return (null, reqId, new DecodeError(DecodeErrorKind.MissingType, "frame has no 'type' field", null, "type", reqId));
        return (type, reqId, null);
    }

    private static string Describe(JsonTokenType t) => t switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => t.ToString(),
    };

    /// <summary>"$.gateway[0].auth_mode" → "gateway[0].auth_mode".</summary>
    private static string? FieldOf(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$") return null;
        var p = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        return p.Replace("['", "").Replace("']", "");
    }

    private static string Expected(JsonException ex)
    {
        var m = ex.Message;
        // STJ says "The JSON value could not be converted to System.Int32." — keep it short and human.
        var i = m.IndexOf("converted to ", StringComparison.Ordinal);
        if (i < 0) return "unexpected value";
        var tail = m[(i + 13)..];
        return tail switch
        {
            _ when tail.Contains("Int32") || tail.Contains("Int64") => "expected an integer",
            _ when tail.Contains("Double") => "expected a number",
            _ when tail.Contains("Boolean") => "expected true or false",
            _ when tail.Contains("String") => "expected a string",
            _ when tail.Contains("IReadOnlyList") || tail.Contains("List") => "expected an array",
            _ when tail.Contains("Dictionary") || tail.Contains("Fleet.Protocol") => "expected an object",
            _ => "unexpected value",
        };
    }

    // ------------------------------------------------------------ encoding

    /// <summary>Encodes a message as one UTF-8 JSON text frame.</summary>
    public static byte[] Encode(IWireMessage message) => JsonSerializer.SerializeToUtf8Bytes(message, InfoOf(message));

    /// <summary>Encodes into a caller's buffer (pooled writers on hot paths).</summary>
    public static void Encode(IWireMessage message, IBufferWriter<byte> output)
    {
        using var writer = new Utf8JsonWriter(output);
        JsonSerializer.Serialize(writer, message, InfoOf(message));
    }

    public static string EncodeToString(IWireMessage message) => System.Text.Encoding.UTF8.GetString(Encode(message));

    private static JsonTypeInfo InfoOf(IWireMessage message) => message switch
    {
        ConnectMessage => DeviceText.ConnectMessage,
        HeartbeatMessage => DeviceText.HeartbeatMessage,
        KickoffResponse => DeviceText.KickoffResponse,
        KickoffError => DeviceText.KickoffError,
        FirmwareInfoResponse => DeviceText.FirmwareInfoResponse,
        GenericResponse => DeviceText.GenericResponse,
        HeartbeatReply => Ctx.HeartbeatReply,
        AuthRequest => Ctx.AuthRequest,
        KickoffRequest => Ctx.KickoffRequest,
        TmpPassRequest => Ctx.TmpPassRequest,
        FirmwareUpgradeRequest => Ctx.FirmwareUpgradeRequest,
        UpdateDeviceInfoRequest => Ctx.UpdateDeviceInfoRequest,
        SetWifiInfoRequest => Ctx.SetWifiInfoRequest,
        SyncDomainsRequest => Ctx.SyncDomainsRequest,
        GetClientInfoRequest => Ctx.GetClientInfoRequest,
        SimpleRequest => Ctx.SimpleRequest,
        _ => throw new ArgumentException($"no encoder for {message.GetType().Name}", nameof(message)),
    };
}
