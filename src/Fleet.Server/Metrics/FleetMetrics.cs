using System.Diagnostics;
using System.Diagnostics.Metrics;
using Fleet.Server.Connections;

namespace Fleet.Server.Metrics;

/// <summary>
/// The fleet's own instruments beside the socket counters (<see cref="ConnectionMetrics"/>, same meter name): commands
/// by type and outcome, how long they took, journal writes, fleet size, cluster members. Exported at /metrics
/// (Prometheus: dots become underscores, counters end in _total, seconds in _seconds).
/// </summary>
public sealed class FleetMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly Counter<long> _commands;
    private readonly Histogram<double> _commandDuration;
    private readonly Histogram<double> _journalWrite;
    private long _known = -1;
    private Func<IEnumerable<Measurement<int>>>? _members;

    public FleetMetrics() : this(ConnectionMetrics.MeterName) { }

    /// <summary>With a meter name of its own: figures that no exporter reads (entities made without a node, in specs).</summary>
    public FleetMetrics(string meterName)
    {
        _meter = new Meter(meterName);
        _commands = _meter.CreateCounter<long>("fleet.commands", description: "Commands that reached a final status, by type and outcome");
        _commandDuration = _meter.CreateHistogram<double>("fleet.command.duration", unit: "s",
            description: "From a command's acceptance to its final status",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400] });
        _journalWrite = _meter.CreateHistogram<double>("fleet.journal.write.duration", unit: "s",
            description: "A device entity's journal write, from persist to confirmation",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _meter.CreateObservableGauge("fleet.devices.known", () => Interlocked.Read(ref _known) is var k and >= 0
            ? [new Measurement<long>(k)] : Array.Empty<Measurement<long>>(), description: "Devices in the directory (the whole fleet)");
        _meter.CreateObservableGauge("fleet.cluster.members", () => _members?.Invoke() ?? [], description: "Cluster members by status");
    }

    public void CommandEnded(string type, string outcome, TimeSpan took)
    {
        var tags = new TagList { { "type", type }, { "outcome", outcome } };
        _commands.Add(1, tags);
        _commandDuration.Record(Math.Max(0, took.TotalSeconds), tags);
    }

    public void JournalWrite(long startedTimestamp) =>
        _journalWrite.Record(Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds);

    public void Known(long devices) => Interlocked.Exchange(ref _known, devices);

    /// <summary>Where the members gauge reads from (set once the actor system is up).</summary>
    public void MembersFrom(Func<IEnumerable<Measurement<int>>> members) => _members = members;

    public void Dispose() => _meter.Dispose();
}
