using Fleet.Cluster.Tests.Support;

namespace Fleet.Cluster.Tests;

/// <summary>
/// A rolling restart: each node in turn gets SIGTERM (coordinated shutdown hands its shards off and
/// leaves the cluster), its routers come back through nginx, and it is started again before the next.
/// Commands wait through all of it and none is lost.
/// </summary>
public sealed class GracefulLeaveTests(ITestOutputHelper output) : ClusterTestBase(output)
{
    /// <summary>The README's figure for re-homing after a SIGTERM (the top of "3–7 s").</summary>
    public static readonly TimeSpan DocumentedSigtermRehoming = TimeSpan.FromSeconds(7);

    private const int RouterCount = 18;

    [Fact(Timeout = 300_000)]
    public async Task Rolling_restart_with_SIGTERM_hands_shards_off_and_loses_nothing()
    {
        var nodes = Cluster.Nodes;
        Routers.AddRange(await Scenario.ConnectRouters(Cluster, RouterCount, TimeSpan.FromSeconds(60)));
        var accepted = Routers.ToDictionary(r => r.DeviceId, _ => new List<string>());
        foreach (var r in Routers)
        {
            var (status, _) = await nodes[Random.Shared.Next(3)].Send(HttpMethod.Put,
                $"/api/v1/devices/{r.DeviceId}/gateways/gw-1/auth-mode", """{"auth_mode":0}""");
            Assert.Equal(200, status);
        }

        // One command sent and unanswered, one queued behind it, per device, through the whole restart.
        foreach (var r in Routers) r.Hold = true;
        foreach (var r in Routers)
        for (var k = 0; k < 2; k++)
            accepted[r.DeviceId].Add(await Scenario.Submit(nodes, r.DeviceId, """{"type":"get_firmware_info"}""", "?timeout=300", TimeSpan.FromSeconds(30)));
        await Eventually.True(() => Routers.All(r => r.Received.ContainsKey(accepted[r.DeviceId][0])),
            "every router received its first command", TimeSpan.FromSeconds(30));

        foreach (var victim in nodes)
        {
            var others = nodes.Where(n => n != victim).ToList();
            var at = DateTime.UtcNow;
            var took = await victim.Terminate(TimeSpan.FromSeconds(45));
            Assert.Equal(0, victim.ExitCode);
            // README: "after a SIGTERM in 3–7 s": within twice that (from the signal, so the shutdown is included).
            var back = await Scenario.WaitAllBack(others, Routers, at, 2 * DocumentedSigtermRehoming);
            Measure($"SIGTERM of {victim.Name}: exited after {took.TotalSeconds:0.0} s; every router ({RouterCount}) back (entity live, attached to its socket) after {Scenario.Describe(back)}");
            Log($"slowest: {Scenario.Slowest(Routers, back)}");

            // A command per device while the node is away, through the others.
            await Task.WhenAll(Routers.Select(async r =>
            {
                var id = await Scenario.Submit(others, r.DeviceId, """{"type":"get_sys_info"}""", "?timeout=300", TimeSpan.FromSeconds(60));
                lock (accepted) accepted[r.DeviceId].Add(id);
            }));

            victim.Start();
            await Cluster.WaitFormed(nodes, TimeSpan.FromSeconds(90));
            Log($"{victim.Name} rejoined");
        }

        foreach (var r in Routers) r.Release();
        await Scenario.AllCommandsSucceeded(nodes, Routers, accepted, TimeSpan.FromSeconds(90));
        foreach (var r in Routers)
        {
            var view = await nodes[Random.Shared.Next(3)].GetJson($"/api/v1/devices/{r.DeviceId}");
            Assert.Equal(0, (int?)view["gateways"]![0]!["desired_auth_mode"]);
            Assert.Equal("r-" + accepted[r.DeviceId][1], (string?)view["firmware"]!["DISTRIB_RELEASE"]);
        }
        await Scenario.DirectoryAgrees(nodes, Routers.Select(r => r.DeviceId).ToList(), online: true, TimeSpan.FromSeconds(30));
        NoSerializationWarnings();
    }
}
