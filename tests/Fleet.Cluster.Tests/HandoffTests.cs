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
        await Scenario.WaitRecorded(holder, Routers, TimeSpan.FromSeconds(60));
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

    /// <summary>
    /// A SIGTERMed node closes its device sockets before its shard region stops: a router answering the request it
    /// was running gets its answer through, and what the node had queued but not written is handed back and sent once
    /// from the router's next socket. Before, the sockets outlived the region by a second or two: their answers and
    /// "written" words went to dead letters, and five seconds later the entity sent the request again — a router ran
    /// it twice (the chaos run's ExecutedTwice).
    /// </summary>
    [Fact(Timeout = 240_000)]
    public async Task A_stopping_node_lets_its_routers_answer_and_hands_back_what_it_did_not_write()
    {
        const int count = 6;
        var nodes = Cluster.Nodes;
        var leaver = nodes[1];
        var others = nodes.Where(n => n != leaver).ToList();
        Routers.AddRange(Enumerable.Range(0, count).Select(i => new ReconnectingRouter(
            new Uri($"ws://127.0.0.1:{leaver.HttpPort}/ws/wifidogx"), Scenario.DeviceId(i))
        {
            ReconnectTo = new Uri($"ws://127.0.0.1:{others[i % others.Count].HttpPort}/ws/wifidogx"),
            Hold = true,
        }.Start()));
        await Eventually.True(() => Routers.All(r => r.Replies > 0), "routers connected", TimeSpan.FromSeconds(60));
        await Scenario.WaitRecorded(others[0], Routers, TimeSpan.FromSeconds(60));

        // Per router: one request written and held unanswered, one queued behind it (a router runs one at a time).
        var accepted = new Dictionary<string, List<string>>();
        foreach (var r in Routers)
            accepted[r.DeviceId] =
            [
                await Scenario.Submit(others, r.DeviceId, """{"type":"get_firmware_info"}""", "?timeout=120", TimeSpan.FromSeconds(30)),
                await Scenario.Submit(others, r.DeviceId, """{"type":"get_sys_info"}""", "?timeout=120", TimeSpan.FromSeconds(30)),
            ];
        await Eventually.True(() => Routers.All(r => r.Received.ContainsKey(accepted[r.DeviceId][0])),
            "every router received its first request", TimeSpan.FromSeconds(30));

        // Operators wait (?wait=30) through the stopping node for commands to offline devices (their entities on any
        // node: several, so that some are not on the stopping one).
        var parked = Enumerable.Range(0, 4).Select(i => $"parked-{i}").ToList();
        foreach (var id in parked)
            await (await PretendRouter.ConnectAsync(new Uri($"ws://127.0.0.1:{others[0].HttpPort}/ws/wifidogx"), id)).DisposeAsync();
        foreach (var id in parked)
            await Eventually.True(async () => (bool?)(await others[0].GetJson($"/api/v1/devices/{id}"))["online"] == false,
                $"{id} known and offline", TimeSpan.FromSeconds(30));
        var waiters = parked.Select(id => (Device: id, Call: Task.Run(async () =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var (status, body) = await leaver.Send(HttpMethod.Post, $"/api/v1/devices/{id}/commands?wait=30", """{"type":"get_sys_info"}""");
            return (Status: status, Body: body, Took: sw.Elapsed);
        }))).ToList();
        foreach (var id in parked)
            await Eventually.True(async () => (await Scenario.Commands(others[0], id)).Count == 1,
                $"the waiting call's command for {id} accepted", TimeSpan.FromSeconds(30));

        var stopping = leaver.Terminate(TimeSpan.FromSeconds(45));
        // The node has begun its stop (a positive signal, not a guess at timing): then the routers answer.
        await Eventually.True(async () =>
        {
            try { using var ready = await leaver.Http.GetAsync("/readyz"); return !ready.IsSuccessStatusCode; }
            catch (HttpRequestException) { return true; } // already gone: the answers below then meet a closed socket
        }, $"{leaver.Name} not ready", TimeSpan.FromSeconds(20), every: TimeSpan.FromMilliseconds(20));
        // The routers take a moment to run the request they hold (well within the node's wait for answers): the
        // behaviour under test, not a synchronisation. Before, the node's shard region was gone by now.
        await Task.Delay(TimeSpan.FromSeconds(1.5), TestContext.Current.CancellationToken);
        foreach (var r in Routers) r.Release();
        Measure($"{leaver.Name} exited {(await stopping).TotalSeconds:0.0} s after SIGTERM with {count} routers answering");
        foreach (var (id, call) in waiters)
        {
            // Ended by the stop, not by its wait: accepted (202, where to look). Before, a call whose device's entity was
            // on another node waited out its 30 s on a region that was gone (and held the node's exit as long).
            var (status, body, took) = await call;
            Assert.True(status == 202, $"{id}: the waiting call → {status} {body?.ToJsonString()}");
            Assert.True(took < TimeSpan.FromSeconds(25), $"{id}: the waiting call took {took.TotalSeconds:0.0} s");
            Assert.Equal("queued", (string?)body!["status"]);
        }

        await Scenario.AllCommandsSucceeded(others, Routers, accepted, TimeSpan.FromSeconds(60));
        foreach (var r in Routers)
        foreach (var id in accepted[r.DeviceId])
            Assert.True(r.Received[id] == 1, $"{r.DeviceId} received {r.ReceivedTypes[id]} {id} {r.Received[id]} times");
        Assert.All(Routers, r => Assert.Equal(2, r.Connections));
    }
}
