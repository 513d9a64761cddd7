using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Fleet.Server.Connections;

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
