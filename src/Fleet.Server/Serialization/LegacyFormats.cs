using System.Text.Json.Nodes;

namespace Fleet.Server.Serialization;

/// <summary>
/// Upcasters for what earlier releases wrote to the journal. Until this release commands kept their
/// request and answer as JSON strings (RequestJson, ResponseJson) and a Type beside them; now the request
/// is a typed protocol record (stored as its JSON object) and the answer a JSON value.
/// </summary>
public static class LegacyFormats
{
    /// <summary>cq: {CommandId, Type, RequestJson, At, ExpiresAt, TimeoutSeconds}.</summary>
    public static JsonNode CommandQueuedV1(JsonNode e) => Command(e);

    /// <summary>cc: {CommandId, Status, ResponseJson, Error, At}.</summary>
    public static JsonNode CommandCompletedV1(JsonNode e) => Command(e);

    /// <summary>ds: the snapshot, whose Commands are records of the first shape.</summary>
    public static JsonNode DeviceStateV1(JsonNode s)
    {
        if (s["Commands"] is JsonArray commands)
            foreach (var c in commands)
                if (c is not null) Command(c);
        return s;
    }

    private static JsonNode Command(JsonNode c)
    {
        var o = c.AsObject();
        if (o["RequestJson"] is JsonValue request)
        {
            o["Request"] = JsonNode.Parse(request.GetValue<string>());
            o.Remove("RequestJson");
        }
        if (o["ResponseJson"] is JsonValue response)
        {
            o["Response"] = JsonNode.Parse(response.GetValue<string>());
            o.Remove("ResponseJson");
        }
        o.Remove("Type"); // the request's own type now
        return o;
    }
}
