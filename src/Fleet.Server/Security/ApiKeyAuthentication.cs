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
/// → 403 (audited: the key's name, role and address are known), both problem+json. Without an Authorization
/// header, the dashboard's session cookie (<see cref="Dashboard.DashboardEndpoints.SessionCookie"/>, holding a
/// key) is read the same way; a cookie-authenticated request other than GET/HEAD must carry
/// <c>X-Fleet-Dashboard: 1</c>, which a cross-site form cannot send, else 403.
/// </summary>
public sealed class ApiKeyAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger,
    UrlEncoder encoder, ApiKeyStore keys, AuditLog audit) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    private const string Failure = "fleet.auth_failure";
    private const string CrossSite = "fleet.auth_cross_site";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header)) return await FromSessionCookie();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return Fail("the Authorization header must be 'Bearer <key>'");
        var presented = header["Bearer ".Length..].Trim();
        if (presented.Length is 0 or > 512) return Fail("the bearer key is empty or too long");
        var key = await keys.FindAsync(presented, Context.RequestAborted);
        if (key is null) return Fail("the bearer key is not one of this fleet's API keys");
        return Success(key);
    }

    private async Task<AuthenticateResult> FromSessionCookie()
    {
        var presented = Request.Cookies[Dashboard.DashboardEndpoints.SessionCookie];
        if (string.IsNullOrEmpty(presented)) return AuthenticateResult.NoResult();
        if (presented.Length > 512) return Fail("the session cookie is too long; log in again");
        var key = await keys.FindAsync(presented, Context.RequestAborted);
        if (key is null) return Fail("the session's key is no longer one of this fleet's API keys; log in again");
        if (!HttpMethods.IsGet(Request.Method) && !HttpMethods.IsHead(Request.Method)
            && Request.Headers[Dashboard.DashboardEndpoints.CsrfHeader] != "1")
        {
            Context.Items[CrossSite] = true;
            return Fail($"a {Request.Method} authenticated by the session cookie must carry the header " +
                        $"'{Dashboard.DashboardEndpoints.CsrfHeader}: 1' (the dashboard sends it; a cross-site form cannot)");
        }
        return Success(key);
    }

    private AuthenticateResult Success(ApiKey key)
    {
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
        if (Context.Items.ContainsKey(CrossSite))
        {
            // The key is good; the request could have come from another site's form: refused, not unauthenticated.
            await Problems.Write(Context, StatusCodes.Status403Forbidden, "Forbidden", (string)Context.Items[Failure]!);
            return;
        }
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
