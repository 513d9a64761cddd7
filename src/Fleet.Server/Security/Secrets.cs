using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fleet.Server.Security;

/// <summary>Fields that are secrets wherever they appear in a request or an answer: client tokens (auth.token) and keys.</summary>
public static class Secrets
{
    public const string Mask = "(redacted)";
    private static readonly HashSet<string> Names = new(["token", "key", "password", "secret"], StringComparer.OrdinalIgnoreCase);

    /// <summary>The element with every secret field's value replaced by <see cref="Mask"/> (the element itself if it has none).</summary>
    public static JsonElement Redact(JsonElement e)
    {
        if (!HasSecret(e)) return e;
        var node = JsonNode.Parse(e.GetRawText())!;
        Mask_(node);
        return JsonSerializer.SerializeToElement(node);
    }

    /// <summary>A key in a URL's query string (a WebSocket path handed to a router: /ws/wifidogx?key=…).</summary>
    private static readonly System.Text.RegularExpressions.Regex QueryKey =
        new(@"([?&](?:key|token)=)[^&#]*", System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static bool HasSecret(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().Any(p => Names.Contains(p.Name) || HasSecret(p.Value)),
        JsonValueKind.Array => e.EnumerateArray().Any(HasSecret),
        JsonValueKind.String => QueryKey.IsMatch(e.GetString()!),
        _ => false,
    };

    private static void Mask_(JsonNode? n)
    {
        switch (n)
        {
            case JsonObject o:
                foreach (var name in o.Select(p => p.Key).ToList())
                    if (Names.Contains(name)) o[name] = Mask;
                    else if (o[name] is JsonValue v && v.TryGetValue<string>(out var text)) o[name] = QueryKey.Replace(text, "$1" + Mask);
                    else Mask_(o[name]);
                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                    if (a[i] is JsonValue v && v.TryGetValue<string>(out var text)) a[i] = QueryKey.Replace(text, "$1" + Mask);
                    else Mask_(a[i]);
                break;
        }
    }
}
