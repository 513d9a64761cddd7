using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Fleet.Edge.Firewall;
using Fleet.Edge.Hosting;
using Fleet.Edge.Portal;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

/// <summary>The nftables backend for real, in network namespaces the tests create (root only, as in CI).</summary>
public class NftablesTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    private static PortalState StateWith(params string[] macs)
    {
        var s = PortalState.Initial([("gw-1", 1), ("gw-2", 1)]);
        var i = 10;
        foreach (var mac in macs)
            s = PortalDecisions.Auth(s, new AuthRequest { Token = "t", ClientIp = $"10.231.1.{i++}", ClientMac = mac, GwId = "gw-1" }, Now).State;
        return s;
    }

    private static FirewallSpec Spec(PortalState s) => FirewallSpec.From([("gw-1", "br-lan"), ("gw-2", "wlan1")], s, Now);

    /// <summary>`nft -j list ruleset` → the objects of our table, as (kind, element) pairs.</summary>
    internal static async Task<List<(string Kind, JsonElement Body)>> Ruleset(NetNs ns)
    {
        using var doc = JsonDocument.Parse(await ns.Nft("-j", "list", "ruleset"));
        return doc.RootElement.GetProperty("nftables").EnumerateArray()
            .Select(o => o.EnumerateObject().First())
            .Where(p => p.Name != "metainfo")
            .Select(p => (p.Name, p.Value.Clone()))
            .ToList();
    }

    /// <summary>
    /// The elements of a set of our table (inet fleet): plain MACs, and MACs with a timeout for passes. A
    /// missing table or set is no answer at all, never an empty list — "MAC removed" must not pass when the
    /// agent deleted the whole table. It throws <see cref="NftObjectMissing"/>: a wait retries it, a direct
    /// assertion fails with it.
    /// </summary>
    internal static List<(string Mac, int? Timeout)> Elements(List<(string Kind, JsonElement Body)> ruleset, string set, string table = "fleet")
    {
        if (!ruleset.Any(o => o.Kind == "table" && o.Body.GetProperty("family").GetString() == "inet" && o.Body.GetProperty("name").GetString() == table))
            throw new NftObjectMissing($"no table inet {table} in the ruleset");
        var s = ruleset.Where(o => o.Kind == "set" && o.Body.GetProperty("name").GetString() == set
                                   && o.Body.GetProperty("table").GetString() == table && o.Body.GetProperty("family").GetString() == "inet").ToList();
        if (s.Count == 0) throw new NftObjectMissing($"no set {set} in table inet {table}");
        if (!s[0].Body.TryGetProperty("elem", out var elems)) return []; // the set exists and is empty
        return elems.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String
            ? (e.GetString()!, (int?)null)
            : (e.GetProperty("elem").GetProperty("val").GetString()!, e.GetProperty("elem").GetProperty("timeout").GetInt32())).ToList();
    }

    internal static async Task<List<(string Mac, int? Timeout)>> ElementsIn(NetNs ns, string set = "allow_0") => Elements(await Ruleset(ns), set);

    [Fact]
    public async Task Backend_installs_a_table_with_a_timeout_set_per_gateway_and_forward_rules()
    {
        await using var ns = await NetNs.CreateAsync("n");
        var backend = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        var state = PortalDecisions.TmpPass(StateWith("aa:bb:cc:dd:ee:01"), new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:05", Timeout = 600 }, Now).State;
        await backend.ApplyAsync(Spec(state), CancellationToken.None);

        var rs = await Ruleset(ns);
        Assert.Contains(rs, o => o.Kind == "table" && o.Body.GetProperty("family").GetString() == "inet" && o.Body.GetProperty("name").GetString() == "fleet");
        var set0 = rs.Single(o => o.Kind == "set" && o.Body.GetProperty("name").GetString() == "allow_0").Body;
        Assert.Equal("ether_addr", set0.GetProperty("type").GetString());
        Assert.Contains("timeout", set0.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        Assert.Equal("gw-1", set0.GetProperty("comment").GetString());
        var e0 = Elements(rs, "allow_0");
        Assert.Contains(("aa:bb:cc:dd:ee:01", null), e0);
        Assert.Contains(e0, e => e.Mac == "aa:bb:cc:dd:ee:05" && e.Timeout is > 290 and <= 300);
        Assert.Equal(["aa:bb:cc:dd:ee:05"], Elements(rs, "allow_1").Select(e => e.Mac));

        var chain = rs.Single(o => o.Kind == "chain" && o.Body.GetProperty("name").GetString() == "forward").Body;
        Assert.Equal(("filter", "forward", "accept"), (chain.GetProperty("type").GetString(), chain.GetProperty("hook").GetString(), chain.GetProperty("policy").GetString()));
        var rules = rs.Where(o => o.Kind == "rule").Select(o => o.Body.GetProperty("expr").GetRawText()).ToList();
        Assert.Equal(4, rules.Count);
        Assert.Contains(rules, r => r.Contains("\"br-lan\"") && r.Contains("\"@allow_0\"") && r.Contains("\"accept\""));
        Assert.Contains(rules, r => r.Contains("\"br-lan\"") && r.Contains("\"drop\""));
        Assert.True(await backend.IsInstalledAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Reapplying_replaces_the_table_atomically_and_a_flush_is_noticed()
    {
        await using var ns = await NetNs.CreateAsync("n");
        var backend = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        await backend.ApplyAsync(Spec(StateWith("aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02")), CancellationToken.None);
        await backend.ApplyAsync(Spec(StateWith("aa:bb:cc:dd:ee:02")), CancellationToken.None);
        Assert.Equal([("aa:bb:cc:dd:ee:02", null)], await ElementsIn(ns));
        Assert.Single(await Ruleset(ns), o => o.Kind == "table");

        await ns.Nft("flush", "ruleset");
        Assert.False(await backend.IsInstalledAsync(CancellationToken.None));
    }

    [Fact]
    public async Task The_set_helpers_fail_when_the_table_or_the_set_is_gone_instead_of_reading_an_empty_set()
    {
        await using var ns = await NetNs.CreateAsync("n");
        var backend = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        await backend.ApplyAsync(Spec(StateWith()), CancellationToken.None);
        Assert.Empty(await ElementsIn(ns)); // an empty set that exists is an empty list
        await Assert.ThrowsAsync<NftObjectMissing>(() => ElementsIn(ns, "allow_9"));

        await ns.Nft("delete", "table", "inet", "fleet");
        var gone = await Assert.ThrowsAsync<NftObjectMissing>(() => ElementsIn(ns));
        Assert.Contains("no table inet fleet", gone.Message);
    }

    [Fact]
    public async Task The_agent_re_applies_its_clients_after_nft_flush_ruleset()
    {
        await using var ns = await NetNs.CreateAsync("n");
        await using var controller = await FakeController.StartAsync();
        using var ws = new Workspace();
        var config = ws.Config(controller.Url);
        config.Firewall.Backend = "nftables";
        await using var agent = EdgeAgent.Start(config, new EdgeOverrides
        {
            NftPrefix = ns.Prefix, Timings = LinkTests.Fast, FirewallCheckInterval = TimeSpan.FromMilliseconds(200),
        });
        var device = await controller.NextConnectionAsync();
        await device.SendAsync("""{"type":"auth","token":"t","client_ip":"10.231.1.10","client_mac":"AA:BB:CC:DD:EE:01","gw_id":"gw-1"}""");
        await Eventually.True(async () => (await ElementsIn(ns)).Contains(("aa:bb:cc:dd:ee:01", null)), "client in the nft set");

        await ns.Nft("flush", "ruleset");
        await Eventually.True(async () => (await ElementsIn(ns)).Contains(("aa:bb:cc:dd:ee:01", null)), "client back in the nft set after the flush");
    }
}

/// <summary>
/// Real traffic: client ── router ── upstream, three namespaces joined by veth pairs, the router
/// forwarding and the agent's nftables table on the router's client-side interface.
/// </summary>
public class TrafficTests
{
    private const string ClientMac = "02:00:00:00:01:10";
    private const string ClientIp = "10.231.1.10";
    private static readonly IPEndPoint Upstream = new(IPAddress.Parse("10.231.2.2"), 8080);

    private sealed class Topology : IAsyncDisposable
    {
        public required NetNs Client, Router, Upstream;
        public required Socket Listener;
        public required CancellationTokenSource Stop;

        public async ValueTask DisposeAsync()
        {
            Stop.Cancel();
            Listener.Dispose();
            await Client.DisposeAsync();
            await Router.DisposeAsync();
            await Upstream.DisposeAsync();
        }
    }

    private static async Task<Topology> Build()
    {
        var c = await NetNs.CreateAsync("c");
        var r = await NetNs.CreateAsync("r");
        var u = await NetNs.CreateAsync("u");
        // Veths are made inside the namespaces, so parallel tests never collide on names.
        await r.Exec("ip", "link", "add", "r-c", "type", "veth", "peer", "name", "c0", "netns", c.Name);
        await r.Exec("ip", "link", "add", "r-u", "type", "veth", "peer", "name", "u0", "netns", u.Name);
        await c.Exec("ip", "link", "set", "c0", "address", ClientMac);
        await c.Exec("ip", "addr", "add", ClientIp + "/24", "dev", "c0");
        await c.Exec("ip", "link", "set", "c0", "up");
        await c.Exec("ip", "route", "add", "default", "via", "10.231.1.1");
        await r.Exec("ip", "addr", "add", "10.231.1.1/24", "dev", "r-c");
        await r.Exec("ip", "addr", "add", "10.231.2.1/24", "dev", "r-u");
        await r.Exec("ip", "link", "set", "r-c", "up");
        await r.Exec("ip", "link", "set", "r-u", "up");
        await r.Exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
        await u.Exec("ip", "addr", "add", "10.231.2.2/24", "dev", "u0");
        await u.Exec("ip", "link", "set", "u0", "up");
        await u.Exec("ip", "route", "add", "default", "via", "10.231.2.1");

        var listener = u.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(Upstream);
        listener.Listen(64);
        var stop = new CancellationTokenSource();
        _ = Task.Run(async () =>
        {
            // Accept and drop, so the backlog never fills and refuses probes.
            try { while (true) (await listener.AcceptAsync(stop.Token)).Dispose(); }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException) { }
        });
        return new Topology { Client = c, Router = r, Upstream = u, Listener = listener, Stop = stop };
    }

    /// <summary>One TCP connect from the client namespace; a dropped SYN shows as a timeout.</summary>
    private static async Task<bool> ClientReachesUpstream(Topology t)
    {
        using var s = t.Client.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
        try { await s.ConnectAsync(Upstream, cts.Token); return true; }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException) { return false; }
    }

    [Fact]
    public async Task Client_passes_only_while_authorised_or_on_a_pass()
    {
        await using var t = await Build();
        await Eventually.True(() => ClientReachesUpstream(t), "the topology forwards before the agent runs");

        await using var controller = await FakeController.StartAsync();
        using var ws = new Workspace();
        var config = ws.Config(controller.Url, gwInterface: "r-c");
        config.Firewall.Backend = "nftables";
        await using var agent = EdgeAgent.Start(config, new EdgeOverrides { NftPrefix = t.Router.Prefix, Timings = LinkTests.Fast });
        var device = await controller.NextConnectionAsync();

        await Eventually.True(async () => !await ClientReachesUpstream(t), "blocked before auth");

        await device.SendAsync(ProtocolCodec.EncodeToString(new AuthRequest { Token = "t", ClientIp = ClientIp, ClientMac = ClientMac, GwId = "gw-1", OnceAuth = false }));
        await Eventually.True(() => ClientReachesUpstream(t), "passes after auth");

        await device.SendAsync(ProtocolCodec.EncodeToString(new KickoffRequest
        {
            ReqId = new ReqId("1", IsNumber: true), ClientIp = ClientIp, ClientMac = ClientMac, DeviceId = "router-1", GwId = "gw-1",
        }));
        Assert.Equal("success", (await device.ExpectAsync("kickoff_response")).GetProperty("status").GetString());
        Assert.False(await ClientReachesUpstream(t), "blocked after kickoff");

        await device.SendAsync(ProtocolCodec.EncodeToString(new TmpPassRequest { ClientMac = ClientMac, Timeout = 2 }));
        await Eventually.True(() => ClientReachesUpstream(t), "passes during the tmp_pass");
        await Eventually.True(async () => !await ClientReachesUpstream(t), "blocked once the pass expired", TimeSpan.FromSeconds(8));
    }

    [Fact]
    public async Task Once_auth_opens_the_gateway_to_everybody()
    {
        await using var t = await Build();
        await using var controller = await FakeController.StartAsync();
        using var ws = new Workspace();
        var config = ws.Config(controller.Url, gwInterface: "r-c");
        config.Firewall.Backend = "nftables";
        await using var agent = EdgeAgent.Start(config, new EdgeOverrides { NftPrefix = t.Router.Prefix, Timings = LinkTests.Fast });
        var device = await controller.NextConnectionAsync();
        await Eventually.True(async () => !await ClientReachesUpstream(t), "blocked before auth");

        await device.SendAsync("""{"type":"auth","token":"t","client_ip":"10.231.1.99","client_mac":"02:00:00:00:01:99","gw_id":"gw-1","once_auth":true}""");
        await Eventually.True(() => ClientReachesUpstream(t), "anyone passes once the gateway is open");
    }
}

/// <summary>A table or set the test expected in the ruleset is not there (retried by a wait, fatal to a direct check).</summary>
public sealed class NftObjectMissing(string message) : NotYetException(message);
