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
    private long _active, _accepted, _rejectedAtCap, _framesIn, _framesOut, _heartbeats;

    public ConnectionMetrics()
    {
        _meter.CreateObservableUpDownCounter("fleet.connections.active", () => Active);
        _meter.CreateObservableCounter("fleet.connections.accepted", () => Interlocked.Read(ref _accepted));
        _meter.CreateObservableCounter("fleet.connections.rejected_at_cap", () => Interlocked.Read(ref _rejectedAtCap));
        _meter.CreateObservableCounter("fleet.frames.in", () => Interlocked.Read(ref _framesIn));
        _meter.CreateObservableCounter("fleet.frames.out", () => Interlocked.Read(ref _framesOut));
        _meter.CreateObservableCounter("fleet.heartbeats", () => Interlocked.Read(ref _heartbeats));
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
    public void Refused(string reason) => _refused.AddOrUpdate(reason, 1, (_, n) => n + 1);

    public object Snapshot() => new
    {
        Active,
        Accepted = Interlocked.Read(ref _accepted),
        RejectedAtCap = Interlocked.Read(ref _rejectedAtCap),
        FramesIn = Interlocked.Read(ref _framesIn),
        FramesOut = Interlocked.Read(ref _framesOut),
        Heartbeats = Interlocked.Read(ref _heartbeats),
        Refused = _refused.ToDictionary(kv => kv.Key, kv => kv.Value),
    };

    public void Dispose() => _meter.Dispose();
}

/// <summary>
/// The node's cap on device sockets, kept below the process's open-file limit: past it an upgrade
/// gets a clean 503 and nobody already connected notices.
/// </summary>
public sealed class ConnectionGate
{
    private int _count;
    public int Capacity { get; }

    public ConnectionGate(int capacity) => Capacity = capacity;

    public bool TryEnter()
    {
        if (Interlocked.Increment(ref _count) <= Capacity) return true;
        Interlocked.Decrement(ref _count);
        return false;
    }

    public void Exit() => Interlocked.Decrement(ref _count);

    /// <summary>The soft RLIMIT_NOFILE of this process (from /proc/self/limits), or null when unknown.</summary>
    public static long? OpenFileLimit()
    {
        try
        {
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts is { Length: >= 5 } && long.TryParse(parts[3], out var soft) ? soft : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static int CapacityFor(int configured, int reserved)
    {
        var limit = OpenFileLimit();
        var fromLimit = limit is { } l ? (int)Math.Clamp(l - reserved, 1, int.MaxValue) : int.MaxValue;
        return configured > 0 ? Math.Min(configured, fromLimit) : (limit is null ? 10_000 : fromLimit);
    }
}
