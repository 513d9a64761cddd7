using Akka.Actor;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Commands;

/// <summary>/api/v1/devices/{device_id}/commands: submit, list, read, cancel (ADMIN_API.md).</summary>
public static class CommandsApi
{
    public static IEndpointRouteBuilder MapCommandsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices/{deviceId}/commands").WithTags("commands");
        api.MapPost("/", Submit).WithName("SubmitCommand").Accepts<object>("application/json").RequireAuthorization(Policies.Operator);
        api.MapGet("/", List).WithName("ListCommands").RequireAuthorization(Policies.Viewer);
        api.MapGet("/{commandId}", Get).WithName("GetCommand").RequireAuthorization(Policies.Viewer);
        api.MapDelete("/{commandId}", Cancel).WithName("CancelCommand").RequireAuthorization(Policies.Operator);
        return app;
    }

    /// <summary>?wait=&amp;ttl=&amp;timeout= as text, so that a bad value gets our own 400.</summary>
    public sealed record SubmitQuery(
        [FromQuery(Name = "wait")] string? Wait, [FromQuery(Name = "ttl")] string? Ttl, [FromQuery(Name = "timeout")] string? Timeout)
    {
        public (int Wait, int Ttl, int Timeout, string? Problem) Parse(CommandSettings settings)
        {
            var waitProblem = Seconds("wait", Wait, 0, settings.MaxWaitSeconds, 0, out var wait);
            var ttlProblem = Seconds("ttl", Ttl, 1, int.MaxValue, settings.DefaultTtlSeconds, out var ttl);
            var timeoutProblem = Seconds("timeout", Timeout, 1, 86400, settings.DefaultTimeoutSeconds, out var timeout);
            var problem = waitProblem ?? ttlProblem ?? timeoutProblem;
            return problem is null
                ? (wait, ttl, timeout, null)
                : (0, settings.DefaultTtlSeconds, settings.DefaultTimeoutSeconds, problem);
        }

        private static string? Seconds(string name, string? raw, int min, int max, int fallback, out int value)
        {
            value = fallback;
            if (string.IsNullOrEmpty(raw)) return null;
            if (int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value)
                && value >= min && value <= max) return null;
            value = fallback;
            return $"{name} '{raw}' must be a whole number of seconds from {min} to {max}";
        }
    }

    /// <summary>
    /// The body: the protocol request as the seed documents it, minus what the path says (a kickoff's
    /// device_id). Decoded and checked here, once, into a typed request; req_id is the controller's to set.
    /// </summary>
    public sealed record CommandBody(IControllerRequest? Request, string? Problem)
    {
        private static readonly string Types = string.Join(", ", RequestKinds.All.Select(k => k.Type));

        public static async ValueTask<CommandBody?> BindAsync(HttpContext context)
        {
            var (bytes, problem) = await JsonBody.ReadAsync(context.Request);
            if (problem is not null) return new(null, problem);
            var deviceId = context.Request.RouteValues["deviceId"] as string;
            var decoded = ProtocolCodec.DecodeFromController(bytes,
                m => m is KickoffRequest { DeviceId: null } k ? k with { DeviceId = deviceId } : m);
            if (decoded.Error is { } e)
                return new(null, e.Kind switch
                {
                    DecodeErrorKind.NotJson => $"the body is not valid JSON (stops at byte {e.Position})",
                    DecodeErrorKind.NotObject => "the body must be a JSON object",
                    DecodeErrorKind.MissingType => "type is required: one of " + Types,
                    DecodeErrorKind.UnknownType => $"type '{e.Type}' is not a command type; use one of " + Types,
                    DecodeErrorKind.MissingField => $"{e.Field} is required for {e.Type}",
                    DecodeErrorKind.WrongKind when e.Field is not null => $"{e.Field} has the wrong type: {e.Message}",
                    _ => e.Message,
                });
            return decoded.Message switch
            {
                KickoffRequest k when k.DeviceId != deviceId =>
                    new(null, $"device_id in the body ('{k.DeviceId}') differs from the path ('{deviceId}')"),
                IControllerRequest r when RequestKinds.Find(r.Type) is not null => new(r, null),
                var other => new(null, $"type '{other!.Type}' is not a command type; use one of " + Types),
            };
        }
    }

    private static async Task<Results<Accepted<CommandView>, Ok<CommandView>, ProblemHttpResult>> Submit(string deviceId,
        CommandBody body, [AsParameters] SubmitQuery query, IRequiredActor<DeviceEntity> region, IOptions<FleetSettings> options,
        CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        var (wait, ttl, timeout, problem) = query.Parse(options.Value.Commands);
        var commandId = "c" + Guid.CreateVersion7().ToString("N");
        // The entity answers 404 before 400: a command for a device never seen is "not found", whatever it says.
        var reply = await region.Ask(new SubmitCommand(deviceId, commandId, body.Request, problem ?? body.Problem, ttl, timeout), ct);
        if (reply is DeviceNotFound) return EntityAsk.NeverSeen(deviceId);
        if (reply is CommandInvalid invalid) return Problems.BadRequest(invalid.Problem);
        if (reply is not CommandFound accepted) return EntityAsk.Unexpected(reply);
        var location = $"/api/v1/devices/{deviceId}/commands/{commandId}";
        if (wait == 0) return TypedResults.Accepted(location, accepted.View);
        try
        {
            if (await region.ActorRef.Ask<IAdminReply>(new AwaitCommand(deviceId, commandId), TimeSpan.FromSeconds(wait), ct)
                is CommandFound f) return TypedResults.Ok(f.View);
        }
        catch (AskTimeoutException)
        {
        }
        var now = await region.Ask(new GetCommand(deviceId, commandId), ct);
        return now is CommandFound c
            ? c.View.Status is "queued" or "sent" ? TypedResults.Accepted(location, c.View) : TypedResults.Ok(c.View)
            : TypedResults.Accepted(location, accepted.View);
    }

    private static async Task<Results<Ok<CommandList>, ProblemHttpResult>> List(string deviceId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        return await region.Ask(new GetCommands(deviceId), ct) switch
        {
            CommandList l => TypedResults.Ok(l),
            DeviceNotFound => EntityAsk.NeverSeen(deviceId),
            var other => EntityAsk.Unexpected(other),
        };
    }

    private static async Task<Results<Ok<CommandView>, ProblemHttpResult>> Get(string deviceId, string commandId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        return await region.Ask(new GetCommand(deviceId, commandId), ct) switch
        {
            CommandFound f => TypedResults.Ok(f.View),
            DeviceNotFound => EntityAsk.NeverSeen(deviceId),
            CommandNotFound => Problems.NotFound($"device '{deviceId}' has no command '{commandId}'"),
            var other => EntityAsk.Unexpected(other),
        };
    }

    private static async Task<Results<Ok<CommandView>, ProblemHttpResult>> Cancel(string deviceId, string commandId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        return await region.Ask(new CancelCommand(deviceId, commandId), ct) switch
        {
            CommandFound f => TypedResults.Ok(f.View),
            DeviceNotFound => EntityAsk.NeverSeen(deviceId),
            CommandNotFound => Problems.NotFound($"device '{deviceId}' has no command '{commandId}'"),
            CommandConflict c => Problems.Conflict(c.Problem),
            var other => EntityAsk.Unexpected(other),
        };
    }
}
