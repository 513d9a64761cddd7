using Fleet.Edge.Firewall;
using Fleet.Edge.Portal;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

public class NftScriptTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static FirewallSpec Spec(PortalState s) => FirewallSpec.From([("gw-1", "br-lan"), ("gw-2", "wlan1")], s, Now);

    private static PortalState State()
    {
        var s = PortalState.Initial([("gw-1", 1), ("gw-2", 1)]);
        s = PortalDecisions.Auth(s, new AuthRequest { Token = "t", ClientIp = "10.231.1.10", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-1" }, Now).State;
        return PortalDecisions.TmpPass(s, new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:05", Timeout = 30 }, Now).State;
    }

    [Fact]
    public void Clients_go_to_their_gateways_set_and_passes_to_every_set_with_a_timeout()
    {
        var spec = Spec(State());
        Assert.Equal([new AllowedMac("aa:bb:cc:dd:ee:01", null), new AllowedMac("aa:bb:cc:dd:ee:05", TimeSpan.FromSeconds(30), Now.AddSeconds(30))], spec.Gateways[0].Allowed);
        Assert.Equal([new AllowedMac("aa:bb:cc:dd:ee:05", TimeSpan.FromSeconds(30), Now.AddSeconds(30))], spec.Gateways[1].Allowed);
        var script = NftScript.Render("fleet", spec);
        Assert.Contains("elements = { aa:bb:cc:dd:ee:01, aa:bb:cc:dd:ee:05 timeout 30000ms }", script);
        Assert.Contains("iifname \"br-lan\" ether saddr @allow_0 accept", script);
        Assert.Contains("iifname \"wlan1\" counter drop", script);
    }

    [Fact]
    public void The_script_replaces_the_table_in_one_transaction_whether_or_not_it_exists()
    {
        var script = NftScript.Render("fleet", Spec(State()));
        Assert.StartsWith("table inet fleet {}\ndelete table inet fleet\ntable inet fleet {", script);
    }

    [Fact]
    public void An_open_gateway_accepts_everybody_on_its_interface()
    {
        var s = PortalDecisions.ReportReply(State(), new ReportReply { Gateway = [new() { GwId = "gw-2", AuthMode = 0 }] }).State;
        var script = NftScript.Render("fleet", Spec(s));
        Assert.Contains("iifname \"wlan1\" accept comment \"gw-2: open\"", script);
        Assert.DoesNotContain("iifname \"wlan1\" counter drop", script);
    }

    [Fact]
    public void Expired_passes_are_left_out()
    {
        var spec = FirewallSpec.From([("gw-1", "br-lan")], State(), Now.AddSeconds(31));
        Assert.Equal(["aa:bb:cc:dd:ee:01"], spec.Gateways[0].Allowed.Select(a => a.Mac));
    }

    [Fact]
    public void Unsafe_values_never_reach_the_script()
    {
        var bad = new FirewallSpec([new GatewayRules("gw-1", "br-lan", false, [new AllowedMac("aa:bb:cc:dd:ee:01 } ; flush ruleset", null)])]);
        Assert.Throws<ArgumentException>(() => NftScript.Render("fleet", bad));
        Assert.Throws<ArgumentException>(() => NftScript.Render("fleet; flush ruleset", Spec(State())));
        var badIf = new FirewallSpec([new GatewayRules("gw-1", "br-lan\" accept", false, [])]);
        Assert.Throws<ArgumentException>(() => NftScript.Render("fleet", badIf));
    }
}
