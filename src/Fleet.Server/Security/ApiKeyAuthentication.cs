using System.Security.Claims;
using System.Text.Encodings.Web;
using Fleet.Server.Admin;
using Fleet.Server.Directory;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Security;

/// <summary>
/// Authorization: Bearer &lt;key&gt; on /api/v1. No or unknown key → 401, a known key whose role is too low
/// → 403 (audited: the key's name, role and address are known), both problem+json.
/// </summary>
public sealed class ApiKeyAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger,
    UrlEncoder encoder, ApiKeyStore keys, AuditLog audit) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    private const string Failure = "fleet.auth_failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header)) return AuthenticateResult.NoResult();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return Fail("the Authorization header must be 'Bearer <key>'");
        var presented = header["Bearer ".Length..].Trim();
        if (presented.Length is 0 or > 512) return Fail("the bearer key is empty or too long");
        var key = await keys.FindAsync(presented, Context.RequestAborted);
        if (key is null) return Fail("the bearer key is not one of this fleet's API keys");
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, key.Name), new Claim(Caller.RoleClaim, Caller.Name(key.Role))], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    private AuthenticateResult Fail(string why)
    {
        Context.Items[Failure] = why;
        return AuthenticateResult.Fail(why);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        var why = Context.Items[Failure] as string
                  ?? "this call needs an API key: send 'Authorization: Bearer <key>' (see README, Security)";
        await Problems.Write(Context, StatusCodes.Status401Unauthorized, "Unauthorized", why);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var caller = Context.Caller();
        var needed = Context.GetEndpoint()?.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Policy).LastOrDefault(p => p is not null) ?? "?";
        var action = $"{Request.Method} {Request.Path}";
        Logger.LogWarning("Refused {Action}: key {Key} has role {Role}, needs {Needed}", action, caller.KeyName, Caller.Name(caller.Role), needed);
        await audit.RecordAsync(caller, "refused", DeviceOf(Context), $"forbidden: needs {needed}", action);
        await Problems.Write(Context, StatusCodes.Status403Forbidden, "Forbidden",
            $"key '{caller.KeyName}' has role {Caller.Name(caller.Role)}; {action} needs {needed}");
    }

    internal static string? DeviceOf(HttpContext ctx) => ctx.Request.RouteValues["deviceId"] as string;
}

public static class SecurityServices
{
    public static IServiceCollection AddFleetSecurity(this IServiceCollection services)
    {
        services.AddSingleton<AuditLog>();
        services.AddSingleton<IStoreTables>(sp => sp.GetRequiredService<AuditLog>());
        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<IStoreTables>(sp => sp.GetRequiredService<ApiKeyStore>());
        services.AddHostedService<AuditRetention>();
        services.AddAuthentication(ApiKeyAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthentication>(ApiKeyAuthentication.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Policies.Viewer, p => p.RequireAuthenticatedUser().RequireClaim(Caller.RoleClaim, "viewer", "operator", "admin"))
            .AddPolicy(Policies.Operator, p => p.RequireAuthenticatedUser().RequireClaim(Caller.RoleClaim, "operator", "admin"))
            .AddPolicy(Policies.Admin, p => p.RequireAuthenticatedUser().RequireClaim(Caller.RoleClaim, "admin"))
            // Anything mapped without a policy of its own needs at least a viewer key; open endpoints say AllowAnonymous.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().RequireClaim(Caller.RoleClaim, "viewer", "operator", "admin").Build());
        return services;
    }
}
