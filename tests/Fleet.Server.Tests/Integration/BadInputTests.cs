using System.Net.WebSockets;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>Bad input on both edges gets a specific answer (problem+json or a counted refusal) and loses nothing.</summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private Node _node = null!;
    private PretendRouter _router = null!;

    public async ValueTask InitializeAsync()
    {
        _node = await Node.StartAsync();
        _router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), "bad-input-router");
    }

    public async ValueTask DisposeAsync()
    {
        await _router.DisposeAsync();
        await _node.DisposeAsync();
    }

    [Theory]
    [InlineData("""{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"zz","gw_id":"gw-1"}""", "client_mac 'zz' is not a MAC address")]
    [InlineData("""{"type":"kickoff","client_ip":"999.1.1.1","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""", "client_ip '999.1.1.1'")]
    [InlineData("""{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-9"}""", "gw_id 'gw-9' is not a gateway of this device")]
    [InlineData("""{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff"}""", "gw_id is required for kickoff")]
    [InlineData("""{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1","device_id":"other"}""", "differs from the path")]
    [InlineData("""{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:ff","timeout":0}""", "timeout must be a positive integer")]
    [InlineData("""{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:ff","timeout":"soon"}""", "timeout has the wrong type")]
    [InlineData("""{"type":"auth","token":"t","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1","once_auth":"yes"}""", "once_auth has the wrong type")]
    [InlineData("""{"type":"firmware_upgrade","url":"http://x/a.bin; reboot"}""", "url 'http://x/a.bin; reboot' is not an absolute http(s) URL")]
    [InlineData("""{"type":"firmware_upgrade","url":"ftp://x/a.bin"}""", "is not an absolute http(s) URL")]
    [InlineData("""{"type":"firmware_upgrade"}""", "url is required for firmware_upgrade")]
    [InlineData("""{"type":"make_coffee"}""", "type 'make_coffee' is not a command type")]
    [InlineData("""{"client_mac":"aa:bb:cc:dd:ee:ff"}""", "type is required")]
    [InlineData("""[1,2]""", "the body must be a JSON object")]
    [InlineData("""{"type":""", "the body is not valid JSON")]
    [InlineData("", "the body is empty")]
    public async Task Invalid_command_is_a_400_problem_naming_the_field(string body, string detail)
    {
        var (status, problem, contentType) = await _node.Post($"/api/v1/devices/{_router.DeviceId}/commands", body);
        Assert.Equal(400, status);
        Assert.Equal("application/problem+json", contentType);
        Assert.Contains(detail, (string?)problem!["detail"]);
        var list = await _node.GetJson($"/api/v1/devices/{_router.DeviceId}/commands");
        Assert.Empty(list["items"]!.AsArray()); // nothing half-written
    }

    [Theory]
    [InlineData("?wait=abc", "wait 'abc'")]
    [InlineData("?wait=100000", "wait '100000'")]
    [InlineData("?ttl=0", "ttl '0'")]
    [InlineData("?timeout=-5", "timeout '-5'")]
    public async Task Bad_query_values_are_a_400(string query, string detail)
    {
        var (status, problem, _) = await _node.Post($"/api/v1/devices/{_router.DeviceId}/commands{query}", """{"type":"get_firmware_info"}""");
        Assert.Equal(400, status);
        Assert.Contains(detail, (string?)problem!["detail"]);
    }

    [Theory]
    [InlineData("""{"type":"get_firmware_info"}""")]
    [InlineData("""{"type":"kickoff","client_mac":"zz"}""")]
    [InlineData("not json")]
    public async Task Unknown_device_is_404_before_anything_else(string body)
    {
        var (status, problem, contentType) = await _node.Post("/api/v1/devices/never-seen/commands", body);
        Assert.Equal(404, status);
        Assert.Equal("application/problem+json", contentType);
        Assert.Contains("never-seen", (string?)problem!["detail"]);
        Assert.Equal(404, (await _node.Send(HttpMethod.Get, "/api/v1/devices/never-seen")).Status);
        Assert.Equal(404, (await _node.Send(HttpMethod.Get, "/api/v1/devices/bad%20id")).Status);
    }

    [Theory]
    [InlineData("gw-1", """{"auth_mode":"one"}""", 400, "auth_mode must be an integer")]
    [InlineData("gw-1", """{"auth_mode":1.5}""", 400, "auth_mode must be an integer")]
    [InlineData("gw-1", """{}""", 400, "auth_mode must be an integer")]
    [InlineData("gw-9", """{"auth_mode":0}""", 404, "gw-9")]
    public async Task Bad_auth_mode_requests(string gw, string body, int expected, string detail)
    {
        var r = await _node.Send(HttpMethod.Put, $"/api/v1/devices/{_router.DeviceId}/gateways/{gw}/auth-mode", body);
        Assert.Equal(expected, r.Status);
        Assert.Contains(detail, (string?)r.Body!["detail"]);
    }

    [Theory]
    [InlineData("?limit=0")]
    [InlineData("?limit=1001")]
    [InlineData("?online=maybe")]
    [InlineData("?cursor=%%%")]
    public async Task Bad_directory_queries_are_a_400(string query) =>
        Assert.Equal(400, (await _node.Send(HttpMethod.Get, "/api/v1/devices" + query)).Status);

    public static TheoryData<string, string> BadFrames() => new()
    {
        { "garbage", "not_json" },
        { "[1,2,3]", "not_object" },
        { """{"device_id":"x"}""", "missing_type" },
        { """{"type":"make_coffee"}""", "unknown_type" },
        { """{"type":"heartbeat"}""", "missing_field" },
        { """{"type":"heartbeat","device_id":"bad-input-router","gateway":"nope"}""", "wrong_kind" },
        { """{"type":"heartbeat","device_id":"someone-else","gateway":[]}""", "device_id_mismatch" },
        { """{"type":"connect","device_id":"someone-else","gateway":[]}""", "device_id_mismatch" },
        { """{"type":"connect","device_id":"bad id; rm","gateway":[]}""", "invalid_device_id" },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task Bad_frames_are_refused_counted_and_the_connection_stays_up(string frame, string reason)
    {
        var before = await _node.Refused(reason);
        await _router.Send(frame);
        await Eventually.True(async () => await _node.Refused(reason) == before + 1, $"{reason} counted");
        var reply = await _router.HeartbeatAndReply();
        Assert.Equal("gw-1", (string?)reply["gateway"]![0]!["gw_id"]);
        Assert.Equal(404, (await _node.Send(HttpMethod.Get, "/api/v1/devices/someone-else")).Status); // never forwarded
    }

    [Fact]
    public async Task Binary_and_oversized_frames_are_refused_and_the_connection_stays_up()
    {
        var binary = await _node.Refused("binary");
        var large = await _node.Refused("too_large");
        await _router.SendBinary([1, 2, 3]);
        await _router.Send("{\"type\":\"heartbeat\",\"pad\":\"" + new string('x', 70_000) + "\"}");
        await Eventually.True(async () => await _node.Refused("binary") == binary + 1 && await _node.Refused("too_large") == large + 1, "counted");
        await _router.HeartbeatAndReply();
    }

    [Fact]
    public async Task Frames_before_connect_are_refused_and_not_forwarded()
    {
        var before = await _node.Refused("before_connect");
        await using var r = await PretendRouter.ConnectAsync(_node.WebSocketUri(), "not-yet", sendConnect: false);
        await r.Send(r.HeartbeatJson());
        await r.Send("""{"type":"kickoff_response","status":"success"}""");
        await Eventually.True(async () => await _node.Refused("before_connect") == before + 2, "refused");
        Assert.Equal(404, (await _node.Send(HttpMethod.Get, "/api/v1/devices/not-yet")).Status);
        await r.Send(PretendRouter.ConnectJson("not-yet"));
        Assert.Equal("heartbeat", (string?)(await r.Receive())["type"]);
    }

    [Fact]
    public async Task Newer_connection_replaces_the_older_which_is_dropped_without_a_close_frame()
    {
        await using var first = await PretendRouter.ConnectAsync(_node.WebSocketUri(), "twice");
        await using var second = await PretendRouter.ConnectAsync(_node.WebSocketUri(), "twice");
        // No close frame: firmware of 2025-07 to 2026-03 never reconnects after one. The TCP connection just ends.
        var dropped = await Assert.ThrowsAsync<System.Net.WebSockets.WebSocketException>(() => first.Receive());
        Assert.Equal(System.Net.WebSockets.WebSocketError.ConnectionClosedPrematurely, dropped.WebSocketErrorCode);
        await second.HeartbeatAndReply();
        var (_, body, _) = await _node.Post("/api/v1/devices/twice/commands", """{"type":"get_firmware_info"}""");
        Assert.Equal((string?)body!["command_id"], (string?)(await second.ReceiveType("get_firmware_info"))["req_id"]);
    }

    [Fact]
    public async Task The_real_clients_exact_handshake_is_accepted()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var raw = await RawWebSocket.ConnectAsync(_node.BaseAddress.Host, _node.BaseAddress.Port, "/ws/wifidogx", ct);
        Assert.StartsWith("HTTP/1.1 101", raw.ResponseHead);
        Assert.True(raw.ResponseHead.Contains($"Sec-WebSocket-Accept: {raw.ExpectedAccept}", StringComparison.OrdinalIgnoreCase), raw.ResponseHead);

        // Then the rest of the protocol over the same socket, masked as a client must.
        await raw.SendTextAsync(PretendRouter.ConnectJson("raw-client"), ct);
        using var within = CancellationTokenSource.CreateLinkedTokenSource(ct);
        within.CancelAfter(TimeSpan.FromSeconds(10));
        var frame = await raw.ReadFrameAsync(within.Token);
        Assert.Equal(RawFrame.Text, frame.Opcode);
        Assert.True(frame.Fin);
        Assert.Contains("\"type\":\"heartbeat\"", frame.PayloadText);
    }

    [Fact]
    public async Task Plain_get_on_the_socket_path_is_a_400_problem()
    {
        var r = await _node.Send(HttpMethod.Get, "/ws/wifidogx");
        Assert.Equal(400, r.Status);
        Assert.Equal("application/problem+json", r.ContentType);
    }
}

public sealed class ConnectionCapTests
{
    [Fact]
    public async Task Past_the_cap_upgrades_get_503_and_connected_devices_are_untouched()
    {
        await using var node = await Node.StartAsync(null, "--Fleet:WebSocket:MaxConnections", "2");
        await using var a = await PretendRouter.ConnectAsync(node.WebSocketUri(), "cap-a");
        await using var b = await PretendRouter.ConnectAsync(node.WebSocketUri(), "cap-b");
        using var c = new ClientWebSocket();
        var ex = await Assert.ThrowsAsync<WebSocketException>(() => c.ConnectAsync(node.WebSocketUri(), TestContext.Current.CancellationToken));
        Assert.Contains("503", ex.Message);
        await a.HeartbeatAndReply();
        await b.HeartbeatAndReply();
        var info = await node.GetJson("/api/v1/node");
        Assert.Equal(2, (int)info["connection_cap"]!);
        Assert.Equal(1, (int)info["connections"]!["rejected_at_cap"]!);
    }
}
