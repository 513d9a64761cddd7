using Fleet.Server.Tests.Support;
using Fleet.Simulator;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// The simulator against a real node (issue 5's smoke run): 200 routers connect, heartbeat, and every
/// command an operator sends through the admin API is answered, for both firmware generations.
/// </summary>
public sealed class SimulatorSmokeTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_hundred_simulated_routers_connect_and_answer_every_command(bool seedEra)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var node = await Node.StartAsync();
        var prefix = seedEra ? "seed" : "echo";
        using var sim = new SimulatorRunner(new SimulatorOptions
        {
            Url = node.WebSocketUri(), Devices = 200, HeartbeatSeconds = 1, Ramp = 400, DevicePrefix = prefix, SeedEra = seedEra,
            StatsSeconds = 0, Duration = TimeSpan.FromSeconds(60),
        }, TextWriter.Null);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = sim.RunAsync(stop.Token);
        await sim.WaitConnectedAsync(200, TimeSpan.FromSeconds(60), ct);
        await Eventually.True(async () =>
            (await node.GetJson("/api/v1/devices?online=true&limit=1000"))["items"]!.AsArray().Count == 200, "200 online in the directory");
        var repliesBefore = sim.Stats.RepliesReceived;
        await Eventually.True(() => Task.FromResult(sim.Stats.RepliesReceived >= repliesBefore + 200), "heartbeats answered");

        var posts = Enumerable.Range(0, 40).Select(i => node.Post(
            $"/api/v1/devices/{prefix}-{i * 5:D6}/commands?wait=20",
            // Seed-era firmware knows only the seed's requests; a kickoff of a client it never saw is
            // answered with kickoff_error "Client not found" (a failed command, but an answered one).
            i % 2 == 0 ? """{"type":"get_firmware_info"}"""
                : """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""")).ToList();
        var results = await Task.WhenAll(posts);
        Assert.All(results, r =>
        {
            Assert.Equal(200, r.Status);
            Assert.NotNull(r.Body!["response"]);
            Assert.Equal((string?)r.Body["type"] == "kickoff" ? "failed" : "succeeded", (string?)r.Body["status"]);
        });
        Assert.Equal(200, sim.Stats.Connected);
        Assert.Equal(0, sim.Stats.DecodeErrors);
        stop.Cancel();
        try { await run; } catch (OperationCanceledException) { }
    }
}
