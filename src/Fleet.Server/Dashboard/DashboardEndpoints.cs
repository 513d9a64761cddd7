using Fleet.Server.Admin;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fleet.Server.Dashboard;

/// <summary>
/// The web dashboard: static files from wwwroot (index.html, app.css, the ES modules; they hold no data, so no key is
/// needed for them) and /api/v1/session, which turns the key a person types into the login form into an HttpOnly
/// cookie. Every figure the pages show comes from the same /api/v1 calls, keys and roles as any other client
/// (ApiKeyAuthentication reads the cookie where no Authorization header is sent).
/// </summary>
public static class DashboardEndpoints
{
    public const string SessionCookie = "fleet_session";
    /// <summary>What a cookie-authenticated request other than GET/HEAD must carry (a cross-site form cannot set headers).</summary>
    public const string CsrfHeader = "X-Fleet-Dashboard";

    /// <summary>Only what the pages need: scripts, styles and calls of this origin; never framed.</summary>
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    /// <summary>
    /// Serves wwwroot before authorization runs: the fallback policy (a key for everything mapped) would otherwise
    /// refuse the login page to someone who has not logged in yet. Goes after the listeners' split (the dashboard
    /// answers on the admin side only) and before UseAuthentication.
    /// </summary>
    public static WebApplication UseDashboard(this WebApplication app)
    {
        app.UseDefaultFiles();
        app.UseStaticFiles(new StaticFileOptions
        {
            OnPrepareResponse = ctx =>
            {
                var h = ctx.Context.Response.Headers;
                // Small files: revalidate every time, so a node upgrade never leaves an old module beside a new one.
                h.CacheControl = "no-cache";
                h.XContentTypeOptions = "nosniff";
                h.ContentSecurityPolicy = ContentSecurityPolicy;
                h.XFrameOptions = "DENY";
                h["Referrer-Policy"] = "no-referrer";
            },
        });
        return app;
    }

    public sealed record Session(string KeyName, string Role);

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        var session = app.MapGroup("/api/v1/session").WithTags("dashboard");
        session.MapPost("/", LogIn).WithName("CreateSession").RequireAuthorization(Policies.Viewer);
        session.MapGet("/", Current).WithName("GetSession").RequireAuthorization(Policies.Viewer);
        // Anonymous: a session whose key was deleted must still be able to log out.
        session.MapDelete("/", LogOut).WithName("DeleteSession").AllowAnonymous();
        return app;
    }

    /// <summary>POST /api/v1/session with Authorization: Bearer &lt;key&gt; → the cookie that holds the key.</summary>
    private static Results<Ok<Session>, ProblemHttpResult> LogIn(HttpContext ctx)
    {
        string? header = ctx.Request.Headers.Authorization;
        var key = header is { Length: > 7 } && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? header["Bearer ".Length..].Trim()
            : ctx.Request.Cookies[SessionCookie];
        if (string.IsNullOrEmpty(key))
            return Problems.Result(StatusCodes.Status401Unauthorized, "Unauthorized", "send the key as 'Authorization: Bearer <key>'");
        ctx.Response.Cookies.Append(SessionCookie, key, CookieOptions(ctx));
        return TypedResults.Ok(Of(ctx));
    }

    private static Ok<Session> Current(HttpContext ctx) => TypedResults.Ok(Of(ctx));

    private static NoContent LogOut(HttpContext ctx)
    {
        ctx.Response.Cookies.Delete(SessionCookie, CookieOptions(ctx));
        return TypedResults.NoContent();
    }

    private static Session Of(HttpContext ctx)
    {
        var caller = ctx.Caller();
        return new Session(caller.KeyName, Caller.Name(caller.Role));
    }

    /// <summary>A session cookie (no expiry: it ends with the browser), never readable by scripts, never sent cross-site.</summary>
    private static CookieOptions CookieOptions(HttpContext ctx) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        Secure = ctx.Request.IsHttps,
        IsEssential = true,
    };
}
