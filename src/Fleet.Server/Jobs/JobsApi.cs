using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Fleet.Server.Commands;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Jobs;

/// <summary>/api/v1/jobs and /api/v1/rollouts (docs/ADMIN_API.md, "Jobs", "Rollouts").</summary>
public static class JobsApi
{
    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/api/v1/jobs").WithTags("jobs");
        jobs.MapPost("/", CreateJob).WithName("CreateJob").Accepts<object>("application/json").RequireAuthorization(Policies.Operator)
            .Audited("job.create");
        jobs.MapGet("/", (HttpContext ctx, JobStore store, CancellationToken ct) => List(ctx, store, null, ct)).WithName("ListJobs")
            .RequireAuthorization(Policies.Viewer);
        jobs.MapGet("/{jobId}", (string jobId, IRequiredActor<JobEntity> region, CancellationToken ct) => Get(jobId, null, region, ct))
            .WithName("GetJob").RequireAuthorization(Policies.Viewer);
        jobs.MapGet("/{jobId}/devices", (string jobId, HttpContext ctx, IRequiredActor<JobEntity> region, CancellationToken ct) =>
            Devices(jobId, null, ctx, region, ct)).WithName("GetJobDevices").RequireAuthorization(Policies.Viewer);
        foreach (var action in new[] { "pause", "resume", "cancel" })
            jobs.MapPost("/{jobId}/" + action, (string jobId, HttpContext ctx, IRequiredActor<JobEntity> region, CancellationToken ct) =>
                    Control(jobId, action, null, ctx, region, ct))
                .WithName("Job_" + action).RequireAuthorization(Policies.Operator).Audited("job." + action);

        var rollouts = app.MapGroup("/api/v1/rollouts").WithTags("rollouts");
        rollouts.MapPost("/", CreateRollout).WithName("CreateRollout").Accepts<object>("application/json")
            .RequireAuthorization(Policies.Operator).Audited("rollout.create");
        rollouts.MapGet("/", (HttpContext ctx, JobStore store, CancellationToken ct) => List(ctx, store, JobSpec.RolloutKind, ct))
            .WithName("ListRollouts").RequireAuthorization(Policies.Viewer);
        rollouts.MapGet("/{jobId}", (string jobId, IRequiredActor<JobEntity> region, CancellationToken ct) =>
            Get(jobId, JobSpec.RolloutKind, region, ct)).WithName("GetRollout").RequireAuthorization(Policies.Viewer);
        rollouts.MapGet("/{jobId}/devices", (string jobId, HttpContext ctx, IRequiredActor<JobEntity> region, CancellationToken ct) =>
            Devices(jobId, JobSpec.RolloutKind, ctx, region, ct)).WithName("GetRolloutDevices").RequireAuthorization(Policies.Viewer);
        foreach (var action in new[] { "pause", "resume", "abort", "approve" })
            rollouts.MapPost("/{jobId}/" + action, (string jobId, HttpContext ctx, IRequiredActor<JobEntity> region, CancellationToken ct) =>
                    Control(jobId, action, JobSpec.RolloutKind, ctx, region, ct))
                .WithName("Rollout_" + action).RequireAuthorization(Policies.Operator).Audited("rollout." + action);
        return app;
    }

    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(30);

    /// <summary>What a dry run answers: the selection's count and (the first 1,000) ids; nothing is created.</summary>
    public sealed record DryRunResult(bool DryRun, long Count, IReadOnlyList<string> DeviceIds);

    public sealed record JobList(IReadOnlyList<JsonElement> Items, string? NextCursor);

    // ------------------------------------------------------------------ create

    private static async Task<IResult> CreateJob(HttpContext ctx, IRequiredActor<JobEntity> region, SelectionResolver resolver,
        IOptions<FleetSettings> options, TimeProvider clock, CancellationToken ct)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(ctx.Request);
        if (problem is not null) return Problems.BadRequest(problem);
        var (common, commonProblem) = Common.Parse(body, ["command", "wait_offline", "timeout_seconds"], clock.GetUtcNow());
        if (common is null) return Problems.BadRequest(commonProblem!);
        if (!body.TryGetProperty("command", out var commandJson) || commandJson.ValueKind != JsonValueKind.Object)
            return Problems.BadRequest("command is required: the protocol request to send to every device, e.g. {\"type\":\"get_firmware_info\"}");
        var (request, requestProblem) = DecodeCommand(commandJson, common.Selection.ClientMac is not null);
        if (request is null) return Problems.BadRequest(requestProblem!);
        if (CommandsApi.Refused(request, allowAnyUrl: false, ctx, options.Value.Security) is { } refused) return refused;
        if (TooLarge(request) is { } tooLarge) return Problems.BadRequest("command: " + tooLarge);
        var waitOffline = true;
        if (body.TryGetProperty("wait_offline", out var wo))
        {
            if (wo.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) return Problems.BadRequest("wait_offline must be true or false");
            waitOffline = wo.GetBoolean();
        }
        var (timeout, timeoutProblem) = Int(body, "timeout_seconds", 1, CommandsApi.MaxTimeoutSeconds, options.Value.Commands.DefaultTimeoutSeconds);
        if (timeoutProblem is not null) return Problems.BadRequest(timeoutProblem);
        var spec = new JobSpec(JobSpec.CommandKind, common.Name, common.Selection, request, common.Rate, common.Deadline, waitOffline, timeout,
            ctx.Caller().KeyName, clock.GetUtcNow());
        ctx.AddDetail($"type={request.Type}");
        return await Start(ctx, spec, common.DryRun, region, resolver, ct);
    }

    private static async Task<IResult> CreateRollout(HttpContext ctx, IRequiredActor<JobEntity> region, SelectionResolver resolver,
        IOptions<FleetSettings> options, TimeProvider clock, CancellationToken ct)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(ctx.Request);
        if (problem is not null) return Problems.BadRequest(problem);
        string[] own = ["url", "force", "release", "revision", "canary", "canary_percent", "wave_factor", "abort", "device_timeout_seconds",
            "retries", "windows", "zone", "zone_tag", "approval", "allow_any_url"];
        var (common, commonProblem) = Common.Parse(body, own, clock.GetUtcNow(), defaultRate: 60, defaultDeadline: 7 * 86400);
        if (common is null) return Problems.BadRequest(commonProblem!);
        var (rollout, rolloutProblem) = ParseRollout(body);
        if (rollout is null) return Problems.BadRequest(rolloutProblem!);
        var allowAnyUrl = body.TryGetProperty("allow_any_url", out var any) && any.ValueKind == JsonValueKind.True;
        if (CommandsApi.Refused(new FirmwareUpgradeRequest { Url = rollout.Url }, allowAnyUrl, ctx, options.Value.Security) is { } refused)
            return refused;
        // What the firmware does with the request, as a single firmware_upgrade command is checked (its URL length).
        var upgrade = new FirmwareUpgradeRequest { Url = rollout.Url, Force = rollout.Force };
        if ((FieldRules.CheckRequest(upgrade) ?? TooLarge(upgrade)) is { } unusable) return Problems.BadRequest(unusable);
        var spec = new JobSpec(JobSpec.RolloutKind, common.Name, common.Selection, null, common.Rate, common.Deadline, false, 0,
            ctx.Caller().KeyName, clock.GetUtcNow(), rollout);
        ctx.AddDetail($"release={rollout.Release} url={rollout.Url}");
        return await Start(ctx, spec, common.DryRun, region, resolver, ct);
    }

    private static async Task<IResult> Start(HttpContext ctx, JobSpec spec, bool dryRun, IRequiredActor<JobEntity> region,
        SelectionResolver resolver, CancellationToken ct)
    {
        if (dryRun)
        {
            var targets = await resolver.ResolveAsync(spec.Selection, ct);
            return TypedResults.Ok(new DryRunResult(true, targets.Count, targets.Take(1000).Select(t => t.DeviceId).ToList()));
        }
        var key = ctx.Request.Headers["Idempotency-Key"].FirstOrDefault();
        string jobId;
        if (key is null) jobId = "j" + Guid.CreateVersion7().ToString("N");
        else
        {
            var (derived, keyProblem) = CommandsApi.CommandIdFor("job:" + spec.Kind, key);
            if (keyProblem is not null) return Problems.BadRequest(keyProblem);
            jobId = "j" + derived![1..];
        }
        ctx.AddDetail("job=" + jobId);
        object reply;
        try { reply = await region.ActorRef.Ask<object>(new CreateJob(jobId, spec), AskTimeout, ct); }
        catch (AskTimeoutException)
        {
            return Problems.Timeout($"job {jobId} was not confirmed within {AskTimeout.TotalSeconds:0} s; it may still have been created: " +
                                    "retry with the same Idempotency-Key, which returns it if it was");
        }
        var location = (spec.Kind == JobSpec.RolloutKind ? "/api/v1/rollouts/" : "/api/v1/jobs/") + jobId;
        return reply switch
        {
            JobFound { Replayed: true } f => Replayed(ctx, f.View),
            JobFound f => TypedResults.Created(location, f.View),
            JobConflict c => Problems.Conflict(c.Problem),
            Status.Failure f => Problems.Unavailable("the selection could not be read from the directory: " + f.Cause.Message),
            var other => Problems.Result(500, "Unexpected reply", $"the job answered {other.GetType().Name}"),
        };
    }

    private static IResult Replayed(HttpContext ctx, JobView view)
    {
        ctx.Response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Ok(view);
    }

    /// <summary>What jobs and rollouts share: name, selection, rate, deadline, dry_run — and no unknown fields.</summary>
    private sealed record Common(string? Name, Selection Selection, int Rate, DateTimeOffset Deadline, bool DryRun)
    {
        public static (Common?, string?) Parse(JsonElement body, string[] own, DateTimeOffset now, int defaultRate = 600, int defaultDeadline = 86400)
        {
            string[] shared = ["name", "selection", "rate_per_minute", "deadline_seconds", "dry_run"];
            foreach (var p in body.EnumerateObject())
                if (!shared.Contains(p.Name) && !own.Contains(p.Name))
                    return (null, $"'{p.Name}' is not a field of this request; it takes {string.Join(", ", shared.Concat(own))}");
            string? name = null;
            if (body.TryGetProperty("name", out var n))
            {
                if (n.ValueKind != JsonValueKind.String || n.GetString() is not { Length: > 0 and <= 200 } text) return (null, "name must be a string of 1 to 200 characters");
                name = text;
            }
            if (!body.TryGetProperty("selection", out var sel)) return (null, "selection is required (see docs/ADMIN_API.md, Selections)");
            var (selection, selectionProblem) = Selection.Parse(sel);
            if (selection is null) return (null, selectionProblem);
            var (rate, rateProblem) = Int(body, "rate_per_minute", 1, 60_000, defaultRate);
            if (rateProblem is not null) return (null, rateProblem);
            var (deadline, deadlineProblem) = Int(body, "deadline_seconds", 1, CommandsApi.MaxTtlSeconds, defaultDeadline);
            if (deadlineProblem is not null) return (null, deadlineProblem);
            var dryRun = false;
            if (body.TryGetProperty("dry_run", out var dr))
            {
                if (dr.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) return (null, "dry_run must be true or false");
                dryRun = dr.GetBoolean();
            }
            return (new Common(name, selection, rate, now.AddSeconds(deadline), dryRun), null);
        }
    }

    /// <summary>
    /// Whether the request, as a router would get it (with a job's command id as req_id), is more than a router's reader
    /// takes: refused once here rather than on every device. A kickoff template's per-router fields are not known yet.
    /// </summary>
    private static string? TooLarge(IControllerRequest request) =>
        request is KickoffRequest { ClientIp: null } or KickoffRequest { GwId: null } ? null
            : FieldRules.CheckWireSize(FieldRules.Normalize(request, ReqId.Of(JobState.CommandIdFor("job", "device", "step", 0))));

    private static (int Value, string? Problem) Int(JsonElement body, string name, int min, int max, int fallback)
    {
        if (!body.TryGetProperty(name, out var v)) return (fallback, null);
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i >= min && i <= max
            ? (i, null)
            : (fallback, $"{name} must be a whole number from {min} to {max}, got {v.GetRawText()}");
    }

    /// <summary>
    /// The command every device gets, decoded and checked once here. A kickoff of a client found through the client
    /// plane (selection.client_mac) may leave client_ip and gw_id out: each router's own are filled in.
    /// </summary>
    private static (IControllerRequest?, string?) DecodeCommand(JsonElement command, bool clientPlane)
    {
        // The codec checks required fields after its fill-in: a kickoff's device_id (and, from the client plane, its
        // client_ip and gw_id) get stand-ins for the check, taken out again below.
        bool ipFilled = false, gwFilled = false;
        var decoded = ProtocolCodec.DecodeFromController(JsonSerializer.SerializeToUtf8Bytes(command), m =>
        {
            if (m is not KickoffRequest k) return m;
            ipFilled = clientPlane && k.ClientIp is null;
            gwFilled = clientPlane && k.GwId is null;
            return k with { DeviceId = "job", ClientIp = ipFilled ? "0.0.0.0" : k.ClientIp, GwId = gwFilled ? "job" : k.GwId };
        });
        if (decoded.Error is { } e)
            return (null, e.Kind switch
            {
                DecodeErrorKind.MissingType => "command.type is required",
                DecodeErrorKind.UnknownType => $"command.type '{e.Type}' is not a command type",
                DecodeErrorKind.MissingField => $"command: {e.Field} is required for {e.Type}",
                _ => "command: " + e.Message,
            });
        if (decoded.Message is not IControllerRequest request || RequestKinds.Find(request.Type) is null)
            return (null, $"command.type '{decoded.Message?.Type}' is not a command type");
        if (request is KickoffRequest { DeviceId: not "job" }) return (null, "command.device_id: leave it out, every device gets its own");
        if (FieldRules.CheckRequest(request) is { } invalid) return (null, "command: " + invalid);
        if (request is KickoffRequest kick)
            request = kick with { DeviceId = null, ClientIp = ipFilled ? null : kick.ClientIp, GwId = gwFilled ? null : kick.GwId };
        return (request, null);
    }

    private static (RolloutSpec?, string?) ParseRollout(JsonElement b)
    {
        string? Str(string name) => b.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var url = Str("url");
        if (!FieldRules.IsFirmwareUrl(url)) return (null, "url is required: an absolute http(s) URL of the image, without whitespace or shell characters");
        var release = Str("release");
        if (release is not { Length: > 0 and <= 100 }) return (null, "release is required: the DISTRIB_RELEASE the image must produce");
        var revision = Str("revision");
        if (b.TryGetProperty("revision", out var rv) && rv.ValueKind != JsonValueKind.Null && revision is not { Length: > 0 and <= 100 })
            return (null, "revision must be a string of 1 to 100 characters (DISTRIB_REVISION) or null");
        int? canary = null;
        double? canaryPercent = null;
        if (b.TryGetProperty("canary", out var c) && c.ValueKind != JsonValueKind.Null)
        {
            if (c.ValueKind != JsonValueKind.Number || !c.TryGetInt32(out var ci) || ci < 1) return (null, "canary must be a whole number of devices, at least 1");
            canary = ci;
        }
        if (b.TryGetProperty("canary_percent", out var cp) && cp.ValueKind != JsonValueKind.Null)
        {
            if (canary is not null) return (null, "give canary or canary_percent, not both");
            if (cp.ValueKind != JsonValueKind.Number || cp.GetDouble() is var pct && (pct <= 0 || pct > 100)) return (null, "canary_percent must be above 0 and at most 100");
            canaryPercent = cp.GetDouble();
        }
        if (canary is null && canaryPercent is null) canary = 1;
        var factor = 2.0;
        if (b.TryGetProperty("wave_factor", out var wf))
        {
            if (wf.ValueKind != JsonValueKind.Number || wf.GetDouble() is var f && (f < 1 || f > 1000)) return (null, "wave_factor must be a number from 1 to 1000");
            factor = wf.GetDouble();
        }
        int? abortPercent = null;
        var abortMin = 1;
        if (b.TryGetProperty("abort", out var abort) && abort.ValueKind != JsonValueKind.Null)
        {
            if (abort.ValueKind != JsonValueKind.Object) return (null, "abort must be an object {\"failure_percent\": 10, \"min_finished\": 3}");
            var (p, pp) = Int(abort, "failure_percent", 0, 100, -1);
            if (pp is not null || p < 0) return (null, pp ?? "abort.failure_percent is required: a whole number from 0 to 100");
            var (m, mp) = Int(abort, "min_finished", 1, 1_000_000, 1);
            if (mp is not null) return (null, "abort." + mp);
            abortPercent = p;
            abortMin = m;
        }
        var (timeout, tp) = Int(b, "device_timeout_seconds", 30, 86400, 900);
        if (tp is not null) return (null, tp);
        var (retries, rp) = Int(b, "retries", 0, 10, 2);
        if (rp is not null) return (null, rp);
        var windows = ImmutableList.CreateBuilder<MaintenanceWindow>();
        if (b.TryGetProperty("windows", out var ws) && ws.ValueKind != JsonValueKind.Null)
        {
            if (ws.ValueKind != JsonValueKind.Array) return (null, "windows must be an array of {\"start\":\"01:00\",\"end\":\"05:00\"}");
            foreach (var w in ws.EnumerateArray())
            {
                if (w.ValueKind != JsonValueKind.Object || !Time(w, "start", out var start) || !Time(w, "end", out var end) || start == end)
                    return (null, $"window {w.GetRawText()} must be {{\"start\":\"HH:mm\",\"end\":\"HH:mm\"}} with different times");
                windows.Add(new MaintenanceWindow(start, end));
            }
        }
        var zone = Str("zone") ?? "UTC";
        if (JobState.Zone(zone) is null) return (null, $"zone '{zone}' is not a time zone this node knows (an IANA name such as Europe/Paris)");
        var zoneTag = Str("zone_tag");
        if (zoneTag is not null && !Fleet.Server.Devices.DeviceTags.IsKey(zoneTag)) return (null, $"zone_tag '{zoneTag}' is not a tag key");
        var approval = b.TryGetProperty("approval", out var ap) && ap.ValueKind == JsonValueKind.True;
        var force = b.TryGetProperty("force", out var fo) && fo.ValueKind == JsonValueKind.True;
        return (new RolloutSpec(url!, force, release, revision, canary, canaryPercent, factor, abortPercent, abortMin, timeout, retries,
            windows.ToImmutable(), zone, zoneTag, approval), null);
    }

    private static bool Time(JsonElement w, string name, out TimeOnly t)
    {
        t = default;
        return w.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            && TimeOnly.TryParseExact(v.GetString(), "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out t);
    }

    // ------------------------------------------------------------------ read and control

    private static async Task<IResult> List(HttpContext ctx, JobStore store, string? kind, CancellationToken ct)
    {
        var q = ctx.Request.Query;
        kind ??= q["kind"].FirstOrDefault() is { Length: > 0 } k ? k : null;
        if (kind is not (null or JobSpec.CommandKind or JobSpec.RolloutKind)) return Problems.BadRequest($"kind '{kind}' must be command or rollout");
        var status = q["status"].FirstOrDefault() is { Length: > 0 } s ? s : null;
        string[] statuses = [JobStatus.Running, JobStatus.Paused, JobStatus.AwaitingApproval, JobStatus.Completed, JobStatus.Cancelled, JobStatus.Aborted];
        if (status is not null && !statuses.Contains(status)) return Problems.BadRequest($"status '{status}' must be one of {string.Join(", ", statuses)}");
        var limit = 50;
        if (q["limit"].FirstOrDefault() is { Length: > 0 } l && (!int.TryParse(l, out limit) || limit is < 1 or > 500))
            return Problems.BadRequest($"limit '{l}' must be an integer from 1 to 500");
        string? after = null;
        if (q["cursor"].FirstOrDefault() is { Length: > 0 } cursor)
        {
            try { after = System.Text.Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(cursor)); }
            catch (FormatException) { return Problems.BadRequest($"cursor '{cursor}' is not a cursor this API returned"); }
        }
        var (items, next) = await store.ListAsync(kind, status, limit, after, ct);
        return TypedResults.Ok(new JobList(items, next is null ? null : System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(next))));
    }

    private static bool IsJobId(string id) => id.Length is > 1 and <= 64 && id.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_');

    private static async Task<IResult> Get(string jobId, string? kind, IRequiredActor<JobEntity> region, CancellationToken ct)
    {
        if (!IsJobId(jobId)) return NotFound(jobId, kind);
        return await Ask(region, new GetJob(jobId), ct) switch
        {
            JobFound f when kind is null || f.View.Kind == kind => TypedResults.Ok(f.View),
            JobFound or JobNotFound => NotFound(jobId, kind),
            var other => other as IResult ?? Unexpected(other),
        };
    }

    private static async Task<IResult> Devices(string jobId, string? kind, HttpContext ctx, IRequiredActor<JobEntity> region, CancellationToken ct)
    {
        if (!IsJobId(jobId)) return NotFound(jobId, kind);
        var q = ctx.Request.Query;
        var status = q["status"].FirstOrDefault() is { Length: > 0 } s ? s : null;
        var known = kind == JobSpec.RolloutKind ? JobStatus.RolloutDeviceStatuses : JobStatus.CommandDeviceStatuses.Concat(JobStatus.RolloutDeviceStatuses).Distinct().ToArray();
        if (status is not null && !known.Contains(status)) return Problems.BadRequest($"status '{status}' must be one of {string.Join(", ", known)}");
        int? stage = null;
        if (q["stage"].FirstOrDefault() is { Length: > 0 } st)
        {
            if (!int.TryParse(st, NumberStyles.None, CultureInfo.InvariantCulture, out var sv)) return Problems.BadRequest($"stage '{st}' must be a stage index (0 is the canary)");
            stage = sv;
        }
        var limit = 100;
        if (q["limit"].FirstOrDefault() is { Length: > 0 } l && (!int.TryParse(l, out limit) || limit is < 1 or > 500))
            return Problems.BadRequest($"limit '{l}' must be an integer from 1 to 500");
        var after = 0;
        if (q["cursor"].FirstOrDefault() is { Length: > 0 } c && (!int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out after)))
            return Problems.BadRequest($"cursor '{c}' is not a cursor this API returned");
        return await Ask(region, new GetJobDevices(jobId, status, stage, after, limit), ct) switch
        {
            JobDevicesPage p => TypedResults.Ok(new { items = p.Items, next_cursor = p.Next?.ToString(CultureInfo.InvariantCulture) }),
            JobNotFound => NotFound(jobId, kind),
            var other => other as IResult ?? Unexpected(other),
        };
    }

    private static async Task<IResult> Control(string jobId, string action, string? kind, HttpContext ctx, IRequiredActor<JobEntity> region,
        CancellationToken ct)
    {
        if (!IsJobId(jobId)) return NotFound(jobId, kind);
        ctx.AddDetail("job=" + jobId);
        return await Ask(region, new ControlJob(jobId, action, ctx.Caller().KeyName, kind), ct) switch
        {
            JobFound f => TypedResults.Ok(f.View),
            JobConflict c => Problems.Conflict(c.Problem),
            JobNotFound => NotFound(jobId, kind),
            var other => other as IResult ?? Unexpected(other),
        };
    }

    private static async Task<object> Ask(IRequiredActor<JobEntity> region, IToJob message, CancellationToken ct)
    {
        try { return await region.ActorRef.Ask<object>(message, AskTimeout, ct); }
        catch (AskTimeoutException) { return Problems.Timeout($"job '{message.JobId}' did not answer within {AskTimeout.TotalSeconds:0} s"); }
    }

    private static IResult NotFound(string jobId, string? kind) =>
        Problems.NotFound($"there is no {(kind == JobSpec.RolloutKind ? "rollout" : "job")} '{jobId}'");

    private static IResult Unexpected(object reply) => Problems.Result(500, "Unexpected reply", $"the job answered {reply.GetType().Name}");
}
