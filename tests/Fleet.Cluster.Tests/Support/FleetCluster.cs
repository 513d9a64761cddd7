using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Fleet.Cluster.Tests.Support;

/// <summary>
/// A whole deployment on loopback: a fresh PostgreSQL database, three Fleet.Server processes that form
/// one Akka cluster (every node lists all three as seeds), and nginx in front. Disposing kills every
/// child process, stops nginx and drops the database, whatever state the test left them in.
/// </summary>
public sealed class FleetCluster : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    public TestDatabase Database { get; }
    public IReadOnlyList<NodeProcess> Nodes { get; }
    public Nginx Nginx { get; private set; } = null!;
    public string WorkDir { get; }
    private readonly Action<string> _log;

    private FleetCluster(TestDatabase db, IReadOnlyList<NodeProcess> nodes, string workDir, Action<string> log)
    {
        Database = db;
        Nodes = nodes;
        WorkDir = workDir;
        _log = log;
    }

    public static async Task<FleetCluster> StartAsync(string name, Action<string> log, int size = 3)
    {
        var db = await TestDatabase.CreateAsync();
        var workDir = Paths.NewWorkDir(name);
        var ports = Enumerable.Range(0, size).Select(_ => (Http: Ports.Free(), Admin: Ports.Free(), Akka: Ports.Free())).ToList();
        var seeds = ports.Select(p => $"akka.tcp://fleet@127.0.0.1:{p.Akka}").ToList();
        var nodes = ports.Select((p, i) => new NodeProcess($"node{i + 1}", p.Http, p.Admin, p.Akka, seeds, db.ConnectionString, workDir)).ToList();
        var cluster = new FleetCluster(db, nodes, workDir, log);
        try
        {
            log($"work dir {workDir}, database {db.Name}");
            var sw = Stopwatch.StartNew();
            foreach (var n in nodes) n.Start();
            await cluster.WaitFormed(nodes);
            log($"3 nodes Up in {sw.Elapsed.TotalSeconds:0.0} s: " + string.Join(", ", nodes.Select(n => $"{n.Name} http {n.HttpPort} admin {n.AdminPort} akka {n.AkkaPort}")));
            cluster.Nginx = await Nginx.StartAsync(nodes.Select(n => n.HttpPort).ToList(), nodes.Select(n => n.AdminPort).ToList(), workDir);
            log($"nginx on {cluster.Nginx.Port} (routers), {cluster.Nginx.AdminPort} (admin)");
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Every given node is ready and sees exactly the given nodes as live members.</summary>
    public async Task WaitFormed(IReadOnlyList<NodeProcess> nodes, TimeSpan? within = null)
    {
        var expected = nodes.Select(n => n.AkkaAddress).OrderBy(a => a).ToList();
        foreach (var n in nodes) await n.WaitReady(within ?? StartTimeout);
        await Eventually.True(async () =>
        {
            foreach (var n in nodes)
            {
                var members = (await n.NodeInfo())["members"]!.AsArray()
                    .Select(m => ((string)m!).Split('#')[0]).OrderBy(a => a).ToList();
                if (!members.SequenceEqual(expected)) return false;
            }
            return true;
        }, $"{string.Join(", ", nodes.Select(n => n.Name))} see each other as the only members", within ?? StartTimeout);
    }

    public NodeProcess NodeByAddress(string nodeId) =>
        Nodes.Single(n => nodeId.StartsWith(n.AkkaAddress + "#", StringComparison.Ordinal));

    /// <summary>The device directory as one node lists it (all pages).</summary>
    public static async Task<List<JsonNode>> Directory(NodeProcess node)
    {
        var items = new List<JsonNode>();
        string? cursor = null;
        do
        {
            var page = await node.GetJson("/api/v1/devices?limit=1000" + (cursor is null ? "" : "&cursor=" + cursor));
            items.AddRange(page["items"]!.AsArray().Select(i => i!));
            cursor = (string?)page["next_cursor"];
        } while (cursor is not null);
        return items;
    }

    /// <summary>
    /// Lines in any node's log saying a message went through a serializer other than ours: the node's
    /// DefaultSerializerAlarm logs "default serializer … used for &lt;type&gt;" once per type that reaches
    /// it. Its own installation notice (Akka: the System.Object binding "is being overriden") is expected.
    /// </summary>
    public IReadOnlyList<string> SerializationWarnings() =>
        Nodes.SelectMany(n => n.LogLines().Select(l => $"{n.Name}: {l}"))
            .Where(l => !(l.Contains("are being overriden", StringComparison.Ordinal) && l.Contains("DefaultSerializerAlarm", StringComparison.Ordinal)))
            .Where(l => l.Contains("default serializer", StringComparison.OrdinalIgnoreCase)
                        || l.Contains("Newtonsoft", StringComparison.OrdinalIgnoreCase)
                        || l.Contains("NewtonSoftJsonSerializer", StringComparison.OrdinalIgnoreCase)
                        || (l.Contains("serializ", StringComparison.OrdinalIgnoreCase)
                            && (l.Contains("WARN", StringComparison.Ordinal) || l.Contains("ERROR", StringComparison.Ordinal))))
            .ToList();

    public async ValueTask DisposeAsync()
    {
        if (Nginx is not null)
        {
            try { await Nginx.DisposeAsync(); }
            catch (Exception ex) { _log($"stopping nginx: {ex.Message}"); }
        }
        foreach (var n in Nodes)
        {
            try { await n.DisposeAsync(); }
            catch (Exception ex) { _log($"stopping {n.Name}: {ex.Message}"); }
        }
        await Database.DisposeAsync();
    }
}
