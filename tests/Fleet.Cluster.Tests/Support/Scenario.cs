using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Fleet.Cluster.Tests.Support;

/// <summary>What several tests do to a running cluster: connect routers, submit commands, check outcomes.</summary>
public static class Scenario
{
    public static string DeviceId(int i) => $"dev-{i:D3}";

    public static async Task<List<ReconnectingRouter>> ConnectRouters(FleetCluster cluster, int count, TimeSpan within)
    {
        var routers = Enumerable.Range(0, count)
            .Select(i => new ReconnectingRouter(cluster.Nginx.WebSocketUri, DeviceId(i)).Start()).ToList();
        await Eventually.True(() => routers.All(r => r.Replies > 0), $"{count} routers connected and answered", within);
        await WaitRecorded(cluster.Nodes[0], routers, within);
        return routers;
    }

    /// <summary>
    /// Waits until every router's device is recorded online (asked through <paramref name="node"/>). A reply is no
    /// proof of that: a connection whose entity is slow answers with an echo of the router's own modes
    /// (DeviceConnection.EchoAfter), and the tests go on to use the devices through the admin API.
    /// </summary>
    public static async Task WaitRecorded(NodeProcess node, IEnumerable<ReconnectingRouter> routers, TimeSpan within)
    {
        foreach (var r in routers)
            await Eventually.True(async () => (bool?)(await node.GetJson($"/api/v1/devices/{r.DeviceId}"))["online"] == true,
                $"{r.DeviceId} recorded online", within);
    }

    /// <summary>
    /// Waits until every device's entity is live again and attached to a socket on a live node: GET of
    /// the device (which asks the entity itself, wherever its shard is now) on one of the live nodes says
    /// online, with a node among them. Heartbeat replies are no proof: a connection may answer those
    /// from its cache. Returns, per device, how long after <paramref name="mark"/> that was first seen.
    /// </summary>
    public static async Task<Dictionary<string, TimeSpan>> WaitAllBack(IReadOnlyList<NodeProcess> live,
        IReadOnlyList<ReconnectingRouter> routers, DateTime mark, TimeSpan within)
    {
        var prefixes = live.Select(n => n.AkkaAddress + "#").ToList();
        var back = new System.Collections.Concurrent.ConcurrentDictionary<string, TimeSpan>();
        await Task.WhenAll(routers.Select(async r =>
        {
            var attempt = Random.Shared.Next(live.Count);
            try
            {
                await Eventually.True(async () =>
                {
                    var node = live[attempt++ % live.Count];
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                    using var response = await node.Http.GetAsync($"/api/v1/devices/{r.DeviceId}", cts.Token);
                    if (!response.IsSuccessStatusCode) return false;
                    var view = JsonNode.Parse(await response.Content.ReadAsStringAsync(cts.Token))!;
                    var at = (string?)view["node"];
                    if ((bool?)view["online"] != true || at is null || !prefixes.Any(p => at.StartsWith(p, StringComparison.Ordinal))) return false;
                    back[r.DeviceId] = DateTime.UtcNow - mark;
                    return true;
                }, $"{r.DeviceId} back", within, every: Poll);
            }
            catch (TimeoutException) { } // named with the others below
        }));
        var missing = routers.Where(r => !back.ContainsKey(r.DeviceId)).Select(r => $"{r.DeviceId} ({r.Connections} sockets, last error: {r.LastError ?? "none"})").ToList();
        if (missing.Count > 0)
            throw new TimeoutException($"{missing.Count} devices not back within {within.TotalSeconds:0} s: {string.Join("; ", missing.Take(5))}");
        return back.ToDictionary();
    }

    /// <summary>
    /// Submits a command, trying the given nodes in turn until one accepts it (202/200). A node may
    /// time out while the device's shard is re-homed (504), or be down: both are retried. A timed-out
    /// attempt may still have created a command: the checks look at every command the device has.
    /// </summary>
    public static async Task<string> Submit(IReadOnlyList<NodeProcess> nodes, string deviceId, string json, string query,
        TimeSpan within)
    {
        var attempt = 0;
        string? id = null;
        var last = "";
        await Eventually.True(async () =>
        {
            var node = nodes[attempt++ % nodes.Count];
            try
            {
                var (status, body) = await node.Send(HttpMethod.Post, $"/api/v1/devices/{deviceId}/commands{query}", json);
                if (status is 200 or 202)
                {
                    id = (string)body!["command_id"]!;
                    return true;
                }
                last = $"{node.Name} → {status} {body?.ToJsonString()}";
                if (status < 500) throw new Xunit.Sdk.XunitException($"command for {deviceId} refused: {last}");
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                last = $"{node.Name}: {ex.Message}";
            }
            return false;
        }, $"a node accepts a command for {deviceId}", within, () => $"last: {last}", every: Poll);
        return id!;
    }

    /// <summary>Between tries of a request to a cluster that is re-homing shards: often enough, without adding load.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    public static async Task<JsonArray> Commands(NodeProcess node, string deviceId) =>
        (await node.GetJson($"/api/v1/devices/{deviceId}/commands"))["items"]!.AsArray();

    /// <summary>Every command each device has is final and succeeded, and every accepted id is among them and reached the router.</summary>
    public static async Task AllCommandsSucceeded(IReadOnlyList<NodeProcess> nodes, IReadOnlyList<ReconnectingRouter> routers,
        IReadOnlyDictionary<string, List<string>> accepted, TimeSpan within)
    {
        var pending = "";
        await Eventually.True(async () =>
        {
            foreach (var r in routers)
            {
                var node = nodes[Random.Shared.Next(nodes.Count)];
                var items = await Commands(node, r.DeviceId);
                var notDone = items.Where(c => (string?)c!["status"] != "succeeded").ToList();
                if (notDone.Count > 0)
                {
                    pending = $"{r.DeviceId}: {string.Join(", ", notDone.Select(c => $"{c!["command_id"]} {c["type"]} {c["status"]}"))}";
                    return false;
                }
                var ids = items.Select(c => (string)c!["command_id"]!).ToHashSet();
                var missing = accepted[r.DeviceId].Where(id => !ids.Contains(id)).ToList();
                if (missing.Count > 0) throw new InvalidOperationException($"{r.DeviceId} lost accepted commands {string.Join(", ", missing)}");
            }
            return true;
        }, "every command final and succeeded", within).ContinueWith(t =>
        {
            if (t.IsFaulted) throw new Xunit.Sdk.XunitException($"{t.Exception!.InnerException!.Message} (still pending: {pending})");
        });
        foreach (var r in routers)
        foreach (var id in accepted[r.DeviceId])
            Assert.True(r.Received.ContainsKey(id), $"{r.DeviceId} never received command {id}");
    }

    /// <summary>Every node lists every device in its directory, online as expected (and, when online, on a live node).</summary>
    public static async Task DirectoryAgrees(IReadOnlyList<NodeProcess> nodes, IReadOnlyList<string> deviceIds, bool online,
        TimeSpan within)
    {
        var live = nodes.Select(n => n.AkkaAddress + "#").ToList();
        var problem = "";
        await Eventually.True(async () =>
        {
            foreach (var n in nodes)
            {
                var items = await FleetCluster.Directory(n);
                var byId = items.ToDictionary(i => (string)i["device_id"]!);
                foreach (var id in deviceIds)
                {
                    if (!byId.TryGetValue(id, out var s)) { problem = $"{n.Name} does not list {id}"; return false; }
                    if ((bool)s["online"]! != online) { problem = $"{n.Name} lists {id} online={s["online"]}"; return false; }
                    if (online && !live.Any(l => ((string?)s["node"])?.StartsWith(l, StringComparison.Ordinal) == true))
                    { problem = $"{n.Name} lists {id} on {s["node"]}, not a live node"; return false; }
                }
            }
            return true;
        }, $"every node's directory lists the devices with online={online}", within).ContinueWith(t =>
        {
            if (t.IsFaulted) throw new Xunit.Sdk.XunitException($"{t.Exception!.InnerException!.Message} ({problem})");
        });
    }

    public static string Describe(Dictionary<string, TimeSpan> back) =>
        back.Count == 0 ? "none" :
        $"max {back.Values.Max().TotalSeconds:0.0} s, median {back.Values.Order().ElementAt(back.Count / 2).TotalSeconds:0.0} s";

    /// <summary>The slowest routers, for the log: who, how late, how many sockets, last error.</summary>
    public static string Slowest(IReadOnlyList<ReconnectingRouter> routers, Dictionary<string, TimeSpan> back, int n = 4) =>
        string.Join("; ", back.OrderByDescending(kv => kv.Value).Take(n).Select(kv =>
        {
            var r = routers.First(x => x.DeviceId == kv.Key);
            return $"{kv.Key} {kv.Value.TotalSeconds:0.0} s ({r.Connections} sockets, last error: {r.LastError ?? "none"})";
        }));

    public static Stopwatch Timer() => Stopwatch.StartNew();
}
