using Fleet.Edge.Portal;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

public class PortalDecisionsTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly PortalState Empty = PortalState.Initial([("gw-1", 1), ("gw-2", 1)]);

    private static PortalState WithClient(string mac = "aa:bb:cc:dd:ee:01", string ip = "10.231.1.10", string gw = "gw-1") =>
        PortalDecisions.Auth(Empty, new AuthRequest { Token = "t", ClientIp = ip, ClientMac = mac, GwId = gw, OnceAuth = false }, Now).State;

    private static KickoffRequest Kick(string? ip = "10.231.1.10", string? mac = "aa:bb:cc:dd:ee:01", string? device = "router-1", string? gw = "gw-1") =>
        new() { ReqId = ReqId.Of("r1"), ClientIp = ip, ClientMac = mac, DeviceId = device, GwId = gw };

    [Fact]
    public void Auth_adds_the_client_to_its_gateway_with_a_normalised_mac()
    {
        var s = WithClient(mac: "AA-BB-CC-DD-EE-01");
        var c = Assert.Single(s.Clients);
        Assert.Equal(("aa:bb:cc:dd:ee:01", "10.231.1.10", "gw-1"), (c.Mac, c.Ip, c.GwId));
    }

    [Fact]
    public void Once_auth_opens_the_gateway_without_adding_a_client()
    {
        var d = PortalDecisions.Auth(Empty, new AuthRequest { Token = "t", ClientIp = "10.231.1.10", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-2", OnceAuth = true }, Now);
        Assert.Equal(0, d.State.AuthModeOf("gw-2"));
        Assert.Equal(1, d.State.AuthModeOf("gw-1"));
        Assert.Empty(d.State.Clients);
        Assert.Null(d.Reply);
    }

    [Fact]
    public void Auth_for_an_unknown_gateway_changes_nothing()
    {
        var d = PortalDecisions.Auth(Empty, new AuthRequest { Token = "t", ClientIp = "10.231.1.10", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-9" }, Now);
        Assert.Same(Empty, d.State);
        Assert.NotNull(d.Ignored);
    }

    [Fact]
    public void Auth_with_a_bad_mac_changes_nothing()
    {
        var d = PortalDecisions.Auth(Empty, new AuthRequest { Token = "t", ClientIp = "10.231.1.10", ClientMac = "aa:bb;reboot", GwId = "gw-1" }, Now);
        Assert.Same(Empty, d.State);
    }

    [Fact]
    public void Reauth_of_a_mac_replaces_its_entry()
    {
        var s = PortalDecisions.Auth(WithClient(), new AuthRequest { Token = "t", ClientIp = "10.231.1.11", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-2" }, Now).State;
        var c = Assert.Single(s.Clients);
        Assert.Equal(("10.231.1.11", "gw-2"), (c.Ip, c.GwId));
    }

    [Fact]
    public void Kickoff_of_a_known_client_removes_it_and_answers_success()
    {
        var d = PortalDecisions.Kickoff(WithClient(), "router-1", Kick());
        Assert.Empty(d.State.Clients);
        var r = Assert.IsType<KickoffResponse>(d.Reply);
        Assert.Equal(("success", "10.231.1.10", "aa:bb:cc:dd:ee:01", "Client kicked off successfully"), (r.Status, r.ClientIp, r.ClientMac, r.Message));
        Assert.Equal(ReqId.Of("r1"), r.ReqId);
    }

    [Fact]
    public void Kickoff_with_a_missing_field_answers_missing_fields_first()
    {
        // Everything else is wrong too; the missing field is what the seed reports.
        var d = PortalDecisions.Kickoff(Empty, "router-1", Kick(gw: null, device: "other"));
        var e = Assert.IsType<KickoffError>(d.Reply);
        Assert.Equal("Missing required fields in request", e.Error);
        Assert.Null(e.ClientMac);
    }

    [Fact]
    public void Kickoff_of_an_unknown_client_reports_not_found_before_device_mismatch()
    {
        var d = PortalDecisions.Kickoff(WithClient(), "router-1", Kick(ip: "10.231.1.99", device: "other"));
        var e = Assert.IsType<KickoffError>(d.Reply);
        Assert.Equal(("Client not found", "10.231.1.99", "aa:bb:cc:dd:ee:01"), (e.Error, e.ClientIp, e.ClientMac));
    }

    [Fact]
    public void Kickoff_looks_clients_up_by_ip_and_mac_together()
    {
        var e = Assert.IsType<KickoffError>(PortalDecisions.Kickoff(WithClient(), "router-1", Kick(mac: "aa:bb:cc:dd:ee:02")).Reply);
        Assert.Equal("Client not found", e.Error);
    }

    [Fact]
    public void Kickoff_naming_another_device_reports_device_mismatch_before_gateway_mismatch()
    {
        var d = PortalDecisions.Kickoff(WithClient(), "router-1", Kick(device: "router-9", gw: "gw-2"));
        var e = Assert.IsType<KickoffError>(d.Reply);
        Assert.Equal(("Device ID mismatch", "router-9", "router-1"), (e.Error, e.ExpectedDeviceId, e.ActualDeviceId));
        Assert.Single(d.State.Clients);
    }

    [Fact]
    public void Kickoff_naming_another_gateway_reports_gateway_mismatch_with_the_clients_gateway()
    {
        var d = PortalDecisions.Kickoff(WithClient(), "router-1", Kick(gw: "gw-2"));
        var e = Assert.IsType<KickoffError>(d.Reply);
        Assert.Equal(("Gateway ID mismatch", "aa:bb:cc:dd:ee:01", "gw-2", "gw-1"), (e.Error, e.ClientMac, e.ExpectedGwId, e.ActualGwId));
        Assert.Single(d.State.Clients);
    }

    [Fact]
    public void Tmp_pass_defaults_to_300_seconds()
    {
        var s = PortalDecisions.TmpPass(Empty, new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:05" }, Now).State;
        Assert.Equal(Now.AddSeconds(300), Assert.Single(s.TmpPasses).ExpiresAt);
    }

    [Fact]
    public void Tmp_pass_uses_the_given_timeout_and_expires()
    {
        var s = PortalDecisions.TmpPass(Empty, new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:05", Timeout = 2 }, Now).State;
        Assert.Single(PortalDecisions.Prune(s, Now.AddSeconds(1)).TmpPasses);
        Assert.Empty(PortalDecisions.Prune(s, Now.AddSeconds(2)).TmpPasses);
    }

    [Fact]
    public void Heartbeat_reply_sets_auth_mode_of_known_gateways_only()
    {
        var d = PortalDecisions.ReportReply(Empty, new ReportReply { Gateway = [new() { GwId = "gw-1", AuthMode = 0 }, new() { GwId = "gw-9", AuthMode = 0 }] });
        Assert.Equal(0, d.State.AuthModeOf("gw-1"));
        Assert.False(d.State.AuthModes.ContainsKey("gw-9"));
    }

    [Fact]
    public void Heartbeat_reply_that_changes_nothing_keeps_the_state()
    {
        var d = PortalDecisions.ReportReply(Empty, new ReportReply { Gateway = [new() { GwId = "gw-1", AuthMode = 1 }] });
        Assert.False(d.Changed(Empty));
    }

    [Fact]
    public void Reconcile_drops_clients_of_gateways_no_longer_configured_and_keeps_modes_of_the_rest()
    {
        var stored = PortalDecisions.ReportReply(WithClient(gw: "gw-2"), new ReportReply { Gateway = [new() { GwId = "gw-1", AuthMode = 0 }] }).State;
        var s = PortalDecisions.Reconcile(stored, [("gw-1", 1), ("gw-3", 2)]);
        Assert.Empty(s.Clients);
        Assert.Equal(0, s.AuthModeOf("gw-1"));
        Assert.Equal(2, s.AuthModeOf("gw-3"));
        Assert.False(s.AuthModes.ContainsKey("gw-2"));
    }
}
