using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using Fleet.Protocol;

namespace Fleet.Simulator;

/// <summary>
/// One simulated router's socket life: connect, send connect, heartbeat on its interval, answer
/// what the controller sends, reconnect like the firmware after drops. Idle sockets wait with a
/// zero-byte receive and only rent a buffer when a frame arrives.
/// </summary>
internal sealed class DeviceSession : IBeating
{
    /// <summary>Like the firmware's read buffer; longer frames grow into pooled buffers.</summary>
    private const int ReceiveChunk = 1024;
    private const int MaxFrame = 1 << 20;

    private readonly SimulatedDevice _device;
    private readonly SimulatorOptions _options;
    private readonly SimulatorStats _stats;
    private readonly HttpMessageInvoker _invoker;
    private readonly HeartbeatWheel _wheel;
    private long _epoch;
    private ClientWebSocket? _beatingSocket;
    private CancellationToken _beatingToken;
    private byte[]? _lastReply;
    private readonly double _firstHeartbeatFraction;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Queue<long> _pendingHeartbeats = new();
    private byte[]? _heartbeatFrame;
    private int _heartbeatVersion = -1;
    private long _heartbeatBuiltAt;

    public DeviceSession(SimulatedDevice device, SimulatorOptions options, SimulatorStats stats, HttpMessageInvoker invoker, HeartbeatWheel wheel, double firstHeartbeatFraction)
    {
        _wheel = wheel;
        _device = device;
        _options = options;
        _stats = stats;
        _invoker = invoker;
        _firstHeartbeatFraction = firstHeartbeatFraction;
    }

    public ClientWebSocket? Socket { get; private set; }

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var delay = await RunOnceAsync(ct).ConfigureAwait(false);
            if (ct.IsCancellationRequested || delay is null || !_options.Reconnect) return;
            try { await Task.Delay(_options.ReconnectDelay ?? delay.Value, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>One connection; returns the delay before reconnecting, or null to stop.</summary>
    private async Task<TimeSpan?> RunOnceAsync(CancellationToken ct)
    {
        var ws = new ClientWebSocket();
        ws.Options.KeepAliveInterval = TimeSpan.Zero;
        ws.Options.SetRequestHeader("User-Agent", "apfree-wifidog");
        using var connectCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        connectCts.CancelAfter(_options.ConnectTimeout);
        try
        {
            await ws.ConnectAsync(_options.Url, _invoker, connectCts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ws.Dispose();
            if (ct.IsCancellationRequested) return null;
            _stats.OnConnectFailed("connect: " + Reason(ex));
            return TimeSpan.FromSeconds(2);
        }

        Socket = ws;
        _stats.OnConnected();
        lock (_pendingHeartbeats) _pendingHeartbeats.Clear();
        using var sessionCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        TimeSpan? reconnectAfter = TimeSpan.FromSeconds(5);
        try
        {
            ConnectMessage connect;
            lock (_device) connect = _device.Connect();
            await SendAsync(ws, ProtocolCodec.Encode(connect), sessionCts.Token).ConfigureAwait(false);
            StartBeating(ws, sessionCts.Token);
            var (reboot, peerClosed) = await ReceiveLoopAsync(ws, sessionCts.Token).ConfigureAwait(false);
            if (reboot) reconnectAfter = TimeSpan.FromSeconds(5);
            else if (peerClosed) reconnectAfter = TimeSpan.FromSeconds(3);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            reconnectAfter = null;
        }
        catch (Exception ex)
        {
            _stats.Error("session: " + Reason(ex));
            reconnectAfter = TimeSpan.FromSeconds(2);
        }
        finally
        {
            Interlocked.Increment(ref _epoch);
            await sessionCts.CancelAsync().ConfigureAwait(false);
            _stats.OnDisconnected();
            Socket = null;
            if (ct.IsCancellationRequested) await CloseQuietlyAsync(ws).ConfigureAwait(false);
            ws.Dispose();
        }
        return reconnectAfter;
    }

    private void StartBeating(ClientWebSocket ws, CancellationToken ct)
    {
        var epoch = Interlocked.Increment(ref _epoch);
        _beatingSocket = ws;
        _beatingToken = ct;
        var first = _options.SpreadHeartbeats ? TimeSpan.FromSeconds(_options.HeartbeatSeconds * _firstHeartbeatFraction) : TimeSpan.Zero;
        _wheel.Start(this, epoch, first);
    }

    /// <summary>Called by the wheel when a beat is due.</summary>
    public bool Beat(long epoch)
    {
        if (epoch != Interlocked.Read(ref _epoch) || _beatingSocket is not { } ws || _beatingToken.IsCancellationRequested) return false;
        _ = BeatAsync(ws, _beatingToken);
        return true;
    }

    private async Task BeatAsync(ClientWebSocket ws, CancellationToken ct)
    {
        try
        {
            var frame = HeartbeatFrame();
            lock (_pendingHeartbeats)
            {
                if (_pendingHeartbeats.Count > 1000) _pendingHeartbeats.Dequeue();
                _pendingHeartbeats.Enqueue(Stopwatch.GetTimestamp());
            }
            await SendAsync(ws, frame, ct).ConfigureAwait(false);
            _stats.OnHeartbeatSent();
        }
        catch (OperationCanceledException) { }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            if (!ct.IsCancellationRequested) _stats.OnSendError("heartbeat: " + Reason(ex));
        }
    }

    /// <summary>The encoded heartbeat, rebuilt when the report changed or every minute (uptime figures).</summary>
    private byte[] HeartbeatFrame()
    {
        lock (_device)
        {
            var now = Stopwatch.GetTimestamp();
            if (_heartbeatFrame is null || _heartbeatVersion != _device.ReportVersion
                || Stopwatch.GetElapsedTime(_heartbeatBuiltAt, now) > TimeSpan.FromMinutes(1))
            {
                _heartbeatFrame = ProtocolCodec.Encode(_device.Heartbeat());
                _heartbeatVersion = _device.ReportVersion;
                _heartbeatBuiltAt = now;
            }
            return _heartbeatFrame;
        }
    }

    private async Task<(bool Reboot, bool PeerClosed)> ReceiveLoopAsync(ClientWebSocket ws, CancellationToken ct)
    {
        // One small buffer per connection (the firmware reads 1024 bytes at a time too); a longer
        // frame continues in a pooled buffer. The simulator trades that memory for one read per frame.
        var small = new byte[ReceiveChunk];
        while (!ct.IsCancellationRequested)
        {
            var r = await ws.ReceiveAsync(small.AsMemory(), ct).ConfigureAwait(false);
            if (r.MessageType == WebSocketMessageType.Close) return (false, true);
            if (r.EndOfMessage)
            {
                if (await HandleFrameAsync(ws, small.AsMemory(0, r.Count), ct).ConfigureAwait(false)) return (true, false);
                continue;
            }
            var buffer = ArrayPool<byte>.Shared.Rent(ReceiveChunk * 4);
            small.AsSpan(0, r.Count).CopyTo(buffer);
            var length = r.Count;
            try
            {
                while (true)
                {
                    if (length == buffer.Length)
                    {
                        if (buffer.Length >= MaxFrame) throw new InvalidDataException("frame larger than 1 MiB");
                        var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    r = await ws.ReceiveAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close) return (false, true);
                    length += r.Count;
                    if (r.EndOfMessage) break;
                }
                if (await HandleFrameAsync(ws, buffer.AsMemory(0, length), ct).ConfigureAwait(false)) return (true, false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        return (false, false);
    }

    /// <summary>Decodes and answers one controller frame; true when the device "reboots".</summary>
    private async Task<bool> HandleFrameAsync(ClientWebSocket ws, ReadOnlyMemory<byte> frame, CancellationToken ct)
    {
        // The controller sends the same heartbeat reply again and again: already applied, skip the decode.
        if (_lastReply is { } last && frame.Span.SequenceEqual(last))
        {
            OnHeartbeatReply();
            return false;
        }
        var decoded = ProtocolCodec.DecodeFromController(frame.Span);
        DeviceAction action;
        string type;
        lock (_device)
        {
            if (decoded.Message is { } message)
            {
                type = message.Type;
                action = _device.Handle(message);
            }
            else
            {
                _stats.OnDecodeError();
                type = decoded.Error!.Type ?? "(none)";
                action = _device.HandleUndecodable(decoded.Error!);
            }
        }

        if (decoded.Message is ReportReply)
        {
            _lastReply = frame.ToArray();
            OnHeartbeatReply();
            return false;
        }

        _lastReply = null; // a request may change what a repeated heartbeat reply would re-apply
        var oneWay = RequestKinds.Find(type)?.OneWay ?? false;
        _stats.OnCommand(type, answered: action.Reply is not null, oneWay: oneWay);
        if (action.Reply is { } reply)
            await SendAsync(ws, ProtocolCodec.Encode(reply), ct).ConfigureAwait(false);
        if (action.Reboot)
        {
            _stats.OnReboot();
            await CloseQuietlyAsync(ws).ConfigureAwait(false);
            return true;
        }
        return false;
    }

    private void OnHeartbeatReply()
    {
        long? sentAt = null;
        lock (_pendingHeartbeats) if (_pendingHeartbeats.Count > 0) sentAt = _pendingHeartbeats.Dequeue();
        _stats.OnReply(sentAt is { } t ? (long)Stopwatch.GetElapsedTime(t).TotalMicroseconds : null);
    }

    private async Task SendAsync(ClientWebSocket ws, ReadOnlyMemory<byte> frame, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try { await ws.SendAsync(frame, WebSocketMessageType.Text, true, ct).ConfigureAwait(false); }
        finally { _sendLock.Release(); }
    }

    private static async Task CloseQuietlyAsync(ClientWebSocket ws)
    {
        if (ws.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException) { }
    }

    private static string Reason(Exception ex)
    {
        var e = ex;
        while (e.InnerException is not null && e is WebSocketException or HttpRequestException or AggregateException) e = e.InnerException;
        var text = e.Message;
        var nl = text.IndexOf('\n');
        return $"{e.GetType().Name}: {(nl < 0 ? text : text[..nl]).Trim()}";
    }
}
