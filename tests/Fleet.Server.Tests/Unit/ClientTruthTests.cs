using System.Text.Json;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Fleet.Server.Serialization;
using Xunit;
using static Fleet.Server.Tests.Unit.CommandLifecycleTests;

namespace Fleet.Server.Tests.Unit;

/// <summary>
/// The client view follows what the firmware does (docs/FIRMWARE.md, "Clients"): an auth lasts until the router
/// drops the client, a tmp_pass is a separate timed element, a restart forgets what it forgets.
/// </summary>
public class ClientTruthTests
{
    private const string Mac = "aa:bb:cc:dd:ee:ff";
    private const string Other = "aa:bb:cc:dd:ee:01";

    private static DeviceState Send(DeviceState s, string id, IControllerRequest r)
    {
        s = s.Apply(CommandLifecycle.Submit(s, id, r, 60, 30, T0).Queued!);
        return s.Apply(new CommandSent(id, T0));
    }

    /// <summary>Sends a request the seed dialect does not answer and lets it be delivered.</summary>
    private static DeviceState Deliver(DeviceState s, string id, IControllerRequest r, DateTimeOffset? at = null)
    {
        s = Send(s, id, r);
        return s.ApplyAll(CommandLifecycle.OnWritten(s, id, answerExpected: false, at ?? T0));
    }

    private static DeviceState Answer(DeviceState s, string id, IControllerRequest r, string type, string? error = null, string body = "{}", DateTimeOffset? at = null)
    {
        s = Send(s, id, r);
        var answer = new DeviceAnswer
        {
            Type = type, ReqId = ReqId.Of(id), Error = error, RequestType = r.Type, Body = JsonElement.Parse(body),
        };
        var (events, dropped) = CommandLifecycle.OnAnswer(s, answer, at ?? T0);
        Assert.Null(dropped);
        return s.ApplyAll(events);
    }

    private static AuthRequest Auth(string mac = Mac, string ip = "192.168.1.23") =>
        new() { Token = "t", ClientIp = ip, ClientMac = mac, GwId = "gw-1", OnceAuth = false };

    private static DeviceState Authorised() => Deliver(Connected(), "a1", Auth());

    [Fact]
    public void An_authorised_client_has_no_end_of_its_own()
    {
        var s = Authorised();
        Assert.Null(s.Clients[Mac].ExpiresAt);
        Assert.Null(CommandLifecycle.NextDeadline(s));
        Assert.Empty(CommandLifecycle.OnTick(s, T0.AddDays(30)));
    }

    [Fact]
    public void A_tmp_pass_for_an_authorised_client_does_not_remove_it_when_the_pass_ends()
    {
        var s = Deliver(Authorised(), "p1", new TmpPassRequest { ClientMac = Mac, Timeout = 10 });
        s = s.ApplyAll(CommandLifecycle.OnTick(s, T0.AddSeconds(11)));
        Assert.True(s.Clients.TryGetValue(Mac, out var client));
        Assert.Null(client.ExpiresAt);
        Assert.Equal("192.168.1.23", client.ClientIp);
    }

    [Fact]
    public void A_pass_alone_still_ends()
    {
        var s = Deliver(Connected(), "p1", new TmpPassRequest { ClientMac = Other, Timeout = 10 });
        Assert.Equal(T0.AddSeconds(10), s.Clients[Other].ExpiresAt);
        s = s.ApplyAll(CommandLifecycle.OnTick(s, T0.AddSeconds(10)));
        Assert.Empty(s.Clients);
    }

    [Fact]
    public void A_pass_lasts_no_longer_than_the_firmware_lets_it()
    {
        // Seed and 2025 firmware cap the nft element timeout at 300 s, 9.x at 600 s.
        var seed = Deliver(Connected(), "p1", new TmpPassRequest { ClientMac = Other, Timeout = 3600 });
        Assert.Equal(T0.AddSeconds(300), seed.Clients[Other].ExpiresAt);
        var v9 = Connected().Apply(new ProtocolReported("9"));
        v9 = Answer(v9, "p1", new TmpPassRequest { ClientMac = Other, Timeout = 3600 }, "tmp_pass_response");
        Assert.Equal(T0.AddSeconds(600), v9.Clients[Other].ExpiresAt);
    }

    [Fact]
    public void A_kickoff_leaves_a_running_pass_letting_the_client_through()
    {
        var s = Deliver(Authorised(), "p1", new TmpPassRequest { ClientMac = Mac, Timeout = 60 });
        var kick = new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "r1", GwId = "gw-1" };
        s = Answer(s, "k1", kick, "kickoff_response", at: T0.AddSeconds(5));
        Assert.Equal(T0.AddSeconds(60), s.Clients[Mac].ExpiresAt);
        s = s.ApplyAll(CommandLifecycle.OnTick(s, T0.AddSeconds(60)));
        Assert.Empty(s.Clients);
    }

    [Fact]
    public void A_delivered_reboot_clears_the_clients_of_seed_firmware()
    {
        var s = Deliver(Authorised(), "p1", new TmpPassRequest { ClientMac = Other, Timeout = 60 });
        Assert.Equal(2, s.Clients.Count);
        s = Deliver(s, "r1", new SimpleRequest { Type = "reboot_device" });
        Assert.Empty(s.Clients);
    }

    [Fact]
    public void A_successful_firmware_upgrade_clears_the_clients()
    {
        var s = Answer(Authorised(), "u1", new FirmwareUpgradeRequest { Url = "http://fw.example/x.bin" }, "firmware_upgrade_response");
        Assert.Empty(s.Clients);
    }

    [Fact]
    public void A_failed_firmware_upgrade_leaves_the_clients()
    {
        var s = Answer(Authorised(), "u1", new FirmwareUpgradeRequest { Url = "http://fw.example/x.bin" }, "firmware_upgrade_error", error: "busy");
        Assert.True(s.Clients.ContainsKey(Mac));
    }

    [Fact]
    public void A_9x_reboot_forgets_the_passes_but_the_router_restores_its_client_list()
    {
        var s = Authorised().Apply(new ProtocolReported("9"));
        s = Answer(s, "p1", new TmpPassRequest { ClientMac = Other, Timeout = 60 }, "tmp_pass_response");
        s = Answer(s, "r1", new SimpleRequest { Type = "reboot_device" }, "reboot_device_response");
        Assert.Equal(new[] { Mac }, s.Clients.Keys);
    }

    [Fact]
    public void A_get_clients_answer_takes_out_the_authorised_clients_it_does_not_list()
    {
        var s = Deliver(Authorised(), "a2", Auth(Other, "192.168.1.24"));
        // The 9 dialect's envelope: data.data.clients; the router lists Other only, in upper case.
        s = Answer(s, "g1", new SimpleRequest { Type = "get_clients" }, "get_clients_response",
            body: """{"req_id":3,"response":"200","data":{"type":"get_clients_response","status":"success","code":0,"data":{"clients":[{"mac":"AA:BB:CC:DD:EE:01","ip":"192.168.1.24"}]}}}""");
        Assert.Equal(new[] { Other }, s.Clients.Keys);
    }

    [Fact]
    public void A_get_clients_answer_without_a_list_changes_nothing()
    {
        var s = Answer(Authorised(), "g1", new SimpleRequest { Type = "get_clients" }, "get_clients_response", body: """{"data":{}}""");
        Assert.True(s.Clients.ContainsKey(Mac));
    }

    [Fact]
    public void Client_not_found_from_get_client_info_takes_the_client_out()
    {
        var s = Answer(Authorised(), "i1", new GetClientInfoRequest { Mac = Mac }, "get_client_info_error", error: "Client not found (code 2000)");
        Assert.Empty(s.Clients);
    }

    [Fact]
    public void Client_not_found_from_a_kickoff_counts_only_for_the_address_the_view_holds()
    {
        var kick = new KickoffRequest { ClientIp = "192.168.1.99", ClientMac = Mac, DeviceId = "r1", GwId = "gw-1" };
        var s = Answer(Authorised(), "k1", kick, "kickoff_error", error: "Client not found");
        Assert.True(s.Clients.ContainsKey(Mac));
        s = Answer(s, "k2", kick with { ClientIp = "192.168.1.23" }, "kickoff_error", error: "Client not found");
        Assert.Empty(s.Clients);
    }

    [Fact]
    public void An_auth_the_router_refuses_as_already_authenticated_puts_the_client_in_the_view()
    {
        var s = Connected().Apply(new ProtocolReported("9"));
        s = Answer(s, "a1", Auth(), "auth_response", error: "Client already authenticated (code 1002)");
        Assert.Equal(CommandStatus.Failed, s.FindCommand("a1")!.Status);
        Assert.Null(s.Clients[Mac].ExpiresAt);
        s = Answer(s, "a2", Auth(Other), "auth_response", error: "Gateway not found (code 2000)");
        Assert.False(s.Clients.ContainsKey(Other));
    }

    [Fact]
    public void Other_kickoff_errors_leave_the_client()
    {
        var kick = new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "r1", GwId = "gw-1" };
        var s = Answer(Authorised(), "k1", kick, "kickoff_error", error: "Gateway ID mismatch");
        Assert.True(s.Clients.ContainsKey(Mac));
    }
}

/// <summary>Journals written before this release recover to the view the router had.</summary>
public class ClientTruthJournalTests : Akka.Hosting.TestKit.TestKit
{
    public ClientTruthJournalTests() : base(nameof(ClientTruthJournalTests)) { }

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider) =>
        builder.WithFleetSerialization();

    [Fact]
    public void An_old_journal_whose_pass_replaced_an_authorisation_recovers_with_the_client_authorised()
    {
        var s = (FleetSerializer)Sys.Serialization.FindSerializerFor(new ClientRemoved("aa:bb:cc:dd:ee:ff", "kicked off"));
        // Exactly what the previous release persisted: the auth, then a tmp_pass that replaced it, then its expiry.
        (string Manifest, string Json)[] journal =
        [
            ("ca", """{"Client":{"ClientMac":"aa:bb:cc:dd:ee:ff","ClientIp":"192.168.1.23","ClientName":"phone","GwId":"gw-1","AuthorizedAt":"2026-11-25T12:00:00+00:00"}}"""),
            ("ca", """{"Client":{"ClientMac":"aa:bb:cc:dd:ee:ff","ClientIp":"192.168.1.23","ClientName":"phone","GwId":"gw-1","AuthorizedAt":"2026-11-25T12:01:00+00:00","ExpiresAt":"2026-11-25T12:06:00+00:00"}}"""),
            ("ca", """{"Client":{"ClientMac":"aa:bb:cc:dd:ee:01","AuthorizedAt":"2026-11-25T12:01:00+00:00","ExpiresAt":"2026-11-25T12:06:00+00:00"}}"""),
            ("cr", """{"ClientMac":"aa:bb:cc:dd:ee:ff","Reason":"pass expired"}"""),
            ("cr", """{"ClientMac":"aa:bb:cc:dd:ee:01","Reason":"pass expired"}"""),
        ];
        var state = DeviceState.Empty;
        foreach (var (manifest, json) in journal)
            state = state.Apply((IDeviceEvent)s.FromBinary(System.Text.Encoding.UTF8.GetBytes(json), manifest));
        var client = Assert.Single(state.Clients.Values);
        Assert.Equal("aa:bb:cc:dd:ee:ff", client.ClientMac);
        Assert.Null(client.ExpiresAt);
        Assert.Equal("phone", client.ClientName);
    }
}
