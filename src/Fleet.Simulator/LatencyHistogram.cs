namespace Fleet.Simulator;

/// <summary>
/// A lock-free log-linear latency histogram in microseconds: 32 sub-buckets per power of two
/// (≤ 3% error), from 1 µs to about 70 minutes. Record from any thread; read percentiles any time.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBits = 5;
    private const int Sub = 1 << SubBits;
    private const int Powers = 33;
    private readonly long[] _counts = new long[Powers * Sub];
    private long _total;
    private long _max;
    private long _sum;

    public long Count => Interlocked.Read(ref _total);
    public double MaxMicros => Interlocked.Read(ref _max);
    public double MeanMicros => Count == 0 ? 0 : (double)Interlocked.Read(ref _sum) / Count;

    public void RecordMicros(long micros)
    {
        if (micros < 0) micros = 0;
        Interlocked.Increment(ref _counts[IndexOf(micros)]);
        Interlocked.Increment(ref _total);
        Interlocked.Add(ref _sum, micros);
        long seen;
        while (micros > (seen = Interlocked.Read(ref _max)) && Interlocked.CompareExchange(ref _max, micros, seen) != seen) { }
    }

    public void Record(TimeSpan elapsed) => RecordMicros((long)(elapsed.Ticks / 10));

    /// <summary>The value below which <paramref name="percentile"/> % of the recorded values fall (µs).</summary>
    public double PercentileMicros(double percentile)
    {
        var total = Count;
        if (total == 0) return 0;
        var rank = (long)Math.Ceiling(percentile / 100.0 * total);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank) return Math.Min(UpperOf(i), MaxMicros);
        }
        return MaxMicros;
    }

    public void Reset()
    {
        Array.Clear(_counts);
        Interlocked.Exchange(ref _total, 0);
        Interlocked.Exchange(ref _max, 0);
        Interlocked.Exchange(ref _sum, 0);
    }

    private static int IndexOf(long v)
    {
        if (v < Sub) return (int)v;
        var group = 63 - (int)long.LeadingZeroCount(v) - SubBits + 1; // [32,64) → 1, [64,128) → 2 …
        var index = group * Sub + (int)(v >> (group - 1)) - Sub;
        return Math.Min(index, Powers * Sub - 1);
    }

    private static double UpperOf(int index)
    {
        var group = index / Sub;
        var sub = index % Sub;
        if (group == 0) return sub;
        return ((long)(Sub + sub + 1) << (group - 1)) - 1;
    }
}
