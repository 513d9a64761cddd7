using Fleet.Cluster.Tests.Support;

namespace Fleet.Cluster.Tests;

/// <summary>
/// Stop all three nodes with commands queued for offline devices, start all three again: the
/// commands are in PostgreSQL and are delivered when the routers reconnect; every node's directory
/// tells offline and online right across the restart.
/// </summary>
public sealed class WholeClusterRestartTests(ITestOutputHelper output) : ClusterTestBase(output)
{
    private const int RouterCount = 12;

    [Fact(Timeout = 300_000)]
    public async Task Queued_commands_survive_a_restart_of_every_node_and_the_directory_stays_right()
    {
        var nodes = Cluster.Nodes;
        var ids = Enumerable.Range(0, RouterCount).Select(Scenario.DeviceId).ToList();
        var first = await Scenario.ConnectRouters(Cluster, RouterCount, TimeSpan.FromSeconds(60));
        foreach (var id in ids)
        {
            var (status, _) = await nodes[Random.Shared.Next(3)].Send(HttpMethod.Put,
                $"/api/v1/devices/{id}/gateways/gw-1/auth-mode", """{"auth_mode":0}""");
            Assert.Equal(200, status);
        }
        await Scenario.DirectoryAgrees(nodes, ids, online: true, TimeSpan.FromSeconds(30));

        // The routers go away; commands for them queue up.
        foreach (var r in first) await r.DisposeAsync();
        await Scenario.DirectoryAgrees(nodes, ids, online: false, TimeSpan.FromSeconds(30));
        var accepted = ids.ToDictionary(id => id, _ => new List<string>());
        foreach (var id in ids)
        {
            foreach (var body in new[] { """{"type":"get_firmware_info"}""", """{"type":"get_sys_info"}""" })
            {
                var (status, view) = await nodes[Random.Shared.Next(3)].Send(HttpMethod.Post, $"/api/v1/devices/{id}/commands", body);
                Assert.True(status == 202, $"{id}: {status} {view?.ToJsonString()}");
                Assert.Equal("queued", (string?)view!["status"]);
                accepted[id].Add((string)view["command_id"]!);
            }
        }

        // Every node stops (SIGTERM, all at once), then every node starts again.
        var stops = await Task.WhenAll(nodes.Select(n => n.Terminate(TimeSpan.FromSeconds(45))));
        Log($"all three stopped ({string.Join(", ", stops.Select(s => $"{s.TotalSeconds:0.0} s"))})");
        var restart = Scenario.Timer();
        foreach (var n in nodes) n.Start();
        await Cluster.WaitFormed(nodes, TimeSpan.FromSeconds(90));
        Log($"cluster formed again in {restart.Elapsed.TotalSeconds:0.0} s");

        // New incarnations: nobody is online until the routers come back.
        await Scenario.DirectoryAgrees(nodes, ids, online: false, TimeSpan.FromSeconds(30));
        foreach (var id in ids)
        {
            var commands = await Scenario.Commands(nodes[Random.Shared.Next(3)], id);
            Assert.Equal(accepted[id].Order(), commands.Select(c => (string)c!["command_id"]!).Order());
            Assert.All(commands, c => Assert.Equal("queued", (string?)c!["status"]));
        }

        var reconnect = Scenario.Timer();
        Routers.AddRange(await Scenario.ConnectRouters(Cluster, RouterCount, TimeSpan.FromSeconds(60)));
        Log($"{RouterCount} routers back in {reconnect.Elapsed.TotalSeconds:0.0} s");
        await Scenario.AllCommandsSucceeded(nodes, Routers, accepted, TimeSpan.FromSeconds(60));
        foreach (var id in ids)
        {
            var view = await nodes[Random.Shared.Next(3)].GetJson($"/api/v1/devices/{id}");
            Assert.Equal(0, (int?)view["gateways"]![0]!["desired_auth_mode"]);
            Assert.Equal("r-" + accepted[id][0], (string?)view["firmware"]!["DISTRIB_RELEASE"]);
        }
        await Scenario.DirectoryAgrees(nodes, ids, online: true, TimeSpan.FromSeconds(30));
        NoSerializationWarnings();
    }
}
