using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace Fleet.Protocol.Tests;

/// <summary>
/// The router's side of each dialect, checked against the shapes FIRMWARE_FACTS.md reads from the firmware
/// (B reports, C replies, D handlers, E envelope). JSON is compared compact and in key order: json-c's
/// spacing differs, its key order does not.
/// </summary>
public sealed class RouterDialectTests
{
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Any JSON text (json-c's spaced output too) in compact form with its key order kept.</summary>
    private static string Compact(string json) => JsonNode.Parse(json)!.ToJsonString(Relaxed);

    private static string Text(byte[] utf8) => Encoding.UTF8.GetString(utf8);
    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
    private static JsonNode Node(byte[] utf8) => JsonNode.Parse(utf8)!;
    private static string[] Keys(JsonNode node) => node.AsObject().Select(p => p.Key).ToArray();

    private static readonly GatewayReport[] Gateways =
    [
        new() { GwId = "gw-1", GwChannel = "ch1", GwAddressV4 = "192.168.1.1", AuthMode = 1, GwInterface = "br-lan" },
    ];

    private static readonly DeviceInfo Info = new() { ApDeviceId = "r1", ApMacAddress = "02:00:00:00:00:01", LocationId = "loc-1" };

    private static readonly SystemFigures Figures = new()
    {
        SysUptime = 3600, SysMemfree = 61440, SysLoad = 0.08, NfConntrackCount = 120, CpuUsage = 3.5, CpuTemp = 48,
        WifidogUptime = 3500, OnlineClients = 2, OfflineClients = 0,
    };

    private static HeartbeatMessage Heartbeat(string id = "r1") =>
        new() { DeviceId = id, DeviceInfo = Info, Gateway = Gateways, Mode = 0, SysInfo = Figures };

    private static ConnectMessage Connect(string id = "r1") => new() { DeviceId = id, DeviceInfo = Info, Gateway = Gateways, Mode = 0 };

    // ------------------------------------------------------------------ reports (B)

    [Fact]
    public void Seed_reports_carry_type_device_id_info_and_gateways_only()
    {
        var hb = Node(TypeRouterDialect.Seed.EncodeReport(Heartbeat()));
        Assert.Equal(["type", "device_id", "device_info", "gateway"], Keys(hb));
        Assert.Equal("heartbeat", (string?)hb["type"]);
        Assert.Equal(["gw_id", "gw_channel", "gw_address_v4", "auth_mode", "gw_interface"], Keys(hb["gateway"]![0]!));
    }

    [Fact]
    public void A_2025_heartbeat_nests_sys_info_and_its_connect_has_none_and_neither_has_mode_or_req_id()
    {
        var hb = Node(TypeRouterDialect.V2025.EncodeReport(Heartbeat()));
        Assert.Equal(["type", "device_id", "device_info", "gateway", "sys_info"], Keys(hb));
        Assert.Equal(["sys_uptime", "sys_memfree", "sys_load", "nf_conntrack_count", "cpu_usage", "cpu_temp", "wifidog_uptime", "online_clients", "offline_clients"],
            Keys(hb["sys_info"]!));
        Assert.Equal("48", hb["sys_info"]!["cpu_temp"]!.ToJsonString()); // an int in json-c
        var connect = Node(TypeRouterDialect.V2025.EncodeReport(Connect()));
        Assert.Equal(["type", "device_id", "device_info", "gateway"], Keys(connect));
    }

    [Fact]
    public void A_9_report_has_op_device_id_mode_info_gateways_sys_info_and_a_16_hex_req_id_in_the_firmware_order()
    {
        var hb = Node(OpRouterDialect.Instance.EncodeReport(Heartbeat()));
        Assert.Equal(["op", "device_id", "mode", "device_info", "gateway", "sys_info", "req_id"], Keys(hb));
        Assert.Equal("heartbeat", (string?)hb["op"]);
        Assert.Equal(0, (int)hb["mode"]!);
        Assert.Matches("^[0-9a-f]{16}$", (string)hb["req_id"]!);
        var connect = Node(OpRouterDialect.Instance.EncodeReport(Connect()));
        Assert.Equal(["op", "device_id", "mode", "device_info", "gateway", "req_id"], Keys(connect)); // connect never has sys_info
        Assert.NotEqual((string)hb["req_id"]!, (string)connect["req_id"]!);
    }

    [Fact]
    public void A_9_report_without_device_id_says_UNKNOWN_and_decodes_on_the_controller_side()
    {
        var bytes = OpRouterDialect.Instance.EncodeReport(new ConnectMessage { DeviceId = "", Gateway = Gateways });
        Assert.Equal("UNKNOWN", (string?)Node(bytes)["device_id"]);
        var frame = new OpDialect().Decode(OpRouterDialect.Instance.EncodeReport(Heartbeat()));
        var report = Assert.IsType<HeartbeatMessage>(frame.Report);
        Assert.Equal(3600, report.SysInfo!.SysUptime);
        Assert.False(report.ReqId!.Value.IsNumber);
    }

    [Fact]
    public void An_encoded_9_heartbeat_gets_a_new_req_id_in_place()
    {
        var bytes = OpRouterDialect.Instance.EncodeReport(Heartbeat());
        Assert.True(OpRouterDialect.TryRenewReqId(bytes, 0xabcdef));
        Assert.Equal("0000000000abcdef", (string?)Node(bytes)["req_id"]);
        Assert.False(OpRouterDialect.TryRenewReqId(TypeRouterDialect.V2025.EncodeReport(Heartbeat()), 1));
    }

    // ------------------------------------------------------------------ 9.x answers (E)

    [Fact]
    public void A_9_kickoff_success_is_the_envelope_of_the_firmware_example()
    {
        const string example = """{ "req_id": 7, "response": "200", "data": { "type": "kickoff_response", "data": { "client_ip": "10.0.0.5", "client_mac": "aa:bb:cc:dd:ee:ff" }, "status": "success", "code": 0, "message": "Client kicked off successfully", "req_id": 7, "field_descriptions": { "client_ip": "Auto-generated: key 'client_ip' of type string", "client_mac": "Auto-generated: key 'client_mac' of type string" } } }""";
        var answer = FirmwareAnswers.Kickoff(FirmwareEra.V9,
            new KickoffRequest { ReqId = new ReqId("7", true), ClientIp = "10.0.0.5", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1" },
            "r1", (_, _) => new KnownClient(true, "gw-1"));
        Assert.True(FirmwareAnswers.KickedOffBy(answer));
        Assert.Equal(Compact(example), Text(OpRouterDialect.Instance.EncodeAnswer(answer)));
    }

    [Fact]
    public void A_9_refusal_of_a_frame_without_req_id_is_the_generic_400_without_req_id()
    {
        const string example = """{ "response": "200", "data": { "type": "generic_response", "data": { }, "status": "error", "code": 400, "message": "Missing or invalid req_id", "field_descriptions": { } } }""";
        var inbound = OpRouterDialect.Instance.Decode(Utf8("""{"op":"get_status"}"""));
        Assert.Equal(InboundKind.Complaint, inbound.Kind);
        Assert.Equal(Compact(example), Text(OpRouterDialect.Instance.EncodeAnswer(inbound.Answer!)));
    }

    [Theory]
    [InlineData("""{"req_id":1,"response":"200","data":{"type":"heartbeat"}}""")] // a reply without…
    [InlineData("""{"response":"200","data":{"type":"connect","gateway":[]}}""")] // …and one without req_id
    [InlineData("""{"req_id":1.5,"op":"get_status"}""")]
    [InlineData("""{"req_id":true,"op":"get_status"}""")]
    [InlineData("""[1,2]""")]
    public void Frames_without_a_string_or_integer_req_id_get_missing_req_id_except_replies_that_have_one(string json)
    {
        var inbound = OpRouterDialect.Instance.Decode(Utf8(json));
        if (json.StartsWith("""{"req_id":1,""", StringComparison.Ordinal))
        {
            Assert.Equal(InboundKind.ReportReply, inbound.Kind);
            return;
        }
        var answer = Assert.IsType<OpAnswer>(inbound.Answer);
        Assert.Equal((FirmwareAnswers.GenericResponse, 400, FirmwareAnswers.MissingReqId), (answer.Type, answer.Code, answer.Message));
        Assert.Null(answer.ReqId);
    }

    [Fact]
    public void Invalid_json_gets_invalid_json_request_without_req_id()
    {
        var answer = Assert.IsType<OpAnswer>(OpRouterDialect.Instance.Decode(Utf8("""{"op":"kickoff","req_id":3""")).Answer);
        Assert.Equal(FirmwareAnswers.InvalidJsonRequest, answer.Message);
        Assert.Null(answer.ReqId);
        Assert.DoesNotContain("req_id", Text(OpRouterDialect.Instance.EncodeAnswer(answer)));
    }

    [Fact]
    public void A_type_frame_with_req_id_gets_missing_op_with_its_req_id()
    {
        var inbound = OpRouterDialect.Instance.Decode(Utf8("""{"type":"kickoff","req_id":12,"client_ip":"1.2.3.4","client_mac":"aa:bb:cc:dd:ee:ff","device_id":"r1","gw_id":"gw-1"}"""));
        var answer = Assert.IsType<OpAnswer>(inbound.Answer);
        Assert.Equal((400, FirmwareAnswers.MissingOp), (answer.Code, answer.Message));
        var wire = Node(OpRouterDialect.Instance.EncodeAnswer(answer));
        Assert.Equal(12, (int)wire["req_id"]!);
        Assert.Equal(12, (int)wire["data"]!["req_id"]!);
    }

    [Fact]
    public void An_unknown_op_gets_unknown_operation_naming_it_with_the_req_id()
    {
        var inbound = OpRouterDialect.Instance.Decode(Utf8("""{"op":"make_coffee","req_id":"abc"}"""));
        var wire = Node(OpRouterDialect.Instance.EncodeAnswer(inbound.Answer!));
        Assert.Equal("abc", (string?)wire["req_id"]);
        Assert.Equal("200", (string?)wire["response"]); // "200" also for errors
        Assert.Equal(("generic_response", "error", 400, "Unknown operation", "make_coffee"),
            ((string?)wire["data"]!["type"], (string?)wire["data"]!["status"], (int)wire["data"]!["code"]!, (string?)wire["data"]!["message"],
                (string?)wire["data"]!["data"]!["requested_op"]));
        Assert.Equal("Auto-generated: key 'requested_op' of type string", (string?)wire["data"]!["field_descriptions"]!["requested_op"]);
    }

    [Fact]
    public void A_connect_reply_applies_modes_a_heartbeat_reply_does_not_and_gateway_heartbeat_does()
    {
        var connect = OpRouterDialect.Instance.Decode(Utf8("""{"req_id":123,"response":"200","data":{"type":"connect","gateway":[{"gw_id":"gw1","auth_mode":1}]}}"""));
        Assert.Equal((InboundKind.ReportReply, "connect", true), (connect.Kind, connect.Name, connect.ApplyModes));
        Assert.Equal([new GatewayAuthMode { GwId = "gw1", AuthMode = 1 }], connect.Gateway);
        var heartbeat = OpRouterDialect.Instance.Decode(Utf8("""{"req_id":"0123456789abcdef","response":"200","data":{"type":"heartbeat","gateway":[{"gw_id":"gw1","auth_mode":0}]}}"""));
        Assert.Equal((InboundKind.ReportReply, false), (heartbeat.Kind, heartbeat.ApplyModes));
        var modes = OpRouterDialect.Instance.Decode(Utf8("""{"op":"gateway_heartbeat","req_id":9,"gateway":[{"gw_id":"gw1","auth_mode":"2"},{"gw_id":"gw2"}]}"""));
        Assert.Equal((InboundKind.GatewayModes, true), (modes.Kind, modes.ApplyModes));
        Assert.Equal([new GatewayAuthMode { GwId = "gw1", AuthMode = 2 }], modes.Gateway); // numeric string coerced; gw2 lacks auth_mode
    }

    [Fact]
    public void What_the_controller_s_op_dialect_writes_reads_back_on_the_router()
    {
        var server = new OpDialect();
        var report = (HeartbeatMessage)server.Decode(OpRouterDialect.Instance.EncodeReport(Heartbeat())).Report!;
        var modes = new ReportReply { Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 0 }] };
        var reply = OpRouterDialect.Instance.Decode(server.EncodeReply(report.Type, report.ReqId, modes));
        Assert.Equal((InboundKind.ReportReply, "heartbeat", false), (reply.Kind, reply.Name, reply.ApplyModes));
        Assert.Equal(report.ReqId, reply.ReqId);
        var pushed = OpRouterDialect.Instance.Decode(server.EncodeModes(modes));
        Assert.Equal((InboundKind.GatewayModes, true), (pushed.Kind, pushed.ApplyModes));
        var request = OpRouterDialect.Instance.Decode(server.EncodeRequest(new KickoffRequest
        {
            ReqId = ReqId.Of("cmd-1"), ClientIp = "10.0.0.5", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1",
        }));
        var kickoff = Assert.IsType<KickoffRequest>(request.Request);
        Assert.True(request.ReqId!.Value.IsNumber);
        Assert.Equal("10.0.0.5", kickoff.ClientIp);
        // …and the router's answer settles the command it was sent for.
        var answer = server.Decode(OpRouterDialect.Instance.EncodeAnswer(FirmwareAnswers.Kickoff(FirmwareEra.V9, kickoff, "r1", (_, _) => default)));
        Assert.Equal(("cmd-1", "kickoff", "Client not found (code 2000)"), (answer.Answer!.ReqId!.Value.Value, answer.Answer.RequestType, answer.Answer.Error));
    }

    [Fact]
    public void The_op_names_the_request_even_beside_a_type_and_ota_is_firmware_upgrade()
    {
        var both = OpRouterDialect.Instance.Decode(Utf8("""{"type":"kickoff","op":"get_firmware_info","req_id":1}"""));
        Assert.Equal("get_firmware_info", Assert.IsType<SimpleRequest>(both.Request).Type);
        var wildcard = OpRouterDialect.Instance.Decode(Utf8("""{"op":"sync_trusted_wildcard_domains","req_id":3,"domains":["*.a.example"]}"""));
        Assert.Equal(SyncDomainsRequest.WildcardTypeName, Assert.IsType<SyncDomainsRequest>(wildcard.Request).Type);
        var ota = OpRouterDialect.Instance.Decode(Utf8("""{"op":"ota","req_id":2,"url":"http://fw/x.bin"}"""));
        Assert.Equal("http://fw/x.bin", Assert.IsType<FirmwareUpgradeRequest>(ota.Request).Url);
    }

    [Fact]
    public void Ops_fleet_has_no_record_for_are_requests_and_a_sync_without_list_empties_it()
    {
        Assert.Equal("get_clients", Assert.IsType<SimpleRequest>(OpRouterDialect.Instance.Decode(Utf8("""{"op":"get_clients","req_id":1}""")).Request).Type);
        var sync = OpRouterDialect.Instance.Decode(Utf8("""{"op":"sync_trusted_domain","req_id":1}"""));
        Assert.Empty(Assert.IsType<SyncDomainsRequest>(sync.Request).Domains!);
    }

    [Fact]
    public void A_9_request_missing_fields_gets_its_handler_s_1000()
    {
        var kickoff = OpRouterDialect.Instance.Decode(Utf8("""{"op":"kickoff","req_id":4,"client_ip":"1.2.3.4"}"""));
        var answer = Assert.IsType<OpAnswer>(kickoff.Answer);
        Assert.Equal(("kickoff_response", 1000, KickoffError.MissingFields, new ReqId("4", true)), (answer.Type, answer.Code, answer.Message, answer.ReqId!.Value));
        var tmp = Assert.IsType<OpAnswer>(OpRouterDialect.Instance.Decode(Utf8("""{"op":"tmp_pass","req_id":5}""")).Answer);
        Assert.Equal(("tmp_pass_response", 1000, FirmwareAnswers.MissingClientMac), (tmp.Type, tmp.Code, tmp.Message));
    }

    // ------------------------------------------------------------------ 9.x handlers (D)

    private static AuthRequest Auth(bool? once = false, string gw = "gw-1") =>
        new() { ReqId = new ReqId("8", true), Token = "t", ClientIp = "10.0.0.5", ClientMac = "AA:BB:CC:DD:EE:FF", GwId = gw, OnceAuth = once };

    [Fact]
    public void A_9_auth_answers_with_the_firmware_texts_and_codes_in_its_order()
    {
        static (string, int, string, AuthEffect) Of(AuthDecision d) =>
            (((OpAnswer)d.Answer!).Status, ((OpAnswer)d.Answer!).Code, ((OpAnswer)d.Answer!).Message, d.Effect);
        Func<string, bool> gw1 = g => g == "gw-1";
        Assert.Equal(("error", 1000, FirmwareAnswers.AuthMissingFields, AuthEffect.None),
            Of(FirmwareAnswers.Auth(FirmwareEra.V9, Auth(once: null), gw1, (_, _) => false))); // once_auth must be present
        Assert.Equal(("error", 2000, FirmwareAnswers.GatewayNotFound, AuthEffect.None),
            Of(FirmwareAnswers.Auth(FirmwareEra.V9, Auth(gw: "gw-9"), gw1, (_, _) => false)));
        Assert.Equal(("success", 0, FirmwareAnswers.OnceAuthEnabled, AuthEffect.GatewayOpened),
            Of(FirmwareAnswers.Auth(FirmwareEra.V9, Auth(once: true), gw1, (_, _) => true)));
        Assert.Equal(("error", 1002, FirmwareAnswers.ClientAlreadyAuthenticated, AuthEffect.None),
            Of(FirmwareAnswers.Auth(FirmwareEra.V9, Auth(), gw1, (ip, mac) => ip == "10.0.0.5" && mac == "aa:bb:cc:dd:ee:ff")));
        Assert.Equal(("success", 0, FirmwareAnswers.ClientAuthenticated, AuthEffect.ClientAdded),
            Of(FirmwareAnswers.Auth(FirmwareEra.V9, Auth(), gw1, (_, _) => false)));
        Assert.Equal(("success", 0, FirmwareAnswers.PortalAuthDisabled, AuthEffect.None),
            Of(FirmwareAnswers.Auth(FirmwareEra.V9, Auth(), gw1, (_, _) => false, portalDisabled: true)));
        var wire = Node(OpRouterDialect.Instance.EncodeAnswer(FirmwareAnswers.Auth(FirmwareEra.V9, Auth(), gw1, (_, _) => false).Answer!));
        Assert.Equal("auth_response", (string?)wire["data"]!["type"]);
        Assert.Empty(wire["data"]!["data"]!.AsObject());
        Assert.Empty(wire["data"]!["field_descriptions"]!.AsObject());
    }

    [Fact]
    public void Seed_and_2025_auth_and_tmp_pass_are_one_way()
    {
        foreach (var era in new[] { FirmwareEra.Seed, FirmwareEra.V2025 })
        {
            Assert.Equal(new AuthDecision(null, AuthEffect.ClientAdded), FirmwareAnswers.Auth(era, Auth(), _ => true, (_, _) => false));
            Assert.Equal(new AuthDecision(null, AuthEffect.GatewayOpened), FirmwareAnswers.Auth(era, Auth(once: true), _ => true, (_, _) => false));
            Assert.Null(FirmwareAnswers.TmpPass(era, new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:ff" }).Answer);
            Assert.Null(FirmwareAnswers.Reboot(era, null));
        }
    }

    [Fact]
    public void A_9_tmp_pass_answers_the_mac_and_the_requested_timeout_defaulting_to_300()
    {
        var d = FirmwareAnswers.TmpPass(FirmwareEra.V9, new TmpPassRequest { ReqId = new ReqId("3", true), ClientMac = "aa:bb:cc:dd:ee:ff" });
        Assert.True(d.Applies);
        var wire = Node(OpRouterDialect.Instance.EncodeAnswer(d.Answer!));
        Assert.Equal(Compact("""{"req_id":3,"response":"200","data":{"type":"tmp_pass_response","data":{"client_mac":"aa:bb:cc:dd:ee:ff","timeout":300},"status":"success","code":0,"message":"Temporary pass set successfully","req_id":3,"field_descriptions":{"client_mac":"Auto-generated: key 'client_mac' of type string","timeout":"Auto-generated: key 'timeout' of type integer"}}}"""),
            wire.ToJsonString(Relaxed));
        var bad = (OpAnswer)FirmwareAnswers.TmpPass(FirmwareEra.V9, new TmpPassRequest { ClientMac = "nope", Timeout = 60 }).Answer!;
        Assert.Equal((1002, FirmwareAnswers.InvalidClientMac), (bad.Code, bad.Message));
    }

    [Fact]
    public void A_9_kickoff_checks_client_then_device_then_gateway_with_codes()
    {
        var r = new KickoffRequest { ClientIp = "10.0.0.5", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1" };
        static (int, string) Of(IAnswerFrame a) => (((OpAnswer)a).Code, ((OpAnswer)a).Message);
        Assert.Equal((2000, KickoffError.ClientNotFound), Of(FirmwareAnswers.Kickoff(FirmwareEra.V9, r with { DeviceId = "x" }, "r1", (_, _) => default)));
        Assert.Equal((1002, KickoffError.DeviceIdMismatch), Of(FirmwareAnswers.Kickoff(FirmwareEra.V9, r with { DeviceId = "x" }, "r1", (_, _) => new(true, "gw-1"))));
        Assert.Equal((1002, KickoffError.GatewayIdMismatch), Of(FirmwareAnswers.Kickoff(FirmwareEra.V9, r, "r1", (_, _) => new(true, "gw-2"))));
        Assert.Equal((1003, FirmwareAnswers.PortalAuthDisabled), Of(FirmwareAnswers.Kickoff(FirmwareEra.V9, r, "r1", (_, _) => new(true, "gw-1"), portalDisabled: true)));
        Assert.False(FirmwareAnswers.KickedOffBy(FirmwareAnswers.Kickoff(FirmwareEra.V9, r, "r1", (_, _) => default)));
    }

    [Fact]
    public void A_9_reboot_answers_success_and_upgrade_answers_follow_the_handler()
    {
        var reboot = (OpAnswer)FirmwareAnswers.Reboot(FirmwareEra.V9, new ReqId("1", true))!;
        Assert.Equal(("reboot_device_response", "success", FirmwareAnswers.RebootInitiated), (reboot.Type, reboot.Status, reboot.Message));
        static (int, string) Up(string? url, bool running = false) =>
            (((OpAnswer)FirmwareAnswers.FirmwareUpgrade(FirmwareEra.V9, new FirmwareUpgradeRequest { Url = url }, running)).Code,
                ((OpAnswer)FirmwareAnswers.FirmwareUpgrade(FirmwareEra.V9, new FirmwareUpgradeRequest { Url = url }, running)).Message);
        Assert.Equal((0, FirmwareAnswers.UpgradeStarted), Up("http://fw/x.bin;reboot")); // 9.07 quotes the URL: no character check
        Assert.Equal((1004, FirmwareAnswers.UpgradeInProgress), Up("http://fw/x.bin", running: true));
        Assert.Equal((1000, FirmwareAnswers.FirmwareUrlInvalid), Up(null));
        Assert.Equal((1002, FirmwareAnswers.FirmwareUrlInvalid), Up(""));
        Assert.Equal((1002, FirmwareAnswers.InvalidUrlProtocol), Up("ftp://fw/x.bin"));
        Assert.Equal((1002, FirmwareAnswers.UrlTooLong), Up("http://" + new string('a', 1020)));
    }

    [Fact]
    public void A_9_firmware_info_carries_its_own_field_descriptions_before_the_req_id()
    {
        var answer = FirmwareAnswers.FirmwareInfo(FirmwareEra.V9, new Dictionary<string, string> { ["DISTRIB_ID"] = "OpenWrt" }, new ReqId("5", true));
        Assert.Equal(Compact($$$"""{"req_id":5,"response":"200","data":{"type":"firmware_info_response","data":{"DISTRIB_ID":"OpenWrt"},"status":"success","code":0,"message":"OK","field_descriptions":{"data":"{{{FirmwareAnswers.FirmwareInfoDescription}}}"},"req_id":5}}"""),
            Text(OpRouterDialect.Instance.EncodeAnswer(answer)));
    }

    [Fact]
    public void Seed_and_2025_shaped_answers_convert_to_the_9_form()
    {
        var error = FirmwareAnswers.ToOpAnswer(new GenericResponse { Type = "get_client_info_error", Error = "Client not found", Code = 2000 });
        Assert.Equal(("get_client_info_response", "error", 2000), (error.Type, error.Status, error.Code));
        var domains = FirmwareAnswers.ToOpAnswer(new GenericResponse { Type = "get_trusted_domains_response", Domains = ["a.example"] });
        Assert.Equal("a.example", domains.Data!.Value.GetProperty("domains")[0].GetString());
        Assert.Equal(2000, FirmwareAnswers.ToOpAnswer(new KickoffError { Error = KickoffError.ClientNotFound }).Code);
    }

    // ------------------------------------------------------------------ type dialect (seed, 2025)

    [Fact]
    public void Seed_and_2025_apply_connect_and_heartbeat_replies()
    {
        foreach (var d in new[] { TypeRouterDialect.Seed, TypeRouterDialect.V2025 })
        foreach (var type in new[] { "heartbeat", "connect" })
        {
            var inbound = d.Decode(Utf8($$"""{"type":"{{type}}","gateway":[{"gw_id":"gw-1","auth_mode":0}]}"""));
            Assert.Equal((InboundKind.ReportReply, true), (inbound.Kind, inbound.ApplyModes));
            Assert.Equal(0, inbound.Gateway![0].AuthMode);
        }
    }

    [Fact]
    public void Seed_drops_unknown_types_bad_json_and_op_frames_silently_and_2025_answers_request_error()
    {
        foreach (var json in new[] { """{"type":"get_sys_info","req_id":1}""", """{"type":"make_coffee","req_id":1}""", "not json", """{"op":"get_status","req_id":1}""" })
        {
            var seed = TypeRouterDialect.Seed.Decode(Utf8(json));
            Assert.Equal(InboundKind.Complaint, seed.Kind);
            Assert.Null(seed.Answer);
        }
        Assert.Equal(InboundKind.Request, TypeRouterDialect.V2025.Decode(Utf8("""{"type":"get_sys_info","req_id":1}""")).Kind);
        var unknown = Assert.IsType<GenericResponse>(TypeRouterDialect.V2025.Decode(Utf8("""{"type":"make_coffee","req_id":"r-1"}""")).Answer);
        Assert.Equal((RequestKinds.RequestError, "make_coffee", ReqId.Of("r-1")), (unknown.Type, unknown.RequestedType, unknown.ReqId!.Value));
        var noType = Assert.IsType<GenericResponse>(TypeRouterDialect.V2025.Decode(Utf8("""{"op":"get_status","req_id":1}""")).Answer);
        Assert.Equal(FirmwareAnswers.MissingType, noType.Error);
    }

    [Fact]
    public void Type_answers_are_flat_seed_without_req_id_and_2025_with_it()
    {
        var kick = new KickoffRequest { ReqId = ReqId.Of("k1"), ClientIp = "10.0.0.5", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1" };
        var seed = Node(TypeRouterDialect.Seed.EncodeAnswer(FirmwareAnswers.Kickoff(FirmwareEra.Seed, kick, "r1", (_, _) => default)));
        Assert.Equal(["type", "error", "client_ip", "client_mac"], Keys(seed));
        var v2025 = Node(TypeRouterDialect.V2025.EncodeAnswer(FirmwareAnswers.Kickoff(FirmwareEra.V2025, kick, "r1", (_, _) => default)));
        Assert.Equal("k1", (string?)v2025["req_id"]);
        Assert.Throws<ArgumentException>(() => TypeRouterDialect.Seed.EncodeAnswer(OpAnswer.Ok("x_response")));
    }

    [Fact]
    public void Each_era_treats_control_frames_as_its_firmware()
    {
        Assert.Equal((false, CloseFrameEffect.Ignored, false), (TypeRouterDialect.Seed.AnswersPings, TypeRouterDialect.Seed.OnCloseFrame, TypeRouterDialect.Seed.ClosesOnUnknownOpcode));
        Assert.Equal((true, CloseFrameEffect.OfflineForGood, true), (TypeRouterDialect.V2025.AnswersPings, TypeRouterDialect.V2025.OnCloseFrame, TypeRouterDialect.V2025.ClosesOnUnknownOpcode));
        Assert.Equal((true, CloseFrameEffect.Reconnect, true), (OpRouterDialect.Instance.AnswersPings, OpRouterDialect.Instance.OnCloseFrame, OpRouterDialect.Instance.RetriesBadUpgrade));
        Assert.Equal(["seed", "2025", "9"], new[] { FirmwareEra.Seed, FirmwareEra.V2025, FirmwareEra.V9 }.Select(RouterDialects.NameOf));
        Assert.Equal(FirmwareEra.V9, RouterDialects.Parse("9"));
    }
}
