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
internal sealed class DeviceSession
{
    private const int ReceiveChunk = 4096;
    private const int MaxFrame = 1 << 20;

    private readonly SimulatedDevice _device;
    private readonly SimulatorOptions _options;
    private readonly SimulatorStats _stats;
    private readonly HttpMessageInvoker _invoker;
    private readonly double _firstHeartbeatFraction;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Queue<long> _pendingHeartbeats = new();
    private byte[]? _heartbeatFrame;
    private int _heartbeatVersion = -1;
    private long _heartbeatBuiltAt;

    public DeviceSession(SimulatedDevice device, SimulatorOptions options, SimulatorStats stats, HttpMessageInvoker invoker, double firstHeartbeatFraction)
    {
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
            var heartbeats = HeartbeatLoopAsync(ws, sessionCts.Token);
            var (reboot, peerClosed) = await ReceiveLoopAsync(ws, sessionCts.Token).ConfigureAwait(false);
            if (reboot) reconnectAfter = TimeSpan.FromSeconds(5);
            else if (peerClosed) reconnectAfter = TimeSpan.FromSeconds(3);
            await sessionCts.CancelAsync().ConfigureAwait(false);
            await heartbeats.ConfigureAwait(false);
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
            await sessionCts.CancelAsync().ConfigureAwait(false);
            _stats.OnDisconnected();
            Socket = null;
            if (ct.IsCancellationRequested) await CloseQuietlyAsync(ws).ConfigureAwait(false);
            ws.Dispose();
        }
        return reconnectAfter;
    }

    private async Task HeartbeatLoopAsync(ClientWebSocket ws, CancellationToken ct)
    {
        var interval = TimeSpan.FromSeconds(_options.HeartbeatSeconds);
        var first = _options.SpreadHeartbeats ? interval * _firstHeartbeatFraction : TimeSpan.Zero;
        var due = Stopwatch.GetTimestamp() + (long)(first.TotalSeconds * Stopwatch.Frequency);
        var step = (long)(interval.TotalSeconds * Stopwatch.Frequency);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero) await Task.Delay(wait, ct).ConfigureAwait(false);
                var frame = HeartbeatFrame();
                lock (_pendingHeartbeats)
                {
                    if (_pendingHeartbeats.Count > 1000) _pendingHeartbeats.Dequeue();
                    _pendingHeartbeats.Enqueue(Stopwatch.GetTimestamp());
                }
                await SendAsync(ws, frame, ct).ConfigureAwait(false);
                _stats.OnHeartbeatSent();
                due += step;
                // Fell far behind (machine saturated): skip missed beats rather than bursting.
                var now = Stopwatch.GetTimestamp();
                if (now - due > step * 4) due = now + step;
            }
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
        while (!ct.IsCancellationRequested)
        {
            // Zero-byte receive: an idle router holds no receive buffer.
            var peek = await ws.ReceiveAsync(Memory<byte>.Empty, ct).ConfigureAwait(false);
            if (peek.MessageType == WebSocketMessageType.Close) return (false, true);
            var buffer = ArrayPool<byte>.Shared.Rent(ReceiveChunk);
            var length = 0;
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
                    var r = await ws.ReceiveAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
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
        var decoded = ProtocolCodec.DecodeFromServer(frame.Span);
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

        if (decoded.Message is HeartbeatReply)
        {
            long? sentAt = null;
            lock (_pendingHeartbeats) if (_pendingHeartbeats.Count > 0) sentAt = _pendingHeartbeats.Dequeue();
            _stats.OnReply(sentAt is { } t ? (long)Stopwatch.GetElapsedTime(t).TotalMicroseconds : null);
            return false;
        }

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
