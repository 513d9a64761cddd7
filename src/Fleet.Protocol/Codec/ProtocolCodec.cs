using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Fleet.Protocol;

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
        [ReportReply.TypeName] = E(Ctx.ReportReply),
        [AuthRequest.TypeName] = E(Ctx.AuthRequest, m => First(("token", m.Token), ("client_ip", m.ClientIp), ("client_mac", m.ClientMac), ("gw_id", m.GwId))),
        [KickoffRequest.TypeName] = E(Ctx.KickoffRequest, m => First(("client_ip", m.ClientIp), ("client_mac", m.ClientMac), ("device_id", m.DeviceId), ("gw_id", m.GwId))),
        [TmpPassRequest.TypeName] = E(Ctx.TmpPassRequest, m => First(("client_mac", m.ClientMac))),
        [FirmwareUpgradeRequest.TypeName] = E(Ctx.FirmwareUpgradeRequest, m => First(("url", m.Url))),
        [UpdateDeviceInfoRequest.TypeName] = E(Ctx.UpdateDeviceInfoRequest, m => First(("device_info", m.DeviceInfo))),
        [SetWifiInfoRequest.TypeName] = E(Ctx.SetWifiInfoRequest, m => First(("data", m.Data))),
        [SyncDomainsRequest.TrustedTypeName] = E(Ctx.SyncDomainsRequest, m => First(("domains", m.Domains))),
        [SyncDomainsRequest.WildcardTypeName] = E(Ctx.SyncDomainsRequest, m => First(("domains", m.Domains))),
        [GetClientInfoRequest.TypeName] = E(Ctx.GetClientInfoRequest, m => First(("mac", m.Mac))),
        [SyncMacsRequest.TypeName] = E(Ctx.SyncMacsRequest, m => First(("macs", m.Macs))),
        [ShellRequest.TypeName] = E(Ctx.ShellRequest, m => First(("command", m.Command))),
        // Every field of the set_*_serv requests is optional on the router (it changes those present).
        [SetAuthServRequest.TypeName] = E(Ctx.SetAuthServRequest),
        [SetMqttServRequest.TypeName] = E(Ctx.SetMqttServRequest),
        [SetWebSocketServRequest.TypeName] = E(Ctx.SetWebSocketServRequest),
    };

    /// <summary>Request types that carry only type and req_id.</summary>
    private static readonly HashSet<string> SimpleRequestTypes = RequestKinds.All
        .Select(k => k.Type).Where(t => !FromServerTable.ContainsKey(t)).ToHashSet(StringComparer.Ordinal);

    /// <summary>Decodes a frame a device sent (connect, heartbeat and every answer type).</summary>
    public static Decoded<IDeviceFrame> DecodeFromDevice(ReadOnlySpan<byte> utf8) =>
        Decode<IDeviceFrame>(utf8, type =>
            FromDeviceTable.GetValueOrDefault(type) ?? (RequestKinds.IsAnswerType(type) ? GenericEntry : null));

    /// <summary>Decodes a frame the controller sent (heartbeat reply and every request type).</summary>
    /// <param name="fillIn">Completes a message before its required fields are checked (the admin API fills in
    /// what its path already says).</param>
    /// <param name="acceptOp">Also take "op" as the frame's name (a device of the current firmware reading requests).</param>
    public static Decoded<IControllerFrame> DecodeFromController(ReadOnlySpan<byte> utf8, Func<IControllerFrame, IControllerFrame>? fillIn = null,
        bool acceptOp = false) =>
        Decode<IControllerFrame>(utf8, type =>
            FromServerTable.GetValueOrDefault(type) ?? (SimpleRequestTypes.Contains(type) ? SimpleEntry : null),
            fillIn is null ? null : m => fillIn((IControllerFrame)m), acceptOp ? NameKey.TypeOrOp : NameKey.Type);

    /// <summary>Decodes a report of the op dialect ({"op":"connect"|"heartbeat",…}).</summary>
    public static Decoded<IDeviceFrame> DecodeOpReport(ReadOnlySpan<byte> utf8) =>
        Decode<IDeviceFrame>(utf8, op => op is ConnectMessage.TypeName or HeartbeatMessage.TypeName ? FromDeviceTable[op] : null,
            key: NameKey.Op);

    /// <summary>
    /// The inner "data" of an answer envelope as a frame the seed dialect would have sent (type, status, message, data,
    /// req_id), or why it is not one: not an object, or a field of the wrong kind (named "data.…").
    /// </summary>
    public static Decoded<GenericResponse> DecodeGeneric(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
            return Fail<GenericResponse>(DecodeErrorKind.WrongKind, "answer envelope: field 'data' has the wrong kind (expected an object)", null, "data", null);
        try
        {
            return new(element.Deserialize(Ctx.GenericResponse), null);
        }
        catch (JsonException ex)
        {
            var field = FieldOf(ex.Path);
            return Fail<GenericResponse>(DecodeErrorKind.WrongKind,
                $"answer envelope: field 'data{(field is null ? "" : "." + field)}' has the wrong kind ({Expected(Ctx.GenericResponse, ex.Path)})",
                null, field is null ? "data" : "data." + field, null);
        }
    }

    /// <summary>
    /// How every pass over a frame reads it: comments skipped and trailing commas taken, as <see cref="ReadEnvelope"/> and
    /// the serializer's options do. A second pass over a frame the first one accepted must not read it more strictly.
    /// </summary>
    internal static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>A frame <see cref="ReadEnvelope"/> accepted, as one JSON value (read with <see cref="ReaderOptions"/>).</summary>
    internal static JsonElement ParseAccepted(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        return JsonElement.ParseValue(ref reader);
    }

    public static Decoded<IDeviceFrame> DecodeFromDevice(string json) => DecodeFromDevice(System.Text.Encoding.UTF8.GetBytes(json));
    public static Decoded<IControllerFrame> DecodeFromController(string json) => DecodeFromController(System.Text.Encoding.UTF8.GetBytes(json));

    private static readonly Entry GenericEntry = E(Ctx.GenericResponse);
    private static readonly Entry SimpleEntry = E(Ctx.SimpleRequest);

    private static Decoded<T> Decode<T>(ReadOnlySpan<byte> utf8, Func<string, Entry?> lookup,
        Func<IWireMessage, IWireMessage>? fillIn = null, NameKey key = NameKey.Type) where T : class, IWireMessage
    {
        var envelope = ReadEnvelope(utf8);
        if (envelope.Error is not null) return new(null, envelope.Error);
        var (type, nameError) = envelope.Name(key);
        var reqId = envelope.ReqId;
        if (nameError is not null) return new(null, nameError);

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
                field is null ? $"{type}: the frame does not match the message (at byte {ex.BytePositionInLine})" : $"{type}: field '{field}' has the wrong kind ({Expected(entry.Info, ex.Path)})",
                type, field, reqId);
        }
        if (message is null) return Fail<T>(DecodeErrorKind.NotObject, "frame is null", type, null, reqId);
        // Records that serve several request types read their name from "type": a frame named by "op" sets it here.
        message = message switch
        {
            SimpleRequest simple when simple.Type != type => simple with { Type = type! },
            SyncDomainsRequest sync when sync.Type != type => sync with { Type = type! },
            _ => message,
        };

        if (fillIn is not null) message = fillIn(message);
        var missing = entry.MissingField(message);
        if (missing is not null)
            return Fail<T>(DecodeErrorKind.MissingField, $"{type}: required field '{missing}' is missing", type, missing, reqId);
        return new((T)message, null);
    }

    private static Decoded<T> Fail<T>(DecodeErrorKind kind, string message, string? type, string? field, ReqId? reqId)
        where T : class, IWireMessage => new(null, new DecodeError(kind, message, type, field, reqId));

    /// <summary>
    /// One cheap pass over the frame: checks it is one well-formed JSON object of valid UTF-8 whose strings are all
    /// text (an escape such as a lone <c>\ud800</c> is not: no string could hold it, and no writer could write it back
    /// into a stored event or a view), and reads the names a frame can go by ("type" in the seed dialect, "op" in
    /// the current firmware's), "req_id" and whether it carries "response" (an answer envelope), without allocating
    /// anything else. Every decoding starts here, so no later pass meets a frame it cannot read.
    /// </summary>
    public static Envelope ReadEnvelope(ReadOnlySpan<byte> utf8)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
        {
            var at = InvalidUtf8At(utf8);
            return new(Error: new DecodeError(DecodeErrorKind.NotJson, $"frame is not valid UTF-8 (at byte {at + 1})", Position: at + 1));
        }
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        string? type = null, op = null;
        ReqId? reqId = null;
        bool typeWrongKind = false, opWrongKind = false, response = false;
        try
        {
            if (!reader.Read())
                return new(Error: new DecodeError(DecodeErrorKind.NotJson, "frame is empty, not JSON"));
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                return new(Error: new DecodeError(DecodeErrorKind.NotObject, $"frame is JSON {Describe(reader.TokenType)}, not an object"));
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                CheckText(ref reader);
                if (reader.ValueTextEquals("type"u8)) type = ReadName(ref reader, ref typeWrongKind);
                else if (reader.ValueTextEquals("op"u8)) op = ReadName(ref reader, ref opWrongKind);
                else if (reader.ValueTextEquals("req_id"u8))
                {
                    reader.Read();
                    if (reader.TokenType is JsonTokenType.String or JsonTokenType.Number)
                        reqId = reader.TokenType == JsonTokenType.String
                            ? ReqId.Of(reader.GetString()!)
                            : new ReqId(ReqIdJsonConverter.ReadRaw(ref reader), true);
                    else SkipChecked(ref reader);
                }
                else
                {
                    response |= reader.ValueTextEquals("response"u8);
                    reader.Read();
                    SkipChecked(ref reader);
                }
            }
            if (reader.Read())
                return new(Error: new DecodeError(DecodeErrorKind.NotJson, "frame has data after the JSON object", Position: reader.BytesConsumed));
        }
        catch (JsonException ex)
        {
            return new(Error: new DecodeError(DecodeErrorKind.NotJson,
                $"frame is not valid JSON (stops at line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1})",
                Position: reader.BytesConsumed + 1));
        }
        catch (InvalidOperationException)
        {
            // The UTF-8 is valid, so what a string could not be read for is an escape that is no character.
            return new(Error: new DecodeError(DecodeErrorKind.NotJson,
                $"frame is not JSON text: the string that ends at byte {reader.BytesConsumed} has an escape that is no character (a lone UTF-16 surrogate such as \\ud800)",
                Position: reader.BytesConsumed));
        }
        return new(type, op, reqId, response, typeWrongKind, opWrongKind);
    }

    /// <summary>Reads an escaped string or property name once, so that an escape that is no character throws here.</summary>
    private static void CheckText(ref Utf8JsonReader reader)
    {
        if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped) reader.GetString();
    }

    /// <summary><see cref="Utf8JsonReader.Skip"/>, checking the text of every string and property name on the way.</summary>
    private static void SkipChecked(ref Utf8JsonReader reader)
    {
        if (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
        {
            CheckText(ref reader);
            return;
        }
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth) CheckText(ref reader);
    }

    private static int InvalidUtf8At(ReadOnlySpan<byte> utf8)
    {
        var chars = new char[utf8.Length];
        System.Text.Unicode.Utf8.ToUtf16(utf8, chars, out var read, out _, replaceInvalidSequences: false);
        return read;
    }

    private static string? ReadName(ref Utf8JsonReader reader, ref bool wrongKind)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.String) return reader.GetString();
        wrongKind = true;
        SkipChecked(ref reader);
        return null;
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

    /// <summary>
    /// What the field at <paramref name="path"/> ("$.gateway[0].auth_mode") should have held, read from the
    /// target type's own metadata (not from the wording of the exception).
    /// </summary>
    private static string Expected(JsonTypeInfo root, string? path)
    {
        var type = TypeAt(root, path);
        if (type is null) return "unexpected value";
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(int) || type == typeof(long) || type == typeof(short)) return "expected an integer";
        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal)) return "expected a number";
        if (type == typeof(bool)) return "expected true or false";
        if (type == typeof(string)) return "expected a string";
        if (type == typeof(ReqId)) return "expected a number or a string";
        if (type == typeof(JsonElement)) return "unexpected value";
        return root.Options.GetTypeInfo(type).Kind switch
        {
            JsonTypeInfoKind.Enumerable => "expected an array",
            JsonTypeInfoKind.Dictionary or JsonTypeInfoKind.Object => "expected an object",
            _ => "unexpected value",
        };
    }

    /// <summary>Walks a JSON path through type metadata: property names and [n] indexes.</summary>
    private static Type? TypeAt(JsonTypeInfo root, string? path)
    {
        if (string.IsNullOrEmpty(path)) return null;
        var info = root;
        Type? current = root.Type;
        var i = path.StartsWith('$') ? 1 : 0;
        while (i < path.Length && current is not null)
        {
            if (path[i] == '.')
            {
                var end = path.IndexOfAny(['.', '['], i + 1);
                var name = path[(i + 1)..(end < 0 ? path.Length : end)];
                current = info.Kind == JsonTypeInfoKind.Dictionary
                    ? info.ElementType
                    : info.Properties.FirstOrDefault(p => p.Name == name)?.PropertyType;
                i = end < 0 ? path.Length : end;
            }
            else if (path[i] == '[')
            {
                var end = path.IndexOf(']', i);
                if (end < 0) return null;
                var inner = path[(i + 1)..end];
                current = inner.StartsWith('\'') && info.Kind == JsonTypeInfoKind.Object
                    ? info.Properties.FirstOrDefault(p => p.Name == inner.Trim('\''))?.PropertyType
                    : info.ElementType;
                i = end + 1;
            }
            else return null;
            if (current is null) return null;
            var underlying = Nullable.GetUnderlyingType(current) ?? current;
            if (i < path.Length) info = root.Options.GetTypeInfo(underlying);
        }
        return current;
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

    /// <summary>The message as a JSON value (for views that embed it).</summary>
    public static JsonElement EncodeToElement(IWireMessage message) => JsonSerializer.SerializeToElement(message, InfoOf(message));

    public static string EncodeToString(IWireMessage message) => System.Text.Encoding.UTF8.GetString(Encode(message));

    private static JsonTypeInfo InfoOf(IWireMessage message) => message switch
    {
        ConnectMessage => DeviceText.ConnectMessage,
        HeartbeatMessage => DeviceText.HeartbeatMessage,
        KickoffResponse => DeviceText.KickoffResponse,
        KickoffError => DeviceText.KickoffError,
        FirmwareInfoResponse => DeviceText.FirmwareInfoResponse,
        GenericResponse => DeviceText.GenericResponse,
        ReportReply => Ctx.ReportReply,
        AuthRequest => Ctx.AuthRequest,
        KickoffRequest => Ctx.KickoffRequest,
        TmpPassRequest => Ctx.TmpPassRequest,
        FirmwareUpgradeRequest => Ctx.FirmwareUpgradeRequest,
        UpdateDeviceInfoRequest => Ctx.UpdateDeviceInfoRequest,
        SetWifiInfoRequest => Ctx.SetWifiInfoRequest,
        SyncDomainsRequest => Ctx.SyncDomainsRequest,
        SyncMacsRequest => Ctx.SyncMacsRequest,
        GetClientInfoRequest => Ctx.GetClientInfoRequest,
        SimpleRequest => Ctx.SimpleRequest,
        ShellRequest => Ctx.ShellRequest,
        SetAuthServRequest => Ctx.SetAuthServRequest,
        SetMqttServRequest => Ctx.SetMqttServRequest,
        SetWebSocketServRequest => Ctx.SetWebSocketServRequest,
        _ => throw new ArgumentException($"no encoder for {message.GetType().Name}", nameof(message)),
    };
}
