using System.Text.Json;
using Fleet.Protocol;
using Xunit;

namespace Fleet.Simulator.Tests;

public sealed class SimulatedDeviceTests
{
    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static readonly ReqId Req = new("42", true);
    private const string Mac = "aa:bb:cc:dd:ee:01";

    private static SimulatedDevice Device(bool seedEra = false, int gateways = 1, TimeProvider? time = null) =>
        new("sim-000007", gateways, seedEra, index: 7, time: time);

    private static IControllerFrame FromServer(string json)
    {
        var decoded = ProtocolCodec.DecodeFromController(json);
        Assert.True(decoded.IsOk, decoded.Error?.Message);
        return decoded.Message!;
    }

    /// <summary>Encodes the device's reply and decodes it as the controller would: proves it is valid wire.</summary>
    private static IDeviceFrame OnTheWire(DeviceAction action)
    {
        Assert.NotNull(action.Reply);
        var decoded = ProtocolCodec.DecodeFromDevice(ProtocolCodec.Encode(action.Reply!));
        Assert.True(decoded.IsOk, decoded.Error?.Message);
        return decoded.Message!;
    }

    private static void Authorise(SimulatedDevice d, string mac = Mac, string gw = "gw-1") =>
        Assert.Null(d.Handle(new AuthRequest { Token = "t", ClientIp = "192.168.1.23", ClientMac = mac, GwId = gw, OnceAuth = false }).Reply);

    [Fact]
    public void Connect_reports_the_device_id_info_and_every_gateway()
    {
        var c = Device(gateways: 3).Connect();
        Assert.Equal("sim-000007", c.DeviceId);
        Assert.Equal(["gw-1", "gw-2", "gw-3"], c.Gateway!.Select(g => g.GwId));
        Assert.True(FieldRules.IsMac(c.DeviceInfo!.ApMacAddress));
        Assert.True(ProtocolCodec.DecodeFromDevice(ProtocolCodec.Encode(c)).IsOk);
    }

    [Fact]
    public void Upstream_heartbeat_carries_system_figures_and_seed_heartbeat_does_not()
    {
        Assert.NotNull(Device().Heartbeat().SysInfo?.SysUptime);
        Assert.Null(Device(seedEra: true).Heartbeat().SysInfo?.SysUptime);
    }

    [Fact]
    public void Kickoff_of_a_client_the_device_does_not_have_answers_client_not_found_with_ip_and_mac()
    {
        var reply = OnTheWire(Device().Handle(new KickoffRequest { ReqId = Req, ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "sim-000007", GwId = "gw-1" }));
        var e = Assert.IsType<KickoffError>(reply);
        Assert.Equal(KickoffError.ClientNotFound, e.Error);
        Assert.Equal(Mac, e.ClientMac);
        Assert.Equal("192.168.1.23", e.ClientIp);
        Assert.Equal(Req, e.ReqId);
    }

    [Fact]
    public void Kickoff_of_an_authorised_client_succeeds_once_and_removes_it()
    {
        var d = Device();
        Authorise(d);
        var kick = new KickoffRequest { ReqId = Req, ClientIp = "192.168.1.23", ClientMac = Mac.ToUpperInvariant(), DeviceId = "sim-000007", GwId = "gw-1" };
        var ok = Assert.IsType<KickoffResponse>(OnTheWire(d.Handle(kick)));
        Assert.Equal("success", ok.Status);
        Assert.Equal("Client kicked off successfully", ok.Message);
        Assert.Equal(Req, ok.ReqId);
        Assert.Empty(d.Clients);
        Assert.Equal(KickoffError.ClientNotFound, Assert.IsType<KickoffError>(OnTheWire(d.Handle(kick))).Error);
    }

    [Fact]
    public void Kickoff_naming_another_device_answers_device_id_mismatch_with_the_requested_id_expected_and_its_own_actual()
    {
        var d = Device();
        Authorise(d);
        var e = Assert.IsType<KickoffError>(OnTheWire(d.Handle(new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "other", GwId = "gw-1" })));
        Assert.Equal(KickoffError.DeviceIdMismatch, e.Error);
        Assert.Equal("other", e.ExpectedDeviceId);
        Assert.Equal("sim-000007", e.ActualDeviceId);
        Assert.Single(d.Clients);
    }

    [Fact]
    public void Kickoff_looks_for_the_client_before_checking_the_device_id()
    {
        var e = Assert.IsType<KickoffError>(OnTheWire(Device().Handle(new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "other", GwId = "gw-1" })));
        Assert.Equal(KickoffError.ClientNotFound, e.Error);
    }

    [Fact]
    public void Kickoff_on_the_wrong_gateway_answers_gateway_id_mismatch_with_the_requested_gateway_expected()
    {
        var d = Device(gateways: 2);
        Authorise(d, gw: "gw-2");
        var e = Assert.IsType<KickoffError>(OnTheWire(d.Handle(new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "sim-000007", GwId = "gw-1" })));
        Assert.Equal(KickoffError.GatewayIdMismatch, e.Error);
        Assert.Equal("gw-1", e.ExpectedGwId);
        Assert.Equal("gw-2", e.ActualGwId);
        Assert.Single(d.Clients);
    }

    [Fact]
    public void Kickoff_finds_a_client_by_ip_and_mac_together()
    {
        var d = Device();
        Authorise(d);
        var e = Assert.IsType<KickoffError>(OnTheWire(d.Handle(new KickoffRequest { ClientIp = "192.168.1.99", ClientMac = Mac, DeviceId = "sim-000007", GwId = "gw-1" })));
        Assert.Equal(KickoffError.ClientNotFound, e.Error);
        Assert.Single(d.Clients);
    }

    [Fact]
    public void Kickoff_of_a_tmp_pass_client_is_client_not_found_as_the_client_has_no_ip()
    {
        var d = Device();
        d.Handle(new TmpPassRequest { ClientMac = Mac, Timeout = 60 });
        var e = Assert.IsType<KickoffError>(OnTheWire(d.Handle(new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "sim-000007", GwId = "gw-1" })));
        Assert.Equal(KickoffError.ClientNotFound, e.Error);
        Assert.Single(d.Clients);
    }

    [Fact]
    public void Kickoff_missing_fields_answers_missing_required_fields_and_echoes_req_id()
    {
        var decoded = ProtocolCodec.DecodeFromController("""{"type":"kickoff","req_id":"r-1","client_mac":"aa:bb:cc:dd:ee:01"}""");
        Assert.False(decoded.IsOk);
        var e = Assert.IsType<KickoffError>(OnTheWire(Device().HandleUndecodable(decoded.Error!)));
        Assert.Equal(KickoffError.MissingFields, e.Error);
        Assert.Equal(ReqId.Of("r-1"), e.ReqId);
        Assert.Null(Assert.IsType<KickoffError>(OnTheWire(Device(seedEra: true).HandleUndecodable(decoded.Error!))).ReqId);
    }

    [Fact]
    public void Missing_type_gets_the_firmware_request_error_text()
    {
        var error = ProtocolCodec.DecodeFromController("""{"req_id":"r-3"}""").Error!;
        var e = Assert.IsType<GenericResponse>(OnTheWire(Device().HandleUndecodable(error)));
        Assert.Equal(FirmwareAnswers.MissingType, e.Error);
        Assert.Null(Device(seedEra: true).HandleUndecodable(error).Reply);
    }

    [Fact]
    public void Seed_era_device_answers_without_req_id()
    {
        var reply = OnTheWire(Device(seedEra: true).Handle(FromServer("""{"type":"get_firmware_info","req_id":7}""")));
        Assert.Null(Assert.IsType<FirmwareInfoResponse>(reply).ReqId);
    }

    [Fact]
    public void Get_firmware_info_answers_the_openwrt_release_keys_with_a_number_req_id_echoed_as_a_number()
    {
        var action = Device().Handle(FromServer("""{"type":"get_firmware_info","req_id":7}"""));
        Assert.Contains("\"req_id\":7", ProtocolCodec.EncodeToString(action.Reply!));
        var info = Assert.IsType<FirmwareInfoResponse>(OnTheWire(action)).DataAsStrings();
        Assert.Equal(SimulatedDevice.FirmwareRelease, info["DISTRIB_RELEASE"]);
        Assert.Equal("ChaWrt", info["DISTRIB_ID"]);
    }

    [Fact]
    public void Firmware_upgrade_with_a_valid_url_answers_success_and_a_bad_url_answers_error()
    {
        var ok = Assert.IsType<GenericResponse>(OnTheWire(Device().Handle(new FirmwareUpgradeRequest { Url = "http://fw.example.com/x.bin" })));
        Assert.Equal("firmware_upgrade_response", ok.Type);
        Assert.Equal("success", ok.Status);
        var bad = Assert.IsType<GenericResponse>(OnTheWire(Device().Handle(new FirmwareUpgradeRequest { Url = "http://x/;reboot" })));
        Assert.Equal("firmware_upgrade_error", bad.Type);
        var missing = ProtocolCodec.DecodeFromController("""{"type":"firmware_upgrade"}""").Error!;
        Assert.Equal("firmware_upgrade_error", Assert.IsType<GenericResponse>(OnTheWire(Device().HandleUndecodable(missing))).Type);
    }

    [Fact]
    public void Auth_and_tmp_pass_are_one_way_and_fill_the_client_table()
    {
        var d = Device();
        Authorise(d);
        Assert.Null(d.Handle(new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:02", Timeout = 60 }).Reply);
        Assert.Equal(2, d.Clients.Count);
        Assert.Null(d.Clients[Mac].ExpiresAt);
        Assert.NotNull(d.Clients["aa:bb:cc:dd:ee:02"].ExpiresAt);
    }

    [Fact]
    public void Tmp_pass_client_is_gone_after_its_timeout()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var d = Device(time: clock);
        d.Handle(new TmpPassRequest { ClientMac = Mac, Timeout = 60 });
        clock.Now = clock.Now.AddSeconds(59);
        Assert.Equal(1, d.Heartbeat().SysInfo?.OnlineClients);
        clock.Now = clock.Now.AddSeconds(2);
        Assert.Equal(0, d.Heartbeat().SysInfo?.OnlineClients);
        Assert.Empty(d.Clients);
    }

    [Fact]
    public void Once_auth_sets_the_gateway_auth_mode_to_zero_and_heartbeats_report_it()
    {
        var d = Device();
        var before = d.ReportVersion;
        d.Handle(new AuthRequest { Token = "t", ClientIp = "192.168.1.23", ClientMac = Mac, GwId = "gw-1", OnceAuth = true });
        Assert.Equal(0, d.Heartbeat().Gateway![0].AuthMode);
        Assert.True(d.ReportVersion > before);
        Assert.Empty(d.Clients);
    }

    [Fact]
    public void Heartbeat_reply_applies_the_controller_auth_mode_to_known_gateways_only()
    {
        var d = Device(gateways: 2);
        var action = d.Handle(new ReportReply { Gateway = [new GatewayAuthMode { GwId = "gw-2", AuthMode = 0 }, new GatewayAuthMode { GwId = "nope", AuthMode = 0 }] });
        Assert.Null(action.Reply);
        Assert.Equal([1, 0], d.Heartbeat().Gateway!.Select(g => g.AuthMode!.Value));
        Assert.False(d.Handle(new ReportReply { Gateway = [new GatewayAuthMode { GwId = "gw-2", AuthMode = 0 }] }).StateChanged);
    }

    [Fact]
    public void Unknown_type_gets_request_error_from_upstream_firmware_and_nothing_from_seed_firmware()
    {
        var error = ProtocolCodec.DecodeFromController("""{"type":"make_coffee","req_id":"r-9"}""").Error!;
        var e = Assert.IsType<GenericResponse>(OnTheWire(Device().HandleUndecodable(error)));
        Assert.Equal(RequestKinds.RequestError, e.Type);
        Assert.Equal(FirmwareAnswers.UnknownType, e.Error);
        Assert.Equal("make_coffee", e.RequestedType);
        Assert.Equal(ReqId.Of("r-9"), e.ReqId);
        Assert.Null(Device(seedEra: true).HandleUndecodable(error).Reply);
        Assert.Null(Device().HandleUndecodable(ProtocolCodec.DecodeFromController("not json").Error!).Reply);
    }

    [Fact]
    public void Seed_era_device_ignores_upstream_only_requests()
    {
        Assert.Null(Device(seedEra: true).Handle(FromServer("""{"type":"get_sys_info","req_id":1}""")).Reply);
    }

    [Theory]
    [InlineData("get_sys_info", "get_sys_info_response")]
    [InlineData("get_status", "get_status_response")]
    [InlineData("get_wifi_info", "get_wifi_info_response")]
    [InlineData("get_trusted_domains", "get_trusted_domains_response")]
    [InlineData("get_trusted_wildcard_domains", "get_trusted_wildcard_domains_response")]
    public void Upstream_get_requests_answer_their_response_type_with_req_id(string request, string answer)
    {
        var r = Assert.IsType<GenericResponse>(OnTheWire(Device().Handle(FromServer($$"""{"type":"{{request}}","req_id":"x"}"""))));
        Assert.Equal(answer, r.Type);
        Assert.Equal(ReqId.Of("x"), r.ReqId);
        Assert.False(r.IsError);
    }

    [Fact]
    public void Get_sys_info_reports_uptime_and_client_count()
    {
        var d = Device();
        Authorise(d);
        var r = Assert.IsType<GenericResponse>(OnTheWire(d.Handle(FromServer("""{"type":"get_sys_info"}"""))));
        Assert.True(r.Data!.Value.GetProperty("sys_uptime").GetInt64() > 0);
        Assert.Equal(1, r.Data!.Value.GetProperty("online_clients").GetInt32());
    }

    [Fact]
    public void Synced_trusted_domains_are_returned_by_get_trusted_domains()
    {
        var d = Device();
        var sync = OnTheWire(d.Handle(new SyncDomainsRequest { Domains = ["a.example.com", "b.example.com"] }));
        Assert.Equal("sync_trusted_domain_response", sync.Type);
        var got = Assert.IsType<GenericResponse>(OnTheWire(d.Handle(new SimpleRequest { Type = "get_trusted_domains" })));
        Assert.Equal(["a.example.com", "b.example.com"], got.Domains);
    }

    [Fact]
    public void Get_client_info_answers_the_client_or_an_error()
    {
        var d = Device();
        Assert.Equal("get_client_info_error", OnTheWire(d.Handle(new GetClientInfoRequest { Mac = Mac })).Type);
        Authorise(d);
        var r = Assert.IsType<GenericResponse>(OnTheWire(d.Handle(new GetClientInfoRequest { Mac = Mac })));
        Assert.Equal("192.168.1.23", r.Data!.Value.GetProperty("ip").GetString());
    }

    [Fact]
    public void Update_device_info_changes_what_heartbeats_report()
    {
        var d = Device();
        var r = OnTheWire(d.Handle(new UpdateDeviceInfoRequest { DeviceInfo = new DeviceInfo { LocationId = "hall-2" } }));
        Assert.Equal("update_device_info_response", r.Type);
        Assert.Equal("hall-2", d.Heartbeat().DeviceInfo!.LocationId);
    }

    [Fact]
    public void Reboot_device_sends_nothing_and_reboots()
    {
        var a = Device().Handle(new SimpleRequest { Type = "reboot_device" });
        Assert.Null(a.Reply);
        Assert.True(a.Reboot);
    }

    [Fact]
    public void Device_macs_are_distinct_valid_macs()
    {
        Assert.Equal("02:00:00:00:01:00", SimulatedDevice.MacOf(256, 0x02));
        Assert.NotEqual(SimulatedDevice.MacOf(1, 2), SimulatedDevice.MacOf(2, 2));
        Assert.True(FieldRules.IsMac(SimulatedDevice.MacOf(int.MaxValue, 0x02)));
    }
}

/// <summary>The 9.x router (the op dialect): every request answered in the 9.x form, as FIRMWARE_FACTS.md D reads the handlers.</summary>
public sealed class SimulatedDevice9Tests
{
    private const string Mac = "aa:bb:cc:dd:ee:01";
    private static readonly ReqId Req = new("42", true);

    private static SimulatedDevice Device(int gateways = 1) => new("sim-9", FirmwareEra.V9, gateways, index: 9);

    private static OpAnswer Answer(DeviceAction action) => Assert.IsType<OpAnswer>(action.Reply);

    /// <summary>A frame as the 9.x router reads it, handled.</summary>
    private static DeviceAction Wire(SimulatedDevice d, string json) => d.Handle(OpRouterDialect.Instance.Decode(System.Text.Encoding.UTF8.GetBytes(json)));

    private static AuthRequest Auth(bool? once = false, string gw = "gw-1") =>
        new() { ReqId = Req, Token = "t", ClientIp = "192.168.1.23", ClientMac = Mac, GwId = gw, OnceAuth = once };

    [Fact]
    public void Auth_is_answered_adds_the_client_and_a_second_one_is_refused()
    {
        var d = Device();
        var ok = Answer(d.Handle(Auth()));
        Assert.Equal(("auth_response", "success", FirmwareAnswers.ClientAuthenticated, Req), (ok.Type, ok.Status, ok.Message, ok.ReqId!.Value));
        Assert.Single(d.Clients);
        var again = Answer(d.Handle(Auth()));
        Assert.Equal((1002, FirmwareAnswers.ClientAlreadyAuthenticated), (again.Code, again.Message));
        Assert.Equal((2000, FirmwareAnswers.GatewayNotFound), Answer(d.Handle(Auth(gw: "gw-7"))) is var nf ? (nf.Code, nf.Message) : default);
        Assert.Equal((1000, FirmwareAnswers.AuthMissingFields), Answer(d.Handle(Auth(once: null))) is var m ? (m.Code, m.Message) : default);
    }

    [Fact]
    public void Once_auth_opens_the_gateway_and_adds_no_client()
    {
        var d = Device();
        Assert.Equal(FirmwareAnswers.OnceAuthEnabled, Answer(d.Handle(Auth(once: true))).Message);
        Assert.Equal(0, d.Gateways[0].AuthMode);
        Assert.Empty(d.Clients);
    }

    [Fact]
    public void With_portal_auth_disabled_auth_succeeds_doing_nothing_and_tmp_pass_and_kickoff_get_1003()
    {
        var d = Device();
        d.PortalAuthDisabled = true;
        Assert.Equal(("success", FirmwareAnswers.PortalAuthDisabled), Answer(d.Handle(Auth())) is var a ? (a.Status, a.Message) : default);
        Assert.Empty(d.Clients);
        Assert.Equal(1003, Answer(d.Handle(new TmpPassRequest { ClientMac = Mac })).Code);
        Assert.Equal(1003, Answer(d.Handle(new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "sim-9", GwId = "gw-1" })).Code);
    }

    [Theory]
    [InlineData(60, 60, true)]
    [InlineData(0, 0, false)]     // trusted with no timeout
    [InlineData(3600, 3600, true)] // clamped to 600 on the router, echoed as requested
    public void Tmp_pass_answers_the_requested_timeout_and_applies_the_firmware_s(int timeout, int echoed, bool expires)
    {
        var d = Device();
        var a = Answer(d.Handle(new TmpPassRequest { ReqId = Req, ClientMac = Mac, Timeout = timeout }));
        Assert.Equal((Mac, echoed.ToString(System.Globalization.CultureInfo.InvariantCulture)), (a.DataText("client_mac"), a.DataText("timeout")));
        Assert.Equal(expires, d.Clients[Mac].ExpiresAt is not null);
        if (timeout > 600) Assert.InRange((d.Clients[Mac].ExpiresAt!.Value - DateTimeOffset.UtcNow).TotalSeconds, 590, 601);
    }

    [Fact]
    public void A_negative_tmp_pass_blocks_the_mac()
    {
        var d = Device();
        d.Handle(new TmpPassRequest { ClientMac = Mac, Timeout = 60 });
        Assert.Equal("success", Answer(d.Handle(new TmpPassRequest { ClientMac = Mac, Timeout = -1 })).Status);
        Assert.Empty(d.Clients);
    }

    [Fact]
    public void Kickoff_of_an_authorised_client_answers_its_ip_and_mac_and_removes_it()
    {
        var d = Device();
        d.Handle(Auth());
        var a = Answer(d.Handle(new KickoffRequest { ReqId = Req, ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "sim-9", GwId = "gw-1" }));
        Assert.Equal(("success", FirmwareAnswers.KickedOff, "192.168.1.23", Mac), (a.Status, a.Message, a.DataText("client_ip"), a.DataText("client_mac")));
        Assert.Empty(d.Clients);
        Assert.Equal(2000, Answer(d.Handle(new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = Mac, DeviceId = "sim-9", GwId = "gw-1" })).Code);
    }

    [Fact]
    public void Reboot_is_answered_before_the_router_goes_down_and_clears_a_running_upgrade()
    {
        var d = Device();
        Assert.Equal("success", Answer(d.Handle(new FirmwareUpgradeRequest { Url = "http://fw/x.bin" })).Status);
        Assert.Equal((1004, FirmwareAnswers.UpgradeInProgress), Answer(d.Handle(new FirmwareUpgradeRequest { Url = "http://fw/x.bin" })) is var r ? (r.Code, r.Message) : default);
        var reboot = d.Handle(new SimpleRequest { Type = "reboot_device", ReqId = Req });
        Assert.True(reboot.Reboot);
        Assert.Equal(FirmwareAnswers.RebootInitiated, Answer(reboot).Message);
        Assert.Equal("success", Answer(d.Handle(new FirmwareUpgradeRequest { Url = "http://fw/x.bin" })).Status);
    }

    [Fact]
    public void Get_firmware_info_answers_the_release_keys_in_data()
    {
        var a = Answer(Wire(Device(), """{"op":"get_firmware_info","req_id":5}"""));
        Assert.Equal(("firmware_info_response", SimulatedDevice.FirmwareRelease), (a.Type, a.DataText("DISTRIB_RELEASE")));
        Assert.NotNull(a.FieldDescriptions);
    }

    [Fact]
    public void Answers_of_the_2025_shape_come_out_in_the_9_form()
    {
        var d = Device();
        Wire(d, """{"op":"sync_trusted_domain","req_id":1,"domains":["a.example"]}""");
        var got = Answer(Wire(d, """{"op":"get_trusted_domains","req_id":2}"""));
        Assert.Equal("a.example", got.Data!.Value.GetProperty("domains")[0].GetString());
        var missing = Answer(Wire(d, """{"op":"get_client_info","req_id":3,"mac":"aa:bb:cc:dd:ee:99"}"""));
        Assert.Equal(("get_client_info_response", 2000), (missing.Type, missing.Code));
        Assert.Equal("get_sys_info_response", Answer(Wire(d, """{"op":"get_sys_info","req_id":4}""")).Type);
        Assert.Equal(("get_clients_response", "success"), Answer(Wire(d, """{"op":"get_clients","req_id":5}""")) is var c ? (c.Type, c.Status) : default);
        Assert.Equal(("shell_response", "success"), Answer(Wire(d, """{"op":"shell","req_id":6,"command":"uptime"}""")) is var s ? (s.Type, s.Status) : default);
    }

    [Fact]
    public void Set_websocket_serv_is_answered_and_changes_the_address_of_the_next_connection_only()
    {
        var d = Device();
        var configured = new Uri("ws://fleet.example.com:8080/ws/wifidogx?key=fleet");
        Assert.Equal(configured, d.Server.UrlFrom(configured));
        var answer = Answer(Wire(d, """{"op":"set_websocket_serv","req_id":7,"path":"/ws/wifidogx?key=fdk_own"}"""));
        Assert.Equal(("set_websocket_server_response", "success", FirmwareAnswers.WebSocketServerUpdated), (answer.Type, answer.Status, answer.Message));
        // Only the path changed: host, port and scheme are what the router had.
        Assert.Equal(new Uri("ws://fleet.example.com:8080/ws/wifidogx?key=fdk_own"), d.Server.UrlFrom(configured));
        Wire(d, """{"op":"set_websocket_serv","req_id":8,"hostname":"::1","port":8443,"use_ssl":true}""");
        Assert.Equal(new Uri("wss://[::1]:8443/ws/wifidogx?key=fdk_own"), d.Server.UrlFrom(configured));
        Assert.Equal("set_auth_server_response", Answer(Wire(d, """{"op":"set_auth_serv","req_id":9,"hostname":"a.example"}""")).Type);
        Assert.Equal("set_mqtt_server_response", Answer(Wire(d, """{"op":"set_mqtt_serv","req_id":10,"port":1883}""")).Type);
    }

    [Fact]
    public void An_unknown_op_is_answered_with_unknown_operation_and_gateway_heartbeat_is_taken_silently()
    {
        var d = Device(gateways: 2);
        var unknown = Answer(Wire(d, """{"op":"make_coffee","req_id":9}"""));
        Assert.Equal(("generic_response", 400, FirmwareAnswers.UnknownOperation, "make_coffee"), (unknown.Type, unknown.Code, unknown.Message, unknown.DataText("requested_op")));
        var modes = Wire(d, """{"op":"gateway_heartbeat","req_id":10,"gateway":[{"gw_id":"gw-2","auth_mode":0}]}""");
        Assert.Null(modes.Reply);
        Assert.True(modes.StateChanged);
        Assert.Equal([1, 0], d.Gateways.Select(g => g.AuthMode));
        var ignored = Wire(d, """{"req_id":"0123456789abcdef","response":"200","data":{"type":"heartbeat","gateway":[{"gw_id":"gw-1","auth_mode":0}]}}""");
        Assert.Equal((null, false), (ignored.Reply, ignored.StateChanged));
        Assert.Equal(1, d.Gateways[0].AuthMode);
    }

    [Fact]
    public void Reports_go_out_in_the_op_dialect()
    {
        var d = Device();
        var hb = System.Text.Json.Nodes.JsonNode.Parse(d.Dialect.EncodeReport(d.Heartbeat()))!;
        Assert.Equal(("heartbeat", "sim-9", 0), ((string?)hb["op"], (string?)hb["device_id"], (int)hb["mode"]!));
        Assert.NotNull(hb["sys_info"]);
        Assert.Null(System.Text.Json.Nodes.JsonNode.Parse(d.Dialect.EncodeReport(d.Connect()))!["sys_info"]);
    }
}
