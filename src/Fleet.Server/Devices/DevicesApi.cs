using System.Text;
using System.Text.Json;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Fleet.Server.Devices;

/// <summary>/api/v1/devices: the directory, one device, a gateway's desired auth_mode (ADMIN_API.md).</summary>
public static class DevicesApi
{
    public static IEndpointRouteBuilder MapDevicesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices").WithTags("devices");
        api.MapGet("/", List).WithName("ListDevices").RequireAuthorization(Policies.Viewer);
        api.MapGet("/{deviceId}", Get).WithName("GetDevice").RequireAuthorization(Policies.Viewer);
        api.MapPut("/{deviceId}/tags", SetTags).WithName("SetDeviceTags").Accepts<TagsRequest>("application/json")
            .RequireAuthorization(Policies.Operator).Audited("device.tags");
        api.MapPost("/select", Select).WithName("SelectDevices").Accepts<object>("application/json").RequireAuthorization(Policies.Viewer);
        api.MapPut("/{deviceId}/gateways/{gwId}/auth-mode", SetAuthMode).WithName("SetAuthMode")
            .Accepts<AuthModeRequest>("application/json").RequireAuthorization(Policies.Operator).Audited("device.auth_mode");
        return app;
    }

    public sealed record DeviceList(IReadOnlyList<DeviceSummary> Items, string? NextCursor, long? Count = null);

    /// <summary>The directory's query string, read as text so that a bad value gets our own 400.</summary>
    public sealed record DeviceListQuery(
        [FromQuery(Name = "online")] string? Online, [FromQuery(Name = "gw_id")] string? GwId, [FromQuery(Name = "q")] string? Q,
        [FromQuery(Name = "limit")] string? Limit, [FromQuery(Name = "cursor")] string? Cursor,
        [FromQuery(Name = "protocol")] string? Protocol, [FromQuery(Name = "admission")] string? Admission,
        [FromQuery(Name = "tag")] string[]? Tag, [FromQuery(Name = "release")] string? Release, [FromQuery(Name = "count")] string? Count)
    {
        public static readonly string[] Protocols = [TypeDialect.SeedName, TypeDialect.V2025Name, OpDialect.DialectName];

        public const int DefaultLimit = 100;
        public const int MaxLimit = 1000;

        public (DirectoryQuery? Query, string? Problem) Parse()
        {
            bool? online = Online switch
            {
                null or "" => null,
                "true" => true,
                "false" => false,
                _ => null,
            };
            if (Online is not (null or "" or "true" or "false")) return (null, $"online '{Online}' must be true or false");
            var limit = DefaultLimit;
            if (!string.IsNullOrEmpty(Limit) && (!int.TryParse(Limit, out limit) || limit is < 1 or > MaxLimit))
                return (null, $"limit '{Limit}' must be an integer from 1 to {MaxLimit}");
            string? after = null;
            if (!string.IsNullOrEmpty(Cursor))
            {
                try { after = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(Cursor)); }
                catch (FormatException) { return (null, $"cursor '{Cursor}' is not a cursor this API returned"); }
            }
            if (!string.IsNullOrEmpty(Protocol) && !Protocols.Contains(Protocol))
                return (null, $"protocol '{Protocol}' must be one of {string.Join(", ", Protocols)}");
            if (Admission is not (null or "" or DeviceState.Pending or DeviceState.Approved))
                return (null, $"admission '{Admission}' must be {DeviceState.Pending} or {DeviceState.Approved}");
            if (Count is not (null or "" or "true" or "false")) return (null, $"count '{Count}' must be true or false");
            var tags = new List<KeyValuePair<string, string>>();
            foreach (var t in Tag ?? [])
            {
                var eq = t.IndexOf('=');
                if (eq <= 0 || !DeviceTags.IsKey(t[..eq]) || !DeviceTags.IsValue(t[(eq + 1)..]))
                    return (null, $"tag '{t}' must be key=value (a key of a-z, 0-9, '_', '.', '-'; a value without ',')");
                tags.Add(new(t[..eq], t[(eq + 1)..]));
            }
            return (new DirectoryQuery(online, string.IsNullOrEmpty(GwId) ? null : GwId, Q, limit, after,
                string.IsNullOrEmpty(Protocol) ? null : Protocol, string.IsNullOrEmpty(Admission) ? null : Admission,
                tags.Count > 0 ? tags : null, string.IsNullOrEmpty(Release) ? null : Release), null);
        }
    }

    private static async Task<Results<Ok<DeviceList>, ProblemHttpResult>> List([AsParameters] DeviceListQuery query,
        DirectoryStore store, NodeIdentity node, CancellationToken ct)
    {
        var (parsed, problem) = query.Parse();
        if (parsed is null) return Problems.BadRequest(problem!);
        var (items, next) = await store.QueryAsync(parsed, node.LiveNodes(), ct);
        long? count = query.Count == "true" ? await store.CountMatchingAsync(parsed, node.LiveNodes(), ct) : null;
        return TypedResults.Ok(new DeviceList(items, next is null ? null : System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(next)), count));
    }

    private static async Task<Results<Ok<DeviceView>, ProblemHttpResult>> Get(string deviceId,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        return await region.Ask(new GetDevice(deviceId), ct) switch
        {
            DeviceFound f => TypedResults.Ok(f.View),
            DeviceNotFound => EntityAsk.NeverSeen(deviceId),
            var other => EntityAsk.Unexpected(other),
        };
    }

    /// <summary>The documented body of PUT …/tags.</summary>
    public sealed record TagsRequest(IReadOnlyDictionary<string, string> Tags);

    public sealed record TagsView(string DeviceId, IReadOnlyDictionary<string, string> Tags, IReadOnlyDictionary<string, string> OperatorTags);

    /// <summary>PUT …/tags's body: {"tags":{…}}, checked here.</summary>
    public sealed record TagsBody(System.Collections.Immutable.ImmutableSortedDictionary<string, string>? Tags, string? Problem)
    {
        public static async ValueTask<TagsBody?> BindAsync(HttpContext context)
        {
            var (body, problem) = await JsonBody.ReadObjectAsync(context.Request);
            if (problem is not null) return new(null, problem);
            if (!body.TryGetProperty("tags", out var tags)) return new(null, "tags is required: an object of key: value strings ({} clears them)");
            var (parsed, tagProblem) = DeviceTags.Parse(tags);
            return new(parsed, tagProblem);
        }
    }

    private static async Task<Results<Ok<TagsView>, ProblemHttpResult>> SetTags(string deviceId, TagsBody body, HttpContext ctx,
        IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        if (body.Tags is not { } tags) return Problems.BadRequest(body.Problem!);
        ctx.AddDetail("tags=" + DeviceTags.Column(tags));
        return await region.Ask(new SetTags(deviceId, tags), ct) switch
        {
            TagsUpdated u => TypedResults.Ok(new TagsView(u.DeviceId, u.Tags, u.OperatorTags)),
            DeviceNotFound => EntityAsk.NeverSeen(deviceId),
            var other => EntityAsk.Unexpected(other),
        };
    }

    public sealed record SelectionResult(long Count, IReadOnlyList<string> DeviceIds);

    private static async Task<Results<Ok<SelectionResult>, ProblemHttpResult>> Select(HttpContext ctx, Jobs.SelectionResolver resolver,
        CancellationToken ct)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(ctx.Request);
        if (problem is not null) return Problems.BadRequest(problem);
        var (selection, selectionProblem) = Jobs.Selection.Parse(body);
        if (selection is null) return Problems.BadRequest(selectionProblem!);
        var targets = await resolver.ResolveAsync(selection, ct);
        return TypedResults.Ok(new SelectionResult(targets.Count, targets.Take(1000).Select(t => t.DeviceId).ToList()));
    }

    /// <summary>The documented body of PUT …/auth-mode.</summary>
    public sealed record AuthModeRequest(int AuthMode);

    /// <summary>PUT …/auth-mode's body, bound from JSON with our own messages for what is wrong with it.</summary>
    public sealed record AuthModeBody(int? AuthMode, string? Problem)
    {
        public static async ValueTask<AuthModeBody?> BindAsync(HttpContext context)
        {
            var (body, problem) = await JsonBody.ReadObjectAsync(context.Request);
            if (problem is not null) return new(null, problem);
            if (!body.TryGetProperty("auth_mode", out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var mode))
                return new(null, $"auth_mode must be an integer, got {(body.TryGetProperty("auth_mode", out var got) ? got.GetRawText() : "nothing")}");
            return mode < 0 ? new(null, $"auth_mode must not be negative, got {mode}") : new(mode, null);
        }
    }

    private static async Task<Results<Ok<GatewayView>, ProblemHttpResult>> SetAuthMode(string deviceId, string gwId,
        AuthModeBody body, HttpContext ctx, IRequiredActor<DeviceEntity> region, CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return EntityAsk.NeverSeen(deviceId);
        if (body.AuthMode is not { } mode) return Problems.BadRequest(body.Problem!);
        ctx.AddDetail($"gw_id={gwId} auth_mode={mode}");
        return await region.Ask(new SetDesiredAuthMode(deviceId, gwId, mode), ct) switch
        {
            GatewayUpdated u => TypedResults.Ok(u.View),
            DeviceNotFound => EntityAsk.NeverSeen(deviceId),
            GatewayNotFound => Problems.NotFound($"device '{deviceId}' has not reported a gateway '{gwId}'"),
            var other => EntityAsk.Unexpected(other),
        };
    }
}
