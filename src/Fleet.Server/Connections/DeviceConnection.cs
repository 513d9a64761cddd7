using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Fleet.Protocol;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;

namespace Fleet.Server.Connections;

/// <summary>
/// One device socket. Its read loop (zero-byte receives while idle, pooled buffers while reading)
/// decodes frames with the device's dialect, binds the socket to the device_id of the first connect and
/// forwards only what belongs to that device, typed; the actor is the socket's address for the device
/// entity (replies, requests, close), and encodes what the entity sends in the device's dialect. Writes
/// go through one queue so frames never interleave.
/// A heartbeat that reports what the previous one reported is answered here with the entity's last
/// reply (the entity pushes a new one whenever its answer would change) and only told to the entity,
/// so the common case costs no round trip through the shard.
/// </summary>
public sealed class DeviceConnection : UntypedActor
{
    private sealed record SocketEnded(string Reason);

    /// <summary>A frame waiting to be written; CommandId set when the entity wants to hear it was written.</summary>
    private sealed record Outgoing(byte[] Frame, string? CommandId = null, bool AnswerExpected = false);

    /// <summary>The entity's latest reply to reports, and its frame once encoded (when the dialect allows reuse).</summary>
    private sealed class CachedReply(ReportReply reply)
    {
        public ReportReply Reply { get; } = reply;
        public Outgoing? Frame;
    }

    private readonly WebSocket _socket;
    private readonly ConnectionContext _shared;
    private readonly IDeviceDialect _dialect = TypeDialect.Seed;
    private readonly TaskCompletionSource _done;
    private readonly string _remote;
    private readonly CancellationTokenSource _cts = new();
    // Frames waiting to be written and the drain writing them, under _writeLock. A queue allocated on
    // first use instead of a Channel and a write loop per socket (about 1 KB less per router).
    private readonly object _writeLock = new(); // not System.Threading.Lock: 120 B per router

    private Queue<Outgoing>? _pending;
    private bool _drainRunning;
    private Task _draining = Task.CompletedTask;
    private bool _writeFailed;
    private IActorRef _self = ActorRefs.Nobody;
    // Written by the read loop only; read by the actor (PostStop, logs).
    private volatile string? _deviceId;
    // The parts of the last report the entity keeps (not the whole message).
    private bool _reported;
    private DeviceInfo? _lastInfo;
    private IReadOnlyList<GatewayReport>? _lastGateways;
    // The entity's latest reply to reports; set by the actor, read by the read loop.
    private volatile CachedReply? _reply;
    // The report forwarded to the entity whose reply is due (some dialects echo something of it).
    private volatile DeviceReport? _awaitingReply;
    private Task _reading = Task.CompletedTask;
    private (WebSocketCloseStatus Status, string Reason) _close = (WebSocketCloseStatus.NormalClosure, "connection closed");

    private IActorRef Region => _shared.Region;
    private ILoggingAdapter Log => _shared.Log;

    public static Props Props(WebSocket socket, ConnectionContext shared, TaskCompletionSource done, string remote) =>
        // Arguments, not an expression: one connection per socket, and expressions are compiled per call.
        Akka.Actor.Props.Create<DeviceConnection>(socket, shared, done, remote).WithMailbox(LightMailbox.ConfigPath);

    public DeviceConnection(WebSocket socket, ConnectionContext shared, TaskCompletionSource done, string remote)
    {
        _socket = socket;
        _shared = shared;
        _done = done;
        _remote = remote;
    }

    // An untyped actor: a ReceiveActor builds its match tables per instance, and there is one per router.
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case ReplyToReport r:
                var report = _awaitingReply;
                _awaitingReply = null;
                _reply = new CachedReply(r.Reply);
                Write(new Outgoing(report is null ? _dialect.EncodeModes(r.Reply) : _dialect.EncodeReply(report, r.Reply)));
                break;
            case AuthModesChanged m:
                _reply = new CachedReply(m.Reply);
                Write(new Outgoing(_dialect.EncodeModes(m.Reply)));
                break;
            case DeliverRequest d:
                Write(new Outgoing(_dialect.EncodeRequest(d.Request), d.CommandId, _dialect.Answers(d.Request.Type)));
                break;
            case CloseConnection c:
                Log.Info("closing {0} ({1}): {2}", _deviceId, _remote, c.Reason);
                _close = (WebSocketCloseStatus.PolicyViolation, c.Reason);
                Context.Stop(Self);
                break;
            case SocketEnded e:
                Log.Debug("socket of {0} ({1}) ended: {2}", _deviceId ?? "unbound", _remote, e.Reason);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PreStart()
    {
        var self = _self = Self;
        _reading = Task.Run(() => ReadLoop(self));
    }

    protected override void PostStop()
    {
        if (_deviceId is not null) Region.Tell(new ConnectionClosed(_deviceId, Self));
        _ = Shutdown();
    }

    /// <summary>Close frame first (with the reason), then stop the loops; the HTTP request ends last.</summary>
    private async Task Shutdown()
    {
        Task draining;
        lock (_writeLock) { draining = _draining; _writeFailed = true; } // nothing more is written after this
        // The close frame must not overlap a frame being written (one send at a time on a WebSocket).
        await Task.WhenAny(draining, Task.Delay(TimeSpan.FromSeconds(2)));
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
    private void OnFrame(IActorRef self, DeviceFrame frame)
    {
        if (frame.Error is { } err)
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
        switch (frame.Report)
        {
            case ConnectMessage c:
                if (!FieldRules.IsDeviceId(c.DeviceId)) { Refused("invalid_device_id", FieldRules.CheckDeviceId("device_id", c.DeviceId)!); return; }
                if (GatewayProblem(c) is { } gwProblem) { Refused("invalid_gw_id", gwProblem); return; }
                if (_deviceId is not null && _deviceId != c.DeviceId)
                { Refused("device_id_mismatch", $"connect names '{c.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                _deviceId = c.DeviceId!;
                Remember(c);
                _awaitingReply = c;
                Region.Tell(new DeviceConnect(_deviceId, c, self, _shared.Node), self);
                return;
            case HeartbeatMessage h:
                if (_deviceId is null) { Refused("before_connect", "heartbeat before connect"); return; }
                if (h.DeviceId != _deviceId)
                { Refused("device_id_mismatch", $"heartbeat names '{h.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                if (GatewayProblem(h) is { } hbGw) { Refused("invalid_gw_id", hbGw); return; }
                _shared.Metrics.Heartbeat();
                var same = SameReport(h);
                var cached = same ? _reply : null;
                if (cached is not null)
                    Write(_dialect.ReplyIsReusable
                        ? cached.Frame ??= new Outgoing(_dialect.EncodeReply(h, cached.Reply))
                        : new Outgoing(_dialect.EncodeReply(h, cached.Reply)));
                else _awaitingReply = h;
                // Keep the older (equal) report: holding each new heartbeat until the next one promotes
                // every heartbeat out of gen 0, and gen 2 collections are what stall all sockets at once.
                if (!same) Remember(h);
                Region.Tell(new DeviceHeartbeat(_deviceId, h, self, _shared.Node, ReplyWanted: cached is null), self);
                return;
        }
        if (frame.Answer is { } answer)
        {
            if (_deviceId is null) { Refused("before_connect", $"{answer.Type} before connect"); return; }
            Region.Tell(new AnswerReceived(_deviceId, answer, self), self);
        }
    }

    // A plain loop: this runs for every heartbeat.
    private static string? GatewayProblem(DeviceReport r)
    {
        if (r.Gateway is null) return null;
        foreach (var g in r.Gateway)
            if (!FieldRules.IsGwId(g.GwId)) return FieldRules.CheckGwId("gateway.gw_id", g.GwId);
        return null;
    }

    /// <summary>Same gateways and device_info as the last report (the only parts the entity keeps).</summary>
    private bool SameReport(DeviceReport now) =>
        _reported && Equals(now.DeviceInfo, _lastInfo) && SameGateways(now.Gateway, _lastGateways);

    // A plain loop: this runs for every heartbeat (SequenceEqual would allocate enumerators).
    private static bool SameGateways(IReadOnlyList<GatewayReport>? a, IReadOnlyList<GatewayReport>? b)
    {
        var n = a?.Count ?? 0;
        if (n != (b?.Count ?? 0)) return false;
        for (var i = 0; i < n; i++)
            if (!Equals(a![i], b![i])) return false;
        return true;
    }

    private void Remember(DeviceReport r)
    {
        _reported = true;
        _lastInfo = r.DeviceInfo;
        _lastGateways = r.Gateway;
    }

    private void Refused(string reason, string detail)
    {
        _shared.Metrics.Refused(reason);
        Log.Warning("refused frame from {0} ({1}): {2}: {3}", _deviceId ?? "unbound socket", _remote, reason, detail);
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
                _shared.Metrics.FrameIn();
                if (type == WebSocketMessageType.Binary)
                    Refused("binary", "binary frames are not part of the protocol");
                else if (tooLarge)
                    Refused("too_large", $"frame over {_shared.MaxMessageBytes} bytes");
                else
                    OnFrame(self, _dialect.Decode(message));
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
                    if (length > _shared.MaxMessageBytes) tooLarge = true;
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

    /// <summary>
    /// Queues a frame and starts a drain if none runs. Called by the actor and by the read loop (cached
    /// heartbeat replies); the drain starts on the caller's thread, so a frame the kernel takes at once
    /// is written without a hop.
    /// </summary>
    private void Write(Outgoing f)
    {
        lock (_writeLock)
        {
            if (!_writeFailed)
            {
                (_pending ??= new Queue<Outgoing>(2)).Enqueue(f);
                if (_drainRunning) return;
                _drainRunning = true;
                _draining = Drain();
                return;
            }
        }
        if (f.CommandId is not null) Region.Tell(new FrameNotWritten(_deviceId!, f.CommandId));
    }

    private async Task Drain()
    {
        await Task.Yield(); // out of the caller's lock; the first frame follows at once
        while (true)
        {
            Outgoing f;
            lock (_writeLock)
            {
                if (_pending is null || !_pending.TryDequeue(out f!))
                {
                    _pending = null; // idle sockets hold no queue…
                    _drainRunning = false;
                    _draining = Task.CompletedTask; // …and no finished drain
                    return;
                }
            }
            try
            {
                await _socket.SendAsync(f.Frame, WebSocketMessageType.Text, true, _cts.Token);
                _shared.Metrics.FrameOut();
                if (f.CommandId is not null) Region.Tell(new FrameWritten(_deviceId!, f.CommandId, f.AnswerExpected));
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                List<Outgoing> lost = [f];
                lock (_writeLock)
                {
                    _writeFailed = true;
                    _drainRunning = false;
                    _draining = Task.CompletedTask;
                    if (_pending is not null) lost.AddRange(_pending);
                    _pending = null;
                }
                // Nothing still queued will be written either.
                foreach (var l in lost)
                    if (l.CommandId is not null) Region.Tell(new FrameNotWritten(_deviceId!, l.CommandId));
                _self.Tell(new SocketEnded($"write failed: {ex.Message}"));
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

/// <summary>What every device connection of a node shares: the shard region, the node's name, metrics, limits, the log (one object, not one copy per socket).</summary>
public sealed record ConnectionContext(IActorRef Region, string Node, ConnectionMetrics Metrics, int MaxMessageBytes, ILoggingAdapter Log);
