using System.Text.Json;
using Fleet.Edge.Firewall;
using Fleet.Edge.Portal;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

/// <summary>
/// A change of clients changes only set elements (the table is not rebuilt), and the table stays right
/// after a flush, a restart of the agent, and passes the kernel ended by itself. Real nft in a namespace.
/// </summary>
public class IncrementalNftTests
{
    private const string A = "aa:bb:cc:dd:ee:01", B = "aa:bb:cc:dd:ee:02", C = "aa:bb:cc:dd:ee:03", P = "aa:bb:cc:dd:ee:05";

    private static PortalState Auth(PortalState s, string mac, int host) =>
        PortalDecisions.Auth(s, new AuthRequest { Token = "t", ClientIp = $"10.231.1.{host}", ClientMac = mac, GwId = "gw-1", OnceAuth = false }, DateTimeOffset.UtcNow).State;

    private static PortalState Pass(PortalState s, string mac, int seconds) =>
        PortalDecisions.TmpPass(s, new TmpPassRequest { ClientMac = mac, Timeout = seconds }, DateTimeOffset.UtcNow).State;

    private static PortalState Kick(PortalState s, string mac, int host) =>
        PortalDecisions.Kickoff(s, "r1", new KickoffRequest { ClientIp = $"10.231.1.{host}", ClientMac = mac, DeviceId = "r1", GwId = "gw-1" }).State;

    private static FirewallSpec Spec(PortalState s) => FirewallSpec.From([("gw-1", "br-lan"), ("gw-2", "wlan1")], s, DateTimeOffset.UtcNow);

    /// <summary>The kernel's handle of our table and of its set allow_0; both must exist (a missing table is a failure, not an empty set).</summary>
    private static async Task<(long Table, long Set)> Handles(NetNs ns)
    {
        using var doc = JsonDocument.Parse(await ns.Nft("-j", "-a", "list", "table", "inet", "fleet"));
        long? table = null, set = null;
        foreach (var o in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (o.TryGetProperty("table", out var t)) table = t.GetProperty("handle").GetInt64();
            if (o.TryGetProperty("set", out var s) && s.GetProperty("name").GetString() == "allow_0") set = s.GetProperty("handle").GetInt64();
        }
        Assert.True(table is not null, "table inet fleet exists");
        Assert.True(set is not null, "set allow_0 exists");
        return (table!.Value, set!.Value);
    }

    private static async Task<List<(string Mac, int? Timeout)>> Elements(NetNs ns, string set = "allow_0")
    {
        await Handles(ns);
        return await NftablesTests.ElementsIn(ns, set);
    }

    [Fact]
    public async Task An_auth_and_a_kickoff_change_set_elements_without_rebuilding_the_table()
    {
        await using var ns = await NetNs.CreateAsync("i");
        var backend = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        var s = Pass(Auth(Auth(PortalState.Initial([("gw-1", 1), ("gw-2", 1)]), A, 10), B, 11), P, 120);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);
        var before = await Handles(ns);

        s = Kick(Auth(s, C, 12), A, 10);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);

        Assert.Equal(before, await Handles(ns)); // the same table and set: changed in place, not replaced
        var elements = await Elements(ns);
        Assert.Equal([B, C, P], elements.Select(e => e.Mac).Order());
        Assert.Contains((B, null), elements);
        Assert.Contains((C, null), elements);
        Assert.Contains(elements, e => e.Mac == P && e.Timeout is > 100 and <= 120);
        Assert.Equal([P], (await Elements(ns, "allow_1")).Select(e => e.Mac));
    }

    [Fact]
    public async Task A_pass_that_becomes_an_authorisation_loses_its_timeout_and_gets_it_back_at_kickoff()
    {
        await using var ns = await NetNs.CreateAsync("i");
        var backend = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        var s = Pass(PortalState.Initial([("gw-1", 1), ("gw-2", 1)]), P, 120);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);
        var before = await Handles(ns);

        s = Auth(s, P, 20);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);
        Assert.Equal([(P, null)], await Elements(ns));

        s = Kick(s, P, 20);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);
        Assert.Contains(await Elements(ns), e => e.Mac == P && e.Timeout is > 100 and <= 120);
        Assert.Equal(before, await Handles(ns));
        Assert.Equal(1, backend.FullWrites);
        Assert.Equal(2, backend.ElementChanges);
    }

    [Fact]
    public async Task A_pass_the_kernel_ended_does_not_break_the_next_change()
    {
        await using var ns = await NetNs.CreateAsync("i");
        var backend = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        var s = Pass(Auth(PortalState.Initial([("gw-1", 1), ("gw-2", 1)]), A, 10), P, 1);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);
        await Eventually.True(async () => (await Elements(ns)).All(e => e.Mac != P), "the kernel dropped the ended pass");

        s = Auth(PortalDecisions.Prune(s, DateTimeOffset.UtcNow), B, 11);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);
        Assert.Equal([(A, null), (B, null)], (await Elements(ns)).OrderBy(e => e.Mac));
        Assert.Equal(1, backend.FullWrites);
        Assert.Equal(1, backend.ElementChanges);
    }

    [Fact]
    public async Task After_a_flush_or_a_restart_the_whole_table_is_written_again()
    {
        await using var ns = await NetNs.CreateAsync("i");
        var backend = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        var s = Auth(Auth(PortalState.Initial([("gw-1", 1), ("gw-2", 1)]), A, 10), B, 11);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);

        await ns.Nft("flush", "ruleset");
        Assert.False(await backend.IsInstalledAsync(CancellationToken.None));
        s = Auth(s, C, 12);
        await backend.ApplyAsync(Spec(s), CancellationToken.None);
        Assert.Equal([A, B, C], (await Elements(ns)).Select(e => e.Mac).Order());

        // Someone removed an element by hand, then the agent restarted: a new backend rewrites the table whole.
        await ns.Nft("delete", "element", "inet", "fleet", "allow_0", "{", B, "}");
        var restarted = new NftablesBackend("fleet", [.. ns.Prefix, "nft"]);
        await restarted.ApplyAsync(Spec(s), CancellationToken.None);
        Assert.Equal([A, B, C], (await Elements(ns)).Select(e => e.Mac).Order());
        Assert.Equal(1, restarted.FullWrites);

        // A change nft refuses (deleting what is no longer there) falls back to a whole rewrite.
        await ns.Nft("delete", "element", "inet", "fleet", "allow_0", "{", A, "}");
        s = Kick(s, A, 10);
        await restarted.ApplyAsync(Spec(s), CancellationToken.None);
        Assert.Equal([B, C], (await Elements(ns)).Select(e => e.Mac).Order());
        Assert.Equal(2, restarted.FullWrites);
    }
}

/// <summary>The element changes as text: what is deleted, what is added, what is left to the kernel.</summary>
public class NftChangeScriptTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static FirewallSpec Spec(params AllowedMac[] allowed) =>
        new([new GatewayRules("gw-1", "br-lan", false, allowed), new GatewayRules("gw-2", "wlan1", false, [])]);

    private static AllowedMac Client(string mac) => new(mac, null);
    private static AllowedMac Pass(string mac, int seconds, DateTimeOffset now) => new(mac, TimeSpan.FromSeconds(seconds), now.AddSeconds(seconds));

    [Fact]
    public void Only_the_macs_that_changed_are_written()
    {
        var from = Spec(Client("aa:bb:cc:dd:ee:01"), Client("aa:bb:cc:dd:ee:02"));
        var to = Spec(Client("aa:bb:cc:dd:ee:02"), Client("aa:bb:cc:dd:ee:03"));
        Assert.Equal("delete element inet fleet allow_0 { aa:bb:cc:dd:ee:01 }\nadd element inet fleet allow_0 { aa:bb:cc:dd:ee:03 }\n",
            NftScript.RenderChanges("fleet", from, to, T));
        Assert.Equal("", NftScript.RenderChanges("fleet", to, to, T));
    }

    [Fact]
    public void A_pass_that_becomes_a_client_is_deleted_and_added_without_timeout()
    {
        var from = Spec(Pass("aa:bb:cc:dd:ee:05", 60, T));
        var to = Spec(Client("aa:bb:cc:dd:ee:05"));
        Assert.Equal("delete element inet fleet allow_0 { aa:bb:cc:dd:ee:05 }\nadd element inet fleet allow_0 { aa:bb:cc:dd:ee:05 }\n",
            NftScript.RenderChanges("fleet", from, to, T.AddSeconds(1)));
    }

    [Fact]
    public void A_pass_that_ended_is_not_deleted_and_a_new_pass_for_it_is_added()
    {
        var from = Spec(Pass("aa:bb:cc:dd:ee:05", 10, T), Pass("aa:bb:cc:dd:ee:06", 10, T));
        var later = T.AddSeconds(11);
        var to = Spec(Pass("aa:bb:cc:dd:ee:06", 30, later));
        Assert.Equal("add element inet fleet allow_0 { aa:bb:cc:dd:ee:06 timeout 30000ms }\n",
            NftScript.RenderChanges("fleet", from, to, later));
    }

    [Fact]
    public void Another_layout_is_refused()
    {
        var open = new FirewallSpec([new GatewayRules("gw-1", "br-lan", true, []), new GatewayRules("gw-2", "wlan1", false, [])]);
        Assert.Throws<ArgumentException>(() => NftScript.RenderChanges("fleet", Spec(), open, T));
    }
}
