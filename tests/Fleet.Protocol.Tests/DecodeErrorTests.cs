using Xunit;

namespace Fleet.Protocol.Tests;

public class DecodeErrorTests
{
    [Theory]
    [InlineData("", DecodeErrorKind.NotJson, null)]
    [InlineData("garbage", DecodeErrorKind.NotJson, null)]
    [InlineData("{\"type\":\"heartbeat\"", DecodeErrorKind.NotJson, null)]
    [InlineData("{\"type\":\"heartbeat\"} {}", DecodeErrorKind.NotJson, null)]
    [InlineData("[1,2]", DecodeErrorKind.NotObject, null)]
    [InlineData("\"connect\"", DecodeErrorKind.NotObject, null)]
    [InlineData("42", DecodeErrorKind.NotObject, null)]
    [InlineData("{}", DecodeErrorKind.MissingType, "type")]
    [InlineData("{\"type\":7}", DecodeErrorKind.MissingType, "type")]
    [InlineData("{\"type\":\"\"}", DecodeErrorKind.MissingType, "type")]
    [InlineData("{\"type\":\"reboot_now\"}", DecodeErrorKind.UnknownType, null)]
    [InlineData("{\"type\":\"auth\"}", DecodeErrorKind.UnknownType, null)]
    [InlineData("{\"type\":\"connect\"}", DecodeErrorKind.MissingField, "device_id")]
    [InlineData("{\"type\":\"heartbeat\",\"device_id\":\"r1\",\"gateway\":[{\"auth_mode\":1}]}", DecodeErrorKind.MissingField, "gateway[0].gw_id")]
    [InlineData("{\"type\":\"connect\",\"device_id\":5}", DecodeErrorKind.WrongKind, "device_id")]
    [InlineData("{\"type\":\"heartbeat\",\"device_id\":\"r1\",\"gateway\":{}}", DecodeErrorKind.WrongKind, "gateway")]
    [InlineData("{\"type\":\"heartbeat\",\"device_id\":\"r1\",\"gateway\":[{\"gw_id\":\"g\",\"auth_mode\":\"one\"}]}", DecodeErrorKind.WrongKind, "gateway[0].auth_mode")]
    [InlineData("{\"type\":\"firmware_info_response\",\"data\":[1]}", DecodeErrorKind.WrongKind, "data")]
    public void Device_frames_that_are_not_messages_get_a_precise_error(string frame, DecodeErrorKind kind, string? field)
    {
        var result = ProtocolCodec.DecodeFromDevice(frame);
        Assert.Null(result.Message);
        Assert.Equal(kind, result.Error!.Kind);
        Assert.Equal(field, result.Error.Field);
        Assert.False(string.IsNullOrWhiteSpace(result.Error.Message));
        if (field is not null) Assert.Contains(field.Split('[')[0], result.Error.Message);
    }

    [Theory]
    [InlineData("{\"type\":\"kickoff\",\"req_id\":9,\"client_ip\":\"1.2.3.4\"}", "client_mac", "kickoff")]
    [InlineData("{\"type\":\"tmp_pass\",\"req_id\":\"x\"}", "client_mac", "tmp_pass")]
    [InlineData("{\"type\":\"firmware_upgrade\"}", "url", "firmware_upgrade")]
    [InlineData("{\"type\":\"auth\",\"client_ip\":\"1.2.3.4\",\"client_mac\":\"aa:bb:cc:dd:ee:ff\",\"gw_id\":\"g\"}", "token", "auth")]
    public void Requests_missing_a_field_name_it_and_keep_type_and_req_id(string frame, string field, string type)
    {
        var error = ProtocolCodec.DecodeFromController(frame).Error!;
        Assert.Equal(DecodeErrorKind.MissingField, error.Kind);
        Assert.Equal(field, error.Field);
        Assert.Equal(type, error.Type);
        if (frame.Contains("req_id")) Assert.NotNull(error.ReqId);
    }

    [Fact]
    public void Unknown_request_type_keeps_req_id_for_request_error()
    {
        var error = ProtocolCodec.DecodeFromController("{\"type\":\"make_coffee\",\"req_id\":17}").Error!;
        Assert.Equal(DecodeErrorKind.UnknownType, error.Kind);
        Assert.Equal(new ReqId("17", true), error.ReqId);
    }

    [Fact]
    public void Extra_unknown_fields_are_tolerated()
    {
        var r = ProtocolCodec.DecodeFromDevice("{\"type\":\"connect\",\"device_id\":\"r1\",\"future\":{\"a\":[1,2]},\"x\":1}");
        Assert.Equal("r1", Assert.IsType<ConnectMessage>(r.Message).DeviceId);
    }

    [Fact]
    public void Heartbeat_carries_mode_and_system_figures_even_as_strings()
    {
        var r = ProtocolCodec.DecodeFromDevice(
            "{\"type\":\"heartbeat\",\"device_id\":\"r1\",\"mode\":2,\"sys_info\":{\"sys_uptime\":120,\"sys_load\":\"0.5\",\"cpu_temp\":51.5,\"online_clients\":3}}");
        var hb = Assert.IsType<HeartbeatMessage>(r.Message);
        Assert.Equal(2, hb.Mode);
        var f = hb.SysInfo!;
        Assert.Equal(120, f.SysUptime);
        Assert.Equal(0.5, f.SysLoad);
        Assert.Equal(51.5, f.CpuTemp);
        Assert.Equal(3, f.OnlineClients);
    }

    [Theory]
    [InlineData("{\"type\":\"kickoff_response\",\"req_id\":12,\"status\":\"success\"}", "12", true)]
    [InlineData("{\"type\":\"kickoff_response\",\"req_id\":\"abc\",\"status\":\"success\"}", "abc", false)]
    public void Req_id_is_a_number_or_a_string_and_echoes_as_it_came(string frame, string value, bool isNumber)
    {
        var msg = (IAnswerFrame)ProtocolCodec.DecodeFromDevice(frame).Message!;
        Assert.Equal(new ReqId(value, isNumber), msg.ReqId);
        Assert.Contains(isNumber ? $"\"req_id\":{value}" : $"\"req_id\":\"{value}\"", ProtocolCodec.EncodeToString(msg));
    }

    [Fact]
    public void Request_error_and_extension_answers_decode_as_generic_responses()
    {
        var e = Assert.IsType<GenericResponse>(ProtocolCodec.DecodeFromDevice("{\"type\":\"request_error\",\"req_id\":3,\"error\":\"Unknown type\"}").Message);
        Assert.Equal("Unknown type", e.ErrorText);
        var s = Assert.IsType<GenericResponse>(ProtocolCodec.DecodeFromDevice("{\"type\":\"get_sys_info_response\",\"data\":{\"sys_uptime\":5}}").Message);
        Assert.Null(s.ErrorText);
        Assert.Equal(5, s.Data!.Value.GetProperty("sys_uptime").GetInt32());
        var d = Assert.IsType<GenericResponse>(ProtocolCodec.DecodeFromDevice("{\"type\":\"get_trusted_domains_response\",\"domains\":[\"a.com\"]}").Message);
        Assert.Equal(["a.com"], d.Domains!);
    }

    [Fact]
    public void Every_request_kind_decodes_from_its_minimal_form()
    {
        foreach (var kind in RequestKinds.All)
        {
            var json = kind.Type switch
            {
                "auth" => "{\"type\":\"auth\",\"token\":\"t\",\"client_ip\":\"1.2.3.4\",\"client_mac\":\"aa:bb:cc:dd:ee:ff\",\"gw_id\":\"g\"}",
                "kickoff" => "{\"type\":\"kickoff\",\"client_ip\":\"1.2.3.4\",\"client_mac\":\"aa:bb:cc:dd:ee:ff\",\"device_id\":\"d\",\"gw_id\":\"g\"}",
                "tmp_pass" => "{\"type\":\"tmp_pass\",\"client_mac\":\"aa:bb:cc:dd:ee:ff\"}",
                "firmware_upgrade" => "{\"type\":\"firmware_upgrade\",\"url\":\"http://x/fw.bin\"}",
                "update_device_info" => "{\"type\":\"update_device_info\",\"device_info\":{\"location_id\":\"l\"}}",
                "set_wifi_info" => "{\"type\":\"set_wifi_info\",\"data\":{\"radio0\":{\"channel\":6}}}",
                "sync_trusted_domain" or "sync_trusted_wildcard_domains" => $"{{\"type\":\"{kind.Type}\",\"domains\":[\"a.com\"]}}",
                "get_client_info" => "{\"type\":\"get_client_info\",\"mac\":\"aa:bb:cc:dd:ee:ff\"}",
                "sync_trusted_mac" => "{\"type\":\"sync_trusted_mac\",\"macs\":[\"aa:bb:cc:dd:ee:ff\"]}",
                "shell" => "{\"type\":\"shell\",\"command\":\"uptime\"}",
                _ => $"{{\"type\":\"{kind.Type}\"}}",
            };
            var r = ProtocolCodec.DecodeFromController(json);
            Assert.True(r.IsOk, $"{kind.Type}: {r.Error}");
            Assert.Equal(kind.Type, r.Message!.Type);
            Assert.Equal(json.Length > 0, ProtocolCodec.EncodeToString(r.Message).Contains(kind.Type));
        }
    }
}

public class EncodingTests
{
    [Fact]
    public void Seed_texts_are_encoded_byte_for_byte()
    {
        var json = ProtocolCodec.EncodeToString(new GenericResponse { Type = "firmware_upgrade_error", Error = "Missing or invalid 'url' field" });
        Assert.Equal("{\"type\":\"firmware_upgrade_error\",\"error\":\"Missing or invalid 'url' field\"}", json);
    }
}
