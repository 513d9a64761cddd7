using System.Security.Claims;

namespace Fleet.Server.Security;

/// <summary>What a key may do: each role includes the ones below it.</summary>
public enum Role
{
    /// <summary>Reads (client tokens redacted).</summary>
    Viewer = 1,
    /// <summary>Reads, commands, auth modes.</summary>
    Operator = 2,
    /// <summary>All: keys, approvals, privileged requests, the audit log.</summary>
    Admin = 3,
}

/// <summary>Authorization policy names, one per role (an endpoint requires the least role that may call it).</summary>
public static class Policies
{
    public const string Viewer = "viewer";
    public const string Operator = "operator";
    public const string Admin = "admin";
}

/// <summary>Who made an admin call: the key's name and role, and the peer's address.</summary>
public sealed record Caller(string KeyName, Role Role, string? Remote)
{
    public const string RoleClaim = "fleet_role";

    public static Role? ParseRole(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "viewer" => Role.Viewer,
        "operator" => Role.Operator,
        "admin" => Role.Admin,
        _ => null,
    };

    public static string Name(Role role) => role switch
    {
        Role.Viewer => "viewer",
        Role.Operator => "operator",
        _ => "admin",
    };
}

public static class CallerExtensions
{
    /// <summary>The caller of an authenticated request; an anonymous one (health endpoints) has no key name.</summary>
    public static Caller Caller(this HttpContext ctx)
    {
        var user = ctx.User;
        var role = Security.Caller.ParseRole(user.FindFirstValue(Security.Caller.RoleClaim)) ?? Role.Viewer;
        return new Caller(user.Identity?.IsAuthenticated == true ? user.Identity.Name ?? "" : "", role,
            ctx.Connection.RemoteIpAddress?.ToString());
    }
}
