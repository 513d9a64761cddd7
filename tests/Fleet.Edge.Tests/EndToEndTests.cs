using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
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

    private async Task<JsonElement> Command(string deviceId, string body)
    {
        var response = await node.Http.PostAsync($"/api/v1/devices/{deviceId}/commands?wait=5",
            new StringContent(body, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

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

        await Eventually.True(async () =>
        {
            var r = await node.Http.GetAsync($"/api/v1/devices/{deviceId}", TestContext.Current.CancellationToken);
            return r.IsSuccessStatusCode && (await r.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("online").GetBoolean();
        }, "the device online at the controller", TimeSpan.FromSeconds(30));

        var auth = await Command(deviceId, """{"type":"auth","token":"tok","client_ip":"10.231.1.10","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1","once_auth":false}""");
        Assert.Equal("delivered", auth.GetProperty("status").GetString());
        await Eventually.True(async () => (await NftablesTests.ElementsIn(ns)).Contains(("aa:bb:cc:dd:ee:01", null)), "the MAC in the nft set after auth");

        var kick = await Command(deviceId, """{"type":"kickoff","client_ip":"10.231.1.10","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1"}""");
        Assert.Equal("succeeded", kick.GetProperty("status").GetString());
        Assert.Equal("kickoff_response", kick.GetProperty("response").GetProperty("type").GetString());
        Assert.DoesNotContain(await NftablesTests.ElementsIn(ns), e => e.Mac == "aa:bb:cc:dd:ee:01");

        var again = await Command(deviceId, """{"type":"kickoff","client_ip":"10.231.1.10","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1"}""");
        Assert.Equal(("failed", "Client not found"), (again.GetProperty("status").GetString(), again.GetProperty("error").GetString()));

        var info = await Command(deviceId, """{"type":"get_firmware_info"}""");
        Assert.Equal("succeeded", info.GetProperty("status").GetString());
    }
}
