using System.Text.Json;
using Fleet.Protocol;
using Xunit;

namespace Fleet.Simulator.Tests;

/// <summary>
/// The real reader on a socket, against a server that frames carelessly on purpose (RawWebSocketServer: each
/// write is one TCP write, so frames written together reach the router's reader together). Each test says
/// what the firmware loses; the router records it; a test that expects no loss ends with AssertClean.
/// </summary>
public sealed class RealReaderSocketTests
{
    private static readonly ReconnectDelays Quick = ReconnectDelays.All(TimeSpan.FromMilliseconds(100));

    private static string Request(FirmwareEra era, string name, int reqId, string fields = "") =>
        $"{{\"{(era == FirmwareEra.V9 ? "op" : "type")}\":\"{name}\",\"req_id\":{reqId}{fields}}}";

    /// <summary>A kickoff of a client the router does not have: every era answers it (seed/2025 kickoff_error, 9 kickoff_response 2000).</summary>
    private static string Kickoff(FirmwareEra era, int reqId) =>
        Request(era, "kickoff", reqId, ""","client_ip":"10.0.0.5","client_mac":"aa:bb:cc:dd:ee:ff","device_id":"r1","gw_id":"gw-1" """.TrimEnd());

    private static string KickoffAnswer(FirmwareEra era) => era == FirmwareEra.V9 ? "kickoff_response" : "kickoff_error";

    private static FirmwareEra Era(string name) => RouterDialects.Parse(name)!.Value;

    private static async Task<(RawWebSocketServer Server, RealReaderRouter Router, RawServerConnection Connection)> Start(string era, int workMs = 0)
    {
        var server = new RawWebSocketServer();
        var router = new RealReaderRouter(server.Url, "r1", Era(era)) { Delays = Quick, WorkMs = workMs, ExpectLoss = true }.Start();
        var connection = await server.AcceptAsync();
        await connection.ExpectTextAsync("connect");
        return (server, router, connection);
    }

    [Fact]
    public async Task The_router_sends_the_firmware_s_upgrade_request_and_masks_every_frame()
    {
        var (server, router, connection) = await Start("9");
        await using var _ = server;
        await using var __ = router;
        var lines = connection.RequestHead.Split("\r\n");
        Assert.Equal(["GET /ws/wifidogx HTTP/1.1", $"Host: 127.0.0.1:{server.Url.Port}", "User-Agent: apfree-wifidog", "Upgrade: websocket",
            "Connection: upgrade"], lines[..5]);
        Assert.StartsWith("Sec-WebSocket-Key: ", lines[5], StringComparison.Ordinal);
        Assert.Equal("Sec-WebSocket-Version: 13", lines[6]);
        Assert.True(await router.HeartbeatNowAsync());
        var heartbeat = await connection.ExpectTextAsync("heartbeat");
        Assert.Matches("^[0-9a-f]{16}$", heartbeat.GetProperty("req_id").GetString());
        Assert.Equal(0, connection.UnmaskedFrames);
        router.AssertClean();
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("2025")]
    [InlineData("9")]
    public async Task Of_two_frames_written_back_to_back_the_second_is_lost(string name)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name);
        await using var _ = server;
        await using var __ = router;

        await connection.WriteAsync(RawWebSocketServer.Text(Kickoff(era, 1)), RawWebSocketServer.Text(Request(era, "get_firmware_info", 2)));
        await connection.ExpectTextAsync(KickoffAnswer(era));
        await router.WaitForAsync(r => r.Losses.Count == 1, "the second frame recorded as lost");
        var loss = Assert.Single(router.Losses);
        Assert.Equal((RouterLossKind.LostFrame, LossKind.BehindFirstFrame, "get_firmware_info", "2"),
            (loss.Kind, loss.Frame!.Kind, loss.Frame.Name, loss.Frame.ReqId));
        // Paced, the same request is answered: the first never was.
        await connection.SendTextAsync(Request(era, "get_firmware_info", 3));
        await connection.ExpectTextAsync("firmware_info_response");
        Assert.Equal(["kickoff", "get_firmware_info"], router.Requests.Select(r => r.Name));
        Assert.Equal([1, 3], router.Answers.Select(a => int.Parse(a.ReqId!.Value.Value, System.Globalization.CultureInfo.InvariantCulture)));
        var failure = Assert.Throws<Xunit.Sdk.XunitException>(router.AssertNoLoss);
        Assert.Contains("get_firmware_info", failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("seed", false)]
    [InlineData("2025", true)]
    [InlineData("9", true)]
    public async Task A_ping_followed_at_once_by_a_request_swallows_the_request(string name, bool pongs)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name);
        await using var _ = server;
        await using var __ = router;

        await connection.WriteAsync(RawWebSocketServer.Ping("are-you-there"), RawWebSocketServer.Text(Kickoff(era, 1)));
        await router.WaitForAsync(r => r.Losses.Count == 2, "the ping and the lost request recorded");
        Assert.Equal([RouterLossKind.LostFrame, RouterLossKind.Ping], router.Losses.Select(l => l.Kind).Order());
        Assert.Equal("kickoff", router.Losses.Single(l => l.Kind == RouterLossKind.LostFrame).Frame!.Name);
        if (pongs) Assert.Equal("are-you-there", (await connection.ExpectFrameAsync(RawFrame.Pong)).PayloadText);
        // The router is alive: a paced request is answered (and by then a seed router would have ponged, if it did).
        await connection.SendTextAsync(Request(era, "get_firmware_info", 2));
        await connection.ExpectTextAsync("firmware_info_response");
        Assert.Equal(pongs ? 1 : 0, connection.Received.Count(f => f.Opcode == RawFrame.Pong));
        Assert.DoesNotContain(router.Answers, a => a.RequestName == "kickoff");
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("2025")]
    [InlineData("9")]
    public async Task A_frame_of_1100_bytes_wedges_the_router_which_keeps_heartbeating_until_the_server_drops_it(string name)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name);
        await using var _ = server;
        await using var __ = router;

        await connection.SendTextAsync(Request(era, "sync_trusted_domain", 1, ",\"domains\":[\"" + new string('d', 1060) + ".example\"]"));
        await router.WaitForAsync(r => r.Losses.Any(l => l.Kind == RouterLossKind.Wedged), "the router wedged");
        Assert.True(router.Wedged);
        Assert.Contains(router.Losses, l => l.Frame is { Kind: LossKind.Overflow, Name: "sync_trusted_domain" });

        // Deaf, but its heartbeats still go out; a proper request now is lost too.
        await connection.SendTextAsync(Kickoff(era, 2));
        Assert.True(await router.HeartbeatNowAsync());
        await connection.ExpectTextAsync("heartbeat");
        await router.WaitForAsync(r => r.Losses.Any(l => l.Frame is { Kind: LossKind.WhileWedged, Name: "kickoff" }), "the request lost to the deaf reader");
        Assert.Empty(router.Answers);

        // Only closing TCP helps: the router comes back (5 s after EOF on the router; 100 ms here) and reads again.
        connection.Drop();
        var again = await server.AcceptAsync();
        await again.ExpectTextAsync("connect");
        await again.SendTextAsync(Kickoff(era, 3));
        await again.ExpectTextAsync(KickoffAnswer(era));
        Assert.False(router.Wedged);
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("2025")]
    [InlineData("9")]
    public async Task A_frame_split_over_two_reads_is_lost_and_its_rest_is_misread(string name)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name);
        await using var _ = server;
        await using var __ = router;

        // Padding of 'a' where the frame is cut: the rest starts "aa", which the firmware reads as a text
        // frame (0x61: opcode 1) of 97 bytes (0x61) — garbage JSON.
        var frame = RawWebSocketServer.Text(Request(era, "get_firmware_info", 1, ",\"pad\":\"" + new string('a', 150) + "\""));
        await connection.WriteAsync(frame[..60]);
        await router.WaitForAsync(r => r.Losses.Any(l => l.Frame?.Kind == LossKind.Incomplete), "the first half dropped as incomplete");
        Assert.Equal(("get_firmware_info", "1"), (router.Losses[0].Frame!.Name, router.Losses[0].Frame!.ReqId));
        await connection.WriteAsync(frame[60..]);
        await router.WaitForAsync(r => r.Losses.Any(l => l.Kind == RouterLossKind.Misread), "the rest misread as a frame");
        await router.WaitForAsync(r => r.Refused.Count == 1, "the garbage refused");
        if (era == FirmwareEra.V9)
        {
            var complaint = await connection.ExpectTextAsync("generic_response");
            Assert.Equal(FirmwareAnswers.InvalidJsonRequest, complaint.GetProperty("data").GetProperty("message").GetString());
        }
        else Assert.Null(router.Refused[0].AnswerJson); // seed and 2025 drop bad JSON silently

        await connection.SendTextAsync(Request(era, "get_firmware_info", 2));
        var answer = await connection.ExpectTextAsync("firmware_info_response");
        Assert.DoesNotContain(router.Answers, a => a.ReqId?.Value == "1");
        Assert.Single(router.Answers);
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("2025")]
    [InlineData("9")]
    public async Task A_properly_paced_sequence_loses_nothing(string name)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name);
        await using var _ = server;
        await using var __ = router;
        router.ExpectLoss = false;

        string[] requests =
        [
            Request(era, "auth", 1, ""","token":"t","client_ip":"10.0.0.5","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1","once_auth":false"""),
            Request(era, "kickoff", 2, ""","client_ip":"10.0.0.5","client_mac":"aa:bb:cc:dd:ee:ff","device_id":"r1","gw_id":"gw-1" """.TrimEnd()),
            Request(era, "tmp_pass", 3, ""","client_mac":"aa:bb:cc:dd:ee:01","timeout":60"""),
            Request(era, "get_firmware_info", 4),
            Request(era, "firmware_upgrade", 5, ""","url":"http://fw.example/x.bin" """.TrimEnd()),
        ];
        for (var i = 0; i < requests.Length; i++)
        {
            await connection.SendTextAsync(requests[i]);
            // One frame in flight: the next goes once the router has read this one (answered or not).
            await router.WaitForAsync(r => r.FramesHandled >= i + 1 && r.Requests.Count == i + 1, $"request {i + 1} read");
        }
        await router.WaitForAsync(r => r.Answers.Count == (era == FirmwareEra.V9 ? 5 : 3), "every answer sent");
        Assert.Equal(["auth", "kickoff", "tmp_pass", "get_firmware_info", "firmware_upgrade"], router.Requests.Select(r => r.Name));
        Assert.Equal(["aa:bb:cc:dd:ee:01"], router.Clients.Keys);
        router.AssertClean();
    }

    [Fact]
    public async Task A_frame_sent_with_the_101_is_lost_and_the_router_still_reports_connect()
    {
        await using var server = new RawWebSocketServer();
        await using var router = new RealReaderRouter(server.Url, "r1", FirmwareEra.V2025) { Delays = Quick, ExpectLoss = true }.Start();
        var connection = await server.AcceptAsync(trailing: RawWebSocketServer.Text("""{"type":"get_firmware_info","req_id":1}"""));
        await connection.ExpectTextAsync("connect");
        await router.WaitForAsync(r => r.Losses.Count == 1, "the early frame recorded");
        Assert.Equal((LossKind.WithUpgradeReply, "get_firmware_info"), (router.Losses[0].Frame!.Kind, router.Losses[0].Frame!.Name));
    }

    [Theory]
    [InlineData("seed", false)]
    [InlineData("2025", false)]
    [InlineData("9", true)]
    public async Task A_wrong_101_makes_a_9_router_retry_while_older_ones_hang_until_tcp_closes(string name, bool retries)
    {
        await using var server = new RawWebSocketServer();
        await using var router = new RealReaderRouter(server.Url, "r1", Era(name)) { Delays = Quick, ExpectLoss = true }.Start();
        var first = await server.AcceptAsync(reply: (_, _) => "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: wrong\r\n\r\n"u8.ToArray());
        await router.WaitForAsync(r => r.Losses.Any(l => l.Kind == RouterLossKind.BadUpgrade), "the reply refused");
        if (!retries)
        {
            // Seed and 2025 leave the connection open and idle; only a close of TCP starts a new one.
            await router.WaitForAsync(r => !r.Connected && r.Events.Any(e => e.Contains("invalid upgrade", StringComparison.Ordinal)), "hanging");
            first.Drop();
        }
        var second = await server.AcceptAsync();
        await second.ExpectTextAsync("connect");
        await router.WaitConnectedAsync();
        Assert.Equal(1, router.Connections);
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("2025")]
    [InlineData("9")]
    public async Task A_close_frame_is_ignored_by_seed_ends_2025_for_good_and_makes_9_reconnect(string name)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name);
        await using var _ = server;
        await using var __ = router;

        await connection.WriteAsync(RawWebSocketServer.Close());
        await router.WaitForAsync(r => r.Losses.Any(l => l.Kind == RouterLossKind.CloseFrame), "the close frame recorded");
        switch (era)
        {
            case FirmwareEra.Seed:
                await connection.SendTextAsync(Kickoff(era, 1)); // same TCP connection, still read
                await connection.ExpectTextAsync("kickoff_error");
                break;
            case FirmwareEra.V2025:
                await router.WaitForAsync(r => r.OfflineForGood, "offline for good");
                Assert.False(router.Connected);
                break;
            default:
                var again = await server.AcceptAsync();
                await again.ExpectTextAsync("connect");
                await router.WaitConnectedAsync(connections: 2);
                break;
        }
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("9")]
    public async Task A_busy_router_reads_frames_that_piled_up_meanwhile_together(string name)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name, workMs: 1000);
        await using var _ = server;
        await using var __ = router;

        await connection.SendTextAsync(Kickoff(era, 1));
        await connection.ExpectTextAsync(KickoffAnswer(era));
        // The router is busy for a second after that frame: two frames sent apart now are read together.
        await connection.SendTextAsync(Request(era, "get_firmware_info", 2));
        await connection.SendTextAsync(Kickoff(era, 3));
        await connection.ExpectTextAsync("firmware_info_response");
        await router.WaitForAsync(r => r.Losses.Count == 1, "the frame behind recorded as lost");
        Assert.Equal(("kickoff", "3"), (router.Losses[0].Frame!.Name, router.Losses[0].Frame!.ReqId));
    }

    [Theory]
    [InlineData("seed", false)]
    [InlineData("9", true)]
    public async Task An_unknown_opcode_gets_a_close_1003_from_2025_and_9_and_nothing_from_seed(string name, bool closes)
    {
        var era = Era(name);
        var (server, router, connection) = await Start(name);
        await using var _ = server;
        await using var __ = router;

        await connection.WriteAsync(RawWebSocketServer.Frame(0x3, [1, 2, 3]));
        await router.WaitForAsync(r => r.Losses.Any(l => l.Kind == RouterLossKind.OtherFrame), "the frame recorded");
        await connection.SendTextAsync(Kickoff(era, 1));
        await connection.ExpectTextAsync(KickoffAnswer(era));
        var closeFrames = connection.Received.Where(f => f.Opcode == RawFrame.Close).ToList();
        Assert.Equal(closes ? 1 : 0, closeFrames.Count);
        if (closes) Assert.Equal(new byte[] { 0x03, 0xEB }, closeFrames[0].Payload); // 1003
    }

    [Fact]
    public async Task The_simulator_summary_counts_lost_frames_wedges_and_pings()
    {
        await using var server = new RawWebSocketServer();
        using var runner = new SimulatorRunner(new SimulatorOptions
        {
            Url = server.Url, Devices = 1, Firmware = FirmwareChoice.V9, HeartbeatSeconds = 30, Ramp = 1000, StatsSeconds = 0, Reconnect = false,
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);
        var connection = await server.AcceptAsync();
        await connection.ExpectTextAsync("connect");

        await connection.WriteAsync(RawWebSocketServer.Text(Kickoff(FirmwareEra.V9, 1)), RawWebSocketServer.Text(Kickoff(FirmwareEra.V9, 2)));
        await connection.ExpectTextAsync("kickoff_response");
        await Eventually.True(() => runner.Stats.LostFrames == 1, "one frame counted as lost");
        await connection.WriteAsync(RawWebSocketServer.Ping());
        await connection.ExpectFrameAsync(RawFrame.Pong);
        await connection.SendTextAsync(Request(FirmwareEra.V9, "sync_trusted_mac", 3, ",\"macs\":[\"" + new string('m', 1100) + "\"]"));
        await Eventually.True(() => runner.Stats.Wedged == 1, "one connection counted as wedged");

        Assert.Contains("lost=2 wedged=1 pings=1 closes=0", runner.Stats.Line(0), StringComparison.Ordinal);
        var summary = runner.Stats.Summary().ToList();
        Assert.Contains(summary, l => l.StartsWith("  firmware 9   : devices=1", StringComparison.Ordinal) && l.Contains("lost=2 wedged=1", StringComparison.Ordinal));
        Assert.Contains(summary, l => l.StartsWith("  LOSS: 2 frame(s) lost", StringComparison.Ordinal));
        using var json = JsonDocument.Parse(runner.Stats.ToJson(0, 0));
        Assert.Equal(2, json.RootElement.GetProperty("lost_frames").GetInt32());
        Assert.Equal(1, json.RootElement.GetProperty("wedged").GetInt32());
        var nine = json.RootElement.GetProperty("by_firmware").GetProperty("9");
        Assert.Equal((2, 1, 1, 1, 1), (nine.GetProperty("lost_frames").GetInt32(), nine.GetProperty("wedged").GetInt32(), nine.GetProperty("pings_received").GetInt32(),
            nine.GetProperty("pongs_sent").GetInt32(), nine.GetProperty("commands_answered").GetInt32()));
        Assert.Contains(runner.Stats.Errors.Keys, k => k.StartsWith("lost frame (9): BehindFirstFrame", StringComparison.Ordinal));

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
    }
}
