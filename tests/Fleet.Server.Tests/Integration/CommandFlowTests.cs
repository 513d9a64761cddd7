using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>Every seed flow through a real node: an operator posts, a router answers, the command ends.</summary>
public sealed class CommandFlowTests : IAsyncLifetime
{
    private Node _node = null!;

    public async ValueTask InitializeAsync() => _node = await Node.StartAsync();
    public async ValueTask DisposeAsync() => await _node.DisposeAsync();

    private static string Id() => "r-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Posts a command and returns the request frame the router received.</summary>
    private async Task<(JsonNode Frame, Task<(int Status, JsonNode? Body, string? Type)> Post)> PostAndReceive(PretendRouter router,
        string body, string query = "?wait=10")
    {
        var post = _node.Post($"/api/v1/devices/{router.DeviceId}/commands{query}", body);
        var type = (string)JsonNode.Parse(body)!["type"]!;
        var frame = await router.ReceiveType(type);
        return (frame, post);
    }

    [Fact]
    public async Task Kickoff_answered_with_req_id_succeeds_with_the_device_words()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (frame, post) = await PostAndReceive(router,
            """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"AA:BB:CC:DD:EE:FF","gw_id":"gw-1"}""");
        Assert.Equal(router.DeviceId, (string?)frame["device_id"]);
        Assert.Equal("aa:bb:cc:dd:ee:ff", (string?)frame["client_mac"]);
        Assert.NotNull(frame["req_id"]);
        await router.Send(new JsonObject
        {
            ["type"] = "kickoff_response", ["req_id"] = frame["req_id"]!.DeepClone(), ["status"] = "success",
            ["client_ip"] = "192.168.1.23", ["client_mac"] = "aa:bb:cc:dd:ee:ff", ["message"] = "Client kicked off successfully",
        }.ToJsonString());
        var (status, body, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal("succeeded", (string?)body!["status"]);
        Assert.Equal("Client kicked off successfully", (string?)body["response"]!["message"]);
        Assert.Equal((string?)frame["req_id"], (string?)body["command_id"]);
        Assert.NotNull(body["sent_at"]);
        Assert.NotNull(body["completed_at"]);
    }

    [Fact]
    public async Task Seed_era_answer_without_req_id_is_matched_by_kind()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (_, post) = await PostAndReceive(router, """{"type":"get_firmware_info"}""");
        await router.Send("""{"type":"firmware_info_response","data":{"DISTRIB_ID":"ChaWrt","DISTRIB_RELEASE":"24.10-SNAPSHOT","DISTRIB_DESCRIPTION":"ChaWrt 24.10-SNAPSHOT r28790"}}""");
        var (status, body, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal("succeeded", (string?)body!["status"]);
        var device = await _node.GetJson($"/api/v1/devices/{router.DeviceId}");
        Assert.Equal("24.10-SNAPSHOT", (string?)device["firmware"]!["DISTRIB_RELEASE"]);
    }

    public static TheoryData<string, string> KickoffErrors() => new()
    {
        { """{"type":"kickoff_error","error":"Missing required fields in request"}""", "Missing required fields in request" },
        { """{"type":"kickoff_error","error":"Client not found","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff"}""", "Client not found" },
        { """{"type":"kickoff_error","error":"Device ID mismatch","expected_device_id":"x","actual_device_id":"y"}""", "Device ID mismatch" },
        { """{"type":"kickoff_error","error":"Gateway ID mismatch","client_mac":"aa:bb:cc:dd:ee:ff","expected_gw_id":"gw-1","actual_gw_id":"gw-2"}""", "Gateway ID mismatch" },
    };

    [Theory]
    [MemberData(nameof(KickoffErrors))]
    public async Task Every_kickoff_error_form_fails_the_command_with_its_text(string answer, string error)
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (_, post) = await PostAndReceive(router,
            """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""");
        await router.Send(answer);
        var (status, body, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal("failed", (string?)body!["status"]);
        Assert.Equal(error, (string?)body["error"]);
        Assert.Equal(error, (string?)body["response"]!["error"]);
    }

    [Fact]
    public async Task Kickoff_answer_for_another_client_is_not_taken_as_the_answer()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (_, post) = await PostAndReceive(router,
            """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""", "?wait=10&timeout=2");
        await router.Send("""{"type":"kickoff_response","status":"success","client_ip":"192.168.1.99","client_mac":"11:22:33:44:55:66","message":"ok"}""");
        var (_, body, _) = await post;
        Assert.Equal("timed_out", (string?)body!["status"]);
    }

    [Theory]
    [InlineData("""{"type":"firmware_info_error","error":"Failed to execute command"}""", "get_firmware_info", "{\"type\":\"get_firmware_info\"}", "failed")]
    [InlineData("""{"type":"firmware_upgrade_response","status":"success","message":"Firmware upgrade initiated successfully"}""", "firmware_upgrade", "{\"type\":\"firmware_upgrade\",\"url\":\"http://fw.example.com/x.bin\",\"force\":true}", "succeeded")]
    [InlineData("""{"type":"firmware_upgrade_error","error":"Failed to execute sysupgrade command"}""", "firmware_upgrade", "{\"type\":\"firmware_upgrade\",\"url\":\"http://fw.example.com/x.bin\"}", "failed")]
    [InlineData("""{"type":"get_sys_info_response","data":{"sys_uptime":10}}""", "get_sys_info", "{\"type\":\"get_sys_info\"}", "succeeded")]
    [InlineData("""{"type":"request_error","error":"Unknown request type"}""", "get_wifi_info", "{\"type\":\"get_wifi_info\"}", "failed")]
    public async Task Answers_complete_their_commands(string answerTemplate, string type, string body, string expected)
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (frame, post) = await PostAndReceive(router, body);
        Assert.Equal(type, (string?)frame["type"]);
        var answer = JsonNode.Parse(answerTemplate)!.AsObject();
        answer["req_id"] = frame["req_id"]!.DeepClone(); // request_error can only be matched by req_id
        await router.Send(answer.ToJsonString());
        var (status, result, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal(expected, (string?)result!["status"]);
    }

    [Fact]
    public async Task Firmware_upgrade_force_defaults_to_false_on_the_wire()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (frame, _) = await PostAndReceive(router, """{"type":"firmware_upgrade","url":"http://fw.example.com/x.bin"}""", "");
        Assert.False((bool)frame["force"]!);
    }

    [Fact]
    public async Task Auth_is_delivered_and_the_client_appears_then_kickoff_removes_it()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (frame, post) = await PostAndReceive(router,
            """{"type":"auth","token":"tok","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","client_name":"phone","gw_id":"gw-1"}""");
        Assert.False((bool?)frame["once_auth"] ?? false);
        var (status, body, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal("delivered", (string?)body!["status"]);
        var device = await _node.GetJson($"/api/v1/devices/{router.DeviceId}");
        var client = device["clients"]!.AsArray().Single()!;
        Assert.Equal("aa:bb:cc:dd:ee:ff", (string?)client["client_mac"]);
        Assert.Equal("phone", (string?)client["client_name"]);
        Assert.Null(client["expires_at"]);

        var (kick, kickPost) = await PostAndReceive(router,
            """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""");
        await router.Send($$"""{"type":"kickoff_response","req_id":"{{kick["req_id"]}}","status":"success","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","message":"Client kicked off successfully"}""");
        Assert.Equal("succeeded", (string?)(await kickPost).Body!["status"]);
        device = await _node.GetJson($"/api/v1/devices/{router.DeviceId}");
        Assert.Empty(device["clients"]!.AsArray());
    }

    [Fact]
    public async Task Once_auth_sets_the_gateway_desired_auth_mode_to_zero_in_heartbeat_replies()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (_, post) = await PostAndReceive(router,
            """{"type":"auth","token":"tok","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1","once_auth":true}""");
        Assert.Equal("delivered", (string?)(await post).Body!["status"]);
        var reply = await router.HeartbeatAndReply();
        Assert.Equal(0, (int)reply["gateway"]![0]!["auth_mode"]!);
        var device = await _node.GetJson($"/api/v1/devices/{router.DeviceId}");
        Assert.Equal(0, (int)device["gateways"]![0]!["desired_auth_mode"]!);
        Assert.Equal(1, (int)device["gateways"]![0]!["auth_mode"]!);
    }

    [Fact]
    public async Task Tmp_pass_defaults_to_300_seconds_and_a_short_pass_expires()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (frame, post) = await PostAndReceive(router, """{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:01"}""");
        Assert.Equal(300, (int)frame["timeout"]!);
        Assert.Equal("delivered", (string?)(await post).Body!["status"]);

        var (_, shortPost) = await PostAndReceive(router, """{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:02","timeout":1}""");
        await shortPost;
        var device = await _node.GetJson($"/api/v1/devices/{router.DeviceId}");
        Assert.Equal(2, device["clients"]!.AsArray().Count);
        Assert.All(device["clients"]!.AsArray(), c => Assert.NotNull(c!["expires_at"]));
        await Eventually.True(async () =>
            (await _node.GetJson($"/api/v1/devices/{router.DeviceId}"))["clients"]!.AsArray()
                .Select(c => (string?)c!["client_mac"]).SequenceEqual(["aa:bb:cc:dd:ee:01"]), "short pass expired");
    }

    [Fact]
    public async Task Unanswered_command_times_out_and_a_late_answer_is_dropped()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (frame, post) = await PostAndReceive(router, """{"type":"get_firmware_info"}""", "?wait=10&timeout=1");
        var (status, body, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal("timed_out", (string?)body!["status"]);
        await router.Send($$$"""{"type":"firmware_info_response","req_id":"{{{frame["req_id"]}}}","data":{"DISTRIB_RELEASE":"late"}}""");
        // The next one of the same kind is sent and answered normally: the late answer did not take its place.
        var (frame2, post2) = await PostAndReceive(router, """{"type":"get_firmware_info"}""");
        await router.Send($$$"""{"type":"firmware_info_response","req_id":"{{{frame2["req_id"]}}}","data":{"DISTRIB_RELEASE":"now"}}""");
        Assert.Equal("succeeded", (string?)(await post2).Body!["status"]);
        var after = await _node.GetJson($"/api/v1/devices/{router.DeviceId}/commands/{frame["req_id"]}");
        Assert.Equal("timed_out", (string?)after["status"]);
        Assert.Equal("now", (string?)(await _node.GetJson($"/api/v1/devices/{router.DeviceId}"))["firmware"]!["DISTRIB_RELEASE"]);
    }

    [Fact]
    public async Task One_request_of_a_kind_in_flight_the_next_waits_its_turn()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var first = await _node.Post($"/api/v1/devices/{router.DeviceId}/commands", """{"type":"get_firmware_info"}""");
        var second = await _node.Post($"/api/v1/devices/{router.DeviceId}/commands", """{"type":"get_firmware_info"}""");
        var f1 = await router.ReceiveType("get_firmware_info");
        Assert.Equal((string?)first.Body!["command_id"], (string?)f1["req_id"]);
        var queued = await _node.GetJson($"/api/v1/devices/{router.DeviceId}/commands/{second.Body!["command_id"]}");
        Assert.Equal("queued", (string?)queued["status"]);
        await router.Send("""{"type":"firmware_info_response","data":{"DISTRIB_RELEASE":"1"}}""");
        var f2 = await router.ReceiveType("get_firmware_info");
        Assert.Equal((string?)second.Body!["command_id"], (string?)f2["req_id"]);
    }

    [Fact]
    public async Task Commands_for_an_offline_device_wait_and_are_delivered_on_reconnect()
    {
        var id = Id();
        await (await PretendRouter.ConnectAsync(_node.WebSocketUri(), id)).DisposeAsync();
        await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{id}"))["online"] == false, "offline");
        var (status, body, _) = await _node.Post($"/api/v1/devices/{id}/commands", """{"type":"get_firmware_info"}""");
        Assert.Equal(202, status);
        Assert.Equal("queued", (string?)body!["status"]);
        await using var again = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        var frame = await again.ReceiveType("get_firmware_info");
        Assert.Equal((string?)body["command_id"], (string?)frame["req_id"]);
    }

    [Fact]
    public async Task Queued_command_expires_after_its_ttl()
    {
        var id = Id();
        await (await PretendRouter.ConnectAsync(_node.WebSocketUri(), id)).DisposeAsync();
        await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{id}"))["online"] == false, "offline");
        var (_, body, _) = await _node.Post($"/api/v1/devices/{id}/commands?ttl=1&wait=10", """{"type":"get_firmware_info"}""");
        Assert.Equal("expired", (string?)body!["status"]);
    }

    [Fact]
    public async Task Cancel_a_queued_command_then_cancelling_again_conflicts()
    {
        var id = Id();
        await (await PretendRouter.ConnectAsync(_node.WebSocketUri(), id)).DisposeAsync();
        await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{id}"))["online"] == false, "offline");
        var (_, body, _) = await _node.Post($"/api/v1/devices/{id}/commands", """{"type":"reboot_device"}""");
        var path = $"/api/v1/devices/{id}/commands/{body!["command_id"]}";
        var cancel = await _node.Send(HttpMethod.Delete, path);
        Assert.Equal(200, cancel.Status);
        Assert.Equal("cancelled", (string?)cancel.Body!["status"]);
        var again = await _node.Send(HttpMethod.Delete, path);
        Assert.Equal(409, again.Status);
        Assert.Equal("application/problem+json", again.ContentType);
        Assert.Contains("cancelled", (string?)again.Body!["detail"]);
        var list = await _node.GetJson($"/api/v1/devices/{id}/commands");
        Assert.Equal((string?)body["command_id"], (string?)list["items"]![0]!["command_id"]);
        Assert.Equal(404, (await _node.Send(HttpMethod.Get, $"/api/v1/devices/{id}/commands/nope")).Status);
    }

    [Fact]
    public async Task Reboot_is_delivered_and_a_later_reboot_error_fails_it()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var (_, post) = await PostAndReceive(router, """{"type":"reboot_device"}""");
        var (_, body, _) = await post;
        Assert.Equal("delivered", (string?)body!["status"]);
        await router.Send("""{"type":"reboot_device_error","error":"reboot failed"}""");
        await Eventually.True(async () =>
            (string?)(await _node.GetJson($"/api/v1/devices/{router.DeviceId}/commands/{body["command_id"]}"))["status"] == "failed",
            "reboot failed");
    }

    [Fact]
    public async Task Operator_auth_mode_reaches_the_device_and_every_heartbeat_reply()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        var put = await _node.Send(HttpMethod.Put, $"/api/v1/devices/{router.DeviceId}/gateways/gw-1/auth-mode", """{"auth_mode":2}""");
        Assert.Equal(200, put.Status);
        Assert.Equal(2, (int)put.Body!["desired_auth_mode"]!);
        var pushed = await router.ReceiveType("heartbeat");
        Assert.Equal(2, (int)pushed["gateway"]![0]!["auth_mode"]!);
        Assert.Equal(2, (int)(await router.HeartbeatAndReply())["gateway"]![0]!["auth_mode"]!);
        Assert.Equal(2, (int)(await router.HeartbeatAndReply())["gateway"]![0]!["auth_mode"]!);
    }
}
