using System.Text;
using System.Text.Json;
using Xunit;

namespace Fleet.Protocol.Tests;

/// <summary>
/// The controller's side of the dialects: frames as the firmware sends them (FIRMWARE_9.md, docs/FIRMWARE.md)
/// read into dialect-free reports and answers, and our frames written the way each firmware reads them.
/// </summary>
public class ServerDialectTests
{
    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    // A 9.07 heartbeat as build_gateway_report_message writes it (json-c's spaced output).
    private const string OpHeartbeat = """
        { "op": "heartbeat", "device_id": "r9", "mode": 0, "device_info": { "ap_device_id": "r9", "location_id": "hall" }, "gateway": [ { "gw_id": "gw-1", "gw_channel": "apfree", "gw_address_v4": "192.168.1.1", "auth_mode": 1, "gw_interface": "br-lan" } ], "sys_info": { "sys_uptime": 3600, "sys_memfree": 61440, "sys_load": 0.08, "nf_conntrack_count": 120, "cpu_usage": 3.5, "cpu_temp": 48, "wifidog_uptime": 3500, "online_clients": 2, "offline_clients": 0 }, "req_id": "00c0ffee12345678" }
        """;

    [Theory]
    [InlineData("""{"op":"connect","device_id":"r9","req_id":"0123456789abcdef"}""", typeof(OpDialect))]
    [InlineData("""{"type":"connect","device_id":"r1"}""", typeof(TypeDialect))]
    public void The_first_frame_decides_the_dialect(string frame, Type dialect) =>
        Assert.IsType(dialect, DeviceDialects.Detect(U(frame)));

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"device_id":"r1"}""")]
    [InlineData("[1]")]
    public void A_first_frame_naming_no_dialect_decides_nothing(string frame) => Assert.Null(DeviceDialects.Detect(U(frame)));

    [Fact]
    public void An_op_heartbeat_is_a_report_with_mode_figures_and_its_own_req_id()
    {
        var dialect = new OpDialect();
        var report = Assert.IsType<HeartbeatMessage>(dialect.Decode(U(OpHeartbeat)).Report);
        Assert.Equal("r9", report.DeviceId);
        Assert.Equal(0, report.Mode);
        Assert.Equal(3600, report.SysInfo!.SysUptime);
        Assert.Equal(2, report.SysInfo.OnlineClients);
        Assert.Equal(ReqId.Of("00c0ffee12345678"), report.ReqId);
        Assert.Equal("9", dialect.NameFor(report));
    }

    [Fact]
    public void The_seed_dialect_reads_nested_sys_info_and_names_such_a_device_2025()
    {
        var seed = TypeDialect.Seed.Decode(U("""{"type":"heartbeat","device_id":"r1","gateway":[]}""")).Report!;
        var v2025 = TypeDialect.Seed.Decode(U("""{"type":"heartbeat","device_id":"r1","sys_info":{"sys_uptime":5,"cpu_temp":-1}}""")).Report!;
        Assert.Equal("seed", TypeDialect.Seed.NameFor(seed));
        Assert.Equal("2025", TypeDialect.Seed.NameFor(v2025));
        Assert.Equal(-1, v2025.SysInfo!.CpuTemp);
    }

    [Fact]
    public void Requests_go_to_an_op_router_with_op_and_an_integer_req_id_and_its_answer_names_the_command_again()
    {
        var dialect = new OpDialect();
        var kickoff = new KickoffRequest
        {
            ReqId = ReqId.Of("c0199aa"), ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r9", GwId = "gw-1",
        };
        var frame = JsonElement.Parse(dialect.EncodeRequest(kickoff));
        Assert.Equal("kickoff", frame.GetProperty("op").GetString());
        Assert.Equal(JsonValueKind.Number, frame.GetProperty("req_id").ValueKind);
        Assert.False(frame.TryGetProperty("type", out _));
        Assert.Equal("aa:bb:cc:dd:ee:ff", frame.GetProperty("client_mac").GetString());
        var n = frame.GetProperty("req_id").GetInt64();

        // As 9.07 answers (send_response around api_response_*), error included.
        var answer = dialect.Decode(U($$$"""
            { "req_id": {{{n}}}, "response": "200", "data": { "type": "kickoff_response", "data": { }, "status": "error", "code": 2000, "message": "Client not found", "req_id": {{{n}}}, "field_descriptions": { } } }
            """)).Answer!;
        Assert.Equal(ReqId.Of("c0199aa"), answer.ReqId);
        Assert.Equal("kickoff", answer.RequestType);
        Assert.Equal("Client not found (code 2000)", answer.Error);
        Assert.False(answer.Succeeded);
        Assert.Equal(2000, answer.Body.GetProperty("data").GetProperty("code").GetInt32());
    }

    [Fact]
    public void An_op_routers_firmware_info_and_auth_answers_settle_their_commands()
    {
        var dialect = new OpDialect();
        var n1 = JsonElement.Parse(dialect.EncodeRequest(new SimpleRequest { Type = "get_firmware_info", ReqId = ReqId.Of("f1") })).GetProperty("req_id").GetInt64();
        var n2 = JsonElement.Parse(dialect.EncodeRequest(new AuthRequest
        {
            ReqId = ReqId.Of("a1"), Token = "t", ClientIp = "10.0.0.5", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1", OnceAuth = false,
        })).GetProperty("req_id").GetInt64();
        Assert.NotEqual(n1, n2);
        var fw = dialect.Decode(U($$$"""{"req_id":{{{n1}}},"response":"200","data":{"type":"firmware_info_response","data":{"DISTRIB_RELEASE":"24.10","DISTRIB_REVISION":"r1"},"status":"success","code":0,"message":"OK"}}""")).Answer!;
        Assert.True(fw.Succeeded);
        Assert.Equal("24.10", fw.Firmware!["DISTRIB_RELEASE"]);
        var auth = dialect.Decode(U($$$"""{"req_id":{{{n2}}},"response":"200","data":{"type":"auth_response","data":{},"status":"success","code":0,"message":"Client authenticated successfully"}}""")).Answer!;
        Assert.Equal(ReqId.Of("a1"), auth.ReqId);
        Assert.Equal("auth", auth.RequestType);
        Assert.True(auth.Succeeded);
        Assert.True(dialect.Answers("auth"));
        Assert.False(TypeDialect.Seed.Answers("auth"));
    }

    [Fact]
    public void An_unknown_operation_fails_its_command_and_a_complaint_without_req_id_names_none()
    {
        var dialect = new OpDialect();
        var n = JsonElement.Parse(dialect.EncodeRequest(new SimpleRequest { Type = "get_status", ReqId = ReqId.Of("s1") })).GetProperty("req_id").GetInt64();
        var unknown = dialect.Decode(U($$$"""{"req_id":{{{n}}},"response":"200","data":{"type":"generic_response","data":{"requested_op":"get_status"},"status":"error","code":400,"message":"Unknown operation","req_id":{{{n}}}}}""")).Answer!;
        Assert.True(unknown.Unsupported);
        Assert.Equal(ReqId.Of("s1"), unknown.ReqId);
        Assert.Contains("Unknown operation", unknown.Error);

        var complaint = dialect.Decode(U("""{"response":"200","data":{"type":"generic_response","data":{},"status":"error","code":400,"message":"Missing or invalid req_id","field_descriptions":{}}}"""));
        Assert.Null(complaint.Answer);
        Assert.Contains("Missing or invalid req_id", complaint.Complaint);
    }

    [Fact]
    public void An_op_routers_reports_are_answered_in_the_response_envelope_echoing_their_req_id()
    {
        var dialect = new OpDialect();
        var reply = new ReportReply { Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 0 }] };
        var connect = dialect.Decode(U("""{"op":"connect","device_id":"r9","gateway":[{"gw_id":"gw-1","auth_mode":1}],"req_id":"0123456789abcdef"}""")).Report!;
        var frame = JsonElement.Parse(dialect.EncodeReply(connect.Type, connect.ReqId, reply));
        Assert.Equal("0123456789abcdef", frame.GetProperty("req_id").GetString());
        Assert.Equal("200", frame.GetProperty("response").GetString());
        Assert.Equal("connect", frame.GetProperty("data").GetProperty("type").GetString());
        Assert.Equal(0, frame.GetProperty("data").GetProperty("gateway")[0].GetProperty("auth_mode").GetInt32());
        Assert.True(dialect.AppliesModesFromReplyTo(connect.Type));

        var heartbeat = dialect.Decode(U(OpHeartbeat)).Report!;
        Assert.Equal("heartbeat", JsonElement.Parse(dialect.EncodeReply(heartbeat.Type, heartbeat.ReqId, reply)).GetProperty("data").GetProperty("type").GetString());
        Assert.False(dialect.AppliesModesFromReplyTo(heartbeat.Type)); // 9.07 ignores a heartbeat reply's modes

        var push = JsonElement.Parse(dialect.EncodeModes(reply));
        Assert.Equal("gateway_heartbeat", push.GetProperty("op").GetString());
        Assert.Equal(JsonValueKind.Number, push.GetProperty("req_id").ValueKind);
        Assert.Equal("gw-1", push.GetProperty("gateway")[0].GetProperty("gw_id").GetString());
    }

    [Fact]
    public void Requests_that_no_router_could_read_are_refused_with_the_limit()
    {
        var fits = new SyncDomainsRequest { ReqId = ReqId.Of("c" + new string('0', 32)), Domains = Enumerable.Range(0, 20).Select(i => $"d{i}.example.com").ToList() };
        Assert.Null(FieldRules.CheckWireSize(fits));
        var tooMany = fits with { Domains = Enumerable.Range(0, 80).Select(i => $"d{i}.example.com").ToList() };
        var problem = FieldRules.CheckWireSize(tooMany)!;
        Assert.Contains("1023", problem);
        Assert.Contains("cannot be split", problem);
        Assert.True(ProtocolCodec.Encode(tooMany).Length > ReaderLimits.MaxPayloadBytes);

        Assert.Null(FieldRules.CheckFirmwareUrl("url", "http://fw.example.com/" + new string('a', 400)));
        Assert.Contains("at most 493", FieldRules.CheckFirmwareUrl("url", "http://fw.example.com/" + new string('a', 480)));
    }
}
