using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Fleet.Protocol;
using Fleet.Simulator;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// What a peer can make the node do at the socket: a socket that never says which device it is gets dropped,
/// frames over the rate are refused undecoded and a sustained flood drops the socket — and routers that behave
/// as the firmware does are never touched, including one answering a queue of commands far faster than the rate.
/// Limits are set low here so that the tests are short; the defaults are in FleetSettings.
/// </summary>
public sealed class SocketLimitsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<long> Figure(Node node, string name) =>
        (long?)(await node.GetJson("/api/v1/node"))["connections"]![name] ?? 0;

    /// <summary>Receives until the socket fails; the node drops it without a close frame (firmware of 2025-07 to 2026-03 never reconnects after one).</summary>
    private static async Task AssertDroppedWithoutCloseFrame(ClientWebSocket socket)
    {
        using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        within.CancelAfter(TimeSpan.FromSeconds(30));
        var buffer = new byte[4096];
        var ex = await Assert.ThrowsAsync<WebSocketException>(async () =>
        {
            while (true)
            {
                var r = await socket.ReceiveAsync(buffer, within.Token);
                Assert.NotEqual(WebSocketMessageType.Close, r.MessageType);
            }
        });
        Assert.Equal(WebSocketError.ConnectionClosedPrematurely, ex.WebSocketErrorCode);
    }

    [Fact]
    public async Task A_socket_without_a_valid_connect_is_dropped_at_the_deadline_and_routers_that_connected_stay()
    {
        await using var node = await Node.StartAsync(null, "--Fleet:WebSocket:ConnectWithinSeconds", "1");
        // Routers connect as the firmware does: connect is their first frame, right after the 101.
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "prompt-seed");
        await using var real9 = new RealReaderRouter(node.WebSocketUri(), "prompt-9", FirmwareEra.V9).Start();
        await real9.WaitConnectedAsync();
        await Eventually.True(async () => (await node.Send(HttpMethod.Get, $"/api/v1/devices/{real9.DeviceId}")).Status == 200, "device known");

        var opened = Stopwatch.StartNew();
        using var silent = new ClientWebSocket();
        await silent.ConnectAsync(node.WebSocketUri(), Ct);
        // A 9.x router with no DeviceID configured: its connect is refused, so it never binds either.
        await using var unconfigured = await PretendRouter.ConnectAsync(node.WebSocketUri(), "UNKNOWN", sendConnect: false);
        await unconfigured.Send("""{"op":"connect","device_id":"UNKNOWN","mode":0,"gateway":[{"gw_id":"gw-1","auth_mode":1}],"req_id":"00000000000000a1"}""");

        await AssertDroppedWithoutCloseFrame(silent);
        Assert.True(opened.Elapsed > TimeSpan.FromMilliseconds(900), $"dropped after {opened.ElapsedMilliseconds} ms, before the 1 s deadline");
        await AssertDroppedWithoutCloseFrame(unconfigured.Socket);
        Assert.Equal(2, await Figure(node, "closed_without_connect"));
        Assert.Equal(1, await node.Refused("unconfigured_device_id"));

        // Both routers opened before the dropped sockets: past their deadline too, and still served on their first socket.
        await router.HeartbeatAndReply();
        Assert.True(await real9.HeartbeatNowAsync());
        var (status, body, _) = await node.Post($"/api/v1/devices/{real9.DeviceId}/commands?wait=20", """{"type":"get_firmware_info"}""");
        Assert.Equal(200, status);
        Assert.Equal("succeeded", (string?)body!["status"]);
        Assert.Equal(1, real9.Connections);
        real9.AssertNoLoss();
    }

    [Fact]
    public async Task Frames_over_the_rate_are_refused_and_counted_and_the_socket_stays_up_for_answers()
    {
        await using var node = await Node.StartAsync(null,
            "--Fleet:WebSocket:MaxFramesPerSecond", "2", "--Fleet:WebSocket:MaxFrameBurst", "5",
            "--Fleet:WebSocket:CloseAfterExcessSeconds", "0");
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "bursty");
        var framesIn = await Figure(node, "frames_in");

        // 40 heartbeats back to back: the bucket (5, less the connect) lets a few through, the rest are refused.
        for (var i = 0; i < 40; i++) await router.Send(router.HeartbeatJson());
        await Eventually.True(async () => await Figure(node, "frames_in") == framesIn + 40, "40 frames read");
        var refused = await node.Refused("rate_limited");
        Assert.InRange(refused, 30, 37);
        Assert.Equal(0, await Figure(node, "closed_for_frame_rate"));

        // The bucket is empty, yet the answer to a request of ours goes through: the request paid for it.
        var (status, body) = await AnswerOneCommand(node, router);
        Assert.Equal(200, status);
        Assert.Equal("succeeded", (string?)body["status"]);
        Assert.Equal(refused, await node.Refused("rate_limited"));
        Assert.True((bool)(await node.GetJson($"/api/v1/devices/{router.DeviceId}"))["online"]!);
    }

    private static async Task<(int Status, JsonNode Body)> AnswerOneCommand(Node node, PretendRouter router)
    {
        var post = node.Post($"/api/v1/devices/{router.DeviceId}/commands?wait=20", """{"type":"get_firmware_info"}""");
        await router.Answer(await router.ReceiveType("get_firmware_info"));
        var (status, body, _) = await post;
        return (status, body!);
    }

    [Fact]
    public async Task A_sustained_flood_drops_the_socket_and_the_device_goes_offline()
    {
        await using var node = await Node.StartAsync(null,
            "--Fleet:WebSocket:MaxFramesPerSecond", "5", "--Fleet:WebSocket:MaxFrameBurst", "5",
            "--Fleet:WebSocket:CloseAfterExcessSeconds", "1");
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "flooder");
        var heartbeat = router.HeartbeatJson();
        var flooding = Stopwatch.StartNew();
        var flood = Task.Run(async () =>
        {
            try
            {
                while (router.Socket.State == WebSocketState.Open && flooding.Elapsed < TimeSpan.FromSeconds(30))
                    await router.Send(heartbeat);
            }
            catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException) { }
        }, Ct);

        // The receive ends when the node drops the TCP connection (a failed send of the flood may abort it first).
        var ended = await Record.ExceptionAsync(async () => { while (true) await router.Receive(TimeSpan.FromSeconds(30)); });
        var droppedAfter = flooding.Elapsed;
        await flood;
        Assert.Equal(1, await Figure(node, "closed_for_frame_rate"));
        Assert.True(droppedAfter >= TimeSpan.FromSeconds(1), $"dropped after {droppedAfter.TotalMilliseconds:0} ms of flooding, before 1 s of excess");
        Assert.True(ended is WebSocketException or OperationCanceledException, $"the socket ended with {ended}");
        Assert.True(droppedAfter < TimeSpan.FromSeconds(25), "the socket was not dropped"); // not the receive's own timeout
        Assert.True(await node.Refused("rate_limited") > 0);
        await Eventually.True(async () => (bool?)(await node.GetJson($"/api/v1/devices/{router.DeviceId}"))["online"] == false, "offline");
    }

    [Fact]
    public async Task A_router_answering_a_queue_of_commands_faster_than_the_rate_is_never_refused()
    {
        // Far below the default (20/s, burst 50): answers ride on the requests, heartbeats fit in the bucket.
        await using var node = await Node.StartAsync(null,
            "--Fleet:WebSocket:MaxFramesPerSecond", "2", "--Fleet:WebSocket:MaxFrameBurst", "3",
            "--Fleet:WebSocket:CloseAfterExcessSeconds", "1");
        await using var router = new RealReaderRouter(node.WebSocketUri(), "busy-9", FirmwareEra.V9) { HeartbeatEvery = TimeSpan.FromSeconds(1) }.Start();
        await router.WaitConnectedAsync();
        await Eventually.True(async () => (await node.Send(HttpMethod.Get, $"/api/v1/devices/{router.DeviceId}")).Status == 200, "device known");

        const int count = 30;
        var clock = Stopwatch.StartNew();
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var (status, body, _) = await node.Post($"/api/v1/devices/{router.DeviceId}/commands", """{"type":"get_firmware_info"}""");
            Assert.Equal(202, status);
            ids.Add((string)body!["command_id"]!);
        }
        foreach (var id in ids)
            await Eventually.True(async () => (string?)(await node.GetJson($"/api/v1/devices/{router.DeviceId}/commands/{id}"))["status"] == "succeeded",
                $"{id} succeeded", TimeSpan.FromSeconds(60));
        var answeredIn = clock.Elapsed;

        // The test means something only if the answers came faster than the rate (plus the bucket) allows.
        Assert.True(answeredIn < TimeSpan.FromSeconds((count - 3) / 2.0), $"{count} answers took {answeredIn.TotalSeconds:0.0} s: within the rate anyway");
        Assert.Equal(0, await node.Refused("rate_limited"));
        Assert.Equal(0, await Figure(node, "closed_for_frame_rate"));
        Assert.Equal(1, router.Connections);
        router.AssertNoLoss();
    }
}
