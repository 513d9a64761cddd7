using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Fleet.Server.Connections;

/// <summary>
/// Counters for device sockets: what came in, what was refused and why. Exposed as a .NET Meter
/// ("Fleet.Server", for dotnet-counters / OpenTelemetry) and on GET /api/v1/node.
/// </summary>
public sealed class ConnectionMetrics : IDisposable
{
    public const string MeterName = "Fleet.Server";
    private readonly Meter _meter = new(MeterName);
    private readonly ConcurrentDictionary<string, long> _refused = new();
    private long _active, _accepted, _rejectedAtCap, _framesIn, _framesOut, _heartbeats, _framesHeld, _framesTooLarge, _complaints, _silent, _expired, _superseded, _echoed, _noConnect, _frameRate;

    public ConnectionMetrics()
    {
        _meter.CreateObservableUpDownCounter("fleet.devices.connected", () => Active, description: "Device WebSockets open on this node");
        _meter.CreateObservableCounter("fleet.connections.accepted", () => Interlocked.Read(ref _accepted));
        _meter.CreateObservableCounter("fleet.connections.rejected",
            () => new Measurement<long>(Interlocked.Read(ref _rejectedAtCap), new KeyValuePair<string, object?>("reason", "cap")),
            description: "Device upgrades refused with 503 past the node's connection cap");
        _meter.CreateObservableCounter("fleet.frames.in", () => Interlocked.Read(ref _framesIn));
        _meter.CreateObservableCounter("fleet.frames.out", () => Interlocked.Read(ref _framesOut));
        _meter.CreateObservableCounter("fleet.heartbeats", () => Interlocked.Read(ref _heartbeats));
        // Frames held back so that the real client's one-frame-per-read reader gets each alone (each was at risk of being lost).
        _meter.CreateObservableCounter("fleet.frames.lost_risk", () => Interlocked.Read(ref _framesHeld));
        _meter.CreateObservableCounter("fleet.frames.too_large_for_device", () => Interlocked.Read(ref _framesTooLarge));
        _meter.CreateObservableCounter("fleet.device_complaints", () => Interlocked.Read(ref _complaints));
        _meter.CreateObservableCounter("fleet.connections.closed_for_silence", () => Interlocked.Read(ref _silent));
        _meter.CreateObservableCounter("fleet.connections.closed_without_connect", () => Interlocked.Read(ref _noConnect));
        _meter.CreateObservableCounter("fleet.connections.closed_for_frame_rate", () => Interlocked.Read(ref _frameRate));
        _meter.CreateObservableCounter("fleet.frames.expired", () => Interlocked.Read(ref _expired));
        _meter.CreateObservableCounter("fleet.replies.skipped", () => Interlocked.Read(ref _superseded));
        _meter.CreateObservableCounter("fleet.replies.echoed", () => Interlocked.Read(ref _echoed));
        _meter.CreateObservableCounter("fleet.frames.refused",
            () => _refused.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("reason", kv.Key))));
    }

    public long Active => Interlocked.Read(ref _active);

    public void Opened() { Interlocked.Increment(ref _active); Interlocked.Increment(ref _accepted); }
    public void Closed() => Interlocked.Decrement(ref _active);
    public void RejectedAtCap() => Interlocked.Increment(ref _rejectedAtCap);
    public void FrameIn() => Interlocked.Increment(ref _framesIn);
    public void FrameOut() => Interlocked.Increment(ref _framesOut);
    public void Heartbeat() => Interlocked.Increment(ref _heartbeats);
    /// <summary>A frame waited so that the device's reader gets it alone.</summary>
    public void FrameHeld() => Interlocked.Increment(ref _framesHeld);
    /// <summary>A frame was not written because the device's reader could not take it.</summary>
    public void FrameTooLarge() => Interlocked.Increment(ref _framesTooLarge);
    /// <summary>A device said a frame of ours was bad (our protocol fault).</summary>
    public void DeviceComplaint() => Interlocked.Increment(ref _complaints);
    /// <summary>A command's frame reached its deadline before the device could take it.</summary>
    public void FrameExpired() => Interlocked.Increment(ref _expired);
    /// <summary>A reply to an unchanged heartbeat was not queued: the same reply was still waiting for the device's reader.</summary>
    public void ReplySuperseded() => Interlocked.Increment(ref _superseded);
    /// <summary>A report answered with the device's own modes because its entity had not replied yet (it was recovering).</summary>
    public void ReplyEchoed() => Interlocked.Increment(ref _echoed);
    public void ClosedForSilence() => Interlocked.Increment(ref _silent);
    /// <summary>A socket sent no valid connect within Fleet:WebSocket:ConnectWithinSeconds of its upgrade.</summary>
    public void ClosedWithoutConnect() => Interlocked.Increment(ref _noConnect);
    /// <summary>A socket's frames stayed over its rate for Fleet:WebSocket:CloseAfterExcessSeconds.</summary>
    public void ClosedForFrameRate() => Interlocked.Increment(ref _frameRate);
    public void Refused(string reason) => _refused.AddOrUpdate(reason, 1, (_, n) => n + 1);

    public object Snapshot() => new
    {
        Active,
        Accepted = Interlocked.Read(ref _accepted),
        RejectedAtCap = Interlocked.Read(ref _rejectedAtCap),
        FramesIn = Interlocked.Read(ref _framesIn),
        FramesOut = Interlocked.Read(ref _framesOut),
        Heartbeats = Interlocked.Read(ref _heartbeats),
        FramesHeld = Interlocked.Read(ref _framesHeld),
        FramesTooLargeForDevice = Interlocked.Read(ref _framesTooLarge),
        DeviceComplaints = Interlocked.Read(ref _complaints),
        ClosedForSilence = Interlocked.Read(ref _silent),
        ClosedWithoutConnect = Interlocked.Read(ref _noConnect),
        ClosedForFrameRate = Interlocked.Read(ref _frameRate),
        FramesExpired = Interlocked.Read(ref _expired),
        RepliesSkipped = Interlocked.Read(ref _superseded),
        RepliesEchoed = Interlocked.Read(ref _echoed),
        Refused = _refused.ToDictionary(kv => kv.Key, kv => kv.Value),
    };

    public void Dispose() => _meter.Dispose();
}
