using System.Buffers.Text;
using System.Globalization;
using System.Text.Json;

namespace Fleet.Protocol;

/// <summary>
/// The router's side of the op dialect, 9.07 (FIRMWARE_9.md; FIRMWARE_FACTS.md B.1, C, D, E).
/// Reports: <c>{"op","device_id","mode","device_info"?,"gateway","sys_info" (heartbeat only),"req_id":"&lt;16 hex&gt;"}</c>
/// (api_handlers_sys.c build_gateway_report_message). Frames in, in the order of ws_thread.c process_ws_msg:
/// not JSON → 400 "Invalid JSON request"; req_id missing or not a string or integer → 400 "Missing or
/// invalid req_id" (also for replies); a top-level <c>response</c> → a reply: data.type connect/bootstrap
/// applies data.gateway[], heartbeat does nothing, never answered; no op → 400 "Missing 'op' field in
/// JSON"; an op without a route → 400 "Unknown operation" + data.requested_op; <c>gateway_heartbeat</c>
/// applies top-level gateway[], never answered. Answers go in the envelope of send_response. Pings get
/// pongs; a close frame drops the connection, reconnect in 3 s.
/// </summary>
public sealed class OpRouterDialect : IRouterDialect
{
    public const string GatewayHeartbeat = "gateway_heartbeat";
    /// <summary>Length of the req_id of a report: <c>"%08x%08x"</c> (api_generate_req_id).</summary>
    public const int ReportReqIdLength = 16;

    public static readonly OpRouterDialect Instance = new();

    private OpRouterDialect() { }

    public FirmwareEra Era => FirmwareEra.V9;
    public string Name => OpDialect.DialectName;
    public bool AnswersPings => true;
    public CloseFrameEffect OnCloseFrame => CloseFrameEffect.Reconnect;
    public bool ClosesOnUnknownOpcode => true;
    public bool RetriesBadUpgrade => true;

    /// <summary>A report's req_id as api_generate_req_id makes it: 16 lower-case hex digits.</summary>
    public static string NewReportReqId() => Random.Shared.NextInt64().ToString("x16", CultureInfo.InvariantCulture);

    public byte[] EncodeReport(DeviceReport report) =>
        RouterWire.Write(w =>
        {
            w.WriteString("op", report.Type);
            w.WriteString("device_id", string.IsNullOrEmpty(report.DeviceId) ? "UNKNOWN" : report.DeviceId);
            w.WriteNumber("mode", report.Mode ?? 0);
            RouterWire.WriteDeviceInfo(w, report.DeviceInfo);
            RouterWire.WriteGateways(w, report.Gateway);
            if (report is HeartbeatMessage && report.SysInfo is { } s) RouterWire.WriteSysInfo(w, s);
            RouterWire.WriteReqId(w, report.ReqId ?? ReqId.Of(NewReportReqId()));
        }, 640);

    /// <summary>
    /// Gives an encoded report (from <see cref="EncodeReport"/> with a 16-character string req_id) a new
    /// req_id in place, so a heartbeat can be encoded once and sent many times. False if the frame does
    /// not end that way.
    /// </summary>
    public static bool TryRenewReqId(Span<byte> encodedReport, ulong value)
    {
        // … "req_id":"0123456789abcdef"}  (tail: quote, 16 digits, quote, brace)
        const int tail = ReportReqIdLength + 3;
        if (encodedReport.Length < tail + 9 || !encodedReport[^(tail + 9)..^tail].SequenceEqual("\"req_id\":"u8)) return false;
        var digits = encodedReport.Slice(encodedReport.Length - tail + 1, ReportReqIdLength);
        if (encodedReport[^tail] != (byte)'"' || encodedReport[^2] != (byte)'"' || encodedReport[^1] != (byte)'}') return false;
        return Utf8Formatter.TryFormat(value, digits, out var written, new System.Buffers.StandardFormat('x', ReportReqIdLength))
               && written == ReportReqIdLength;
    }

    public RouterInbound Decode(ReadOnlySpan<byte> utf8)
    {
        var envelope = ProtocolCodec.ReadEnvelope(utf8);
        if (envelope.Error is { Kind: DecodeErrorKind.NotJson } notJson)
            return RouterInbound.Complaint("not JSON", notJson.Message, FirmwareAnswers.BadRequestAnswer(FirmwareAnswers.InvalidJsonRequest, null), error: notJson);
        // json_object_object_get_ex on something that is no object finds no req_id.
        if (envelope.Error is { } notObject || envelope.ReqId is not { } reqId || reqId.IsNumber && !IsInteger(reqId.Value))
            return RouterInbound.Complaint(envelope.Op ?? envelope.Type ?? (envelope.HasResponse ? "response" : "(no op)"),
                envelope.Error?.Message ?? "no req_id that is a string or an integer",
                FirmwareAnswers.BadRequestAnswer(FirmwareAnswers.MissingReqId, null), error: envelope.Error);
        if (envelope.HasResponse)
        {
            var (dataType, gateways) = RouterWire.ReadModes(utf8, inData: true);
            return new RouterInbound
            {
                Kind = InboundKind.ReportReply, Name = dataType ?? "(no data.type)", ReqId = reqId, Gateway = gateways ?? [],
                // Only a connect/bootstrap reply reaches handle_gateway_state_heartbeat_request; a heartbeat reply is ignored.
                ApplyModes = dataType is ConnectMessage.TypeName or "bootstrap" && gateways is not null,
            };
        }
        var op = envelope.Op;
        if (op is null)
        {
            if (!envelope.OpWrongKind)
                return RouterInbound.Complaint(envelope.Type ?? "(no op)", "no 'op' field", FirmwareAnswers.BadRequestAnswer(FirmwareAnswers.MissingOp, reqId), reqId);
            op = RawOp(utf8); // json_object_get_string of a number or a boolean: its JSON text
            if (op is null)
                return RouterInbound.Complaint("(no op)", "'op' is null", FirmwareAnswers.BadRequestAnswer(FirmwareAnswers.MissingOp, reqId), reqId);
        }
        if (op == GatewayHeartbeat)
        {
            var (_, gateways) = RouterWire.ReadModes(utf8, inData: false);
            return new RouterInbound { Kind = InboundKind.GatewayModes, Name = op, ReqId = reqId, Gateway = gateways ?? [], ApplyModes = gateways is not null };
        }
        if (!FirmwareAnswers.V9Operations.Contains(op))
            return RouterInbound.Complaint(op, $"no route for op '{op}'", FirmwareAnswers.UnknownOperationAnswer(op, reqId), reqId);

        // The firmware reads only "op": a "type" beside it (or the alias "ota") must not name the record.
        var name = op == "ota" ? FirmwareUpgradeRequest.TypeName : op;
        var decoded = envelope.Type is null && name == op
            ? ProtocolCodec.DecodeFromController(utf8, acceptOp: true)
            : ProtocolCodec.DecodeFromController(Renamed(utf8, name), acceptOp: true);
        if (decoded.Message is { } message)
            return new RouterInbound { Kind = InboundKind.Request, Name = op, ReqId = reqId, Request = Named(message, name) };
        var error = decoded.Error! with { ReqId = reqId };
        return error.Kind switch
        {
            // Routed by the firmware but not modelled by Fleet's codec: a request with nothing but its name.
            DecodeErrorKind.UnknownType => new RouterInbound
            {
                Kind = InboundKind.Request, Name = op, ReqId = reqId, Request = new SimpleRequest { Type = op, ReqId = reqId },
            },
            // sync_* handlers wipe the list first: a missing list leaves it empty, with a success answer.
            DecodeErrorKind.MissingField or DecodeErrorKind.WrongKind when name is SyncDomainsRequest.TrustedTypeName or SyncDomainsRequest.WildcardTypeName
                && error.Field == "domains" => new RouterInbound
            {
                Kind = InboundKind.Request, Name = op, ReqId = reqId, Request = new SyncDomainsRequest { Type = name, ReqId = reqId, Domains = [] },
            },
            _ => RouterInbound.Complaint(op, error.Message, FirmwareAnswers.ToBadFrame(FirmwareEra.V9, error with { Type = name }), reqId, error),
        };
    }

    public byte[] EncodeAnswer(IAnswerFrame answer) => Envelope(FirmwareAnswers.ToOpAnswer(answer));

    /// <summary>
    /// send_json_response + send_response: <c>{"req_id"?, "response":"200", "data":{"type", "data", "status",
    /// "code", "message", [own field_descriptions], "req_id"?, [generated field_descriptions]}}</c>. The generated
    /// field_descriptions name every key of data ("Auto-generated: key 'k' of type t"), <c>{}</c> when data is empty.
    /// </summary>
    public static byte[] Envelope(OpAnswer a) =>
        RouterWire.Write(w =>
        {
            if (a.ReqId is { } top) RouterWire.WriteReqId(w, top);
            w.WriteString("response", "200");
            w.WriteStartObject("data");
            w.WriteString("type", a.Type);
            w.WritePropertyName("data");
            if (a.Data is { ValueKind: JsonValueKind.Object } data) data.WriteTo(w);
            else { w.WriteStartObject(); w.WriteEndObject(); }
            w.WriteString("status", a.Status);
            w.WriteNumber("code", a.Code);
            w.WriteString("message", a.Message);
            if (a.FieldDescriptions is { } own)
            {
                w.WritePropertyName("field_descriptions");
                own.WriteTo(w);
            }
            if (a.ReqId is { } inner) RouterWire.WriteReqId(w, inner);
            if (a.FieldDescriptions is null)
            {
                w.WriteStartObject("field_descriptions");
                if (a.Data is { ValueKind: JsonValueKind.Object } d)
                    foreach (var p in d.EnumerateObject())
                        w.WriteString(p.Name, $"Auto-generated: key '{p.Name}' of type {FirmwareJson.JsonCTypeName(p.Value)}");
                w.WriteEndObject();
            }
            w.WriteEndObject();
        });

    /// <summary>
    /// The records whose name is data (SimpleRequest, SyncDomainsRequest) take it from "type", which an op
    /// frame does not have: DecodeFromController(acceptOp: true) leaves them unnamed or at their default.
    /// </summary>
    private static IControllerFrame Named(IControllerFrame message, string name) => message switch
    {
        SimpleRequest s when s.Type != name => s with { Type = name },
        SyncDomainsRequest d when d.Type != name => d with { Type = name },
        _ => message,
    };

    private static bool IsInteger(string number) => number.AsSpan().IndexOfAny(".eE") < 0;

    private static string? RawOp(ReadOnlySpan<byte> utf8)
    {
        var root = ProtocolCodec.ParseAccepted(utf8);
        return root.TryGetProperty("op", out var op) && op.ValueKind is not JsonValueKind.Null ? op.GetRawText() : null;
    }

    /// <summary>The frame with "op" set to <paramref name="name"/> and "type" removed (rare: only frames that carry both, or "ota").</summary>
    private static byte[] Renamed(ReadOnlySpan<byte> utf8, string name)
    {
        // Member by member, not through JsonNode: a key given twice (which JsonObject refuses) stays twice, and the
        // decoder takes the last, as json-c does.
        var root = ProtocolCodec.ParseAccepted(utf8);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(utf8.Length + 16);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("op", name);
            foreach (var p in root.EnumerateObject())
                if (!p.NameEquals("type"u8) && !p.NameEquals("op"u8)) p.WriteTo(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
