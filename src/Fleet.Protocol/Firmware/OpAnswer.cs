using System.Buffers;
using System.Text.Json;

namespace Fleet.Protocol;

/// <summary>
/// An answer as firmware of the op dialect (9.x) builds it, before <c>send_response</c> wraps it in the
/// envelope (FIRMWARE_FACTS.md E; src/api_handlers.c): <c>api_response_new(type)</c> gives
/// <c>{"type", "data":{}}</c>, the handler fills <c>data</c>, <c>api_response_set_success/_error</c> adds
/// <c>status</c>, <c>code</c> (0 on success) and <c>message</c> ("OK"/"Error" when none), then the request's
/// req_id and the field_descriptions are added. Failures are <c>status:"error"</c> with a code, never a
/// separate <c>*_error</c> type. <see cref="OpRouterDialect"/> writes it on the wire.
/// </summary>
public sealed record OpAnswer : IAnswerFrame
{
    public const string SuccessStatus = "success";
    public const string ErrorStatus = "error";

    /// <summary>data.type: <c>kickoff_response</c>, <c>generic_response</c>…</summary>
    public required string Type { get; init; }
    public string Status { get; init; } = SuccessStatus;
    /// <summary>0 on success; 400, 1000, 1002, 1003, 1004, 2000, 3000, 3001 on errors.</summary>
    public int Code { get; init; }
    public string Message { get; init; } = "OK";
    /// <summary>The inner data object; null writes <c>{}</c> (api_response_new always adds one).</summary>
    public JsonElement? Data { get; init; }
    /// <summary>The handler's own field_descriptions (get_firmware_info has one); null: generated from <see cref="Data"/>.</summary>
    public JsonElement? FieldDescriptions { get; init; }
    /// <summary>The request's req_id, echoed at the top and inside data; null when the request had none.</summary>
    public ReqId? ReqId { get; init; }

    public bool Succeeded => Status == SuccessStatus;
    public string? ErrorText => Succeeded ? null : Message;

    /// <summary><c>api_response_set_success</c>: an empty message becomes "OK".</summary>
    public static OpAnswer Ok(string type, string? message = null, JsonElement? data = null) =>
        new() { Type = type, Status = SuccessStatus, Code = 0, Message = string.IsNullOrEmpty(message) ? "OK" : message, Data = data };

    /// <summary><c>api_response_set_error</c>: code 0 becomes 1000, an empty message "Error".</summary>
    public static OpAnswer Fail(string type, int code, string? message, JsonElement? data = null) =>
        new() { Type = type, Status = ErrorStatus, Code = code == 0 ? 1000 : code, Message = string.IsNullOrEmpty(message) ? "Error" : message, Data = data };

    /// <summary>A value of <see cref="Data"/> as text (strings as they are, other values as JSON), or null.</summary>
    public string? DataText(string key) =>
        Data is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty(key, out var v)
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText()
            : null;
}

/// <summary>Small JSON values built with a writer, for answers and reports on the device side.</summary>
public static class FirmwareJson
{
    /// <summary>A JSON object written by <paramref name="body"/> (between the braces).</summary>
    public static JsonElement Object(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        var reader = new Utf8JsonReader(buffer.WrittenSpan);
        return JsonElement.ParseValue(ref reader);
    }

    /// <summary>A JSON string value.</summary>
    public static JsonElement String(string value) => JsonSerializer.SerializeToElement(value, ProtocolJsonContext.Default.String);

    /// <summary>An object of string values, in the given order.</summary>
    public static JsonElement Strings(IEnumerable<KeyValuePair<string, string>> values) =>
        Object(w =>
        {
            foreach (var (k, v) in values) w.WriteString(k, v);
        });

    /// <summary>
    /// json-c's name of a value's type as <c>add_auto_field_descriptions</c> writes it: boolean, double,
    /// integer, string, array, object, or "unknown" (null). A JSON number is "double" when its text has a
    /// fraction or exponent (json-c keeps the two kinds apart; the wire text is all that is left of it).
    /// </summary>
    public static string JsonCTypeName(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Number => value.GetRawText().AsSpan().IndexOfAny(".eE") >= 0 ? "double" : "integer",
        JsonValueKind.String => "string",
        JsonValueKind.Array => "array",
        JsonValueKind.Object => "object",
        _ => "unknown",
    };
}
