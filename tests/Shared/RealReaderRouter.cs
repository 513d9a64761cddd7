using System.Text;
using Fleet.Protocol;
using Fleet.Simulator;

namespace Fleet.Testing;

/// <summary>What kind of loss a <see cref="RealReaderRouter"/> recorded.</summary>
public enum RouterLossKind
{
    /// <summary>A frame the reader never handled (behind the first of a read, incomplete, with the 101, while deaf).</summary>
    LostFrame,
    /// <summary>A read of 1,024 bytes or more: the connection is deaf from then on (the firmware keeps heartbeating).</summary>
    Wedged,
    /// <summary>The rest of a split frame was read as a frame header.</summary>
    Misread,
    /// <summary>A WebSocket ping: the firmware never needs one, a seed router never answers it, and a frame behind it is lost.</summary>
    Ping,
    /// <summary>A WebSocket close frame: seed ignores it, 2025 goes offline for good, 9 reconnects in 3 s.</summary>
    CloseFrame,
    /// <summary>A pong, binary, continuation or unknown-opcode frame: nothing a controller should send.</summary>
    OtherFrame,
    /// <summary>The upgrade reply was refused (wrong status or accept, cut in two).</summary>
    BadUpgrade,
}

/// <summary>One loss with what could be read of it; <see cref="Connection"/> counts from 1.</summary>
public sealed record RouterLoss(RouterLossKind Kind, string Detail, int Connection, FrameLoss? Frame = null)
{
    public override string ToString() => $"[connection {Connection}] {Kind}: {Detail}";
}

/// <summary>A request the router received (in order), held or handled.</summary>
/// <param name="Name">Its type (seed/2025) or op (9).</param>
public sealed record ReceivedRequest(string Name, ReqId? ReqId, IControllerFrame Request, int Connection);

/// <summary>An answer the router sent to a request.</summary>
/// <param name="Type">The answer's type (9: data.type); <see cref="Error"/> null when it reports success.</param>
public sealed record SentAnswer(string RequestName, ReqId? ReqId, string Type, string? Error, string Json, int Connection);

/// <summary>
/// A reply to one of the router's reports ("connect", "heartbeat"), or a 9.x <c>gateway_heartbeat</c>: the modes
/// it carried, whether the firmware takes them (<see cref="Applied"/>: 9.x ignores heartbeat replies) and
/// whether that changed a gateway.
/// </summary>
public sealed record ReceivedReply(string Name, IReadOnlyList<GatewayAuthMode> Modes, bool Applied, bool Changed, int Connection);

/// <summary>A text frame the router could not use: what it answered (9.x: a 400 or an error), or null when it dropped it.</summary>
public sealed record RefusedFrame(string Name, string Detail, string? AnswerJson, int Connection);

/// <summary>
/// One pretend router of a chosen firmware era (seed, 2025, 9) over the simulator's real-reader client
/// (<see cref="FirmwareClient"/>): it reads exactly like the firmware (one frame per read, 1,024-byte
/// buffer, partial frames dropped), reports connect and heartbeats (every <see cref="HeartbeatEvery"/>, or now
/// with <see cref="HeartbeatNowAsync"/>), answers requests as its firmware does (<see cref="SimulatedDevice"/>
/// through <see cref="FirmwareAnswers"/>) or holds them (<see cref="Hold"/>, <see cref="ReleaseAsync"/>),
/// takes auth modes as its firmware does (seed/2025 from any report reply; 9 from connect replies and
/// gateway_heartbeat), and reconnects as its firmware does (<see cref="Delays"/>). Everything it received is
/// kept; every loss (a lost frame, a wedge, a ping or close frame) is recorded with detail.
/// <see cref="AssertNoLoss"/> throws with the details, and so does disposing it after a loss unless
/// <see cref="ExpectLoss"/> is set: a router that lost something fails the test.
/// </summary>
/// <example>
/// <code>
/// await using var router = new RealReaderRouter(node.WebSocketUri(), "r-1", FirmwareEra.V9) { HeartbeatEvery = TimeSpan.FromSeconds(1) }.Start();
/// await router.WaitConnectedAsync();
/// var requests = await router.WaitForRequestsAsync(3);
/// await router.WaitForAnswersAsync(3);
/// router.AssertNoLoss();
/// </code>
/// </example>
public sealed class RealReaderRouter : IAsyncDisposable, IFirmwareObserver
{
    private readonly object _lock = new();
    private readonly List<RouterLoss> _losses = [];
    private readonly List<ReceivedRequest> _requests = [];
    private readonly List<SentAnswer> _answers = [];
    private readonly List<ReceivedReply> _replies = [];
    private readonly List<RefusedFrame> _refused = [];
    private readonly List<string> _events = [];
    private readonly Queue<RouterInbound> _held = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _draining = new(1, 1);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private FirmwareClient? _client;
    private Task _loop = Task.CompletedTask;
    private int _connections, _heartbeats;
    private volatile bool _hold;

    public RealReaderRouter(Uri url, string deviceId, FirmwareEra era, int gateways = 1)
    {
        Url = url;
        Device = new SimulatedDevice(deviceId, era, gateways);
    }

    // ------------------------------------------------------------------ settings (before Start)

    public Uri Url { get; }
    /// <summary>The firmware's is 60 s, the first one a full interval after connect.</summary>
    public TimeSpan HeartbeatEvery { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>The firmware's by default: 5 s after EOF, 2 s after errors, 3 s after a close frame (9), 5 s after a reboot or <see cref="Drop"/>.</summary>
    public ReconnectDelays Delays { get; init; } = ReconnectDelays.Firmware;
    /// <summary>The router's event loop is busy this many ms after each frame it handles: frames arriving meanwhile are read together (and all but the first lost).</summary>
    public int WorkMs { get; init; }
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Set by a test that provokes losses on purpose: disposing then does not throw.</summary>
    public bool ExpectLoss { get; set; }

    // ------------------------------------------------------------------ what it is and has

    /// <summary>The router's state (clients, gateways, device info) and answering logic.</summary>
    public SimulatedDevice Device { get; }
    public string DeviceId => Device.DeviceId;
    public FirmwareEra Era => Device.Era;
    /// <summary>"seed", "2025" or "9".</summary>
    public string Dialect => Device.Dialect.Name;
    /// <summary>The client under it (null before <see cref="Start"/>).</summary>
    public FirmwareClient? Client => _client;

    /// <summary>Upgrades accepted so far (each followed by a connect report).</summary>
    public int Connections => Volatile.Read(ref _connections);
    public bool Connected => _client?.Connected ?? false;
    /// <summary>A 2025 router that got a close frame: offline until its wifidog restarts (never, here).</summary>
    public bool OfflineForGood => _client?.OfflineForGood ?? false;
    /// <summary>The current connection is deaf since an overflow.</summary>
    public bool Wedged => _client?.Wedged ?? false;
    /// <summary>Frames the reader handled over all connections (for a controller's pacing, see <c>FakeControllerOptions.AwaitRead</c>).</summary>
    public long FramesHandled => _client?.FramesHandledTotal ?? 0;
    public int HeartbeatsSent => Volatile.Read(ref _heartbeats);

    public IReadOnlyList<RouterLoss> Losses { get { lock (_lock) return [.. _losses]; } }
    public IReadOnlyList<ReceivedRequest> Requests { get { lock (_lock) return [.. _requests]; } }
    public IReadOnlyList<SentAnswer> Answers { get { lock (_lock) return [.. _answers]; } }
    public IReadOnlyList<ReceivedReply> Replies { get { lock (_lock) return [.. _replies]; } }
    public IReadOnlyList<RefusedFrame> Refused { get { lock (_lock) return [.. _refused]; } }
    /// <summary>Requests held (received, not handled yet).</summary>
    public int HeldCount { get { lock (_lock) return _held.Count; } }
    /// <summary>A log of what happened on the wire, for failure messages.</summary>
    public IReadOnlyList<string> Events { get { lock (_lock) return [.. _events]; } }

    /// <summary>Each gateway's auth_mode now.</summary>
    public IReadOnlyDictionary<string, int> GatewayModes { get { lock (Device) return Device.Gateways.ToDictionary(g => g.GwId, g => g.AuthMode); } }
    /// <summary>The clients the router lets through now (by MAC).</summary>
    public IReadOnlyDictionary<string, SimulatedClient> Clients { get { lock (Device) return Device.Clients.ToDictionary(); } }

    /// <summary>While set, requests are received (and recorded) but not handled or answered.</summary>
    public bool Hold { get => _hold; set => _hold = value; }

    // ------------------------------------------------------------------ driving it

    /// <summary>Starts connecting (and reconnecting) in the background.</summary>
    public RealReaderRouter Start()
    {
        _client = new FirmwareClient(Device, new FirmwareClientOptions
        {
            Url = Url, Delays = Delays, ConnectTimeout = ConnectTimeout, WorkTime = TimeSpan.FromMilliseconds(WorkMs),
        }, this);
        var client = _client;
        _loop = Task.Run(() => client.RunAsync(_stop.Token));
        return this;
    }

    /// <summary>Sends a heartbeat now (the firmware's timer does it every minute); false when not connected.</summary>
    public Task<bool> HeartbeatNowAsync() => _client?.SendHeartbeatAsync(_stop.Token) ?? Task.FromResult(false);

    /// <summary>Handles and answers every held request now (in order), on the current connection, and stops holding.</summary>
    public async Task ReleaseAsync()
    {
        _hold = false;
        await DrainHeldAsync();
    }

    /// <summary>Drops the TCP connection (no close frame), as a reboot or a pulled cable does; the router comes back after <see cref="ReconnectDelays.AfterReboot"/>.</summary>
    public void Drop() => _client?.Drop("dropped by the test");

    /// <summary>Waits until <paramref name="condition"/> holds, woken by every change the router records.</summary>
    public async Task WaitForAsync(Func<RealReaderRouter, bool> condition, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            Task changed;
            lock (_lock) changed = _changed.Task;
            if (condition(this)) return;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"{DeviceId} ({Dialect}): '{what}' did not happen within {(within ?? TimeSpan.FromSeconds(20)).TotalSeconds:0.#} s. {Describe()}");
            // A change wakes it; the timeout only bounds the wait (and rechecks state the client changes without an event).
            await Task.WhenAny(changed, Task.Delay(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200), _stop.Token));
        }
    }

    public Task WaitConnectedAsync(TimeSpan? within = null, int connections = 1) =>
        WaitForAsync(r => r.Connections >= connections && r.Connected, connections == 1 ? "connected" : $"connected {connections} times", within);

    /// <summary>Waits until at least <paramref name="count"/> requests arrived; returns them all.</summary>
    public async Task<IReadOnlyList<ReceivedRequest>> WaitForRequestsAsync(int count, TimeSpan? within = null)
    {
        await WaitForAsync(r => r.Requests.Count >= count, $"{count} request(s) received", within);
        return Requests;
    }

    /// <summary>Waits until at least <paramref name="count"/> answers went out; returns them all.</summary>
    public async Task<IReadOnlyList<SentAnswer>> WaitForAnswersAsync(int count, TimeSpan? within = null)
    {
        await WaitForAsync(r => r.Answers.Count >= count, $"{count} answer(s) sent", within);
        return Answers;
    }

    /// <summary>Waits until at least <paramref name="count"/> replies (or gateway_heartbeats) arrived; returns them all.</summary>
    public async Task<IReadOnlyList<ReceivedReply>> WaitForRepliesAsync(int count, TimeSpan? within = null)
    {
        await WaitForAsync(r => r.Replies.Count >= count, $"{count} report reply(ies) received", within);
        return Replies;
    }

    /// <summary>Waits until the gateway's auth_mode is <paramref name="mode"/>.</summary>
    public Task WaitForModeAsync(string gwId, int mode, TimeSpan? within = null) =>
        WaitForAsync(r => r.GatewayModes.TryGetValue(gwId, out var m) && m == mode, $"gateway {gwId} in auth mode {mode}", within);

    /// <summary>Throws, with every loss and the wire log, if the router lost anything.</summary>
    public void AssertNoLoss()
    {
        var losses = Losses;
        if (losses.Count > 0)
            throw new Xunit.Sdk.XunitException($"{DeviceId} ({Dialect}) lost {losses.Count} thing(s):\n  " + string.Join("\n  ", losses) + "\n" + Describe());
    }

    /// <summary><see cref="AssertNoLoss"/>, and no frame refused or dropped as unusable.</summary>
    public void AssertClean()
    {
        AssertNoLoss();
        var refused = Refused;
        if (refused.Count > 0)
            throw new Xunit.Sdk.XunitException($"{DeviceId} ({Dialect}) could not use {refused.Count} frame(s):\n  " +
                string.Join("\n  ", refused.Select(r => $"[connection {r.Connection}] {r.Name}: {r.Detail}" + (r.AnswerJson is null ? " (dropped)" : $" → {r.AnswerJson}"))));
    }

    /// <summary>What the router saw, for failure messages.</summary>
    public string Describe()
    {
        lock (_lock)
            return $"connections {_connections}, connected {Connected}, requests {_requests.Count}, answers {_answers.Count}, replies {_replies.Count}, " +
                   $"held {_held.Count}, losses {_losses.Count}. Wire log:\n    " + string.Join("\n    ", _events.TakeLast(40));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { await _loop; }
        catch (OperationCanceledException) { }
        _stop.Dispose();
        if (!ExpectLoss) AssertNoLoss();
    }

    // ------------------------------------------------------------------ IFirmwareObserver

    private void Record(Action change, string? log)
    {
        TaskCompletionSource wake;
        lock (_lock)
        {
            change();
            if (log is not null)
            {
                _events.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {log}");
                if (_events.Count > 500) _events.RemoveRange(0, 100);
            }
            wake = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        wake.TrySetResult();
    }

    private void Loss(RouterLossKind kind, string detail, FrameLoss? frame = null) =>
        Record(() => _losses.Add(new RouterLoss(kind, detail, _connections, frame)), $"LOSS {kind}: {detail}");

    void IFirmwareObserver.OnConnectFailed(string reason) => Record(() => { }, "connect failed: " + reason);

    void IFirmwareObserver.OnUpgraded(long epoch)
    {
        Record(() => _connections++, "upgraded, connect sent");
        _ = HeartbeatsAsync(epoch);
        if (!_hold) _ = DrainHeldAsync();
    }

    void IFirmwareObserver.OnBadUpgrade(string detail) => Loss(RouterLossKind.BadUpgrade, detail);

    void IFirmwareObserver.OnReportSent(bool heartbeat)
    {
        if (heartbeat) Record(() => _heartbeats++, "heartbeat sent");
    }

    void IFirmwareObserver.OnSendError(string reason) => Record(() => { }, "send error: " + reason);

    void IFirmwareObserver.OnLoss(FrameLoss loss) => Loss(RouterLossKind.LostFrame, loss.ToString(), loss);

    void IFirmwareObserver.OnWedged(int bytes) =>
        Loss(RouterLossKind.Wedged, $"a read of {bytes} bytes (≥ 1024): Input buffer overflow, the connection is deaf from now on");

    void IFirmwareObserver.OnMisread(int opcode, int bytes) =>
        Loss(RouterLossKind.Misread, $"a read of {bytes} bytes began inside a split frame: its rest was taken for a {Opcodes.Name(opcode)} frame");

    void IFirmwareObserver.OnControlFrame(int opcode, bool answered, string detail) =>
        Loss(opcode switch { Opcodes.Ping => RouterLossKind.Ping, Opcodes.Close => RouterLossKind.CloseFrame, _ => RouterLossKind.OtherFrame },
            $"{Opcodes.Name(opcode)}: {detail}");

    bool IFirmwareObserver.OnInbound(RouterInbound inbound)
    {
        if (inbound.Kind != InboundKind.Request)
            return true;
        var hold = _hold;
        Record(() =>
        {
            _requests.Add(new ReceivedRequest(inbound.Name, inbound.ReqId, inbound.Request!, _connections));
            if (hold) _held.Enqueue(inbound);
        }, $"request {inbound.Name} req_id {inbound.ReqId?.ToString() ?? "-"}{(hold ? " (held)" : "")}");
        return !hold;
    }

    void IFirmwareObserver.OnHandled(RouterInbound inbound, DeviceAction action, byte[]? answer)
    {
        var json = answer is null ? null : Encoding.UTF8.GetString(answer);
        switch (inbound.Kind)
        {
            case InboundKind.Request:
                if (action.Reply is IAnswerFrame a && json is not null)
                    Record(() => _answers.Add(new SentAnswer(inbound.Name, inbound.ReqId, a.Type, a.ErrorText, json, _connections)),
                        $"answered {inbound.Name} with {a.Type}{(a.ErrorText is { } e ? $" ({e})" : "")}");
                else Record(() => { }, $"handled {inbound.Name}, no answer (one-way in {Dialect})");
                break;
            case InboundKind.ReportReply or InboundKind.GatewayModes:
                Record(() => _replies.Add(new ReceivedReply(inbound.Name, inbound.Gateway ?? [], inbound.ApplyModes, action.StateChanged, _connections)),
                    $"{(inbound.Kind == InboundKind.GatewayModes ? "gateway_heartbeat" : inbound.Name + " reply")}: " +
                    $"{string.Join(",", (inbound.Gateway ?? []).Select(g => $"{g.GwId}={g.AuthMode}"))} {(inbound.ApplyModes ? "applied" : "ignored")}");
                break;
            default:
                Record(() => _refused.Add(new RefusedFrame(inbound.Name, inbound.Detail ?? "", json, _connections)),
                    $"refused {inbound.Name}: {inbound.Detail}{(json is null ? " (dropped)" : " → " + json)}");
                break;
        }
    }

    void IFirmwareObserver.OnDisconnected(string reason, TimeSpan? reconnectAfter) =>
        Record(() => { }, $"disconnected: {reason}; {(reconnectAfter is { } d ? $"reconnect in {d.TotalSeconds:0.###} s" : "no reconnect")}");

    // ------------------------------------------------------------------ heartbeats and held requests

    private async Task HeartbeatsAsync(long epoch)
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(HeartbeatEvery, _stop.Token); // the firmware's EV_PERSIST timer
                if (_client is not { } c || !c.Beat(epoch)) return;
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task DrainHeldAsync()
    {
        await _draining.WaitAsync();
        try { await DrainHeldOnceAsync(); }
        finally { _draining.Release(); }
    }

    private async Task DrainHeldOnceAsync()
    {
        while (!_hold && _client is { } client)
        {
            RouterInbound next;
            lock (_lock)
            {
                if (!_held.TryPeek(out next!)) return;
            }
            bool handled;
            try { handled = await client.HandleAsync(next, _stop.Token); }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or OperationCanceledException or InvalidOperationException)
            {
                handled = false;
            }
            if (!handled) return; // not connected: the next connection answers it
            lock (_lock) if (_held.TryPeek(out var head) && ReferenceEquals(head, next)) _held.Dequeue();
        }
    }
}
