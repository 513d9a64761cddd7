using System.CommandLine;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Web;

namespace Fleet.Cli;

/// <summary>
/// fleetctl events: follows GET /api/v1/events (Server-Sent Events, docs/ADMIN_API.md "Event stream") and prints
/// each event as a line, or with --json its data as is. Ends when the node ends the stream, or on Ctrl-C.
/// </summary>
public static class EventsCommand
{
    public static Command Build(Session session)
    {
        var deviceId = new Option<string?>("--device-id") { Description = "only this device's events" };
        var types = new Option<string[]>("--types")
        {
            Description = "only these types, comma-separated or repeated: device.online, device.offline, command.status, " +
                          "frame.refused, device.cloned, alert.opened, alert.resolved",
            HelpName = "TYPE,…",
        };
        var events = new Command("events", "follow the live event stream, one line per event") { deviceId, types };
        session.Act(events, async (parse, api, ct) =>
        {
            var query = HttpUtility.ParseQueryString("");
            if (parse.GetValue(deviceId) is { Length: > 0 } id) query["device_id"] = id;
            var wanted = (parse.GetValue(types) ?? []).SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .ToArray();
            if (wanted.Length > 0) query["types"] = string.Join(',', wanted);
            var path = "/api/v1/events" + (query.Count > 0 ? "?" + query : "");
            using var response = await api.OpenStreamAsync(path, "text/event-stream", ct);
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            var json = session.Json(parse);
            try
            {
                await foreach (var item in SseParser.Create(stream).EnumerateAsync(ct))
                {
                    // The node's keep-alives (the first one says the subscription is live) are not events to show.
                    if (item.EventType == "keep-alive") continue;
                    session.Line(json ? item.Data : Line(item.EventType, item.Data));
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl-C: the stream is live only, so stopping is the normal end.
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                throw new FleetctlException(ExitCodes.Error, $"the event stream from {api.BaseUrl} broke: {e.Message}");
            }
            return ExitCodes.Ok;
        });
        return events;
    }

    /// <summary>"at type device_id name=value …": the fields every event has first, then the rest in the order sent.</summary>
    public static string Line(string eventType, string data)
    {
        JsonObject? e;
        try { e = JsonNode.Parse(data) as JsonObject; }
        catch (JsonException) { e = null; }
        if (e is null) return $"{eventType} {data}";
        var line = new StringBuilder()
            .Append(Tables.Text(e["at"])).Append(' ')
            .Append(e["type"] is null ? eventType : Tables.Text(e["type"])).Append(' ')
            .Append(Tables.Text(e["device_id"]));
        // An alert event carries the alert as an object: its fields are shown as the event's own.
        var fields = e.Where(f => f.Key != "alert")
            .Concat(e["alert"] is JsonObject alert ? alert.Where(f => f.Key is not ("device_id" or "node" or "opened_at" or "resolved_at") && !e.ContainsKey(f.Key)) : []);
        foreach (var (name, value) in fields)
        {
            if (name is "at" or "type" or "device_id") continue;
            var text = Tables.Text(value);
            line.Append(' ').Append(name).Append('=')
                .Append(value is JsonValue && text.Any(char.IsWhiteSpace) ? JsonSerializer.Serialize(text) : text);
        }
        return line.ToString();
    }
}
