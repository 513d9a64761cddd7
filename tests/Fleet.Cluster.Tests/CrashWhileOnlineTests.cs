using System.Diagnostics;
using System.Text.Json.Nodes;
using Fleet.Cluster.Tests.Support;

namespace Fleet.Cluster.Tests;

/// <summary>
/// A node SIGKILLed while routers are connected, restarted on the same addresses, and the routers never come
/// back: nothing persisted their disconnect, yet every read must say offline (README: "After a restart a device
/// is offline until it reconnects"; "a node that dies leaves no device online behind it"). Every other test
/// reconnects or disconnects its routers first, so this is the only one where the journal's last word is
/// "connected".
/// </summary>
public sealed class CrashWhileOnlineTests(ITestOutputHelper output) : IAsyncDisposable
{
    private TestDatabase? _db;
    private NodeProcess? _node;

    private void Log(string line)
    {
        try { output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"); }
        catch (InvalidOperationException) { }
    }

    [Fact]
    public async Task Routers_that_stay_away_after_a_SIGKILL_of_their_node_show_offline_after_its_restart()
    {
        _db = await TestDatabase.CreateAsync();
        var workDir = Paths.NewWorkDir(nameof(CrashWhileOnlineTests));
        var akka = Ports.Free();
        // Its own address as every seed (the configuration file names three; each index is replaced).
        var self = $"akka.tcp://fleet@127.0.0.1:{akka}";
        _node = new NodeProcess("solo", Ports.Free(), Ports.Free(), akka, [self, self, self], _db.ConnectionString, workDir);
        _node.Start();
        await _node.WaitReady(FleetCluster.StartTimeout);
        Log($"node up, logs in {workDir}");

        var ids = Enumerable.Range(0, 5).Select(i => $"crash-{i}").ToList();
        var routers = new List<PretendRouter>();
        foreach (var id in ids) routers.Add(await PretendRouter.ConnectAsync(new Uri($"ws://127.0.0.1:{_node.HttpPort}/ws/wifidogx"), id));
        await Eventually.True(async () => (await FleetCluster.Directory(_node)).Count(d => (bool)d["online"]! && ids.Contains((string)d["device_id"]!)) == 5,
            "the directory lists the five routers online", TimeSpan.FromSeconds(30));
        foreach (var id in ids) Assert.True((bool)(await _node.GetJson($"/api/v1/devices/{id}"))["online"]!);

        await _node.Kill(); // SIGKILL: no disconnect is persisted
        Log("node killed");
        foreach (var r in routers) { r.Abort(); await r.DisposeAsync(); } // and the routers stay away

        _node.Start();
        await _node.WaitReady(FleetCluster.StartTimeout);
        var ready = Stopwatch.StartNew();
        Log("node restarted");

        // The entity's first answer after the restart already says offline.
        foreach (var id in ids)
        {
            var view = await _node.GetJson($"/api/v1/devices/{id}");
            Assert.False((bool)view["online"]!, $"{id} after the restart: {view.ToJsonString()}");
            Assert.Null(view["credential"]);
        }
        // The directory ("about 1 s behind") agrees within twice that, and keeps agreeing.
        await Eventually.True(async () => (await FleetCluster.Directory(_node)).Where(d => ids.Contains((string)d["device_id"]!)).All(d => !(bool)d["online"]!),
            "the directory lists the five routers offline", TimeSpan.FromSeconds(2), every: TimeSpan.FromMilliseconds(100));
        Log($"directory offline {ready.Elapsed.TotalSeconds:0.0} s after ready");
        var listed = (await FleetCluster.Directory(_node)).Where(d => ids.Contains((string)d["device_id"]!)).ToList();
        Assert.Equal(5, listed.Count);
        Assert.All(listed, d => Assert.False((bool)d["online"]!, d.ToJsonString()));
        // Filters agree with the rows.
        var onlineNow = (await _node.GetJson("/api/v1/devices?online=true&q=crash-"))["items"]!.AsArray();
        Assert.Empty(onlineNow);
    }

    public async ValueTask DisposeAsync()
    {
        if (_node is not null) await _node.DisposeAsync();
        if (_db is not null) await _db.DisposeAsync();
    }
}
