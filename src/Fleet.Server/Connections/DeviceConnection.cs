using System.Buffers;
using System.Net.WebSockets;
using Akka.Actor;
using Akka.Event;
using Fleet.Protocol;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Fleet.Server.Security;

namespace Fleet.Server.Connections;

/// <summary>
/// One device socket. Its read loop (zero-byte receives while idle, pooled buffers while reading) learns
/// the device's dialect from its first frame, decodes every frame with it, binds the socket to the
/// device_id of the first connect and forwards only what belongs to that device, typed; the actor is the
/// socket's address for the device entity (replies, requests, close) and encodes what the entity sends in
/// the device's dialect.
/// <para>
/// Writes go through one queue, paced for the real client's reader (EXTENSIONS.md, "How it reads"): it
/// handles only the first frame of each read and wedges on 1,024 bytes. So at most one frame is in flight:
/// after a request the device answers, the next frame waits for that answer (or the request's timeout);
/// after any other frame it waits <see cref="ConnectionContext.FramePause"/>. No frame over
/// <see cref="ReaderLimits.MaxPayloadBytes"/> is written, no WebSocket ping is sent, and the socket is
/// never closed with a close frame (firmware of 2025-07 to 2026-03 never reconnects after one): the TCP
/// connection is dropped instead and the device reconnects on its own.
/// </para>
/// A heartbeat that reports what the previous one reported is answered here with the entity's last
/// reply (the entity pushes a new one whenever its answer would change) and only told to the entity,
/// so the common case costs no round trip through the shard.
/// </summary>
public sealed class DeviceConnection : UntypedActor
{
    private sealed record SocketEnded(string Reason);
    /// <summary>What current firmware reports as device_id when none is configured (FIRMWARE_9.md).</summary>
    public const string UnconfiguredDeviceId = "UNKNOWN";
    /// <summary>The device sent nothing for longer than the silence limit.</summary>
    public sealed record Silent(TimeSpan For);
    /// <summary>The socket sent no valid connect within the limit after its upgrade (from the watch).</summary>
    public sealed record ConnectOverdue(TimeSpan After);
    /// <summary>The device's frames went over its rate for longer than allowed.</summary>
    private sealed record FrameFlood(TimeSpan For);
    /// <summary>A report's entity reply did not come within <see cref="EchoAfter"/>: answer it with its own modes.</summary>
    private sealed record EchoDue(DeviceReport Report);
    /// <summary>The node is stopping (SIGTERM): write no more requests, let the one in flight be answered, then close.</summary>
    private sealed record NodeStopping(TimeSpan AnswerWithin);
    /// <summary>The request in flight was answered (or its wait ran out) after <see cref="NodeStopping"/>.</summary>
    private sealed record StoppingDrained;

    /// <summary>A frame waiting to be written; CommandId set when the entity wants to hear it was written.</summary>
    /// <summary>
    /// A frame waiting to be written; CommandId set when the entity wants to hear it was written, Deadline (in
    /// Environment.TickCount64 terms) when it must not be written later than that, Routine for the reply to an
    /// unchanged heartbeat (one waiting is enough).
    /// </summary>
    private sealed record Outgoing(byte[] Frame, string? CommandId = null, bool AnswerExpected = false, string? RequestType = null,
        long Deadline = long.MaxValue, bool Routine = false);

    /// <summary>The entity's latest reply to reports, and its frame once encoded (when the dialect allows reuse).</summary>
    private sealed class CachedReply(ReportReply reply)
    {
        public ReportReply Reply { get; } = reply;
        public Outgoing? Frame;
    }

    /// <summary>The request written last, whose answer the next frame waits for.</summary>
    private sealed class AwaitedAnswer(string commandId, string type, long deadline)
    {
        public string CommandId { get; } = commandId;
        public string Type { get; } = type;
        public long Deadline { get; } = deadline;
        public TaskCompletionSource Answered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly WebSocket _socket;
    private readonly ConnectionContext _shared;
    private readonly TaskCompletionSource _done;
    private readonly string _remote;
    // What the socket showed at its upgrade (its key); the first connect is judged against it (DeviceAdmission).
    private readonly AdmissionTicket _ticket;
    private AdmissionGrant? _grant;
    private Task<bool>? _admitting;
    private readonly CancellationTokenSource _cts = new();
    // Frames waiting to be written, the drain writing them and the pacing state, under _writeLock. A queue
    // allocated on first use instead of a Channel and a write loop per socket (about 1 KB less per router).
    private readonly object _writeLock = new(); // not System.Threading.Lock: 120 B per router

    private Queue<Outgoing>? _pending;
    // A reply to an unchanged heartbeat is waiting to be written: another one adds nothing (the same
    // answer), so a device that reports faster than its reader is paced builds no backlog.
    private bool _routineReplyQueued;
    private bool _drainRunning;
    private Task _draining = Task.CompletedTask;
    private bool _writeFailed;
    // The node is stopping: requests are no longer written (the entity hears "not written" and sends them to the next socket).
    private bool _stopping;
    private AwaitedAnswer? _awaiting;
    private long _quietUntil;
    private IActorRef _self = ActorRefs.Nobody;
    // Set by the read loop from the first frame; read by the actor.
    private volatile IDeviceDialect? _dialect;
    // Written by the read loop only; read by the actor (PostStop, logs).
    private volatile string? _deviceId;
    private string? _protocol;
    // The parts of the last report the entity keeps (not the whole message).
    private bool _reported;
    private DeviceInfo? _lastInfo;
    private IReadOnlyList<GatewayReport>? _lastGateways;
    // The entity's latest reply to reports; set by the actor, read by the read loop.
    private volatile CachedReply? _reply;
    // The echo written for a report before the entity ever replied on this socket (see Echo); read by the actor.
    private volatile ReportReply? _echo;
    private Task _reading = Task.CompletedTask;
    // What the device may send (read loop only), and the frames it has earned by being sent requests it answers.
    private FrameBudget _budget;
    private int _answerCredit;
    /// <summary>Answer credits kept at most: one command is in flight at a time, a few unanswered ones may linger.</summary>
    private const int MaxAnswerCredit = 4;

    private IActorRef Region => _shared.Region;
    private ILoggingAdapter Log => _shared.Log;

    /// <summary>When the device last sent a frame (Environment.TickCount64), for the silence watch.</summary>
    public long LastFrameAt { get; private set; } = Environment.TickCount64;

    public static Props Props(WebSocket socket, ConnectionContext shared, TaskCompletionSource done, string remote, AdmissionTicket ticket) =>
        // Arguments, not an expression: one connection per socket, and expressions are compiled per call.
        Akka.Actor.Props.Create<DeviceConnection>(socket, shared, done, remote, ticket).WithMailbox(LightMailbox.ConfigPath);

    public DeviceConnection(WebSocket socket, ConnectionContext shared, TaskCompletionSource done, string remote, AdmissionTicket ticket)
    {
        _socket = socket;
        _shared = shared;
        _done = done;
        _remote = remote;
        _ticket = ticket;
    }

    // An untyped actor: a ReceiveActor builds its match tables per instance, and there is one per router.
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case ReplyToReport r when _dialect is { } dialect:
                var echoed = _echo;
                _echo = null;
                _reply = new CachedReply(r.Reply);
                // The device already has this answer (the echo of its own modes, sent while its entity recovered).
                if (echoed is null || !SameModes(echoed, r.Reply))
                    WriteChecked(dialect.EncodeReply(r.ReportType, r.ReportReqId, r.Reply), "report reply", r.Routine);
                PushModesIfIgnored(dialect, r.ReportType, _lastGateways, r.Reply);
                break;
            case AuthModesChanged m when _dialect is { } dialect:
                _reply = new CachedReply(m.Reply);
                WriteChecked(dialect.EncodeModes(m.Reply), "auth modes");
                break;
            case DeliverRequest d when _dialect is { } dialect:
                var frame = dialect.EncodeRequest(d.Request);
                if (frame.Length > ReaderLimits.MaxPayloadBytes)
                {
                    _shared.Metrics.FrameTooLarge();
                    Region.Tell(new FrameTooLarge(d.DeviceId, d.CommandId, frame.Length, _self));
                    break;
                }
                var deadline = Environment.TickCount64 + (long)Math.Max(0, (d.NotAfter - DateTimeOffset.UtcNow).TotalMilliseconds);
                Write(new Outgoing(frame, d.CommandId, dialect.Answers(d.Request.Type), d.Request.Type, deadline));
                break;
            case CloseConnection c:
                Log.Info("closing {0} ({1}): {2}", _deviceId, _remote, c.Reason);
                Context.Stop(Self);
                break;
            case Silent s:
                _shared.Metrics.ClosedForSilence();
                Log.Info("closing {0} ({1}): no frame for {2:0} s", _deviceId ?? "unbound socket", _remote, s.For.TotalSeconds);
                Context.Stop(Self);
                break;
            case ConnectOverdue o:
                if (_deviceId is not null) break; // bound since the watch looked
                _shared.Metrics.ClosedWithoutConnect();
                Log.Debug("closing unbound socket ({0}): no valid connect within {1:0.#} s", _remote, o.After.TotalSeconds);
                Context.Stop(Self);
                break;
            case FrameFlood f:
                _shared.Metrics.ClosedForFrameRate();
                Log.Info("closing {0} ({1}): frames over {2}/s for {3:0} s", _deviceId ?? "unbound socket", _remote,
                    _shared.Watch.Rate.PerSecond, f.For.TotalSeconds);
                Context.Stop(Self);
                break;
            case EchoDue e when _dialect is { } dialect:
                Echo(dialect, e.Report);
                break;
            case NodeStopping n:
                BeginStopping(n.AnswerWithin);
                break;
            case StoppingDrained:
                Log.Debug("closing {0} ({1}): the node is stopping", _deviceId ?? "unbound socket", _remote);
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
        _shared.Watch.Add(this);
        _reading = Task.Run(() => ReadLoop(self));
    }

    protected override void PostStop()
    {
        _shared.Watch.Remove(this);
        if (_deviceId is not null) Region.Tell(new ConnectionClosed(_deviceId, Self));
        _ = Shutdown();
    }

    /// <summary>
    /// Ends the socket; the HTTP request ends last. A close the device began is completed with a close
    /// frame; any other end drops the TCP connection without one (firmware of 2025-07 to 2026-03 never
    /// reconnects after a server close frame; every firmware reconnects after the connection drops).
    /// </summary>
    private async Task Shutdown()
    {
        Task draining;
        lock (_writeLock) { draining = _draining; _writeFailed = true; } // nothing more is written after this
        if (_socket.State == WebSocketState.CloseReceived)
        {
            // The close frame must not overlap a frame being written (one send at a time on a WebSocket).
            await Task.WhenAny(draining, Task.Delay(TimeSpan.FromSeconds(2)));
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "closed", timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
            {
            }
        }
        _socket.Abort();
        await _cts.CancelAsync();
        _done.TrySetResult();
    }

    /// <summary>Runs on the read loop, one frame at a time.</summary>
    private void OnFrame(IActorRef self, byte[] bytes)
    {
        var dialect = _dialect;
        if (dialect is null)
        {
            dialect = DeviceDialects.Detect(bytes);
            if (dialect is null)
            {
                Refused("no_dialect", "the first frame names itself with neither 'type' nor 'op'");
                return;
            }
            _dialect = dialect;
        }
        var frame = dialect.Decode(bytes);
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
        if (frame.Complaint is { } complaint)
        {
            // The device could not take a frame of ours: our protocol fault, and its way of saying it read it.
            _shared.Metrics.DeviceComplaint();
            Log.Warning("device {0} ({1}) refused a frame of ours: {2}", _deviceId ?? "unbound socket", _remote, complaint);
            Answered(null);
            return;
        }
        switch (frame.Report)
        {
            case ConnectMessage c:
                if (!FieldRules.IsDeviceId(c.DeviceId)) { Refused("invalid_device_id", FieldRules.CheckDeviceId("device_id", c.DeviceId)!); return; }
                if (c.DeviceId == UnconfiguredDeviceId)
                {
                    // 9.x firmware with no DeviceID configured: every such router would claim the same device.
                    Refused("unconfigured_device_id", "device_id is \"UNKNOWN\": the router has no DeviceID configured");
                    return;
                }
                if (GatewayProblem(c) is { } gwProblem) { Refused("invalid_gw_id", gwProblem); return; }
                if (_deviceId is not null && _deviceId != c.DeviceId)
                { Refused("device_id_mismatch", $"connect names '{c.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                if (_deviceId is null)
                {
                    _admitting = Admit(self, c, dialect);
                    return;
                }
                Remember(c);
                Region.Tell(new DeviceConnect(_deviceId, c, self, _shared.Node, ProtocolOf(dialect, c), _grant), self);
                EchoIfUnanswered(dialect, c);
                return;
            case HeartbeatMessage h:
                if (_deviceId is null) { Refused("before_connect", "heartbeat before connect"); return; }
                if (h.DeviceId != _deviceId)
                { Refused("device_id_mismatch", $"heartbeat names '{h.DeviceId}' but this socket is bound to '{_deviceId}'"); return; }
                if (GatewayProblem(h) is { } hbGw) { Refused("invalid_gw_id", hbGw); return; }
                _shared.Metrics.Heartbeat();
                var protocol = ProtocolOf(dialect, h);
                var same = SameReport(h);
                var cached = same ? _reply : null;
                if (cached is not null)
                {
                    Write(dialect.ReplyIsReusable
                        ? cached.Frame ??= new Outgoing(dialect.EncodeReply(h.Type, h.ReqId, cached.Reply), Routine: true)
                        : new Outgoing(dialect.EncodeReply(h.Type, h.ReqId, cached.Reply), Routine: true));
                    PushModesIfIgnored(dialect, h.Type, h.Gateway, cached.Reply);
                }
                // Keep the older (equal) report: holding each new heartbeat until the next one promotes
                // every heartbeat out of gen 0, and gen 2 collections are what stall all sockets at once.
                if (!same) Remember(h);
                Region.Tell(new DeviceHeartbeat(_deviceId, h, self, _shared.Node, ReplyWanted: cached is null, protocol), self);
                if (cached is null) EchoIfUnanswered(dialect, h);
                return;
        }
        if (frame.Answer is { } answer)
        {
            Answered(answer);
            if (_deviceId is null) { Refused("before_connect", $"{answer.Type} before connect"); return; }
            Region.Tell(new AnswerReceived(_deviceId, answer, self), self);
        }
    }

    /// <summary>
    /// The socket's first connect: admission decides whether this socket may claim the device_id (its key at the
    /// upgrade against the device). Refused, the socket ends here and nothing reaches the device's entity, so
    /// the device's current connection is never disturbed. Admitted, it binds as before.
    /// </summary>
    private async Task<bool> Admit(IActorRef self, ConnectMessage c, IDeviceDialect dialect)
    {
        var verdict = await _shared.Admission.AtConnectAsync(_ticket, c.DeviceId!, dialect.Name == OpDialect.DialectName, _remote, _cts.Token);
        if (verdict.Grant is not { } grant) return false; // logged and counted by admission
        _grant = grant;
        _deviceId = c.DeviceId!;
        Remember(c);
        Region.Tell(new DeviceConnect(_deviceId, c, self, _shared.Node, ProtocolOf(dialect, c), grant), self);
        // Same sender, so the entity gets it after the connect that makes the device known.
        if (verdict.HandOver is { } handOver) Region.Tell(handOver, self);
        EchoIfUnanswered(dialect, c);
        return true;
    }

    /// <summary>
    /// A report on a socket whose entity has not replied yet and does not within <see cref="EchoAfter"/> (it is
    /// recovering: a restarted node under thousands of reconnecting routers recovers them one after another) is
    /// answered with the device's own auth modes — "no change", what the entity answers unless an operator set other
    /// modes. The entity's reply follows when it comes, and is written only if it differs. The router is served in
    /// half a second instead of waiting for its entity's turn; a live entity answers first and no echo is sent.
    /// </summary>
    private void EchoIfUnanswered(IDeviceDialect dialect, DeviceReport report)
    {
        if (_reply is not null) return;
        var self = _self;
        _ = Task.Delay(EchoAfter).ContinueWith(_ => self.Tell(new EchoDue(report)), TaskScheduler.Default);
    }

    /// <summary>How long a report waits for its entity's reply before the connection answers it with an echo.</summary>
    public static readonly TimeSpan EchoAfter = TimeSpan.FromMilliseconds(500);

    private void Echo(IDeviceDialect dialect, DeviceReport report)
    {
        if (_reply is not null) return; // the entity answered in time
        var modes = new List<GatewayAuthMode>(report.Gateway?.Count ?? 0);
        if (report.Gateway is { } gateways)
            foreach (var g in gateways)
                if (g.AuthMode is { } m) modes.Add(new GatewayAuthMode { GwId = g.GwId, AuthMode = m });
        var echo = new ReportReply { Gateway = modes };
        _echo = echo;
        _shared.Metrics.ReplyEchoed();
        WriteChecked(dialect.EncodeReply(report.Type, report.ReqId, echo), "report reply (echo)", routine: true);
    }

    private static bool SameModes(ReportReply a, ReportReply b)
    {
        var n = a.Gateway?.Count ?? 0;
        if (n != (b.Gateway?.Count ?? 0)) return false;
        for (var i = 0; i < n; i++)
            if (!Equals(a.Gateway![i], b.Gateway![i])) return false;
        return true;
    }

    /// <summary>
    /// A device that ignores the auth modes in our reply to this report (the current firmware, for anything
    /// but its connect) and reports other modes than ours gets them as a frame of their own, heartbeat after
    /// heartbeat until it reports them.
    /// </summary>
    private void PushModesIfIgnored(IDeviceDialect dialect, string reportType, IReadOnlyList<GatewayReport>? reported, ReportReply reply)
    {
        if (dialect.AppliesModesFromReplyTo(reportType) || !ModesDiffer(reported, reply)) return;
        WriteChecked(dialect.EncodeModes(reply), "auth modes");
    }

    private static bool ModesDiffer(IReadOnlyList<GatewayReport>? reported, ReportReply reply)
    {
        if (reported is null || reply.Gateway is not { } wanted) return false;
        for (var i = 0; i < wanted.Count; i++)
            for (var j = 0; j < reported.Count; j++)
                if (reported[j].GwId == wanted[i].GwId && reported[j].AuthMode != wanted[i].AuthMode) return true;
        return false;
    }

    /// <summary>
    /// The protocol the device shows, never weaker than what this socket showed before: a 2025 device's
    /// connect carries nothing that tells it from a seed device, its heartbeats do.
    /// </summary>
    private string ProtocolOf(IDeviceDialect dialect, DeviceReport report)
    {
        var shown = dialect.NameFor(report);
        if (_protocol is null || (shown != TypeDialect.SeedName && shown != _protocol)) _protocol = shown;
        return _protocol;
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

    // A peer sending nothing but bad frames must not fill the log: the first refusal of a socket is logged, then at
    // most one a minute with how many went unlogged (every refusal is counted in GET /api/v1/node).
    private long _refusalLoggedAt = long.MinValue;
    private int _refusalsUnlogged;

    private long _refusalPublishedAt = long.MinValue;

    private void Refused(string reason, string detail)
    {
        _shared.Metrics.Refused(reason);
        var now = Environment.TickCount64;
        // To the event stream: a bound socket's refusals, at most one a second (an unbound socket names no device,
        // and a scanner's thousands of sockets would flood the stream).
        if (_deviceId is not null && (_refusalPublishedAt == long.MinValue || now - _refusalPublishedAt >= 1000))
        {
            _refusalPublishedAt = now;
            Events.FleetEvents.Publish(_shared.System, new Events.FleetEvent(Events.FleetEvent.FrameRefused, DateTimeOffset.UtcNow,
                _deviceId, Node: _shared.Node, Reason: reason, Detail: detail));
        }
        if (_refusalLoggedAt != long.MinValue && now - _refusalLoggedAt < 60_000)
        {
            _refusalsUnlogged++;
            return;
        }
        Log.Warning("refused frame from {0} ({1}): {2}: {3}{4}", _deviceId ?? "unbound socket", _remote, reason, detail,
            _refusalsUnlogged > 0 ? $" ({_refusalsUnlogged} more refused since the last one logged)" : "");
        _refusalLoggedAt = now;
        _refusalsUnlogged = 0;
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
                var verdict = TakeFrame(Environment.TickCount64);
                if (verdict == FrameVerdict.Close)
                {
                    self.Tell(new FrameFlood(TimeSpan.FromMilliseconds(_budget.ExcessFor(Environment.TickCount64))));
                    return;
                }
                var (message, type, tooLarge) = await ReadMessage(ct, discard: verdict == FrameVerdict.Refuse);
                if (type == WebSocketMessageType.Close) break;
                LastFrameAt = Environment.TickCount64;
                _shared.Metrics.FrameIn();
                if (verdict == FrameVerdict.Refuse)
                    RefusedOverRate(LastFrameAt);
                else if (type == WebSocketMessageType.Binary)
                    Refused("binary", "binary frames are not part of the protocol");
                else if (tooLarge)
                    Refused("too_large", $"frame over {_shared.MaxMessageBytes} bytes");
                else
                {
                    OnFrame(self, message);
                    if (_admitting is { } admitting)
                    {
                        // The socket's first connect is admitted before the next frame is read; refused, the socket ends.
                        _admitting = null;
                        if (!await admitting) { reason = "admission refused"; break; }
                    }
                }
            }
        }
        catch (OperationCanceledException) { reason = "cancelled"; }
        catch (WebSocketException ex) { reason = ex.Message; }
        catch (IOException ex) { reason = ex.Message; }
        catch (Exception ex)
        {
            // A fault of ours in handling a frame: said, and the socket dropped (the device reconnects), rather than a
            // read loop that ends unobserved and leaves the socket open and deaf.
            reason = "failed handling a frame";
            Log.Error(ex, "reading the socket of {0} ({1}) failed; dropping it", _deviceId ?? "unbound socket", _remote);
        }
        self.Tell(new SocketEnded(reason));
    }

    /// <summary>
    /// Frames over the device's rate are dropped before they are decoded (or even copied). Answers to our
    /// requests are paid for by the request: a router answering a queue of commands is never refused.
    /// </summary>
    private FrameVerdict TakeFrame(long now)
    {
        var rate = _shared.Watch.Rate;
        if (!rate.Limited) return FrameVerdict.Take;
        for (var credit = Volatile.Read(ref _answerCredit); credit > 0; credit = Volatile.Read(ref _answerCredit))
            if (Interlocked.CompareExchange(ref _answerCredit, credit - 1, credit) == credit) return FrameVerdict.Take;
        return _budget.Take(now, rate);
    }

    private void RefusedOverRate(long now)
    {
        _shared.Metrics.Refused("rate_limited");
        if (!_budget.ShouldLog(now)) return;
        Log.Warning("refusing frames from {0} ({1}): over {2}/s (burst {3}); {4} refused since the last such line (at most one a minute)",
            _deviceId ?? "unbound socket", _remote, _shared.Watch.Rate.PerSecond, _shared.Watch.Rate.Burst, _budget.RefusedSinceLog);
        _budget.Logged();
    }

    /// <summary>
    /// Reads one whole message into an exact-size array; over the limit, it is drained and flagged. With
    /// <paramref name="discard"/> it is drained and nothing is kept.
    /// </summary>
    private async Task<(byte[] Message, WebSocketMessageType Type, bool TooLarge)> ReadMessage(CancellationToken ct, bool discard = false)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        var length = 0;
        var tooLarge = false;
        var keep = !discard;
        try
        {
            while (true)
            {
                if (length == buffer.Length && !tooLarge && keep)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var r = await _socket.ReceiveAsync(tooLarge || !keep ? buffer.AsMemory() : buffer.AsMemory(length), ct);
                if (r.MessageType == WebSocketMessageType.Close) return ([], WebSocketMessageType.Close, false);
                if (!tooLarge && keep)
                {
                    length += r.Count;
                    if (length > _shared.MaxMessageBytes) tooLarge = true;
                }
                if (r.EndOfMessage)
                    return (tooLarge || !keep || r.MessageType == WebSocketMessageType.Binary ? [] : buffer.AsSpan(0, length).ToArray(), r.MessageType, tooLarge);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A frame the entity did not count on (replies, auth modes): refused when the device could not read it.</summary>
    private void WriteChecked(byte[] frame, string what, bool routine = false)
    {
        if (frame.Length <= ReaderLimits.MaxPayloadBytes)
        {
            Write(new Outgoing(frame, Routine: routine));
            return;
        }
        _shared.Metrics.FrameTooLarge();
        Log.Error("not sending {0} to {1}: {2} bytes, the device's reader takes at most {3}", what, _deviceId, frame.Length,
            ReaderLimits.MaxPayloadBytes);
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
            if (!_writeFailed && !(_stopping && f.CommandId is not null))
            {
                if (f.Routine && _routineReplyQueued)
                {
                    _shared.Metrics.ReplySuperseded();
                    return;
                }
                _routineReplyQueued |= f.Routine;
                (_pending ??= new Queue<Outgoing>(2)).Enqueue(f);
                if (_drainRunning) return;
                _drainRunning = true;
                _draining = Drain();
                return;
            }
        }
        if (f.CommandId is not null) Region.Tell(new FrameNotWritten(_deviceId!, f.CommandId, _self));
    }

    /// <summary>An answer (or a complaint) arrived: the frame waiting for it may go.</summary>
    private void Answered(DeviceAnswer? answer)
    {
        AwaitedAnswer? released = null;
        lock (_writeLock)
        {
            if (_awaiting is { } a && (answer is null || answer.ReqId?.Value == a.CommandId
                    || (answer.ReqId is null && (answer.RequestType == a.Type || answer.Unsupported))))
            {
                released = a;
                _awaiting = null;
            }
        }
        released?.Answered.TrySetResult();
    }

    /// <summary>Waits until the device can take the next frame: its last request answered (or timed out), the pause after anything else over.</summary>
    private async ValueTask ClearToSend()
    {
        while (true)
        {
            Task? answered;
            long wait;
            lock (_writeLock)
            {
                var now = Environment.TickCount64;
                if (_awaiting is { } a && now >= a.Deadline) _awaiting = null;
                if (_awaiting is { } waiting)
                {
                    answered = waiting.Answered.Task;
                    wait = waiting.Deadline - now;
                }
                else if (now < _quietUntil)
                {
                    answered = null;
                    wait = _quietUntil - now;
                }
                else return;
            }
            _shared.Metrics.FrameHeld();
            if (answered is null) await Task.Delay(TimeSpan.FromMilliseconds(wait), _cts.Token);
            else await Task.WhenAny(answered, Task.Delay(TimeSpan.FromMilliseconds(wait), _cts.Token));
            _cts.Token.ThrowIfCancellationRequested();
        }
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
                if (f.Routine) _routineReplyQueued = false;
            }
            try
            {
                await ClearToSend();
                if (Environment.TickCount64 > f.Deadline)
                {
                    // The device was still busy with earlier frames until this command's deadline: written now,
                    // it would run after the controller has called it timed out.
                    _shared.Metrics.FrameExpired();
                    Region.Tell(new FrameExpired(_deviceId!, f.CommandId!, _self));
                    continue;
                }
                bool handBack;
                lock (_writeLock)
                {
                    // The node began stopping while this request waited its turn: the next socket gets it.
                    handBack = f.CommandId is not null && _stopping;
                    // Awaited before it is written: on loopback the answer can beat the end of SendAsync.
                    if (!handBack && f.AnswerExpected)
                        _awaiting = new AwaitedAnswer(f.CommandId!, f.RequestType!, Math.Max(f.Deadline, Environment.TickCount64 + 1000));
                }
                if (handBack)
                {
                    Region.Tell(new FrameNotWritten(_deviceId!, f.CommandId!, _self));
                    continue;
                }
                if (f.AnswerExpected && Volatile.Read(ref _answerCredit) < MaxAnswerCredit)
                    Interlocked.Increment(ref _answerCredit); // its answer is not the device's to pay for
                await _socket.SendAsync(f.Frame, WebSocketMessageType.Text, true, _cts.Token);
                _shared.Metrics.FrameOut();
                if (!f.AnswerExpected)
                    lock (_writeLock)
                        _quietUntil = Environment.TickCount64 + _shared.FramePauseMs;
                if (f.CommandId is not null) Region.Tell(new FrameWritten(_deviceId!, f.CommandId, f.AnswerExpected, _self));
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
                    _routineReplyQueued = false;
                }
                // Nothing still queued will be written either.
                foreach (var l in lost)
                    if (l.CommandId is not null) Region.Tell(new FrameNotWritten(_deviceId!, l.CommandId, _self));
                _self.Tell(new SocketEnded($"write failed: {ex.Message}"));
                return;
            }
        }
    }

    /// <summary>
    /// The node is stopping: the requests still queued are handed back (not written), the one being written finishes,
    /// the one written last gets up to <paramref name="answerWithin"/> for its answer, then the socket closes — while
    /// the shard region still carries what this connection tells its entity (written, answered, closed). The device
    /// reconnects to another node and gets what was handed back there.
    /// </summary>
    private void BeginStopping(TimeSpan answerWithin)
    {
        List<string> handedBack = [];
        Task draining;
        lock (_writeLock)
        {
            if (_stopping) return;
            _stopping = true;
            if (_pending is not null)
            {
                var kept = new Queue<Outgoing>(_pending.Count);
                foreach (var f in _pending)
                    if (f.CommandId is null) kept.Enqueue(f);
                    else handedBack.Add(f.CommandId);
                _pending = kept;
            }
            draining = _draining;
        }
        // First, so the entity sends nothing more here (not even after the answer this socket still waits for).
        if (_deviceId is { } deviceId) Region.Tell(new ConnectionDraining(deviceId, _self), _self);
        foreach (var id in handedBack) Region.Tell(new FrameNotWritten(_deviceId!, id, _self));
        var self = _self;
        Task.WhenAny(Drained(draining), Task.Delay(answerWithin))
            .ContinueWith(_ => self.Tell(new StoppingDrained()), TaskScheduler.Default);
    }

    /// <summary>The frame being written is out, and the request written last (if any) answered.</summary>
    private async Task Drained(Task draining)
    {
        await draining;
        Task answered;
        lock (_writeLock) answered = _awaiting?.Answered.Task ?? Task.CompletedTask;
        await answered;
    }

    /// <summary>Called when the node begins to stop (<see cref="NodeStopping"/>); completes when the socket has closed.</summary>
    internal Task TellNodeStopping(TimeSpan answerWithin)
    {
        _self.Tell(new NodeStopping(answerWithin));
        return _done.Task;
    }

    /// <summary>Called by the silence watch.</summary>
    internal void TellSilent(TimeSpan silentFor) => _self.Tell(new Silent(silentFor));

    /// <summary>Called by the watch when the socket has sent no valid connect in time.</summary>
    internal void TellConnectOverdue(TimeSpan after) => _self.Tell(new ConnectOverdue(after));

    /// <summary>The socket is bound to a device (its first valid connect arrived).</summary>
    internal bool Bound => _deviceId is not null;

    internal string Remote => _remote;
}

/// <summary>
/// What every device connection of a node shares: the shard region, the node's name, metrics, limits,
/// the silence watch, the log (one object, not one copy per socket).
/// </summary>
public sealed record ConnectionContext(IActorRef Region, string Node, ConnectionMetrics Metrics, int MaxMessageBytes,
    int FramePauseMs, SilenceWatch Watch, ILoggingAdapter Log, DeviceAdmission Admission, ActorSystem System);
