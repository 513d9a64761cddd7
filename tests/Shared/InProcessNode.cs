using Fleet.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Fleet.Testing;

/// <summary>
/// A real node in the test's process: Kestrel on a free loopback port, SQLite in a temp file of its own, a cluster of
/// itself on a free port, warnings only in the log, the test keys (unless told not to). Started and ready (/readyz).
/// </summary>
public static class InProcessNode
{
    public static string NewDbPath() =>
        Path.Combine(Path.GetTempPath(), "fleet-tests", Guid.NewGuid().ToString("N"), "fleet.db");

    /// <returns>The running app and the address it listens on.</returns>
    public static async Task<(WebApplication App, Uri BaseAddress)> StartAsync(string? dbPath = null, bool testKeys = true,
        Action<WebApplicationBuilder>? configure = null, params string[] extraArgs)
    {
        var args = new List<string>
        {
            "--urls", "http://127.0.0.1:0",
            "--Fleet:Persistence:ConnectionString", $"Data Source={dbPath ?? NewDbPath()}",
            "--Fleet:Cluster:Port", "0",
            "--Logging:LogLevel:Default", "Warning",
        };
        if (testKeys) args.AddRange(TestKeys.Arguments());
        args.AddRange(extraArgs);
        var app = await FleetNode.CreateAsync(args.ToArray(), configure);
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        using var probe = new HttpClient { BaseAddress = address };
        await Eventually.True(async () => (await probe.GetAsync("/readyz")).IsSuccessStatusCode, "node ready");
        return (app, address);
    }
}
