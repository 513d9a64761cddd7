using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Fleet.Protocol;

namespace Fleet.Simulator;

/// <summary>The firmware's reconnect delays (FIRMWARE_FACTS.md A.4); each may be set shorter for tests.</summary>
public sealed record ReconnectDelays
{
    /// <summary>The firmware's: 5 s after EOF, 2 s after errors and a bad 101 (9.x), 3 s after a close frame (9.x), 5 s after a reboot.</summary>
    public static readonly ReconnectDelays Firmware = new();

    public TimeSpan AfterEof { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan AfterError { get; init; } = TimeSpan.FromSeconds(2);
    public TimeSpan AfterCloseFrame { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>A router told to reboot (or whose connection a test drops) comes back after this.</summary>
    public TimeSpan AfterReboot { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The same delay after everything.</summary>
    public static ReconnectDelays All(TimeSpan delay) => new() { AfterEof = delay, AfterError = delay, AfterCloseFrame = delay, AfterReboot = delay };
}

/// <summary>Settings shared by every <see cref="FirmwareClient"/> of a run.</summary>
public sealed record FirmwareClientOptions
{
    public Uri Url { get; init; } = new("ws://127.0.0.1:8080/ws/wifidogx");
    /// <summary>TCP connect only: the firmware has no timeout on the upgrade (a silent server leaves it waiting).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);
    public ReconnectDelays Delays { get; init; } = ReconnectDelays.Firmware;
    public bool Reconnect { get; init; } = true;
    /// <summary>
    /// The router's single event loop is busy this long after each text frame it handles (popen, UCI commits,
    /// a firewall reload): frames arriving meanwhile pile up and are read together. 0 by default.
    /// </summary>
    public TimeSpan WorkTime { get; init; }
}

/// <summary>
/// Everything a <see cref="FirmwareClient"/> can tell about its connection. Every method has an empty
/// default: an observer takes what it needs. Called on the client's own tasks, one at a time per
/// connection (heartbeat sends aside).
/// </summary>
public interface IFirmwareObserver
{
    void OnConnectFailed(string reason) { }
    /// <summary>The 101 was accepted and connect sent: start heartbeats for <paramref name="epoch"/> (<see cref="FirmwareClient.Beat"/>).</summary>
    void OnUpgraded(long epoch) { }
    /// <summary>The upgrade reply was refused (a wrong status or Sec-WebSocket-Accept, or it came cut in two).</summary>
    void OnBadUpgrade(string detail) { }
    void OnReportSent(bool heartbeat) { }
    void OnSendError(string reason) { }
    /// <summary>A frame the reader lost (only the first frame of a read is handled, partial frames are dropped…).</summary>
    void OnLoss(FrameLoss loss) { }
    /// <summary>A read reached 1,024 bytes: the connection is deaf from now on ("Input buffer overflow").</summary>
    void OnWedged(int bytes) { }
    /// <summary>The rest of a split frame was read as a frame header; what the router did with that "frame" follows.</summary>
    void OnMisread(int opcode, int bytes) { }
    /// <summary>A ping, close, pong, binary, continuation or unknown-opcode frame, and whether the router answered it.</summary>
    void OnControlFrame(int opcode, bool answered, string detail) { }
    /// <summary>A text frame as the dialect read it; return false to hold a request (handle it later with <see cref="FirmwareClient.HandleAsync"/>).</summary>
    bool OnInbound(RouterInbound inbound) => true;
    /// <summary>A frame handled: what the device decided, and the answer it is about to send, if any.</summary>
    void OnHandled(RouterInbound inbound, DeviceAction action, byte[]? answer) { }
    /// <summary>The connection ended; <paramref name="reconnectAfter"/> null: the router stays offline.</summary>
    void OnDisconnected(string reason, TimeSpan? reconnectAfter) { }
}

/// <summary>
/// One simulated router's WebSocket client, written like the firmware's (src/ws_thread.c) over a raw TCP
/// socket: the firmware's upgrade request; masked frames, one per report or answer, never fragmented;
/// and above all its reader (<see cref="FirmwareReader"/>): each read event drains what the socket has,
/// 1,024 bytes or more wedge the connection for good, only the first frame of a read is handled. Pings,
/// close frames and reconnects follow the era (<see cref="IRouterDialect"/>). It stays cheap for tens of
/// thousands of routers per process: no thread per router, an idle socket waits in a zero-byte receive
/// holding no buffer, buffers come from the shared pool, a heartbeat is encoded once per change.
/// Heartbeats are driven by the owner (<see cref="Beat"/>, <see cref="SendHeartbeatAsync"/>) after
/// <see cref="IFirmwareObserver.OnUpgraded"/>.
/// </summary>
public sealed class FirmwareClient
{
    /// <summary>Linux IP_BIND_ADDRESS_NO_PORT: bind the source address now, pick the port at connect.</summary>
    private const int IpBindAddressNoPort = 24;
    private const int SolIp = 0;
    private const int ReadChunk = 4096;
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    private readonly SimulatedDevice _device;
    private readonly IRouterDialect _dialect;
    private readonly FirmwareClientOptions _options;
    private readonly IFirmwareObserver _observer;
    private readonly IPAddress? _source;
    private Connection? _current;
    private long _epoch;
    private byte[]? _heartbeat;
    private int _heartbeatVersion = -1;
    private long _heartbeatBuiltAt;
    private byte[]? _lastReply;
    private RouterInbound? _lastReplyInbound;
    private long _handledTotal, _lostTotal;

    public FirmwareClient(SimulatedDevice device, FirmwareClientOptions options, IFirmwareObserver? observer = null, IPAddress? source = null)
    {
        _device = device;
        _dialect = device.Dialect;
        _options = options;
        _observer = observer ?? NoObserver.Instance;
        _source = source;
    }

    public SimulatedDevice Device => _device;
    public IRouterDialect Dialect => _dialect;
    /// <summary>Upgraded and not yet ended.</summary>
    public bool Connected => _current is { Upgraded: true, Ended: false };
    /// <summary>A 2025 router that got a close frame: offline until the simulated wifidog restarts (never, here).</summary>
    public bool OfflineForGood { get; private set; }
    /// <summary>The current connection's reader is deaf since an overflow.</summary>
    public bool Wedged => _current?.Reader.Wedged ?? false;
    /// <summary>Frames of the current connection that reached a handler (text and control frames; misreads included).</summary>
    public long FramesHandled => _current?.Handled ?? 0;
    /// <summary>Frames of the current connection the reader lost.</summary>
    public long FramesLost => _current?.Lost ?? 0;
    /// <summary>Frames that reached a handler over every connection so far (what a pacing controller compares with what it sent).</summary>
    public long FramesHandledTotal => Interlocked.Read(ref _handledTotal);
    /// <summary>Frames the reader lost over every connection so far.</summary>
    public long FramesLostTotal => Interlocked.Read(ref _lostTotal);

    private sealed class NoObserver : IFirmwareObserver
    {
        public static readonly NoObserver Instance = new();
    }

    /// <summary>One TCP connection's state.</summary>
    private sealed class Connection(Socket socket, Stream stream, long epoch)
    {
        public readonly Socket Socket = socket;
        public readonly Stream Stream = stream;
        public readonly long Epoch = epoch;
        public readonly FirmwareReader Reader = new();
        public readonly SemaphoreSlim SendLock = new(1, 1);
        public volatile bool Upgraded;
        public volatile bool Ended;
        public long Handled;
        public long Lost;
        /// <summary>Set by whoever ends the connection on purpose (reboot, close frame, Drop): why, and when to come back.</summary>
        public (string Reason, TimeSpan? After)? Ending;
    }

    // ------------------------------------------------------------------ life

    /// <summary>Connects, and reconnects after each end as the firmware does, until cancelled or offline for good.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TimeSpan? after;
            try { after = await ConnectionAsync(ct).ConfigureAwait(false); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            if (ct.IsCancellationRequested || after is null || !_options.Reconnect) return;
            try { await Task.Delay(after.Value, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>Drops the current TCP connection without a close frame (a cable pulled, a reboot); the router comes back after <see cref="ReconnectDelays.AfterReboot"/>.</summary>
    public void Drop(string reason = "dropped")
    {
        if (_current is not { } c) return;
        c.Ending ??= (reason, _options.Delays.AfterReboot);
        Abort(c);
    }

    private async Task<TimeSpan?> ConnectionAsync(CancellationToken ct)
    {
        // The configured address, or what a set_websocket_serv changed of it (9.x): ws_request reads it at each connection.
        Uri url;
        lock (_device) url = _device.Server.UrlFrom(_options.Url);
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream stream;
        try
        {
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                connect.CancelAfter(_options.ConnectTimeout);
                if (_source is not null)
                {
                    // Raw option: SocketOptionName values are translated by .NET, 24 is not one of them.
                    if (OperatingSystem.IsLinux()) socket.SetRawSocketOption(SolIp, IpBindAddressNoPort, BitConverter.GetBytes(1));
                    socket.Bind(new IPEndPoint(_source, 0));
                }
                if (IPAddress.TryParse(url.IdnHost, out var ip)) await socket.ConnectAsync(ip, url.Port, connect.Token).ConfigureAwait(false);
                else await socket.ConnectAsync(new DnsEndPoint(url.IdnHost, url.Port, AddressFamily.InterNetwork), connect.Token).ConfigureAwait(false);
                stream = new NetworkStream(socket, ownsSocket: true);
                if (url.Scheme == "wss")
                {
                    // setup_ssl: no certificate check at all (FIRMWARE_FACTS.md F.9); SNI is set.
                    var tls = new SslStream(stream, leaveInnerStreamOpen: false, (_, _, _, _) => true);
                    await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = url.IdnHost }, connect.Token).ConfigureAwait(false);
                    stream = tls;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException or System.Security.Authentication.AuthenticationException)
        {
            socket.Dispose();
            if (ct.IsCancellationRequested) return null;
            _observer.OnConnectFailed("connect: " + Reason(ex));
            return _options.Delays.AfterError;
        }

        var c = new Connection(socket, stream, Interlocked.Increment(ref _epoch));
        _current = c;
        string reason;
        TimeSpan? after;
        try
        {
            await WriteAsync(c, UpgradeRequest(url, out var accept), ct).ConfigureAwait(false);
            (reason, after) = await ReadLoopAsync(c, accept, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            (reason, after) = ("stopped", null);
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            (reason, after) = c.Ending ?? ("error: " + Reason(ex), _options.Delays.AfterError);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            // A fault of the simulation itself must not end the router (nor a whole run): drop the link and come back.
            (reason, after) = ("unexpected: " + Reason(ex), _options.Delays.AfterError);
        }
        finally
        {
            c.Ended = true;
            Interlocked.Increment(ref _epoch); // heartbeats of this connection stop
            Abort(c);
        }
        if (c.Ending is { } ending) (reason, after) = ending;
        if (ct.IsCancellationRequested) (reason, after) = ("stopped", null);
        _observer.OnDisconnected(reason, after);
        return after;
    }

    /// <summary>ws_request: one write, the firmware's headers in its order (Host always with the port).</summary>
    private static byte[] UpgradeRequest(Uri url, out string accept)
    {
        Span<byte> raw = stackalloc byte[16];
        Random.Shared.NextBytes(raw);
        var key = Convert.ToBase64String(raw);
        accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + Guid)));
        return Encoding.ASCII.GetBytes(
            $"GET {url.PathAndQuery} HTTP/1.1\r\nHost: {url.IdnHost}:{url.Port}\r\nUser-Agent: apfree-wifidog\r\n" +
            $"Upgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n");
    }

    // ------------------------------------------------------------------ reading

    /// <summary>Read events until the connection ends; returns why and when to come back.</summary>
    private async Task<(string Reason, TimeSpan? After)> ReadLoopAsync(Connection c, string accept, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            // Idle: wait for data holding no buffer.
            await c.Stream.ReadAsync(Memory<byte>.Empty, ct).ConfigureAwait(false);
            var buffer = ArrayPool<byte>.Shared.Rent(ReadChunk);
            TimeSpan busy = default;
            try
            {
                var n = await c.Stream.ReadAsync(buffer.AsMemory(0, ReadChunk), ct).ConfigureAwait(false);
                if (n == 0) return c.Ending ?? ("closed by the server (EOF)", _options.Delays.AfterEof);
                // One read event drains everything the socket has (ws_read_cb's loop over the evbuffer).
                while (n < ReadChunk && c.Socket.Available > 0)
                {
                    var more = await c.Stream.ReadAsync(buffer.AsMemory(n, ReadChunk - n), ct).ConfigureAwait(false);
                    if (more == 0) break;
                    n += more;
                }
                var outcome = c.Upgraded ? await OnFramesAsync(c, buffer.AsMemory(0, n), ct).ConfigureAwait(false)
                    : await OnUpgradeReplyAsync(c, buffer.AsMemory(0, n), accept, ct).ConfigureAwait(false);
                if (outcome.End is { } end) return end;
                busy = outcome.Busy;
                // A read that filled the chunk belongs to the same event: all of it is past 1,024 bytes.
                while (n == ReadChunk && c.Socket.Available > 0)
                {
                    n = await c.Stream.ReadAsync(buffer.AsMemory(0, ReadChunk), ct).ConfigureAwait(false);
                    if (n == 0) break;
                    ReportLosses(c, c.Reader.Discard(buffer.AsSpan(0, n), LossKind.WhileWedged));
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            if (busy > TimeSpan.Zero) await Task.Delay(busy, ct).ConfigureAwait(false);
        }
        return ("stopped", null);
    }

    private readonly record struct Outcome((string, TimeSpan?)? End = null, TimeSpan Busy = default);

    /// <summary>ws_read_cb before the upgrade (FIRMWARE_FACTS.md A.1).</summary>
    private async Task<Outcome> OnUpgradeReplyAsync(Connection c, Memory<byte> data, string accept, CancellationToken ct)
    {
        if (c.Reader.Wedged)
        {
            ReportLosses(c, c.Reader.Discard(data.Span, LossKind.WhileWedged));
            return default;
        }
        if (data.Length >= FirmwareReader.BufferSize)
        {
            c.Reader.Wedge();
            _observer.OnWedged(data.Length);
            return default;
        }
        var text = Encoding.Latin1.GetString(data.Span);
        var nul = text.IndexOf('\0');
        if (nul >= 0) text = text[..nul]; // strstr stops at the first NUL
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (headEnd < 0)
        {
            _observer.OnBadUpgrade($"incomplete HTTP response ({data.Length} bytes) discarded");
            return default;
        }
        if (!text.StartsWith("HTTP/1.1 101", StringComparison.Ordinal) || !text.Contains(accept, StringComparison.Ordinal))
        {
            var status = text.IndexOf('\r') is var cr and > 0 ? text[..cr] : text;
            _observer.OnBadUpgrade($"invalid upgrade response '{status}'");
            // 9.07 drops the connection and retries in 2 s; seed and 2025 just return: the link hangs.
            return _dialect.RetriesBadUpgrade ? new Outcome(("invalid upgrade response", _options.Delays.AfterError)) : default;
        }
        c.Upgraded = true;
        // Anything after the 101 in the same read is discarded: ws_read_cb returns without ws_receive.
        var rest = data[(headEnd + 4)..];
        if (!rest.IsEmpty) ReportLosses(c, c.Reader.Discard(rest.Span, LossKind.WithUpgradeReply));
        ConnectMessage connect;
        lock (_device) connect = _device.Connect();
        await SendAsync(c, Opcodes.Text, _dialect.EncodeReport(connect), ct).ConfigureAwait(false);
        _observer.OnReportSent(heartbeat: false);
        _observer.OnUpgraded(c.Epoch);
        return default;
    }

    /// <summary>ws_read_cb after the upgrade, then ws_receive on the frame at offset 0.</summary>
    private async Task<Outcome> OnFramesAsync(Connection c, Memory<byte> data, CancellationToken ct)
    {
        var result = c.Reader.Read(data.Span);
        ReportLosses(c, result.Losses);
        if (result.Action == ReadAction.Wedged) _observer.OnWedged(result.Bytes);
        if (result.Action != ReadAction.Frame) return default;
        Interlocked.Increment(ref c.Handled);
        Interlocked.Increment(ref _handledTotal);
        if (result.Misread) _observer.OnMisread(result.Opcode, result.Bytes);
        var payload = data.Slice(result.PayloadOffset, result.PayloadLength);
        switch (result.Opcode)
        {
            case Opcodes.Text:
                return await OnTextAsync(c, payload, ct).ConfigureAwait(false);
            case Opcodes.Ping:
                if (!_dialect.AnswersPings)
                {
                    _observer.OnControlFrame(Opcodes.Ping, false, "ping ignored (Unsupported WebSocket opcode)");
                    return default;
                }
                // A pong with the same payload; over 125 bytes an empty one.
                await SendAsync(c, Opcodes.Pong, payload.Length > 125 ? ReadOnlyMemory<byte>.Empty : payload.ToArray(), ct).ConfigureAwait(false);
                _observer.OnControlFrame(Opcodes.Ping, true, $"pong sent ({payload.Length} bytes)");
                return default;
            case Opcodes.Close:
                switch (_dialect.OnCloseFrame)
                {
                    case CloseFrameEffect.Ignored:
                        _observer.OnControlFrame(Opcodes.Close, false, "close frame ignored (Unsupported WebSocket opcode)");
                        return default;
                    case CloseFrameEffect.OfflineForGood:
                        // The close 1000 goes into a buffer that is freed at once; nothing restarts the thread.
                        OfflineForGood = true;
                        _observer.OnControlFrame(Opcodes.Close, false, "close frame: connection freed, no reconnect ever (offline until wifidog restarts)");
                        return new Outcome(("close frame from the server: offline for good", null));
                    default:
                        _observer.OnControlFrame(Opcodes.Close, false, "close frame: connection freed, reconnect in 3 s");
                        return new Outcome(("close frame from the server", _options.Delays.AfterCloseFrame));
                }
            case Opcodes.Pong:
                _observer.OnControlFrame(Opcodes.Pong, false, "pong ignored");
                return default;
            case Opcodes.Binary or Opcodes.Continuation:
                _observer.OnControlFrame(result.Opcode, false, $"{Opcodes.Name(result.Opcode)} frame ignored");
                return default;
            default:
                if (_dialect.ClosesOnUnknownOpcode)
                {
                    var code = new byte[2];
                    BinaryPrimitives.WriteUInt16BigEndian(code, 1003);
                    await SendAsync(c, Opcodes.Close, code, ct).ConfigureAwait(false);
                }
                _observer.OnControlFrame(result.Opcode, _dialect.ClosesOnUnknownOpcode,
                    _dialect.ClosesOnUnknownOpcode ? "unsupported opcode: close 1003 sent" : "unsupported opcode ignored");
                return default;
        }
    }

    private async Task<Outcome> OnTextAsync(Connection c, Memory<byte> payload, CancellationToken ct)
    {
        RouterInbound inbound;
        // The controller repeats the same heartbeat reply (type dialect): already read, skip the decode.
        if (_lastReply is { } last && _lastReplyInbound is { } known && payload.Span.SequenceEqual(last)) inbound = known;
        else
        {
            inbound = _dialect.Decode(payload.Span);
            if (inbound.Kind == InboundKind.ReportReply && _dialect.Era != FirmwareEra.V9)
            {
                _lastReply = payload.ToArray();
                _lastReplyInbound = inbound;
            }
        }
        if (!_observer.OnInbound(inbound)) return new Outcome(Busy: _options.WorkTime);
        var reboot = await HandleOnAsync(c, inbound, ct).ConfigureAwait(false);
        if (reboot)
        {
            // reboot: the kernel closes the socket (no close frame); the router is back after its boot.
            return new Outcome(("rebooted", _options.Delays.AfterReboot));
        }
        return new Outcome(Busy: _options.WorkTime);
    }

    /// <summary>Handles a frame that was held (<see cref="IFirmwareObserver.OnInbound"/> returned false) on the current connection; false when there is none.</summary>
    public async Task<bool> HandleAsync(RouterInbound inbound, CancellationToken ct = default)
    {
        if (_current is not { Upgraded: true, Ended: false } c) return false;
        if (await HandleOnAsync(c, inbound, ct).ConfigureAwait(false))
        {
            c.Ending ??= ("rebooted", _options.Delays.AfterReboot);
            Abort(c);
        }
        return true;
    }

    private async Task<bool> HandleOnAsync(Connection c, RouterInbound inbound, CancellationToken ct)
    {
        DeviceAction action;
        lock (_device) action = _device.Handle(inbound);
        byte[]? answer = action.Reply is IAnswerFrame reply ? _dialect.EncodeAnswer(reply) : null;
        // Told before the answer goes out, so whoever reads the answer finds it recorded.
        _observer.OnHandled(inbound, action, answer);
        if (answer is not null) await SendAsync(c, Opcodes.Text, answer, ct).ConfigureAwait(false);
        return action.Reboot;
    }

    private void ReportLosses(Connection c, List<FrameLoss>? losses)
    {
        if (losses is null) return;
        Interlocked.Add(ref c.Lost, losses.Count);
        Interlocked.Add(ref _lostTotal, losses.Count);
        foreach (var loss in losses) _observer.OnLoss(loss);
    }

    // ------------------------------------------------------------------ sending

    /// <summary>Called by a heartbeat wheel: sends a heartbeat if <paramref name="epoch"/>'s connection is still up; false when it is gone.</summary>
    public bool Beat(long epoch)
    {
        if (_current is not { Upgraded: true, Ended: false } c || c.Epoch != epoch) return false;
        _ = SendHeartbeatOnAsync(c, CancellationToken.None);
        return true;
    }

    /// <summary>Sends a heartbeat now; false when not connected.</summary>
    public async Task<bool> SendHeartbeatAsync(CancellationToken ct = default) =>
        _current is { Upgraded: true, Ended: false } c && await SendHeartbeatOnAsync(c, ct).ConfigureAwait(false);

    private async Task<bool> SendHeartbeatOnAsync(Connection c, CancellationToken ct)
    {
        try
        {
            await SendAsync(c, Opcodes.Text, HeartbeatFrame(), ct, renewReqId: _dialect.Era == FirmwareEra.V9).ConfigureAwait(false);
            _observer.OnReportSent(heartbeat: true);
            return true;
        }
        catch (OperationCanceledException) { return false; }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            if (!c.Ended) _observer.OnSendError("heartbeat: " + Reason(ex));
            return false;
        }
    }

    /// <summary>The encoded heartbeat, rebuilt when the report changed or every minute (uptime figures).</summary>
    private byte[] HeartbeatFrame()
    {
        lock (_device)
        {
            var now = Stopwatch.GetTimestamp();
            if (_heartbeat is null || _heartbeatVersion != _device.ReportVersion
                || Stopwatch.GetElapsedTime(_heartbeatBuiltAt, now) > TimeSpan.FromMinutes(1))
            {
                _heartbeat = _dialect.EncodeReport(_device.Heartbeat());
                _heartbeatVersion = _device.ReportVersion;
                _heartbeatBuiltAt = now;
            }
            return _heartbeat;
        }
    }

    /// <summary>
    /// ws_send: FIN, the opcode, the mask bit and a 7/16/64-bit length, a masking key, the masked payload;
    /// one write. <paramref name="renewReqId"/>: a 9.x report gets a fresh req_id in the copy.
    /// </summary>
    private async Task SendAsync(Connection c, int opcode, ReadOnlyMemory<byte> payload, CancellationToken ct, bool renewReqId = false)
    {
        var length = payload.Length;
        var frame = ArrayPool<byte>.Shared.Rent(length + 14);
        try
        {
            var n = 0;
            frame[n++] = (byte)(0x80 | opcode);
            if (length < 126) frame[n++] = (byte)(0x80 | length);
            else if (length <= ushort.MaxValue)
            {
                frame[n++] = 0x80 | 126;
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(n), (ushort)length);
                n += 2;
            }
            else
            {
                frame[n++] = 0x80 | 127;
                BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(n), (ulong)length);
                n += 8;
            }
            var mask = frame.AsSpan(n, 4);
            Random.Shared.NextBytes(mask);
            n += 4;
            var body = frame.AsSpan(n, length);
            payload.Span.CopyTo(body);
            if (renewReqId) OpRouterDialect.TryRenewReqId(body, (ulong)Random.Shared.NextInt64());
            Mask(body, mask);
            await WriteAsync(c, frame.AsMemory(0, n + length), ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    private static async Task WriteAsync(Connection c, ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        await c.SendLock.WaitAsync(ct).ConfigureAwait(false);
        try { await c.Stream.WriteAsync(bytes, ct).ConfigureAwait(false); }
        finally { c.SendLock.Release(); }
    }

    private static void Mask(Span<byte> body, ReadOnlySpan<byte> mask)
    {
        var key = BinaryPrimitives.ReadUInt32LittleEndian(mask);
        var i = 0;
        for (; i + 4 <= body.Length; i += 4)
            BinaryPrimitives.WriteUInt32LittleEndian(body[i..], BinaryPrimitives.ReadUInt32LittleEndian(body[i..]) ^ key);
        for (; i < body.Length; i++) body[i] ^= mask[i & 3];
    }

    /// <summary>Ends the TCP connection with a FIN, never a close frame (what a router does when its wifidog or kernel goes down).</summary>
    private static void Abort(Connection c)
    {
        c.Ended = true;
        try { c.Socket.Shutdown(SocketShutdown.Both); } catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        try { c.Socket.Close(); } catch (ObjectDisposedException) { }
        try { c.Stream.Dispose(); } catch (Exception ex) when (ex is IOException or ObjectDisposedException) { }
    }

    internal static string Reason(Exception ex)
    {
        var e = ex;
        while (e.InnerException is not null && e is IOException or AggregateException) e = e.InnerException;
        var text = e.Message;
        var nl = text.IndexOf('\n');
        return $"{e.GetType().Name}: {(nl < 0 ? text : text[..nl]).Trim()}";
    }
}
