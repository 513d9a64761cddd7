using Fleet.Cluster.Tests.Support;

namespace Fleet.Cluster.Tests;

/// <summary>A router's socket, its entity and the admin request may each be on a different node.</summary>
public sealed class CrossNodeTests(ITestOutputHelper output) : ClusterTestBase(output)
{
    [Fact(Timeout = 180_000)]
    public async Task Command_posted_to_another_node_reaches_the_router_and_the_answer_comes_back()
    {
        // The event stream, read through nginx's admin listener: it is served by one node, and hears every node's events.
        using var viaNginx = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Cluster.Nginx.AdminPort}"), Timeout = Timeout.InfiniteTimeSpan }.Authorize();
        await using var events = await SseStream.OpenAsync(viaNginx, "/api/v1/events?types=device.online,command.status");
        Routers.AddRange(await Scenario.ConnectRouters(Cluster, 6, TimeSpan.FromSeconds(60)));
        var onlineFrom = new HashSet<string>();
        var notYet = Routers.Select(r => r.DeviceId).ToHashSet();
        while (notYet.Count > 0)
        {
            var e = await events.Next((type, d) => type == "device.online" && notYet.Contains((string?)d["device_id"] ?? ""));
            notYet.Remove((string)e["device_id"]!);
            onlineFrom.Add((string)e["node"]!);
        }
        Log($"device.online events through nginx from {onlineFrom.Count} nodes");
        Assert.True(onlineFrom.Count >= 2, $"every online event came from {string.Join(",", onlineFrom)}");

        var socketNodes = new HashSet<string>();
        foreach (var r in Routers)
        {
            var device = await Cluster.Nodes[0].GetJson($"/api/v1/devices/{r.DeviceId}");
            var socketNode = Cluster.NodeByAddress((string)device["node"]!);
            socketNodes.Add(socketNode.Name);
            // The admin request goes to a node that does not hold the socket.
            var admin = Cluster.Nodes.First(n => n != socketNode);
            var (status, body) = await admin.Send(HttpMethod.Post, $"/api/v1/devices/{r.DeviceId}/commands?wait=20",
                """{"type":"get_firmware_info"}""");
            Assert.True(status == 200, $"{admin.Name} answered {status} {body?.ToJsonString()}");
            Assert.Equal("succeeded", (string?)body!["status"]);
            var id = (string)body["command_id"]!;
            Assert.True(r.Received.ContainsKey(id), $"{r.DeviceId} did not receive {id}");
            Assert.Equal("r-" + id, (string?)body["response"]!["data"]!["DISTRIB_RELEASE"]);
            Log($"{r.DeviceId}: socket on {socketNode.Name}, command posted to {admin.Name}: succeeded");
            await events.Next("command.status", r.DeviceId, d => (string?)d["command_id"] == id && (string?)d["status"] == "succeeded");

            // Every node gives the same view of the device (it asks the one entity).
            foreach (var n in Cluster.Nodes)
            {
                var view = await n.GetJson($"/api/v1/devices/{r.DeviceId}");
                Assert.Equal("r-" + id, (string?)view["firmware"]!["DISTRIB_RELEASE"]);
                Assert.True((bool)view["online"]!);
            }
        }
        // nginx spreads sockets round robin: more than one node holds routers.
        Assert.True(socketNodes.Count >= 2, $"all sockets landed on {string.Join(",", socketNodes)}");

        // As deployed: routers' listener (nginx and node) serves only sockets, the admin listener the API.
        using (var http = new HttpClient().Authorize())
        {
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{Cluster.Nginx.Port}/api/v1/node", TestContext.Current.CancellationToken)).StatusCode);
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{Cluster.Nodes[0].HttpPort}/api/v1/node", TestContext.Current.CancellationToken)).StatusCode);
            Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{Cluster.Nginx.AdminPort}/api/v1/node", TestContext.Current.CancellationToken)).StatusCode);
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{Cluster.Nginx.AdminPort}/ws/wifidogx", TestContext.Current.CancellationToken)).StatusCode);

            // A key in a router's query string stays out of nginx's log of the routers' listener.
            await http.GetAsync($"http://127.0.0.1:{Cluster.Nginx.Port}/ws/log-check?key=never-logged-key", TestContext.Current.CancellationToken);
            var accessLog = Path.Combine(Cluster.Nginx.Dir, "access.log");
            await Eventually.True(() => File.Exists(accessLog) && File.ReadAllText(accessLog).Contains("GET /ws/log-check "), "request logged");
            Assert.DoesNotContain("never-logged-key", File.ReadAllText(accessLog));
        }

        await Scenario.DirectoryAgrees(Cluster.Nodes, Routers.Select(r => r.DeviceId).ToList(), online: true, TimeSpan.FromSeconds(30));
        NoSerializationWarnings();
    }
}
