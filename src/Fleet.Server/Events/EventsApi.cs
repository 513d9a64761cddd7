using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Fleet.Server.Events;

/// <summary>GET /api/v1/events: the cluster's events as Server-Sent Events (docs/ADMIN_API.md, "Event stream").</summary>
public static class EventsApi
{
    public const string KeepAlive = "keep-alive";
    public static readonly TimeSpan KeepAliveEvery = TimeSpan.FromSeconds(15);

    public static IEndpointRouteBuilder MapEventsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/events", Stream).WithTags("operations").WithName("StreamEvents").RequireAuthorization(Policies.Viewer);
        return app;
    }

    /// <summary>Which events a stream wants, from its query string; or why the query is wrong.</summary>
    public static (Func<FleetEvent, bool>? Filter, string? Problem) ParseFilter(string? deviceId, string? types)
    {
        if (!string.IsNullOrEmpty(deviceId) && !FieldRules.IsDeviceId(deviceId))
            return (null, $"device_id '{deviceId}' is not a device id");
        HashSet<string>? wanted = null;
        if (!string.IsNullOrWhiteSpace(types))
        {
            wanted = [];
            foreach (var t in types.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!FleetEvent.Types.Contains(t))
                    return (null, $"types: '{t}' is not an event type (one of {string.Join(", ", FleetEvent.Types.Order())})");
                wanted.Add(t);
            }
        }
        var device = string.IsNullOrEmpty(deviceId) ? null : deviceId;
        return (e => (device is null || e.DeviceId == device) && (wanted is null || wanted.Contains(e.Type)), null);
    }

    private static Results<ServerSentEventsResult<string>, ProblemHttpResult> Stream(
        [FromQuery(Name = "device_id")] string? deviceId, [FromQuery(Name = "types")] string? types,
        HttpContext ctx, EventHub hub)
    {
        var (filter, problem) = ParseFilter(deviceId, types);
        if (filter is null) return Problems.BadRequest(problem!);
        // nginx passes the stream through as it comes (no proxy buffering) when the response says so.
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        ctx.Response.Headers.CacheControl = "no-cache";
        var subscription = hub.Subscribe(filter);
        return TypedResults.ServerSentEvents(Items(subscription, ctx.RequestAborted));
    }

    /// <summary>The event JSON: snake_case, fields that do not apply to the type left out.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private static async IAsyncEnumerable<SseItem<string>> Items(EventHub.Subscription subscription,
        [EnumeratorCancellation] CancellationToken ct)
    {
        using var _ = subscription;
        long id = 0;
        // The headers go out at once with a first keep-alive: a client that reads it knows it is subscribed.
        yield return new SseItem<string>("{}", KeepAlive);
        while (!ct.IsCancellationRequested)
        {
            var (ended, next) = await NextAsync(subscription.Events, ct);
            if (ended) yield break; // the client left, it fell too far behind, or the node is stopping
            yield return next is null
                ? new SseItem<string>("{}", KeepAlive)
                : new SseItem<string>(JsonSerializer.Serialize(next, Json), next.Type)
                    { EventId = (++id).ToString(System.Globalization.CultureInfo.InvariantCulture) };
        }
    }

    /// <summary>The next event, or none after <see cref="KeepAliveEvery"/> (time for a keep-alive), or the end.</summary>
    private static async Task<(bool Ended, FleetEvent? Next)> NextAsync(System.Threading.Channels.ChannelReader<FleetEvent> reader,
        CancellationToken ct)
    {
        if (reader.TryRead(out var ready)) return (false, ready);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(KeepAliveEvery);
        try
        {
            if (!await reader.WaitToReadAsync(wait.Token)) return (true, null);
            return (false, reader.TryRead(out var e) ? e : null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return (false, null); }
        catch (OperationCanceledException) { return (true, null); }
        catch (System.Threading.Channels.ChannelClosedException) { return (true, null); }
    }
}
