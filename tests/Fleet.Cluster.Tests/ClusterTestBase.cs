using Fleet.Cluster.Tests.Support;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Fleet.Cluster.Tests;

/// <summary>Logging for cluster tests: to the test output and, for the figures, to a file that outlives the run.</summary>
public abstract class ClusterTestBase(ITestOutputHelper output) : IAsyncLifetime
{
    public static readonly string MeasurementsFile =
        Path.Combine(Path.GetTempPath(), "fleet-cluster-tests", "measurements.log");

    protected FleetCluster Cluster { get; private set; } = null!;
    protected List<ReconnectingRouter> Routers { get; } = [];
    private readonly DateTime _started = DateTime.UtcNow;

    protected virtual string Name => GetType().Name;

    protected void Log(string line)
    {
        var text = $"[{(DateTime.UtcNow - _started).TotalSeconds,6:0.0}s] {line}";
        try { output.WriteLine(text); }
        catch (InvalidOperationException) { } // after the test ended
    }

    /// <summary>A figure worth keeping (re-homing times): test output and the measurements file.</summary>
    protected void Measure(string line)
    {
        Log(line);
        Directory.CreateDirectory(Path.GetDirectoryName(MeasurementsFile)!);
        File.AppendAllText(MeasurementsFile, $"{DateTime.UtcNow:u} {Name}: {line}{Environment.NewLine}");
    }

    public async ValueTask InitializeAsync() => Cluster = await FleetCluster.StartAsync(Name, Log);

    public async ValueTask DisposeAsync()
    {
        foreach (var r in Routers) await r.DisposeAsync();
        if (Cluster is not null)
        {
            Log($"logs: {Cluster.WorkDir}");
            await Cluster.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }

    protected void NoSerializationWarnings()
    {
        var warnings = Cluster.SerializationWarnings();
        Assert.True(warnings.Count == 0, "serialization warnings in node logs:\n" + string.Join("\n", warnings.Take(20)));
    }
}
