using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Fleet.Cli.Tests.Support;

/// <summary>
/// A real Fleet node in the test's process (Kestrel on a loopback port, SQLite in a temp file, the test keys), shared
/// by the tests of a class; <see cref="Run"/> runs fleetctl in-process against it and returns what it printed.
/// </summary>
public sealed class CliNode : IAsyncLifetime
{
    private WebApplication _app = null!;
    public Uri BaseAddress { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        (_app, BaseAddress) = await InProcessNode.StartAsync();
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) }.Authorize();
    }

    public Uri WebSocketUri => new($"ws://{BaseAddress.Authority}/ws/wifidogx");

    /// <summary>How many event streams this node is serving now.</summary>
    public int EventSubscribers => _app.Services.GetRequiredService<Fleet.Server.Events.EventHub>().Subscribers;

    public static string NewDeviceId() => "r-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>fleetctl with --url of this node and <paramref name="key"/> (FLEET_KEY, the admin key unless given).</summary>
    public Task<CliRun> Run(params string[] args) => RunWithKey(TestKeys.Admin, args);

    public Task<CliRun> RunWithKey(string? key, params string[] args) =>
        CliRun.InProcess([.. args, "--url", BaseAddress.ToString()],
            new Dictionary<string, string?> { ["FLEET_KEY"] = key });

    /// <summary>A device the directory lists (it is fed from the journal, about a second behind).</summary>
    public Task Listed(string deviceId) => Eventually.True(async () =>
        (await Http.GetStringAsync($"/api/v1/devices?q={deviceId}")).Contains(deviceId), $"{deviceId} in the directory");

    public async Task<JsonNode> Problem(string path)
    {
        var response = await Http.GetAsync(path);
        Assert.False(response.IsSuccessStatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
