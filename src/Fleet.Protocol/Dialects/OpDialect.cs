using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Fleet.Protocol;

/// <summary>
/// The current firmware's dialect (apfree-wifidog from 2026-03-11 on; FIRMWARE_9.md): every frame names
/// itself with "op" and must carry a req_id; the device answers in an envelope
/// <c>{"req_id", "response":"200", "data":{"type":"x_response", "status", "code", "message", "data"}}</c>
/// and takes our replies to its reports as such an envelope too (only data.type "connect" applies auth
/// modes; a change at any other time goes as a one-way <c>gateway_heartbeat</c>).
/// One instance per connection: requests carry integer req_ids (the only kind every build of this
/// dialect accepts), and the instance maps each back to the command it stands for.
/// </summary>
public sealed class OpDialect : IDeviceDialect
{
    public const string DialectName = "9";
    public const string GatewayHeartbeat = "gateway_heartbeat";
    /// <summary>The firmware's answer to a request it has no route for.</summary>
    public const string UnknownOperation = "Unknown operation";
    private const int RememberedRequests = 256;

    private readonly object _lock = new(); // not System.Threading.Lock: 120 B per connection
    private readonly Dictionary<long, (string CommandId, string Type)> _sent = new();
    private long _next;

    public string Name => DialectName;

    public string NameFor(DeviceReport report) => DialectName;

    public bool ReplyIsReusable => false; // each reply echoes its report's req_id

    // ws_thread.c process_ws_msg: only a reply of data.type "connect" (or "bootstrap") applies data.gateway.
    public bool AppliesModesFromReplyTo(string reportType) => reportType == ConnectMessage.TypeName;

    public bool Answers(string requestType) => true; // every request of ours, auth and tmp_pass included

    public DeviceFrame Decode(ReadOnlySpan<byte> utf8)
    {
        var envelope = ProtocolCodec.ReadEnvelope(utf8);
        if (envelope.Error is not null) return new DeviceFrame(null, null, envelope.Error);
        if (envelope.HasResponse) return DecodeAnswer(utf8, envelope);
        var decoded = ProtocolCodec.DecodeOpReport(utf8);
        return decoded.Message is DeviceReport report
            ? new DeviceFrame(report, null, null)
            : new DeviceFrame(null, null, decoded.Error);
    }

    private DeviceFrame DecodeAnswer(ReadOnlySpan<byte> utf8, Envelope envelope)
    {
        var root = ProtocolCodec.ParseAccepted(utf8);
        if (!root.TryGetProperty("data", out var data))
            return new DeviceFrame(null, null, new DecodeError(DecodeErrorKind.MissingField,
                "answer envelope has no data", null, "data", envelope.ReqId));
        var decoded = ProtocolCodec.DecodeGeneric(data);
        if (decoded.Error is { } wrong) return new DeviceFrame(null, null, wrong with { ReqId = envelope.ReqId });
        var inner = decoded.Message!;
        if (string.IsNullOrEmpty(inner.Type))
            return new DeviceFrame(null, null, new DecodeError(DecodeErrorKind.MissingField,
                "answer envelope has no data.type", null, "data.type", envelope.ReqId));

        (string CommandId, string Type)? request = null;
        if (envelope.ReqId is { IsNumber: true } id && long.TryParse(id.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            lock (_lock)
                if (_sent.Remove(n, out var found)) request = found;

        var failed = inner.Status == "error";
        var message = inner.Message ?? inner.Error;
        if (inner.Type == "generic_response" && request is null)
            // "Invalid JSON request", "Missing or invalid req_id", "Missing 'op' field in JSON": about a
            // frame of ours, and naming none (there was no req_id of ours to echo).
            return new DeviceFrame(null, null, null, Complaint: $"{message ?? "error"} (code {inner.Code?.ToString(CultureInfo.InvariantCulture) ?? "?"})");

        var unsupported = inner.Type == "generic_response";
        return new DeviceFrame(null, new DeviceAnswer
        {
            Type = inner.Type,
            ReqId = request is { } r ? ReqId.Of(r.CommandId) : envelope.ReqId,
            RequestType = request?.Type ?? RequestKinds.ForAnswer(inner.Type)?.Type,
            Error = failed || unsupported
                ? $"{message ?? "error"} (code {inner.Code?.ToString(CultureInfo.InvariantCulture) ?? "?"})"
                : null,
            Unsupported = unsupported,
            ClientMac = Text(inner.Data, "client_mac"),
            Firmware = !failed && inner.Type == "firmware_info_response" ? Strings(inner.Data) : null,
            Body = root,
        }, null);
    }

    private static string? Text(JsonElement? data, string key) =>
        data is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static Dictionary<string, string>? Strings(JsonElement? data)
    {
        if (data is not { ValueKind: JsonValueKind.Object } d) return null;
        // A key given twice counts once, the last time (as the codec and json-c read it).
        var strings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in d.EnumerateObject())
            strings[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        return strings;
    }

    public byte[] EncodeReply(string reportType, ReqId? reportReqId, ReportReply reply) =>
        Write(w =>
        {
            if (reportReqId is { } id) WriteReqId(w, id);
            else w.WriteNumber("req_id", NextId());
            w.WriteString("response", "200");
            w.WriteStartObject("data");
            w.WriteString("type", reportType);
            WriteGateways(w, reply);
            w.WriteEndObject();
        });

    public byte[] EncodeModes(ReportReply reply) =>
        Write(w =>
        {
            w.WriteString("op", GatewayHeartbeat);
            w.WriteNumber("req_id", NextId());
            WriteGateways(w, reply);
        });

    public byte[] EncodeRequest(IControllerRequest request)
    {
        var id = NextId();
        var commandId = request.ReqId?.Value ?? throw new ArgumentException("a request without req_id", nameof(request));
        lock (_lock)
        {
            _sent[id] = (commandId, request.Type);
            if (_sent.Count > RememberedRequests) _sent.Remove(_sent.Keys.Min());
        }
        var fields = ProtocolCodec.EncodeToElement(request);
        return Write(w =>
        {
            w.WriteString("op", request.Type);
            w.WriteNumber("req_id", id);
            foreach (var p in fields.EnumerateObject())
                if (p.Name is not ("type" or "req_id")) p.WriteTo(w);
        });
    }

    private long NextId() => Interlocked.Increment(ref _next);

    private static void WriteReqId(Utf8JsonWriter w, ReqId id)
    {
        w.WritePropertyName("req_id");
        if (id.IsNumber) w.WriteRawValue(id.Value);
        else w.WriteStringValue(id.Value);
    }

    private static void WriteGateways(Utf8JsonWriter w, ReportReply reply)
    {
        w.WriteStartArray("gateway");
        foreach (var g in reply.Gateway ?? [])
        {
            w.WriteStartObject();
            if (g.GwId is not null) w.WriteString("gw_id", g.GwId);
            if (g.AuthMode is { } mode) w.WriteNumber("auth_mode", mode);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
