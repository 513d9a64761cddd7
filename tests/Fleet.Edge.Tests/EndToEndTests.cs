using Fleet.Edge.Hosting;

namespace Fleet.Edge.Tests;

/// <summary>
/// Fleet.Edge against a real Fleet.Server node (a child process on a loopback port, SQLite in a
/// temp directory), enforcing with nftables in a network namespace.
/// </summary>
public sealed class EndToEndTests(FleetServerNode node) : IClassFixture<FleetServerNode>, IDisposable
{
    private readonly Workspace _ws = new();

    public void Dispose() => _ws.Dispose();

    [Fact]
    public async Task An_operators_kickoff_through_the_admin_api_removes_the_mac_from_the_nft_set_and_succeeds()
    {
        try { await KickoffScenario(); }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException || node.HasExited)
        {
            throw new InvalidOperationException($"{ex.Message}\n--- Fleet.Server (exited: {node.HasExited}) ---\n{node.Log()}", ex);
        }
    }

    private async Task KickoffScenario()
    {
        await using var ns = await NetNs.CreateAsync("e");
        var deviceId = "edge-e2e-" + Guid.NewGuid().ToString("N")[..6];
        var config = _ws.Config(new Uri($"ws://127.0.0.1:{node.Port}/ws/wifidogx"), deviceId);
        config.Firewall.Backend = "nftables";
        await using var agent = EdgeAgent.Start(config, new EdgeOverrides { NftPrefix = ns.Prefix, Timings = LinkTests.Fast });

        await node.KickoffScenario(deviceId, ns);
    }
}
