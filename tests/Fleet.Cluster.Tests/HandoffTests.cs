using Fleet.Cluster.Tests.Support;

namespace Fleet.Cluster.Tests;

/// <summary>
/// Entities move while their sockets stay up: routers connected straight to one node, another node leaves
/// (SIGTERM: its shards are handed off). The devices whose entities it held must stay online on the same
/// connection — never recorded offline, connected_at unchanged — even when an admin read wakes the moved
/// entity before the socket's next heartbeat does.
/// </summary>
public sealed class HandoffTests(ITestOutputHelper output) : ClusterTestBase(output)
{
    private const int RouterCount = 18;

    [Fact(Timeout = 240_000)]
    public async Task Devices_whose_entities_move_while_their_sockets_stay_up_are_never_recorded_offline()
    {
        var nodes = Cluster.Nodes;
        var (holder, leaver) = (nodes[0], nodes[1]);
        var direct = new Uri($"ws://127.0.0.1:{holder.HttpPort}/ws/wifidogx");
        Routers.AddRange(Enumerable.Range(0, RouterCount)
            .Select(i => new ReconnectingRouter(direct, Scenario.DeviceId(i)) { HeartbeatEvery = TimeSpan.FromSeconds(5) }.Start()));
        await Eventually.True(() => Routers.All(r => r.Replies > 0), "routers connected", TimeSpan.FromSeconds(60));
        var connectedAt = new Dictionary<string, string?>();
        foreach (var r in Routers)
            connectedAt[r.DeviceId] = (string?)(await holder.GetJson($"/api/v1/devices/{r.DeviceId}"))["connected_at"];

        var at = DateTime.UtcNow;
        await leaver.Terminate(TimeSpan.FromSeconds(45));
        var others = nodes.Where(n => n != leaver).ToList();
        // GETs at once: they wake the moved entities before the 5 s heartbeat re-attaches their sockets.
        var back = await Scenario.WaitAllBack(others, Routers, at, TimeSpan.FromSeconds(60));
        Measure($"{leaver.Name} left; every entity ({RouterCount}) live and attached to its unbroken socket after {Scenario.Describe(back)}");

        Assert.All(Routers, r => Assert.Equal(1, r.Connections));
        foreach (var r in Routers)
        {
            var view = await others[Random.Shared.Next(others.Count)].GetJson($"/api/v1/devices/{r.DeviceId}");
            Assert.True((bool)view["online"]!, $"{r.DeviceId} offline after its entity moved");
            Assert.Equal(connectedAt[r.DeviceId], (string?)view["connected_at"]);
        }
        await Scenario.DirectoryAgrees(others, Routers.Select(r => r.DeviceId).ToList(), online: true, TimeSpan.FromSeconds(30));
        NoSerializationWarnings();
    }
}
