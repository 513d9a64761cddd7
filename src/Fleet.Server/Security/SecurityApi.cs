using System.Globalization;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Fleet.Server.Security;

/// <summary>/api/v1/keys (the admin API keys kept in the database) and /api/v1/audit (the audit log). Admin only.</summary>
public static class SecurityApi
{
    public static IEndpointRouteBuilder MapSecurityApi(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/api/v1/keys").WithTags("security").RequireAuthorization(Policies.Admin);
        keys.MapGet("/", ListKeys).WithName("ListApiKeys");
        keys.MapPost("/", CreateKey).WithName("CreateApiKey").Accepts<NewKeyRequest>("application/json").Audited("key.create");
        keys.MapDelete("/{name}", DeleteKey).WithName("DeleteApiKey").Audited("key.delete");
        app.MapGet("/api/v1/audit", Audit).WithTags("security").WithName("ReadAuditLog").RequireAuthorization(Policies.Admin);
        return app;
    }

    public sealed record KeyList(IReadOnlyList<ApiKeyView> Items);
    public sealed record NewKeyRequest(string Name, string Role);
    public sealed record NewKey(string Name, string Role, string Key);
    public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, string? NextCursor);

    private static async Task<Ok<KeyList>> ListKeys(ApiKeyStore store, CancellationToken ct) =>
        TypedResults.Ok(new KeyList(await store.ListAsync(ct)));

    /// <summary>POST /api/v1/keys {"name","role"} → 201 with the key, shown this once.</summary>
    private static async Task<Results<Created<NewKey>, ProblemHttpResult>> CreateKey(HttpContext ctx, ApiKeyStore store, CancellationToken ct)
    {
        var (body, problem) = await JsonBody.ReadObjectAsync(ctx.Request);
        if (problem is not null) return Problems.BadRequest(problem);
        var name = body.TryGetProperty("name", out var n) && n.ValueKind == System.Text.Json.JsonValueKind.String ? n.GetString()! : "";
        if (!IsKeyName(name)) return Problems.BadRequest("name is required: 1 to 64 characters of letters, digits, '.', '_' or '-'");
        var roleText = body.TryGetProperty("role", out var r) && r.ValueKind == System.Text.Json.JsonValueKind.String ? r.GetString() : null;
        if (Caller.ParseRole(roleText) is not { } role) return Problems.BadRequest($"role '{roleText}' must be viewer, operator or admin");
        ctx.AddDetail($"name={name} role={Caller.Name(role)}");
        var key = await store.CreateKeyAsync(name, role, ctx.Caller().KeyName, ct);
        return key is null
            ? Problems.Conflict($"an API key named '{name}' already exists; delete it first or pick another name")
            : TypedResults.Created($"/api/v1/keys/{name}", new NewKey(name, Caller.Name(role), key));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteKey(string name, HttpContext ctx, ApiKeyStore store, CancellationToken ct)
    {
        ctx.AddDetail($"name={name}");
        if (store.IsConfigured(name))
            return Problems.Conflict($"key '{name}' comes from configuration (Fleet:Security:ApiKeys); remove it there and restart the nodes");
        if (name == ctx.Caller().KeyName)
            return Problems.Conflict("a key cannot delete itself; use another admin key");
        return await store.DeleteKeyAsync(name, ct) ? TypedResults.NoContent() : Problems.NotFound($"no API key named '{name}'");
    }

    private static bool IsKeyName(string s) =>
        s.Length is > 0 and <= 64 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    private static async Task<Results<Ok<AuditPage>, ProblemHttpResult>> Audit(AuditLog audit,
        [FromQuery(Name = "device_id")] string? deviceId, [FromQuery(Name = "actor")] string? actor,
        [FromQuery(Name = "since")] string? since, [FromQuery(Name = "limit")] string? limit,
        [FromQuery(Name = "cursor")] string? cursor, CancellationToken ct)
    {
        var n = DefaultLimit;
        if (!string.IsNullOrEmpty(limit) && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out n) || n is < 1 or > MaxLimit))
            return Problems.BadRequest($"limit '{limit}' must be an integer from 1 to {MaxLimit}");
        DateTimeOffset? from = null;
        if (!string.IsNullOrEmpty(since))
        {
            if (!DateTimeOffset.TryParse(since, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
                return Problems.BadRequest($"since '{since}' must be an ISO 8601 time such as 2026-11-30T12:00:00Z");
            from = t;
        }
        long? before = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var c) || c < 1)
                return Problems.BadRequest($"cursor '{cursor}' is not a cursor this API returned");
            before = c;
        }
        if (deviceId is not null && !FieldRules.IsDeviceId(deviceId))
            return Problems.BadRequest($"device_id '{deviceId}' is not a device id");
        var (items, next) = await audit.QueryAsync(new AuditQuery(NullIfEmpty(deviceId), NullIfEmpty(actor), from, n, before), ct);
        return TypedResults.Ok(new AuditPage(items, next?.ToString(CultureInfo.InvariantCulture)));
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
