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
/// One device socket. Reads frames (zero-byte receives while idle, pooled buffers while reading),
/// decodes them off the actor, binds to the device_id of the first connect, and forwards only what
/// belongs to that device. Writes go through one queue so frames never interleave.
/// </summary>
public sealed class DeviceConnection : ReceiveActor
{
    private sealed record Inbound(Fleet.Protocol.IDeviceMessage? Message, DecodeError? Error, string? Json);
    private sealed record Refuse(string Reason, string Detail);
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
    private string? _deviceId;
    private Task _reading = Task.CompletedTask;
    private (WebSocketCloseStatus Status, string Reason) _close = (WebSocketCloseStatus.NormalClosure, "connection closed");

    public static Props Props(WebSocket socket, IActorRef region, string node, ConnectionMetrics metrics, int maxBytes,
        TaskCompletionSource done, string remote) =>
        Akka.Actor.Props.Create(() => new DeviceConnection(socket, region, node, metrics, maxBytes, done, remote));

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

        Receive<Inbound>(OnInbound);
        Receive<Refuse>(r => Refused(r.Reason, r.Detail));
        Receive<SendFrame>(f => _outbound.Writer.TryWrite(f));
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

    private void OnInbound(Inbound i)
    {
        if (i.Error is { } err)
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
        switch (i.Message)
        {
            case ConnectMessage c:
                if (!Rules.IsDeviceId(c.DeviceId)) { Refused("invalid_device_id", Rules.CheckDeviceId("device_id", c.DeviceId)!); return; }
                if (c.Gateway?.Select(g => Rules.CheckGwId("gateway.gw_id", g.GwId)).FirstOrDefault(e => e is not null) is { } gwProblem)
                { Refused("invalid_gw_id", gwProblem); return; }
                if (_deviceId is not null && _deviceId != c.DeviceId)
                { Refused("device_id_mismatch", $"connect names '{c.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                _deviceId = c.DeviceId!;
                _region.Tell(new DeviceConnect(_deviceId, c, Self, _node));
                break;
            case HeartbeatMessage h:
                if (_deviceId is null) { Refused("before_connect", "heartbeat before connect"); return; }
                if (h.DeviceId != _deviceId)
                { Refused("device_id_mismatch", $"heartbeat names '{h.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                if (h.Gateway?.Select(g => Rules.CheckGwId("gateway.gw_id", g.GwId)).FirstOrDefault(e => e is not null) is { } hbGw)
                { Refused("invalid_gw_id", hbGw); return; }
                _metrics.Heartbeat();
                _region.Tell(new DeviceHeartbeat(_deviceId, h, Self, _node));
                break;
            case IDeviceResponse r:
                if (_deviceId is null) { Refused("before_connect", $"{r.Type} before connect"); return; }
                _region.Tell(new DeviceAnswer(_deviceId, i.Json!, Self));
                break;
        }
    }

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
                    self.Tell(new Refuse("binary", "binary frames are not part of the protocol"));
                else if (tooLarge)
                    self.Tell(new Refuse("too_large", $"frame over {_maxBytes} bytes"));
                else
                {
                    var decoded = ProtocolCodec.DecodeFromDevice(message.AsSpan());
                    var json = decoded.Message is IDeviceResponse ? Encoding.UTF8.GetString(message) : null;
                    self.Tell(new Inbound(decoded.Message, decoded.Error, json));
                }
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
