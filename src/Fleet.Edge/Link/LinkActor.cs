using System.Collections.Immutable;
using System.Net.WebSockets;
using Akka.Actor;
using Akka.Event;
using Fleet.Protocol;

namespace Fleet.Edge.Link;

/// <summary>What the link reports about this router in connect and heartbeat frames.</summary>
public sealed record DeviceIdentity(string DeviceId, DeviceInfo? DeviceInfo, IReadOnlyList<GatewayReport> Gateways);

/// <summary>
/// Holds the WebSocket to the controller. Sends connect on open and a heartbeat every interval,
/// reconnects after any loss (see <see cref="ReconnectPolicy"/>), and routes every decoded request
/// to the actor that owns it: portal requests to the firewall actor, the rest to the router actor.
/// Answers come back as <see cref="SendToController"/>. Frames that cannot be decoded are logged and, when
/// the request can be told from them, answered with the error the firmware would give.
/// </summary>
public sealed class LinkActor : UntypedActor, IWithTimers
{
    /// <summary>Frames are small JSON; anything larger is garbage or an attack, not a request.</summary>
    public const int MaxFrameBytes = 64 * 1024;

    /// <summary>The agent answers as the 2025 firmware does: req_id echoed, request_error for unknown types.</summary>
    private const FirmwareEra Era = FirmwareEra.V2025;

    private sealed record ConnectNow;
    private sealed record Opened(ClientWebSocket Socket, int Generation);
    private sealed record ConnectFailed(Exception Error, int Generation);
    private sealed record FrameReceived(byte[] Data, int Generation);
    private sealed record Dropped(DropReason Reason, string Detail, int Generation);
    private sealed record SendHeartbeat;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Uri _url;
    private readonly DeviceIdentity _identity;
    private readonly LinkTimings _timings;
    private readonly IActorRef _firewall;
    private readonly IActorRef _router;
    private readonly Random _random = new();
    private ImmutableSortedDictionary<string, int> _authModes = ImmutableSortedDictionary<string, int>.Empty;
    private ClientWebSocket? _socket;
    private CancellationTokenSource? _socketCts;
    private int _generation;
    private int _failures;

    public ITimerScheduler Timers { get; set; } = null!;

    public LinkActor(Uri url, DeviceIdentity identity, LinkTimings timings, IActorRef firewall, IActorRef router)
    {
        _url = url;
        _identity = identity;
        _timings = timings;
        _firewall = firewall;
        _router = router;
    }

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe<AuthModesChanged>(Self);
        Self.Tell(new ConnectNow());
    }

    protected override void PostStop() => CloseSocket();

    protected override void OnReceive(object message) => Disconnected(message);

    /// <returns>Whether the message was one every state handles the same way.</returns>
    private bool HandledInEveryState(object message)
    {
        switch (message)
        {
            case AuthModesChanged m: _authModes = m.AuthModes; return true;
            // Late events of a socket already given up.
            case FrameReceived m when m.Generation != _generation: return true;
            case Dropped m when m.Generation != _generation: return true;
            case Opened m when m.Generation != _generation: m.Socket.Dispose(); return true;
            case ConnectFailed m when m.Generation != _generation: return true;
            default: return false;
        }
    }

    private void Disconnected(object message)
    {
        if (HandledInEveryState(message)) return;
        switch (message)
        {
            case ConnectNow: Connect(); break;
            case Opened m: OnOpened(m.Socket); break;
            case ConnectFailed m: Retry(DropReason.Error, m.Error.GetBaseException().Message); break;
            // The answer to a request can outlive the socket it came on; the controller times it out.
            case SendToController m: _log.Warning("Not connected; dropping {0}", m.Frame.Type); break;
            case SendHeartbeat: break;
            default: Unhandled(message); break;
        }
    }

    private void Connected(object message)
    {
        if (HandledInEveryState(message)) return;
        switch (message)
        {
            case SendToController m: RunTask(() => Send(m.Frame)); break;
            case SendHeartbeat: RunTask(() => Send(Report<HeartbeatMessage>())); break;
            case FrameReceived m: Dispatch(m.Data); break;
            case Dropped m: Retry(m.Reason, m.Detail); break;
            case ConnectNow: break;
            default: Unhandled(message); break;
        }
    }

    private void Connect()
    {
        var gen = ++_generation;
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("User-Agent", "fleet-edge");
        var cts = new CancellationTokenSource(_timings.ConnectTimeout);
        _log.Info("Connecting to {0}", _url);
        socket.ConnectAsync(_url, cts.Token).ContinueWith<object>(t =>
        {
            cts.Dispose();
            if (t.IsCompletedSuccessfully) return new Opened(socket, gen);
            socket.Dispose();
            return new ConnectFailed(t.Exception?.GetBaseException() ?? new TimeoutException("connect timed out"), gen);
        }, TaskScheduler.Default).PipeTo(Self);
    }

    private void OnOpened(ClientWebSocket socket)
    {
        _socket = socket;
        _socketCts = new CancellationTokenSource();
        _failures = 0;
        _log.Info("Connected to {0}", _url);
        Become(Connected);
        // connect is queued before the receive loop starts, so it is the first frame whatever arrives.
        Self.Tell(new SendToController(Report<ConnectMessage>()));
        _ = ReceiveLoop(socket, Self, _generation, _socketCts.Token);
        Timers.StartPeriodicTimer("heartbeat", new SendHeartbeat(), _timings.HeartbeatInterval);
    }

    private void Retry(DropReason reason, string detail)
    {
        CloseSocket();
        _generation++;
        _failures++;
        var delay = ReconnectPolicy.Delay(_timings, reason, _failures, _random.NextDouble());
        _log.Warning("Link lost ({0}: {1}); attempt {2} in {3:0.0} s", reason, detail, _failures, delay.TotalSeconds);
        Timers.Cancel("heartbeat");
        Timers.StartSingleTimer("reconnect", new ConnectNow(), delay);
        Become(Disconnected);
    }

    private void CloseSocket()
    {
        _socketCts?.Cancel();
        _socketCts?.Dispose();
        _socketCts = null;
        _socket?.Abort();
        _socket?.Dispose();
        _socket = null;
    }

    private T Report<T>() where T : DeviceReport, new() => new()
    {
        DeviceId = _identity.DeviceId,
        DeviceInfo = _identity.DeviceInfo,
        Gateway = _identity.Gateways
            .Select(g => _authModes.TryGetValue(g.GwId!, out var m) ? g with { AuthMode = m } : g)
            .ToList(),
    };

    private async Task Send(IDeviceFrame message)
    {
        if (_socket is not { State: WebSocketState.Open } socket) return;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.SendAsync(ProtocolCodec.Encode(message), WebSocketMessageType.Text, true, cts.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            Self.Tell(new Dropped(DropReason.Error, "send failed: " + ex.Message, _generation));
        }
    }

    private void Dispatch(byte[] frame)
    {
        var decoded = ProtocolCodec.DecodeFromController(frame);
        if (decoded.Error is { } error) { AnswerUndecodable(error); return; }
        switch (decoded.Message)
        {
            case ReportReply or AuthRequest or KickoffRequest or TmpPassRequest:
                _firewall.Tell(decoded.Message);
                break;
            case FirmwareUpgradeRequest:
            case SimpleRequest { Type: "get_firmware_info" or "get_sys_info" or "reboot_device" }:
                _router.Tell(decoded.Message);
                break;
            case IControllerRequest other:
                _log.Warning("Unsupported request {0}", other.Type);
                if (FirmwareAnswers.UnknownRequest(Era, other.Type, other.ReqId) is { } unknown) Self.Tell(new SendToController(unknown));
                break;
        }
    }

    /// <summary>The answer a request that failed to decode gets, in the firmware's terms where it has one.</summary>
    private void AnswerUndecodable(DecodeError e)
    {
        _log.Warning("Bad frame from controller: {0}", e.Message);
        if (FirmwareAnswers.ToBadFrame(Era, e) is { } reply) Self.Tell(new SendToController(reply));
    }

    private static async Task ReceiveLoop(ClientWebSocket socket, IActorRef self, int gen, CancellationToken ct)
    {
        var buffer = new byte[4096];
        using var frame = new MemoryStream();
        try
        {
            while (true)
            {
                var r = await socket.ReceiveAsync(buffer, ct);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    try { await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, ct); }
                    catch (Exception ex) when (ex is WebSocketException or OperationCanceledException) { }
                    self.Tell(new Dropped(DropReason.ServerClose, $"close frame {r.CloseStatus} {r.CloseStatusDescription}", gen));
                    return;
                }
                if (frame.Length + r.Count <= MaxFrameBytes) frame.Write(buffer, 0, r.Count);
                else frame.SetLength(MaxFrameBytes + 1);
                if (!r.EndOfMessage) continue;
                // An oversized frame is passed on truncated: it fails to decode and is logged as garbage.
                self.Tell(new FrameReceived(frame.ToArray(), gen));
                frame.SetLength(0);
            }
        }
        catch (OperationCanceledException) { }
        catch (WebSocketException ex) when (ex.WebSocketErrorCode == WebSocketError.ConnectionClosedPrematurely)
        {
            self.Tell(new Dropped(DropReason.Eof, "connection closed without a close frame", gen));
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException)
        {
            self.Tell(new Dropped(DropReason.Error, ex.GetBaseException().Message, gen));
        }
    }

    public static Props Props(Uri url, DeviceIdentity identity, LinkTimings timings, IActorRef firewall, IActorRef router) =>
        Actors.Of(() => new LinkActor(url, identity, timings, firewall, router));
}
