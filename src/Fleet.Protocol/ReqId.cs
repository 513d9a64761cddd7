using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fleet.Protocol;

/// <summary>
/// A request correlation id as upstream firmware echoes it: a JSON number or a JSON string.
/// The kind is kept so an echo is written back exactly as it came.
/// </summary>
[JsonConverter(typeof(ReqIdJsonConverter))]
public readonly record struct ReqId(string Value, bool IsNumber)
{
    public static ReqId Of(string value) => new(value, false);
    public override string ToString() => Value;
}

public sealed class ReqIdJsonConverter : JsonConverter<ReqId>
{
    public override ReqId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.String => new ReqId(reader.GetString()!, false),
            JsonTokenType.Number => new ReqId(ReadRaw(ref reader), true),
            _ => throw new JsonException("req_id must be a number or a string"),
        };

    /// <summary>The number's JSON text as sent, so an echo is byte-identical.</summary>
    internal static string ReadRaw(ref Utf8JsonReader reader) =>
        System.Text.Encoding.UTF8.GetString(reader.HasValueSequence
            ? System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence)
            : reader.ValueSpan.ToArray());

    public override void Write(Utf8JsonWriter writer, ReqId value, JsonSerializerOptions options)
    {
        if (value.IsNumber) writer.WriteRawValue(value.Value, skipInputValidation: false);
        else writer.WriteStringValue(value.Value);
    }
}
