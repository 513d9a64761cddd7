using System.Text;
using Fleet.Testing;
using Xunit;

namespace Fleet.Protocol.Tests;

/// <summary>
/// Inputs the codec fuzzer found (bench/Fuzz codec, seed 1; docs/FUZZING.md), each named after what it is. Every one
/// threw out of a decoder before its fix — on the node, out of a connection's read loop, which then stopped reading
/// that socket for good without a word in the log. Each must now come back as a decoded frame or a precise error, and
/// pass the fuzzer's whole check (every entry point, twice, the same).
/// </summary>
public class FuzzFoundTests
{
    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    private static void PassesTheFuzzCheck(byte[] input)
    {
        var problem = CodecFuzz.Check(input);
        Assert.True(problem is null, $"{problem?.EntryPoint}: {problem?.Problem}");
    }

    // Case 317 and others: the answer decoded, then its body was parsed again more strictly than the first pass read it.
    [Theory]
    [InlineData("""{"type":"kickoff_response","status":"success","client_mac":"aa:bb:cc:dd:ee:ff",}""")]
    [InlineData("""{"type":"kickoff_response",/* a comment */"status":"success"}""")]
    public void A_type_answer_with_a_trailing_comma_or_a_comment_is_an_answer(string frame)
    {
        var answer = TypeDialect.Seed.Decode(U(frame)).Answer;
        Assert.NotNull(answer);
        Assert.Equal("kickoff_response", answer.Type);
        PassesTheFuzzCheck(U(frame));
    }

    // Cases 19 and 112: the same in the 9.x envelope.
    [Theory]
    [InlineData("""{"req_id":1,"response":"200","data":{"type":"kickoff_response","status":"success","code":0,"message":"OK"},}""")]
    [InlineData("""{ "req_id": 1, "response": "200", "data": { "type": "kickoff_response", "status": "success" } /* x */ }""")]
    public void An_answer_envelope_with_a_trailing_comma_or_a_comment_is_an_answer(string frame)
    {
        var answer = new OpDialect().Decode(U(frame)).Answer;
        Assert.NotNull(answer);
        Assert.Equal("kickoff_response", answer.Type);
        PassesTheFuzzCheck(U(frame));
    }

    // Cases 129, 133, 149, 216: the envelope's data was read into a record by a call that threw on a field of the wrong kind.
    [Theory]
    [InlineData("""{"req_id":3,"response":"200","data":{"type":"get_device_info_response","status":"success","code":"get_clients_response","message":"OK"}}""", "data.code")]
    [InlineData("""{"req_id":1,"response":"200","data":{"type":"firmware_info_response","status":"success","code":0,"message":[{"gw_id":"gw-1"}]}}""", "data.message")]
    [InlineData("""{"req_id":2,"response":"200","data":{"type":"kickoff_response","status":"success","req_id":{"a":1}}}""", "data.req_id")]
    [InlineData("""{"req_id":2,"response":"200","data":{"type":"get_trusted_domains_response","domains":{"x":1}}}""", "data.domains")]
    [InlineData("""{"req_id":2,"response":"200","data":["kickoff_response"]}""", "data")]
    public void An_answer_envelope_whose_data_has_a_field_of_the_wrong_kind_is_refused_naming_it(string frame, string field)
    {
        var decoded = new OpDialect().Decode(U(frame));
        Assert.Null(decoded.Answer);
        Assert.Equal(DecodeErrorKind.WrongKind, decoded.Error!.Kind);
        Assert.Equal(field, decoded.Error.Field);
        Assert.Contains($"'{field}'", decoded.Error.Message);
        PassesTheFuzzCheck(U(frame));
    }

    // Case 1064: data of a firmware_info_response with a key twice (ToDictionary threw).
    [Fact]
    public void An_op_firmware_info_answer_with_a_key_twice_keeps_the_last()
    {
        var dialect = new OpDialect();
        dialect.EncodeRequest(new SimpleRequest { Type = "get_firmware_info", ReqId = ReqId.Of("c-1") });
        var frame = U("""{"req_id":1,"response":"200","data":{"type":"firmware_info_response","status":"success","code":0,"data":{"DISTRIB_ID":"OpenWrt","DISTRIB_ID":"LEDE"}}}""");
        var answer = dialect.Decode(frame).Answer!;
        Assert.Equal("LEDE", answer.Firmware!["DISTRIB_ID"]);
        PassesTheFuzzCheck(frame);
    }

    // Cases 7496, 10904, 15589, 34189, 12791, 4724: an escape that is no character (a lone UTF-16 surrogate) inside data,
    // read later by GetString or written back by a serializer — both throw.
    [Theory]
    [InlineData("""{"type":"get_sys_info_response","status":"success","data":{"value":"\ud800","name":"x"}}""")]
    [InlineData("""{"req_id":3,"response":"200","data":{"type":"get_status_response","data":{"client_mac":"\udc00\ud800"},"status":"success","code":0}}""")]
    [InlineData("""{"type":"set_wifi_info","data":"\ud800"}""")]
    [InlineData("""{"type":"heartbeat","device_id":"r1","gateway":[{"gw_id":"gw-1","auth_mode":"\udfff"}]}""")]
    [InlineData("""{"type":"heartbeat","device_id":"r1","\ud83d":1}""")]
    public void A_string_escape_that_is_no_character_makes_the_frame_not_json(string frame)
    {
        foreach (var error in new[]
                 {
                     ProtocolCodec.ReadEnvelope(U(frame)).Error, ProtocolCodec.DecodeFromDevice(U(frame)).Error,
                     ProtocolCodec.DecodeFromController(U(frame)).Error, TypeDialect.Seed.Decode(U(frame)).Error, new OpDialect().Decode(U(frame)).Error,
                 })
        {
            Assert.Equal(DecodeErrorKind.NotJson, error!.Kind);
            Assert.Contains("escape that is no character", error.Message);
        }
        PassesTheFuzzCheck(U(frame));
    }

    // Cases 1198, 2560, 36166: invalid UTF-8 (a byte flipped inside a string) read into data, then by GetString/GetRawText.
    [Fact]
    public void A_frame_that_is_not_utf8_is_not_json_and_says_where()
    {
        byte[] frame = [.. """{"type":"firmware_info_response","data":{"DISTRIB_TARGET":"x86"""u8, 0xC0, 0xAF, .. """64"}}"""u8];
        var error = TypeDialect.Seed.Decode(frame).Error!;
        Assert.Equal(DecodeErrorKind.NotJson, error.Kind);
        Assert.Equal($"frame is not valid UTF-8 (at byte {frame.AsSpan().IndexOf((byte)0xC0) + 1})", error.Message);
        PassesTheFuzzCheck(frame);
    }

    // Case 19601: 1e309 reads as infinity, which no JSON writer writes back: a device's view (GET /api/v1/devices/{id})
    // and the heartbeat message to an entity on another node could not be serialized.
    [Theory]
    [InlineData("""{"op":"heartbeat","device_id":"r9","gateway":[],"sys_info":{"cpu_temp":-1e309},"req_id":"a"}""", "sys_info.cpu_temp")]
    [InlineData("""{"op":"heartbeat","device_id":"r9","gateway":[],"sys_info":{"sys_load":"NaN"},"req_id":"a"}""", "sys_info.sys_load")]
    [InlineData("""{"op":"heartbeat","device_id":"r9","gateway":[],"sys_info":{"cpu_usage":"Infinity"},"req_id":"a"}""", "sys_info.cpu_usage")]
    public void A_heartbeat_whose_figure_is_not_finite_is_refused_naming_the_figure(string frame, string field)
    {
        var error = new OpDialect().Decode(U(frame)).Error!;
        Assert.Equal(DecodeErrorKind.WrongKind, error.Kind);
        Assert.Equal(field, error.Field);
        PassesTheFuzzCheck(U(frame));
    }

    [Fact]
    public void Figures_as_finite_numbers_or_strings_still_read()
    {
        var report = new OpDialect().Decode(U("""{"op":"heartbeat","device_id":"r9","gateway":[],"sys_info":{"cpu_temp":"48.5","sys_load":1e-400,"cpu_usage":3},"req_id":"a"}""")).Report!;
        Assert.Equal(48.5, report.SysInfo!.CpuTemp);
        Assert.Equal(0, report.SysInfo.SysLoad);
        Assert.Equal(3, report.SysInfo.CpuUsage);
    }

    // Cases 3841, 1448, 14341 (the router's side: Fleet.Edge and the simulator read the controller's frames with it):
    // a request named by both "op" and "type" with a key twice (JsonObject refused it), and frames the first pass read
    // with a trailing comma or a comment that a second pass read without.
    [Theory]
    [InlineData("""{"op":"kickoff","type":"kickoff","req_id":1,"client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","device_id":"a","device_id":"r9","gw_id":"gw-1"}""", "kickoff")]
    [InlineData("""{"type":"shell","op":"shell","req_id":7,"command":"uptime","timeout":5,}""", "shell")]
    public void The_router_reads_a_request_named_twice_with_odd_json(string frame, string op)
    {
        var inbound = OpRouterDialect.Instance.Decode(U(frame));
        Assert.Equal(InboundKind.Request, inbound.Kind);
        Assert.Equal(op, inbound.Name);
        if (inbound.Request is KickoffRequest k) Assert.Equal("r9", k.DeviceId); // the last of the two, as json-c keeps it
        PassesTheFuzzCheck(U(frame));
    }

    [Fact]
    public void The_router_reads_an_op_of_the_wrong_kind_with_a_comment_after_it()
    {
        var inbound = OpRouterDialect.Instance.Decode(U("""{ "op": [ [ 1 ] ]/*x*/, "req_id": 13 }"""));
        Assert.Equal(InboundKind.Complaint, inbound.Kind);
        PassesTheFuzzCheck(U("""{ "op": [ [ 1 ] ]/*x*/, "req_id": 13 }"""));
    }
}
