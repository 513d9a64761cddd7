using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using Fleet.Protocol;
using Fleet.Server.Devices;

namespace Fleet.Server.Connections;

/// <summary>
/// One device socket. Its read loop (zero-byte receives while idle, pooled buffers while reading)
/// decodes frames, binds the socket to the device_id of the first connect and forwards only what
/// belongs to that device; the actor is the socket's address for the device entity (frames to send,
/// close). Writes go through one queue so frames never interleave.
/// A heartbeat that reports what the previous one reported is answered here with the entity's last
/// heartbeat reply (the entity pushes a new one whenever its answer would change) and only told to
/// the entity, so the common case costs no round trip through the shard.
/// </summary>
public sealed class DeviceConnection : ReceiveActor
{
    private sealed record SocketEnded(string Reason);

    private readonly WebSocket _socket;
    private readonly IActorRef _region;
    private readonly string _node;
    private readonly ConnectionMetrics _metrics;
    private readonly int _maxBytes;
    private readonly TaskCompletionSource _done;
    private readonly string _remote;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _cts = new();
    private readonly Channel<SendFrame> _outbound = Channel.CreateUnbounded<SendFrame>(new UnboundedChannelOptions { SingleReader = true });
    // Written by the read loop only; read by the actor (PostStop, logs).
    private volatile string? _deviceId;
    private DeviceReport? _lastReport;
    // The entity's latest heartbeat reply for this device; set by the actor, read by the read loop.
    private volatile SendFrame? _heartbeatReply;
    private Task _reading = Task.CompletedTask;
    private (WebSocketCloseStatus Status, string Reason) _close = (WebSocketCloseStatus.NormalClosure, "connection closed");

    public static Props Props(WebSocket socket, IActorRef region, string node, ConnectionMetrics metrics, int maxBytes,
        TaskCompletionSource done, string remote) =>
        // Arguments, not an expression: one connection per socket, and expressions are compiled per call.
        Akka.Actor.Props.Create<DeviceConnection>(socket, region, node, metrics, maxBytes, done, remote);

    public DeviceConnection(WebSocket socket, IActorRef region, string node, ConnectionMetrics metrics, int maxBytes,
        TaskCompletionSource done, string remote)
    {
        _socket = socket;
        _region = region;
        _node = node;
        _metrics = metrics;
        _maxBytes = maxBytes;
        _done = done;
        _remote = remote;

        Receive<SendFrame>(f =>
        {
            if (f.HeartbeatReply) _heartbeatReply = f;
            _outbound.Writer.TryWrite(f);
        });
        Receive<CloseConnection>(c =>
        {
            _log.Info("closing {0} ({1}): {2}", _deviceId, _remote, c.Reason);
            _close = (WebSocketCloseStatus.PolicyViolation, c.Reason);
            Context.Stop(Self);
        });
        Receive<SocketEnded>(e =>
        {
            _log.Debug("socket of {0} ({1}) ended: {2}", _deviceId ?? "unbound", _remote, e.Reason);
            Context.Stop(Self);
        });
    }

    protected override void PreStart()
    {
        var self = Self;
        _reading = Task.Run(() => ReadLoop(self));
        _ = Task.Run(() => WriteLoop(self));
    }

    protected override void PostStop()
    {
        if (_deviceId is not null) _region.Tell(new ConnectionClosed(_deviceId, Self));
        _outbound.Writer.TryComplete();
        _ = Shutdown();
    }

    /// <summary>Close frame first (with the reason), then stop the loops; the HTTP request ends last.</summary>
    private async Task Shutdown()
    {
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await CloseAsync(_close.Status, _close.Reason);
            // Let the peer answer our close frame before the socket is torn down: aborting earlier can
            // reset the TCP connection and lose the close frame (and its reason) on the way.
            await Task.WhenAny(_reading, Task.Delay(TimeSpan.FromSeconds(2)));
        }
        await _cts.CancelAsync();
        _done.TrySetResult();
    }

    /// <summary>Runs on the read loop, one frame at a time.</summary>
    private void OnFrame(IActorRef self, Decoded<Fleet.Protocol.IDeviceMessage> decoded, byte[] frame)
    {
        if (decoded.Error is { } err)
        {
            Refused(err.Kind switch
            {
                DecodeErrorKind.NotJson => "not_json",
                DecodeErrorKind.NotObject => "not_object",
                DecodeErrorKind.MissingType => "missing_type",
                DecodeErrorKind.UnknownType => "unknown_type",
                DecodeErrorKind.MissingField => "missing_field",
                _ => "wrong_kind",
            }, err.Message);
            return;
        }
        switch (decoded.Message)
        {
            case ConnectMessage c:
                if (!Rules.IsDeviceId(c.DeviceId)) { Refused("invalid_device_id", Rules.CheckDeviceId("device_id", c.DeviceId)!); return; }
                if (GatewayProblem(c) is { } gwProblem) { Refused("invalid_gw_id", gwProblem); return; }
                if (_deviceId is not null && _deviceId != c.DeviceId)
                { Refused("device_id_mismatch", $"connect names '{c.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                _deviceId = c.DeviceId!;
                _lastReport = c;
                _region.Tell(new DeviceConnect(_deviceId, c, self, _node), self);
                break;
            case HeartbeatMessage h:
                if (_deviceId is null) { Refused("before_connect", "heartbeat before connect"); return; }
                if (h.DeviceId != _deviceId)
                { Refused("device_id_mismatch", $"heartbeat names '{h.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                if (GatewayProblem(h) is { } hbGw) { Refused("invalid_gw_id", hbGw); return; }
                _metrics.Heartbeat();
                var same = SameReport(h, _lastReport);
                var unchanged = same && _heartbeatReply is not null;
                if (unchanged) _outbound.Writer.TryWrite(_heartbeatReply!);
                // Keep the older (equal) report: holding each new heartbeat until the next one promotes
                // every heartbeat out of gen 0, and gen 2 collections are what stall all sockets at once.
                if (!same) _lastReport = h;
                _region.Tell(new DeviceHeartbeat(_deviceId, h, self, _node, ReplyWanted: !unchanged), self);
                break;
            case IDeviceResponse r:
                if (_deviceId is null) { Refused("before_connect", $"{r.Type} before connect"); return; }
                _region.Tell(new DeviceAnswer(_deviceId, Encoding.UTF8.GetString(frame), self), self);
                break;
        }
    }

    // A plain loop: this runs for every heartbeat.
    private static string? GatewayProblem(DeviceReport r)
    {
        if (r.Gateway is null) return null;
        foreach (var g in r.Gateway)
            if (!Rules.IsGwId(g.GwId)) return Rules.CheckGwId("gateway.gw_id", g.GwId);
        return null;
    }

    /// <summary>Same gateways and device_info as the last report (the only parts the entity keeps).</summary>
    private static bool SameReport(DeviceReport now, DeviceReport? before) =>
        before is not null && Equals(now.DeviceInfo, before.DeviceInfo)
        && (now.Gateway ?? []).SequenceEqual(before.Gateway ?? []);

    private void Refused(string reason, string detail)
    {
        _metrics.Refused(reason);
        _log.Warning("refused frame from {0} ({1}): {2}: {3}", _deviceId ?? "unbound socket", _remote, reason, detail);
    }

    private async Task ReadLoop(IActorRef self)
    {
        var ct = _cts.Token;
        var reason = "closed by the device";
        try
        {
            while (!ct.IsCancellationRequested)
            {
                // Idle sockets hold no buffer: wait for data with a zero-byte read.
                var peek = await _socket.ReceiveAsync(Memory<byte>.Empty, ct);
                if (peek.MessageType == WebSocketMessageType.Close) break;
                var (message, type, tooLarge) = await ReadMessage(ct);
                if (type == WebSocketMessageType.Close) break;
                _metrics.FrameIn();
                if (type == WebSocketMessageType.Binary)
                    Refused("binary", "binary frames are not part of the protocol");
                else if (tooLarge)
                    Refused("too_large", $"frame over {_maxBytes} bytes");
                else
                    OnFrame(self, ProtocolCodec.DecodeFromDevice(message.AsSpan()), message);
            }
        }
        catch (OperationCanceledException) { reason = "cancelled"; }
        catch (WebSocketException ex) { reason = ex.Message; }
        catch (IOException ex) { reason = ex.Message; }
        self.Tell(new SocketEnded(reason));
    }

    /// <summary>Reads one whole message into an exact-size array; over the limit, it is drained and flagged.</summary>
    private async Task<(byte[] Message, WebSocketMessageType Type, bool TooLarge)> ReadMessage(CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        var length = 0;
        var tooLarge = false;
        try
        {
            while (true)
            {
                if (length == buffer.Length && !tooLarge)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var r = await _socket.ReceiveAsync(tooLarge ? buffer.AsMemory() : buffer.AsMemory(length), ct);
                if (r.MessageType == WebSocketMessageType.Close) return ([], WebSocketMessageType.Close, false);
                if (!tooLarge)
                {
                    length += r.Count;
                    if (length > _maxBytes) tooLarge = true;
                }
                if (r.EndOfMessage)
                    return (tooLarge || r.MessageType == WebSocketMessageType.Binary ? [] : buffer.AsSpan(0, length).ToArray(), r.MessageType, tooLarge);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task WriteLoop(IActorRef self)
    {
        await foreach (var f in _outbound.Reader.ReadAllAsync())
        {
            try
            {
                await _socket.SendAsync(f.Frame, WebSocketMessageType.Text, true, _cts.Token);
                _metrics.FrameOut();
                if (f.CommandId is not null) _region.Tell(new FrameWritten(f.DeviceId, f.CommandId));
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                if (f.CommandId is not null) _region.Tell(new FrameNotWritten(f.DeviceId, f.CommandId));
                // Everything still queued will not be written either.
                while (_outbound.Reader.TryRead(out var rest))
                    if (rest.CommandId is not null) _region.Tell(new FrameNotWritten(rest.DeviceId, rest.CommandId));
                self.Tell(new SocketEnded($"write failed: {ex.Message}"));
                return;
            }
        }
    }

    private async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _socket.CloseOutputAsync(status, reason, timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _socket.Abort();
        }
    }
}
