using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Admin;

/// <summary>/api/v1/devices: the directory, one device, desired auth_mode, and commands (ADMIN_API.md).</summary>
public static class DevicesApi
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    public static IEndpointRouteBuilder MapDevicesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices").WithTags("devices");
        api.MapGet("/", List).WithName("ListDevices");
        api.MapGet("/{deviceId}", Get).WithName("GetDevice");
        api.MapPut("/{deviceId}/gateways/{gwId}/auth-mode", SetAuthMode).WithName("SetAuthMode");
        api.MapPost("/{deviceId}/commands", Submit).WithName("SubmitCommand");
        api.MapGet("/{deviceId}/commands", ListCommands).WithName("ListCommands");
        api.MapGet("/{deviceId}/commands/{commandId}", GetCommand).WithName("GetCommand");
        api.MapDelete("/{deviceId}/commands/{commandId}", Cancel).WithName("CancelCommand");
        return app;
    }

    public sealed record DeviceList(IReadOnlyList<DeviceSummary> Items, string? NextCursor);

    private static async Task<Results<Ok<DeviceList>, ProblemHttpResult>> List(
        DirectoryStore store, NodeIdentity node, string? online, string? gw_id, string? q, string? limit, string? cursor,
        CancellationToken ct)
    {
        bool? onlineFilter = online switch
        {
            null or "" => null,
            "true" => true,
            "false" => false,
            _ => null,
        };
        if (online is not (null or "" or "true" or "false"))
            return Problems.BadRequest($"online '{online}' must be true or false");
        var n = 100;
        if (!string.IsNullOrEmpty(limit) && (!int.TryParse(limit, out n) || n is < 1 or > 1000))
            return Problems.BadRequest($"limit '{limit}' must be an integer from 1 to 1000");
        string? after = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            try { after = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(cursor)); }
            catch (FormatException) { return Problems.BadRequest($"cursor '{cursor}' is not a cursor this API returned"); }
        }
        var (items, next) = await store.QueryAsync(new DirectoryQuery(onlineFilter, string.IsNullOrEmpty(gw_id) ? null : gw_id, q, n, after),
            node.LiveNodes(), ct);
        return TypedResults.Ok(new DeviceList(items, next is null ? null : System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(next))));
    }

    private static async Task<Results<Ok<DeviceView>, ProblemHttpResult>> Get(string deviceId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return NeverSeen(deviceId);
        return await Ask(region, new GetDevice(deviceId), ct) switch
        {
            DeviceFound f => TypedResults.Ok(f.View),
            DeviceNotFound => NeverSeen(deviceId),
            var other => Unexpected(other),
        };
    }

    private static async Task<Results<Ok<GatewayView>, ProblemHttpResult>> SetAuthMode(string deviceId, string gwId,
        HttpRequest request, IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return NeverSeen(deviceId);
        var (body, problem) = await ReadObject(request, ct);
        if (problem is not null) return Problems.BadRequest(problem);
        if (body!["auth_mode"] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue(out int mode))
            return Problems.BadRequest($"auth_mode must be an integer, got {body["auth_mode"]?.ToJsonString() ?? "nothing"}");
        if (mode < 0) return Problems.BadRequest($"auth_mode must not be negative, got {mode}");
        return await Ask(region, new SetDesiredAuthMode(deviceId, gwId, mode), ct) switch
        {
            GatewayUpdated u => TypedResults.Ok(u.View),
            DeviceNotFound => NeverSeen(deviceId),
            GatewayNotFound => Problems.NotFound($"device '{deviceId}' has not reported a gateway '{gwId}'"),
            var other => Unexpected(other),
        };
    }

    private static async Task<Results<Accepted<CommandView>, Ok<CommandView>, ProblemHttpResult>> Submit(string deviceId,
        HttpRequest request, IRequiredActor<DeviceEntity> region, IOptions<FleetSettings> options, string? wait,
        string? ttl, string? timeout, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return NeverSeen(deviceId);
        var settings = options.Value.Commands;
        var waitProblem = ParseSeconds("wait", wait, 0, settings.MaxWaitSeconds, 0, out var waitSeconds);
        var ttlProblem = ParseSeconds("ttl", ttl, 1, int.MaxValue, settings.DefaultTtlSeconds, out var ttlSeconds);
        var timeoutProblem = ParseSeconds("timeout", timeout, 1, 86400, settings.DefaultTimeoutSeconds, out var timeoutSeconds);
        var problem = waitProblem ?? ttlProblem ?? timeoutProblem;
        string? json = null;
        if (problem is null) (json, problem) = await ReadRequest(request, deviceId, ct);
        // The entity answers 404 before 400: a command for a device never seen is "not found", whatever it says.
        var reply = await Ask(region, new SubmitCommand(deviceId, json, problem, ttlSeconds, timeoutSeconds), ct);
        if (reply is DeviceNotFound) return NeverSeen(deviceId);
        if (reply is CommandInvalid invalid) return Problems.BadRequest(invalid.Problem);
        if (reply is not CommandFound accepted) return Unexpected(reply);
        var location = $"/api/v1/devices/{deviceId}/commands/{accepted.View.CommandId}";
        if (waitSeconds == 0) return TypedResults.Accepted(location, accepted.View);
        try
        {
            var done = await region.ActorRef.Ask<IAdminReply>(new AwaitCommand(deviceId, accepted.View.CommandId),
                TimeSpan.FromSeconds(waitSeconds), ct);
            if (done is CommandFound f) return TypedResults.Ok(f.View);
        }
        catch (AskTimeoutException)
        {
        }
        var now = await Ask(region, new GetCommand(deviceId, accepted.View.CommandId), ct);
        return now is CommandFound c
            ? c.View.Status is "queued" or "sent" ? TypedResults.Accepted(location, c.View) : TypedResults.Ok(c.View)
            : TypedResults.Accepted(location, accepted.View);
    }

    private static async Task<Results<Ok<CommandList>, ProblemHttpResult>> ListCommands(string deviceId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return NeverSeen(deviceId);
        return await Ask(region, new GetCommands(deviceId), ct) switch
        {
            CommandList l => TypedResults.Ok(l),
            DeviceNotFound => NeverSeen(deviceId),
            var other => Unexpected(other),
        };
    }

    private static async Task<Results<Ok<CommandView>, ProblemHttpResult>> GetCommand(string deviceId, string commandId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return NeverSeen(deviceId);
        return await Ask(region, new GetCommand(deviceId, commandId), ct) switch
        {
            CommandFound f => TypedResults.Ok(f.View),
            DeviceNotFound => NeverSeen(deviceId),
            CommandNotFound => Problems.NotFound($"device '{deviceId}' has no command '{commandId}'"),
            var other => Unexpected(other),
        };
    }

    private static async Task<Results<Ok<CommandView>, ProblemHttpResult>> Cancel(string deviceId, string commandId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return NeverSeen(deviceId);
        return await Ask(region, new CancelCommand(deviceId, commandId), ct) switch
        {
            CommandFound f => TypedResults.Ok(f.View),
            DeviceNotFound => NeverSeen(deviceId),
            CommandNotFound => Problems.NotFound($"device '{deviceId}' has no command '{commandId}'"),
            CommandConflict c => Problems.Conflict(c.Problem),
            var other => Unexpected(other),
        };
    }

    // ------------------------------------------------------------------ helpers

    private static ProblemHttpResult NeverSeen(string deviceId) =>
        Problems.NotFound($"device '{deviceId}' has never connected to this fleet");

    private static ProblemHttpResult Unexpected(object reply) => reply is NoAnswer n
        ? Problems.Timeout($"device '{n.DeviceId}' did not answer within {AskTimeout.TotalSeconds:0} s")
        : Problems.Result(500, "Unexpected reply", $"the device entity answered {reply.GetType().Name}");

    /// <summary>The entity did not answer in time (never sent anywhere; only the HTTP layer makes it).</summary>
    private sealed record NoAnswer(string DeviceId) : IAdminReply;

    private static async Task<IAdminReply> Ask(IRequiredActor<DeviceEntity> region, IToDeviceEntity message, CancellationToken ct)
    {
        try
        {
            return await region.ActorRef.Ask<IAdminReply>(message, AskTimeout, ct);
        }
        catch (AskTimeoutException)
        {
            return new NoAnswer(message.DeviceId);
        }
    }

    private static string? ParseSeconds(string name, string? raw, int min, int max, int fallback, out int value)
    {
        value = fallback;
        if (string.IsNullOrEmpty(raw)) return null;
        if (int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value)
            && value >= min && value <= max) return null;
        value = fallback;
        return $"{name} '{raw}' must be a whole number of seconds from {min} to {max}";
    }

    private const int MaxBodyBytes = 64 * 1024;

    private static async Task<(JsonObject? Body, string? Problem)> ReadObject(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > MaxBodyBytes) return (null, $"the body is larger than {MaxBodyBytes} bytes");
        using var ms = new MemoryStream();
        await request.Body.CopyToAsync(ms, ct);
        if (ms.Length == 0) return (null, "the body is empty; send a JSON object");
        if (ms.Length > MaxBodyBytes) return (null, $"the body is larger than {MaxBodyBytes} bytes");
        try
        {
            return JsonNode.Parse(ms.ToArray()) is JsonObject o ? (o, null) : (null, "the body must be a JSON object");
        }
        catch (JsonException ex)
        {
            return (null, $"the body is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>The body is the protocol request minus what the path says; it is decoded by the protocol codec.</summary>
    private static async Task<(string? Json, string? Problem)> ReadRequest(HttpRequest request, string deviceId, CancellationToken ct)
    {
        var (body, problem) = await ReadObject(request, ct);
        if (problem is not null) return (null, problem);
        if (body!["type"] is not JsonValue t || t.GetValueKind() != JsonValueKind.String)
            return (null, "type is required: one of " + string.Join(", ", RequestKinds.All.Select(k => k.Type)));
        var type = t.GetValue<string>();
        if (RequestKinds.Find(type) is null)
            return (null, $"type '{type}' is not a command type; use one of " + string.Join(", ", RequestKinds.All.Select(k => k.Type)));
        if (type == KickoffRequest.TypeName)
        {
            if (body["device_id"] is null) body["device_id"] = deviceId;
            else if (body["device_id"] is not JsonValue d || d.GetValueKind() != JsonValueKind.String || d.GetValue<string>() != deviceId)
                return (null, $"device_id in the body ({body["device_id"]!.ToJsonString()}) differs from the path ('{deviceId}')");
        }
        body.Remove("req_id"); // the controller sets req_id (the command id)
        var json = body.ToJsonString();
        var decoded = ProtocolCodec.DecodeFromController(json);
        if (decoded.Error is { } e)
            return (null, e.Kind switch
            {
                DecodeErrorKind.MissingField => $"{e.Field} is required for {type}",
                DecodeErrorKind.WrongKind when e.Field is not null => $"{e.Field} has the wrong type: {e.Message}",
                _ => e.Message,
            });
        return (json, null);
    }
}
