using System.Diagnostics;
using Fleet.Protocol;

namespace Fleet.Simulator;

/// <summary>
/// One simulated router in a <see cref="SimulatorRunner"/>: its <see cref="FirmwareClient"/> (the firmware's
/// socket life: connect, report, answer, reconnect), its heartbeats on the shared wheel, and what it sees
/// counted in the run's <see cref="SimulatorStats"/> under its firmware era.
/// </summary>
internal sealed class DeviceSession : IBeating, IFirmwareObserver
{
    private readonly SimulatorOptions _options;
    private readonly SimulatorStats _stats;
    private readonly HeartbeatWheel _wheel;
    private readonly double _firstHeartbeatFraction;
    private readonly FirmwareEra _era;
    private readonly DeviceLog? _log;
    private readonly string _deviceId;
    private readonly Queue<long> _pendingHeartbeats = new();
    private bool _up;

    public DeviceSession(SimulatedDevice device, SimulatorOptions options, SimulatorStats stats, HeartbeatWheel wheel, double firstHeartbeatFraction,
        DeviceLog? log, System.Net.IPAddress? source)
    {
        _options = options;
        _stats = stats;
        _wheel = wheel;
        _firstHeartbeatFraction = firstHeartbeatFraction;
        _era = device.Era;
        _log = log;
        _deviceId = device.DeviceId;
        Client = new FirmwareClient(device, new FirmwareClientOptions
        {
            Url = options.Url,
            ConnectTimeout = options.ConnectTimeout,
            Delays = options.ReconnectDelay is { } fixedDelay ? ReconnectDelays.All(fixedDelay) : ReconnectDelays.Firmware,
            Reconnect = options.Reconnect,
            WorkTime = TimeSpan.FromMilliseconds(options.DeviceWorkMs),
        }, this, source);
        stats.OnDevice(_era);
    }

    public FirmwareClient Client { get; }

    public Task RunAsync(CancellationToken ct) => Client.RunAsync(ct);

    /// <summary>Called by the wheel when a beat is due.</summary>
    public bool Beat(long epoch)
    {
        if (!Client.Connected) return false;
        lock (_pendingHeartbeats)
        {
            if (_pendingHeartbeats.Count > 1000) _pendingHeartbeats.Dequeue();
            _pendingHeartbeats.Enqueue(Stopwatch.GetTimestamp());
        }
        return Client.Beat(epoch);
    }

    // ------------------------------------------------------------------ what the client tells

    public void OnConnectFailed(string reason) => _stats.OnConnectFailed(reason);

    public void OnUpgraded(long epoch)
    {
        _up = true;
        _stats.OnConnected(_era);
        _log?.Up(_deviceId, _era, epoch);
        lock (_pendingHeartbeats) _pendingHeartbeats.Clear();
        var first = _options.SpreadHeartbeats ? TimeSpan.FromSeconds(_options.HeartbeatSeconds * _firstHeartbeatFraction) : TimeSpan.Zero;
        _wheel.Start(this, epoch, first);
    }

    public void OnBadUpgrade(string detail) => _stats.OnBadUpgrade(_era, detail);

    public void OnReportSent(bool heartbeat)
    {
        if (heartbeat) _stats.OnHeartbeatSent();
    }

    public void OnSendError(string reason) => _stats.OnSendError(reason);

    public void OnLoss(FrameLoss loss)
    {
        _stats.OnLoss(_era, loss);
        _log?.Loss(_deviceId, _era, loss);
    }

    public void OnWedged(int bytes)
    {
        _stats.OnWedged(_era);
        _log?.Wedged(_deviceId, _era, bytes);
    }

    public void OnMisread(int opcode, int bytes) => _stats.OnMisread(_era);

    public void OnControlFrame(int opcode, bool answered, string detail) => _stats.OnControlFrame(_era, opcode, answered);

    public void OnHandled(RouterInbound inbound, DeviceAction action, byte[]? answer)
    {
        switch (inbound.Kind)
        {
            case InboundKind.ReportReply:
                OnHeartbeatReply();
                break;
            case InboundKind.GatewayModes:
                _stats.OnReply(_era, null); // pushed, not a reply to a heartbeat of ours
                break;
            case InboundKind.Request:
                var oneWay = _era != FirmwareEra.V9 && (RequestKinds.Find(inbound.Name)?.OneWay ?? false);
                _stats.OnCommand(_era, inbound.Name, answered: answer is not null, oneWay: oneWay);
                _log?.Request(_deviceId, _era, inbound, action, answer);
                break;
            default:
                _stats.OnComplaint(_era, inbound.Detail ?? inbound.Name);
                break;
        }
        if (action.Reboot) _stats.OnReboot();
    }

    public void OnDisconnected(string reason, TimeSpan? reconnectAfter)
    {
        if (reason.StartsWith("error", StringComparison.Ordinal) || reason.StartsWith("unexpected", StringComparison.Ordinal))
            _stats.Error("session: " + reason);
        if (_up)
        {
            _up = false;
            _log?.Down(_deviceId, _era, reason);
            _stats.OnDisconnected();
        }
        if (reconnectAfter is null && Client.OfflineForGood) _stats.OnOfflineForGood(_era);
    }

    /// <summary>
    /// A reply answers every heartbeat sent before it: a node answers a run of unchanged heartbeats with one
    /// reply when the router's reader is still busy with the last one. Its latency is the oldest one's wait.
    /// </summary>
    private void OnHeartbeatReply()
    {
        long? sentAt = null;
        lock (_pendingHeartbeats)
        {
            if (_pendingHeartbeats.Count > 0) sentAt = _pendingHeartbeats.Peek();
            _pendingHeartbeats.Clear();
        }
        _stats.OnReply(_era, sentAt is { } t ? (long)Stopwatch.GetElapsedTime(t).TotalMicroseconds : null);
    }
}
