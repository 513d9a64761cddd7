using System.Collections.Concurrent;
using Fleet.Server.Tests.Support;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// Tests whose routers read like the firmware (one frame per read, in this process) beside a node paced for a router
/// with a CPU of its own: frames 250 ms apart (Fleet:WebSocket:FramePauseMs) meet in one read when this process stalls
/// longer than that. Run alone, after the parallel tests, so that other test classes' load is not taken for the node's
/// fault (seen once in the full test command: five routers stalled together and each lost the frame behind a reply).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealReaderTiming
{
    public const string Name = "real-reader timing";
}

/// <summary>
/// A short run of the connection fuzzer (tests/Shared/ConnectionFuzz.cs; bench/Fuzz runs it for minutes against a
/// separate node): a real node, healthy routers of every era reading like the firmware, and sockets sending mutated
/// frames beside them.
/// </summary>
[Collection(RealReaderTiming.Name)]
public sealed class ConnectionFuzzTests
{
    [Fact]
    public async Task Mutated_frames_on_other_sockets_leave_healthy_routers_of_every_era_connected_and_their_commands_succeeding()
    {
        var log = new LogCapture();
        // The fuzz sockets send far faster than a router may (the per-socket frame budget, tested in SocketLimitsTests):
        // lifted here, so that every mutated frame reaches the decoders instead of the limiter.
        await using var node = await Node.StartAsync(null, testKeys: true, configure: b => b.Logging.AddProvider(log),
            "--Fleet:WebSocket:MaxFramesPerSecond", "0");

        var result = await ConnectionFuzz.RunAsync(new ConnectionFuzzOptions
        {
            Node = node.BaseAddress,
            ApiKey = TestKeys.Admin,
            Healthy = 6,
            FuzzSockets = 3,
            Duration = TimeSpan.FromSeconds(6),
            Seed = 1,
            HeartbeatEvery = TimeSpan.FromSeconds(1),
            CommandEvery = TimeSpan.FromMilliseconds(300),
            FramesPerSecond = 300,
            ProbeTimeout = TimeSpan.FromSeconds(20),
            Log = line => TestContext.Current.TestOutputHelper?.WriteLine(line),
        }, TestContext.Current.CancellationToken);

        var logCheck = NodeLog.Check(log.Entries);
        var failures = result.Failures.Concat(logCheck.Failures).ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n" + result.ToJson());
        Assert.Equal(6, result.HealthyStillConnectedOnce);
        Assert.Equal(0, result.HealthyLosses);
        Assert.True(result.FramesSent > 1000, $"only {result.FramesSent} fuzz frames sent");
        Assert.True(result.ProbesAnswered > 0, "no probe answered: the fuzz sockets never got past their first batch");
        Assert.True(result.CommandsSent >= 15, $"only {result.CommandsSent} commands");
        Assert.True(result.NodeReady);
    }

    // Found by the connection fuzzer: .NET's WebSocket answered these with a close frame (1007, 1002) before failing the
    // receive; firmware of 2025-07 to 2026-03 never reconnects after a close frame. Now the TCP connection just ends.
    [Theory]
    [InlineData("invalid UTF-8 in a text frame")]
    [InlineData("a reserved opcode")]
    [InlineData("a continuation frame with no message to continue")]
    public async Task A_frame_the_websocket_layer_refuses_drops_the_socket_without_a_close_frame(string what)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var node = await Node.StartAsync();
        await using var raw = await RawWebSocket.ConnectAsync(node.BaseAddress.Host, node.BaseAddress.Port, "/ws/wifidogx", ct);
        await raw.SendTextAsync("""{"type":"connect","device_id":"odd-wire","gateway":[{"gw_id":"gw-1","auth_mode":1}]}""", ct);
        Assert.Equal(RawFrame.Text, (await raw.ReadFrameAsync(ct)).Opcode); // the reply to connect
        var heartbeat = """{"type":"heartbeat","device_id":"odd-wire","gateway":[{"gw_id":"gw-1","auth_mode":1}]}"""u8.ToArray();
        byte[] notUtf8 = [.. """{"type":"heartbeat","device_id":"odd"""u8, 0xC0, 0xAF, .. "\"}"u8];
        await (what switch
        {
            "invalid UTF-8 in a text frame" => raw.SendFrameAsync(RawFrame.Text, notUtf8, ct: ct),
            "a reserved opcode" => raw.SendFrameAsync(0x3, heartbeat, ct: ct),
            _ => raw.SendFrameAsync(RawFrame.Continuation, heartbeat, ct: ct),
        });
        using var within = CancellationTokenSource.CreateLinkedTokenSource(ct);
        within.CancelAfter(TimeSpan.FromSeconds(15));
        var frames = new List<RawFrame>();
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            while (true) frames.Add(await raw.ReadFrameAsync(within.Token)); // until the connection ends
        });
        Assert.DoesNotContain(frames, f => f.Opcode == RawFrame.Close);
        await Eventually.True(async () => (bool?)(await node.GetJson("/api/v1/devices/odd-wire"))["online"] == false, "offline");
    }

    [Fact]
    public async Task A_close_the_device_begins_is_still_completed_with_a_normal_close()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var node = await Node.StartAsync();
        await using var raw = await RawWebSocket.ConnectAsync(node.BaseAddress.Host, node.BaseAddress.Port, "/ws/wifidogx", ct);
        await raw.SendTextAsync("""{"type":"connect","device_id":"closer","gateway":[{"gw_id":"gw-1","auth_mode":1}]}""", ct);
        Assert.Equal(RawFrame.Text, (await raw.ReadFrameAsync(ct)).Opcode);
        await raw.SendFrameAsync(RawFrame.Close, new byte[] { 0x03, 0xE8 }, ct: ct);
        using var within = CancellationTokenSource.CreateLinkedTokenSource(ct);
        within.CancelAfter(TimeSpan.FromSeconds(15));
        var close = await raw.ReadFrameAsync(within.Token);
        Assert.Equal(RawFrame.Close, close.Opcode);
        Assert.Equal(1000, close.Payload[0] << 8 | close.Payload[1]);
    }

    // Found by the connection fuzzer on PostgreSQL (bench/scripts/fuzz.sh DB=postgres): text there holds no NUL, so the
    // directory's batch with this router's device_info failed, and failed again at every retry — the directory stopped
    // for every device of the cluster. A query with a NUL in it was a 500 for the same reason.
    [Fact]
    public async Task A_router_whose_location_id_holds_a_NUL_does_not_stop_the_directory_on_PostgreSQL()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var node = await Node.StartAsync(null,
            "--Fleet:Persistence:Provider", "PostgreSql", "--Fleet:Persistence:ConnectionString", db.ConnectionString);
        await using var odd = await PretendRouter.ConnectAsync(node.WebSocketUri(), "nul-location", sendConnect: false);
        await odd.Send("""{"type":"connect","device_id":"nul-location","device_info":{"location_id":"hall\u0000b","ap_mac_address":"8c:de:f9:5e:f7:06"},"gateway":[{"gw_id":"gw-1","auth_mode":1}]}""");
        Assert.Equal("heartbeat", (string?)(await odd.Receive())["type"]);
        await using var after = await PretendRouter.ConnectAsync(node.WebSocketUri(), "after-nul");

        await Eventually.True(async () => (await node.GetJson("/api/v1/devices?q=after-nul&online=true"))["items"]!.AsArray().Count == 1,
            "a router connected afterwards listed in the directory");
        var listed = (await node.GetJson("/api/v1/devices?q=nul-location"))["items"]!.AsArray().Single()!;
        Assert.Equal("hall\uFFFDb", (string?)listed["location_id"]);
        Assert.Equal(200, (await node.Send(HttpMethod.Get, "/api/v1/devices?q=%00")).Status);
    }

    [Theory]
    [InlineData(new byte[] { 0x88, 0x02, 0x03, 0xEF }, true)] // 1007 invalid payload
    [InlineData(new byte[] { 0x88, 0x02, 0x03, 0xEA }, true)] // 1002 protocol error
    [InlineData(new byte[] { 0x88, 0x00 }, true)] // no status
    [InlineData(new byte[] { 0x88, 0x02, 0x03, 0xE8 }, false)] // 1000: completing the device's own close
    [InlineData(new byte[] { 0x81, 0x02, 0x7B, 0x7D }, false)] // a text frame
    [InlineData(new byte[] { 0x8A, 0x00 }, false)] // a pong
    public void Only_close_frames_other_than_a_normal_close_are_held_back(byte[] write, bool held) =>
        Assert.Equal(held, Fleet.Server.Connections.DeviceWebSocket.NoErrorCloseStream.IsErrorClose(write));

    /// <summary>Every entry the node logs at Error or above, with its exception.</summary>
    private sealed class LogCapture : ILoggerProvider
    {
        private readonly ConcurrentQueue<NodeLogEntry> _entries = new();
        public IReadOnlyList<NodeLogEntry> Entries => [.. _entries];
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);
        public void Dispose() { }

        private sealed class Logger(string category, ConcurrentQueue<NodeLogEntry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) entries.Enqueue(new NodeLogEntry(logLevel.ToString(), category, formatter(state, exception), exception?.ToString()));
            }
        }
    }
}
