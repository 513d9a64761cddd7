using HdrHistogram;

namespace Fleet.Simulator;

/// <summary>The figures a latency summary line shows, in microseconds.</summary>
public readonly record struct LatencySummary(long Count, double P50, double P99, double P999, double Max, double Mean);

/// <summary>
/// Latency in microseconds, recorded from any thread and read at any time: an HdrHistogram
/// <see cref="Recorder"/> (wait-free concurrent writes, 3 significant digits, 1 µs to 1 hour) whose
/// interval histograms are added into one running histogram when read. The usual HdrHistogram
/// pattern for "record everywhere, report now and then".
/// </summary>
public sealed class LatencyRecorder
{
    /// <summary>Larger values are recorded as this (one hour).</summary>
    public const long HighestMicros = 3_600_000_000;

    private readonly Recorder _recorder = HistogramFactory.With64BitBucketSize()
        .WithValuesFrom(1).WithValuesUpTo(HighestMicros).WithPrecisionOf(3)
        .WithThreadSafeWrites().WithThreadSafeReads().Create();
    private readonly HistogramBase _total = new LongHistogram(HighestMicros, 3);
    private readonly object _read = new();
    private HistogramBase? _interval;

    public void RecordMicros(long micros) => _recorder.RecordValue(Math.Clamp(micros, 0, HighestMicros));

    public void Record(TimeSpan elapsed) => RecordMicros(elapsed.Ticks / TimeSpan.TicksPerMicrosecond);

    /// <summary>How many values were recorded since the start or the last <see cref="Reset"/>.</summary>
    public long Count => Read(h => h.TotalCount);

    /// <summary>The value at or below which <paramref name="percentile"/> % of the recorded values fall (µs).</summary>
    public double PercentileMicros(double percentile) => Read(h => h.TotalCount == 0 ? 0 : (double)h.GetValueAtPercentile(percentile));

    public double MaxMicros => Read(h => h.TotalCount == 0 ? 0 : (double)h.GetMaxValue());

    /// <summary>p50, p99, p99.9, max and mean read at one moment.</summary>
    public LatencySummary Summary() => Read(h => h.TotalCount == 0
        ? new LatencySummary(0, 0, 0, 0, 0, 0)
        : new LatencySummary(h.TotalCount, h.GetValueAtPercentile(50), h.GetValueAtPercentile(99), h.GetValueAtPercentile(99.9),
            h.GetMaxValue(), h.GetMean()));

    /// <summary>Forgets everything recorded so far (the start of a measured window).</summary>
    public void Reset()
    {
        lock (_read)
        {
            _recorder.Reset();
            _total.Reset();
        }
    }

    private T Read<T>(Func<HistogramBase, T> read)
    {
        lock (_read)
        {
            _interval = _recorder.GetIntervalHistogram(_interval);
            _total.Add(_interval);
            return read(_total);
        }
    }
}
