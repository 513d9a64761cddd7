using Fleet.Server.Admin;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Fleet.Server.Hosting;

/// <summary>
/// Where the node listens. Device sockets (/ws/…) listen on --urls (or ASPNETCORE_URLS, HTTP_PORTS, or Kestrel's
/// own Kestrel:Endpoints, TLS included), else on <see cref="FleetNode.DefaultUrls"/>. With Fleet:Admin:Urls set,
/// the admin API listens there as well, and each path answers only on its side: /api/v1 and /openapi on the
/// admin addresses, /ws/… on the device-facing ones, /healthz and /readyz on both; anything else is a 404.
/// <para>
/// The side is the listener that accepted the TCP connection (a mark Kestrel puts on the connection), never the
/// Host header or a port number: a router cannot ask its way onto the admin API, and it works behind nginx
/// (which connects to the admin port only for admin traffic) and with dynamic ports.
/// </para>
/// </summary>
public static class Listeners
{
    public const string AdminUrlsKey = "Fleet:Admin:Urls";
    private const string AdminEndpoint = "FleetAdmin";

    /// <summary>The mark on connections accepted by an admin listener.</summary>
    public sealed class AdminListener
    {
        public static readonly AdminListener Instance = new();
        private AdminListener() { }
    }

    /// <summary>Registered when the admin API has listeners of its own.</summary>
    public sealed record AdminApart(IReadOnlyList<string> AdminUrls);

    /// <summary>Which listeners a path answers on.</summary>
    public enum Side { Devices, Admin, Both }

    public static Side SideOf(PathString path) =>
        path.StartsWithSegments("/ws") ? Side.Devices
        : path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") ? Side.Both
        : Side.Admin;

    public static WebApplicationBuilder AddFleetListeners(this WebApplicationBuilder builder, AdminSettings admin)
    {
        var config = builder.Configuration;
        // Kestrel:Endpoints (Kestrel's standard way, with certificates) replaces --urls inside Kestrel itself.
        var kestrelEndpoints = config.GetSection("Kestrel:Endpoints").GetChildren().Any();
        var deviceUrls = DeviceUrls(config);
        var adminUrls = ParseAdminUrls(admin.Urls);
        if (adminUrls.Count == 0)
        {
            // Our default only where nothing says where to listen: never on top of Kestrel:Endpoints, which
            // would make Kestrel log that it overrides it.
            if (!kestrelEndpoints && deviceUrls.Count == 0) builder.WebHost.UseUrls(FleetNode.DefaultUrls);
            return builder;
        }

        foreach (var url in adminUrls)
            if (deviceUrls.Contains(url, StringComparer.OrdinalIgnoreCase))
                throw new InvalidOperationException($"{AdminUrlsKey}: '{url}' is also where the devices connect (--urls); give the admin API an address of its own");

        if (kestrelEndpoints)
        {
            // Kestrel binds Kestrel:Endpoints and nothing from --urls: the admin URLs join them as endpoints.
            var entries = new Dictionary<string, string?>();
            for (var i = 0; i < adminUrls.Count; i++) entries[$"Kestrel:Endpoints:{AdminEndpoint}{i}:Url"] = adminUrls[i];
            config.AddInMemoryCollection(entries);
        }
        else
        {
            // Both sides as --urls: Kestrel parses them and puts Kestrel:Certificates:Default on the https ones.
            builder.WebHost.UseUrls([.. deviceUrls.Count > 0 ? deviceUrls : [FleetNode.DefaultUrls], .. adminUrls]);
        }

        // Every listener Kestrel makes, from --urls or Kestrel:Endpoints, passes here before it binds: those at an
        // admin URL's address and port mark the connections they accept.
        var adminEndpoints = adminUrls.Select(EndpointOf).ToList();
        builder.Services.Configure<KestrelServerOptions>(k => k.ConfigureEndpointDefaults(listen =>
        {
            if (listen.IPEndPoint is { } at && adminEndpoints.Contains(at)) listen.Use(MarkAdmin);
        }));
        builder.Services.AddSingleton(new AdminApart(adminUrls));
        return builder;
    }

    /// <summary>
    /// The address and port Kestrel makes of a listen URL (as its own parser does): an IP literal as written,
    /// localhost as the IPv4 loopback (Kestrel binds both loopbacks from there), any other host (*, +, a name)
    /// as "any"; the port as written, else the scheme's.
    /// </summary>
    public static System.Net.IPEndPoint EndpointOf(string url)
    {
        var parts = url.Split("://", 2);
        var https = parts[0].Equals("https", StringComparison.OrdinalIgnoreCase);
        var authority = parts[1].Split('/', 2)[0];
        string host;
        var port = https ? 443 : 80;
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']');
            if (close < 0) throw new InvalidOperationException($"{AdminUrlsKey}: '{url}' has an unclosed '['");
            host = authority[1..close];
            if (authority.Length > close + 1 && authority[close + 1] == ':') port = Port(authority[(close + 2)..], url);
        }
        else
        {
            var colon = authority.LastIndexOf(':');
            host = colon < 0 ? authority : authority[..colon];
            if (colon >= 0) port = Port(authority[(colon + 1)..], url);
        }
        if (System.Net.IPAddress.TryParse(host, out var ip)) return new(ip, port);
        return new(host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? System.Net.IPAddress.Loopback : System.Net.IPAddress.IPv6Any, port);
    }

    private static int Port(string text, string url) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) && p <= 65535
            ? p
            : throw new InvalidOperationException($"{AdminUrlsKey}: '{url}' has no valid port ('{text}')");

    /// <summary>
    /// Whether a listener Kestrel binds at an endpoint is one of the admin API's (none is, without Fleet:Admin:Urls):
    /// the same match as the mark on its connections, made before the listener accepts anything. A localhost URL
    /// is both loopbacks, as Kestrel binds it.
    /// </summary>
    public static Func<System.Net.EndPoint, bool> AdminEndpoints(AdminSettings admin)
    {
        var ends = ParseAdminUrls(admin.Urls)
            .Select(url => (At: EndpointOf(url), Localhost: url.Contains("://localhost", StringComparison.OrdinalIgnoreCase)))
            .ToList();
        return endpoint => endpoint is System.Net.IPEndPoint at && ends.Any(e => e.At.Equals(at)
            || (e.Localhost && e.At.Port == at.Port && at.Address.Equals(System.Net.IPAddress.IPv6Loopback)));
    }

    private static ConnectionDelegate MarkAdmin(ConnectionDelegate next) => connection =>
    {
        connection.Features.Set(AdminListener.Instance);
        return next(connection);
    };

    /// <summary>With the admin API on listeners of its own: each path answers only on its side.</summary>
    public static WebApplication UseFleetListeners(this WebApplication app)
    {
        if (app.Services.GetService<AdminApart>() is null) return app;
        app.Use(async (ctx, next) =>
        {
            var onAdmin = ctx.Features.Get<AdminListener>() is not null;
            var side = SideOf(ctx.Request.Path);
            if (side == Side.Both || (side == Side.Admin) == onAdmin)
            {
                await next(ctx);
                return;
            }
            await Problems.Write(ctx, StatusCodes.Status404NotFound, "Not found", onAdmin
                ? "device sockets (/ws/…) are served on the device-facing address, not on the admin address (Fleet:Admin:Urls)"
                : "nothing is served at this path on this address");
        });
        return app;
    }

    /// <summary>Where devices connect, as configured: --urls / ASPNETCORE_URLS, else HTTP_PORTS / HTTPS_PORTS.</summary>
    private static List<string> DeviceUrls(IConfiguration config)
    {
        var urls = SplitList(config[WebHostDefaults.ServerUrlsKey]);
        if (urls.Count == 0) urls = SplitList(config["ASPNETCORE_URLS"]);
        if (urls.Count > 0) return urls;
        urls.AddRange(SplitList(config[WebHostDefaults.HttpPortsKey]).Select(p => $"http://*:{p}"));
        urls.AddRange(SplitList(config[WebHostDefaults.HttpsPortsKey]).Select(p => $"https://*:{p}"));
        return urls;
    }

    private static List<string> ParseAdminUrls(string? value)
    {
        var urls = SplitList(value);
        foreach (var url in urls)
        {
            var scheme = url.Split("://", 2);
            if (scheme.Length != 2 || scheme[1].Length == 0
                || !(scheme[0].Equals("http", StringComparison.OrdinalIgnoreCase) || scheme[0].Equals("https", StringComparison.OrdinalIgnoreCase)))
                throw new InvalidOperationException(
                    $"{AdminUrlsKey}: '{url}' is not a listen URL such as http://127.0.0.1:9090 or https://0.0.0.0:9443 (';' between several)");
        }
        foreach (var url in urls) EndpointOf(url); // a bad port stops the start here
        if (urls.Distinct(StringComparer.OrdinalIgnoreCase).Count() != urls.Count)
            throw new InvalidOperationException($"{AdminUrlsKey}: '{value}' names the same URL twice");
        return urls;
    }

    private static List<string> SplitList(string? value) =>
        string.IsNullOrWhiteSpace(value) ? [] : value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
}
