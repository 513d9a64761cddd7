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
        api.MapPost("/", Submit).WithName("SubmitCommand").Accepts<object>("application/json").RequireAuthorization(Policies.Operator)
            .Audited("command.submit");
        api.MapGet("/", List).WithName("ListCommands").RequireAuthorization(Policies.Viewer);
        api.MapGet("/{commandId}", Get).WithName("GetCommand").RequireAuthorization(Policies.Viewer);
        api.MapDelete("/{commandId}", Cancel).WithName("CancelCommand").RequireAuthorization(Policies.Operator)
            .Audited("command.cancel");
        return app;
    }

    /// <summary>Longest ttl (7 days) and timeout (1 hour) a command may ask for; see docs/ADMIN_API.md.</summary>
    public const int MaxTtlSeconds = 7 * 86400;
    public const int MaxTimeoutSeconds = 3600;

    /// <summary>?wait=&amp;ttl=&amp;timeout=&amp;allow_any_url= as text, so that a bad value gets our own 400.</summary>
    public sealed record SubmitQuery(
        [FromQuery(Name = "wait")] string? Wait, [FromQuery(Name = "ttl")] string? Ttl, [FromQuery(Name = "timeout")] string? Timeout,
        [FromQuery(Name = "allow_any_url")] string? AllowAnyUrl)
    {
        public (int Wait, int Ttl, int Timeout, bool AllowAnyUrl, string? Problem) Parse(CommandSettings settings)
        {
            var waitProblem = Seconds("wait", Wait, 0, settings.MaxWaitSeconds, 0, out var wait);
            var ttlProblem = Seconds("ttl", Ttl, 1, MaxTtlSeconds, settings.DefaultTtlSeconds, out var ttl);
            var timeoutProblem = Seconds("timeout", Timeout, 1, MaxTimeoutSeconds, settings.DefaultTimeoutSeconds, out var timeout);
            var anyUrlProblem = AllowAnyUrl is null or "" or "true" or "false" ? null : $"allow_any_url '{AllowAnyUrl}' must be true or false";
            var problem = waitProblem ?? ttlProblem ?? timeoutProblem ?? anyUrlProblem;
            return problem is null
                ? (wait, ttl, timeout, AllowAnyUrl == "true", null)
                : (0, settings.DefaultTtlSeconds, settings.DefaultTimeoutSeconds, false, problem);
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
    /// Idempotency-Key: a retry of a POST carrying the same key for the same device names the same command
    /// (its id is derived from the two), so it returns that command instead of queuing another.
    /// </summary>
    public static (string? CommandId, string? Problem) CommandIdFor(string deviceId, string? idempotencyKey)
    {
        if (idempotencyKey is null) return ("c" + Guid.CreateVersion7().ToString("N"), null);
        if (idempotencyKey.Length is 0 or > 200 || idempotencyKey.Any(ch => ch is < '!' or > '~'))
            return (null, "Idempotency-Key must be 1 to 200 printable ASCII characters without spaces");
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(deviceId + "\n" + idempotencyKey));
        return ("k" + Convert.ToHexStringLower(hash.AsSpan(0, 16)), null);
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
        CommandBody body, [AsParameters] SubmitQuery query, HttpContext ctx, IRequiredActor<DeviceEntity> region,
        IOptions<FleetSettings> options, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        var (wait, ttl, timeout, allowAnyUrl, problem) = query.Parse(options.Value.Commands);
        var (commandId, keyProblem) = CommandIdFor(deviceId, ctx.Request.Headers["Idempotency-Key"].FirstOrDefault());
        if (keyProblem is not null) return Problems.BadRequest(keyProblem);
        if (body.Request is { } request)
        {
            ctx.AddDetail($"type={request.Type} command={commandId}");
            if (Refused(request, allowAnyUrl, ctx, options.Value.Security) is { } refused) return refused;
        }
        // The entity answers 404 before 400: a command for a device never seen is "not found", whatever it says.
        var reply = await region.Ask(new SubmitCommand(deviceId, commandId!, body.Request, problem ?? body.Problem, ttl, timeout), ct);
        if (reply is DeviceNotFound) return EntityAsk.NeverSeen(deviceId);
        if (reply is EntityAsk.Interrupted)
            return Problems.Unavailable($"this node is shutting down; the command may have been accepted: retry with the same " +
                                        $"Idempotency-Key (another node answers), which returns it if it was");
        if (reply is EntityAsk.NoAnswer)
            return Problems.Timeout($"device '{deviceId}' did not answer within {EntityAsk.Timeout.TotalSeconds:0} s; the command " +
                                    $"may still have been accepted (a busy journal can take longer): look for {commandId} in GET " +
                                    $"/api/v1/devices/{deviceId}/commands, or retry with the same Idempotency-Key, which returns it if it was");
        if (reply is CommandInvalid invalid) return Problems.BadRequest(invalid.Problem);
        if (reply is CommandRefused r) return Problems.Result(r.Status, r.Title, r.Problem);
        if (reply is CommandConflict conflict) return Problems.Conflict(conflict.Problem);
        if (reply is not CommandFound accepted) return EntityAsk.Unexpected(reply);
        var location = $"/api/v1/devices/{deviceId}/commands/{commandId}";
        if (accepted.Replayed) ctx.Response.Headers["Idempotent-Replayed"] = "true";
        if (wait == 0 || accepted.View.Status is not ("queued" or "sent"))
            return accepted.View.Status is "queued" or "sent" ? TypedResults.Accepted(location, accepted.View) : TypedResults.Ok(accepted.View);
        try
        {
            // Not final: the entity stopped (handoff) before the command ended; say where it stands now.
            if (await region.ActorRef.Ask<IAdminReply>(new AwaitCommand(deviceId, commandId!), TimeSpan.FromSeconds(wait), ct)
                is CommandFound { View.Status: not ("queued" or "sent") } f) return TypedResults.Ok(f.View);
        }
        catch (AskTimeoutException)
        {
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // This node is stopping: the command is accepted; where it stands, another node answers.
            return TypedResults.Accepted(location, accepted.View);
        }
        var now = await region.Ask(new GetCommand(deviceId, commandId!), ct);
        return now is CommandFound c
            ? c.View.Status is "queued" or "sent" ? TypedResults.Accepted(location, c.View) : TypedResults.Ok(c.View)
            : TypedResults.Accepted(location, accepted.View);
    }

    /// <summary>
    /// What the caller's role or the fleet's rules do not allow: privileged requests (admin only), firmware
    /// outside Fleet:Security:FirmwareUrlPrefixes (unless an admin says allow_any_url=true, which the audit row records).
    /// </summary>
    public static ProblemHttpResult? Refused(IControllerRequest request, bool allowAnyUrl, HttpContext ctx, SecuritySettings security)
    {
        var caller = ctx.Caller();
        if (RequestKinds.PrivilegedTypes.Contains(request.Type) && caller.Role < Role.Admin)
            return Problems.Result(403, "Forbidden",
                $"{request.Type} is privileged (it runs commands on the router or points it at another server): only an admin key may send it");
        if (allowAnyUrl && caller.Role < Role.Admin)
            return Problems.Result(403, "Forbidden", "allow_any_url=true needs an admin key");
        if (request is FirmwareUpgradeRequest { Url: { } url } && security.FirmwareUrlPrefixes.Length > 0
            && !security.FirmwareUrlPrefixes.Any(p => url.StartsWith(p, StringComparison.Ordinal)))
        {
            if (!allowAnyUrl)
                return Problems.BadRequest($"url must start with one of Fleet:Security:FirmwareUrlPrefixes ({string.Join(", ", security.FirmwareUrlPrefixes)}); " +
                                           "an admin may override with ?allow_any_url=true");
            ctx.AddDetail($"firmware url outside FirmwareUrlPrefixes allowed by admin: {url}");
        }
        return null;
    }

    private static async Task<Results<Ok<CommandList>, ProblemHttpResult>> List(string deviceId, HttpContext ctx,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        return await region.Ask(new GetCommands(deviceId), ct) switch
        {
            CommandList l => TypedResults.Ok(ForCaller(ctx) ? l : new CommandList(l.Items.Select(v => v.Redacted()).ToList())),
            DeviceNotFound => EntityAsk.NeverSeen(deviceId),
            var other => EntityAsk.Unexpected(other),
        };
    }

    /// <summary>Whether the caller may see secrets in command views (client tokens): operators and admins.</summary>
    private static bool ForCaller(HttpContext ctx) => ctx.Caller().Role >= Role.Operator;

    private static async Task<Results<Ok<CommandView>, ProblemHttpResult>> Get(string deviceId, string commandId, HttpContext ctx,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        return await region.Ask(new GetCommand(deviceId, commandId), ct) switch
        {
            CommandFound f => TypedResults.Ok(ForCaller(ctx) ? f.View : f.View.Redacted()),
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
