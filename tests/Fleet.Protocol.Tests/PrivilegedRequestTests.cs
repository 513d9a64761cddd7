using System.Text;
using System.Text.Json;
using Xunit;

namespace Fleet.Protocol.Tests;

/// <summary>
/// The 9.x requests that run something on the router or point it at another server (shell, set_auth_serv,
/// set_mqtt_serv, set_websocket_serv): request kinds with the firmware's own answer types, their fields as the
/// firmware reads them (api_handlers_auth.c at 9.07), checked before they go out, written in the op dialect.
/// </summary>
public class PrivilegedRequestTests
{
    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData("shell", "shell_response")]
    [InlineData("set_auth_serv", "set_auth_server_response")]
    [InlineData("set_mqtt_serv", "set_mqtt_server_response")]
    [InlineData("set_websocket_serv", "set_websocket_server_response")]
    public void Each_is_a_privileged_request_kind_answered_with_the_firmwares_own_type(string type, string answer)
    {
        var kind = RequestKinds.Find(type)!;
        Assert.True(kind.Privileged);
        Assert.False(kind.OneWay);
        Assert.Equal(answer, kind.SuccessType);
        Assert.Equal(kind, RequestKinds.ForAnswer(answer));
        Assert.Equal(answer, FirmwareAnswers.ResponseTypeV9(type));
    }

    [Theory]
    [InlineData("""{"type":"set_websocket_serv","hostname":"fleet.example.com","port":443,"path":"/ws/wifidogx?key=fdk_abc-_1","use_ssl":true}""", typeof(SetWebSocketServRequest))]
    [InlineData("""{"type":"set_websocket_serv","path":"/ws"}""", typeof(SetWebSocketServRequest))]
    [InlineData("""{"type":"set_auth_serv","hostname":"10.0.0.1","port":8080,"path":"/wifidog/"}""", typeof(SetAuthServRequest))]
    [InlineData("""{"type":"set_mqtt_serv","hostname":"mqtt.example.com","port":8883,"username":"u","password":"p-1","use_ssl":true}""", typeof(SetMqttServRequest))]
    [InlineData("""{"type":"shell","command":"uptime","timeout":10}""", typeof(ShellRequest))]
    public void Valid_requests_decode_to_their_record_pass_the_rules_and_round_trip(string json, Type record)
    {
        var decoded = ProtocolCodec.DecodeFromController(json);
        var request = Assert.IsAssignableFrom<IControllerRequest>(decoded.Message);
        Assert.IsType(record, request);
        Assert.Null(FieldRules.CheckRequest(request));
        Assert.Equal(request, ProtocolCodec.DecodeFromController(ProtocolCodec.Encode(request)).Message);
    }

    [Theory]
    [InlineData("""{"type":"set_websocket_serv"}""", "needs at least one of hostname, port, path, use_ssl")]
    [InlineData("""{"type":"set_websocket_serv","path":"ws/wifidogx"}""", "must start with /")]
    [InlineData("""{"type":"set_websocket_serv","path":"/ws\nWSServerPath /evil"}""", "must start with / and hold only")]
    [InlineData("""{"type":"set_websocket_serv","path":"/ws?key=(not-stored)"}""", "must start with / and hold only")]
    [InlineData("""{"type":"set_websocket_serv","hostname":"evil host"}""", "is not a host name or an IP address")]
    [InlineData("""{"type":"set_websocket_serv","port":70000}""", "port must be from 1 to 65535")]
    [InlineData("""{"type":"set_auth_serv"}""", "needs at least one of hostname, port, path")]
    [InlineData("""{"type":"set_mqtt_serv","password":"has space"}""", "password must be")]
    [InlineData("""{"type":"shell","command":"   "}""", "command must be a non-empty string")]
    [InlineData("""{"type":"shell","command":"ls","timeout":60}""", "timeout must be from 1 to 30")]
    [InlineData("""{"type":"shell","command":"ls\u0000rm"}""", "control characters")]
    public void Invalid_requests_are_refused_naming_the_field(string json, string problem)
    {
        var request = Assert.IsAssignableFrom<IControllerRequest>(ProtocolCodec.DecodeFromController(json).Message);
        Assert.Contains(problem, FieldRules.CheckRequest(request));
    }

    [Fact]
    public void A_shell_request_without_command_is_missing_a_field() =>
        Assert.Equal(("command", DecodeErrorKind.MissingField),
            ProtocolCodec.DecodeFromController("""{"type":"shell"}""").Error is { } e ? (e.Field, e.Kind) : default);

    [Fact]
    public void Set_websocket_serv_goes_to_a_9x_router_with_op_an_integer_req_id_and_only_the_fields_set()
    {
        var dialect = new OpDialect();
        var frame = JsonElement.Parse(dialect.EncodeRequest(new SetWebSocketServRequest { ReqId = ReqId.Of("a1"), Path = "/ws/wifidogx?key=fdk_x" }));
        Assert.Equal("set_websocket_serv", frame.GetProperty("op").GetString());
        Assert.Equal(JsonValueKind.Number, frame.GetProperty("req_id").ValueKind);
        Assert.Equal("/ws/wifidogx?key=fdk_x", frame.GetProperty("path").GetString());
        // The firmware changes only what is present: no host, port or use_ssl means the router keeps its own.
        Assert.False(frame.TryGetProperty("hostname", out _));
        Assert.False(frame.TryGetProperty("port", out _));
        Assert.False(frame.TryGetProperty("use_ssl", out _));
        var n = frame.GetProperty("req_id").GetInt64();
        var answer = dialect.Decode(U($$$"""
            { "req_id": {{{n}}}, "response": "200", "data": { "type": "set_websocket_server_response", "data": { }, "status": "success", "code": 0, "message": "WebSocket server configuration updated", "req_id": {{{n}}}, "field_descriptions": { } } }
            """)).Answer!;
        Assert.Equal((ReqId.Of("a1"), "set_websocket_serv", true), (answer.ReqId, answer.RequestType, answer.Succeeded));
    }

    [Fact]
    public void A_9x_router_reads_them_as_their_records()
    {
        var inbound = OpRouterDialect.Instance.Decode(U("""{"op":"set_websocket_serv","req_id":3,"path":"/ws?key=k","port":8443}"""));
        var request = Assert.IsType<SetWebSocketServRequest>(inbound.Request);
        Assert.Equal(("/ws?key=k", 8443), (request.Path, request.Port));
        Assert.IsType<ShellRequest>(OpRouterDialect.Instance.Decode(U("""{"op":"shell","req_id":4,"command":"id"}""")).Request);
        var missing = OpRouterDialect.Instance.Decode(U("""{"op":"shell","req_id":5}"""));
        var answer = Assert.IsType<OpAnswer>(missing.Answer);
        Assert.Equal(("shell_response", 1000, FirmwareAnswers.MissingCommand), (answer.Type, answer.Code, answer.Message));
    }

    [Fact]
    public void Secrets_never_print()
    {
        var ws = new SetWebSocketServRequest { Path = "/ws/wifidogx?key=fdk_secret&x=1" };
        Assert.DoesNotContain("fdk_secret", ws.ToString());
        Assert.Contains("/ws/wifidogx?key=(redacted)&x=1", ws.ToString());
        Assert.DoesNotContain("hunter2", new SetMqttServRequest { Password = "hunter2" }.ToString());
        Assert.Equal("/monkey=1", SetWebSocketServRequest.MaskKey("/monkey=1"));
    }
}
