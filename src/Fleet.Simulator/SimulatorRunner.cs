using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Fleet.Simulator;

/// <summary>
/// Runs a fleet of simulated routers in-process: ramps connections up at the configured rate,
/// keeps them heartbeating and answering, prints progress, and closes them all at the end.
/// Every router reads like the real client (<see cref="FirmwareClient"/>) in the firmware era
/// <see cref="SimulatorOptions.EraOf"/> gives it. Drive it from a test with <see cref="RunAsync"/> and
/// read <see cref="Stats"/>.
/// </summary>
public sealed class SimulatorRunner : IDisposable
{
    private const int DevicesPerSourceAddress = 20_000;

    private readonly SimulatorOptions _options;
    private readonly TextWriter? _log;
    private readonly SimulatedDevice[] _devices;
    private readonly DeviceSession[] _sessions;
    private readonly Dictionary<string, int> _index;
    private readonly HeartbeatWheel _wheel;

    public SimulatorRunner(SimulatorOptions options, TextWriter? log = null)
    {
        _options = options;
        _log = log;
        _devices = Enumerable.Range(options.FirstIndex, options.Devices)
            .Select(i => new SimulatedDevice(options.DeviceId(i), options.EraOf(i), options.Gateways, i))
            .ToArray();
        _index = _devices.Select((d, i) => (d.DeviceId, i)).ToDictionary(p => p.DeviceId, p => p.i, StringComparer.Ordinal);
        SourceAddresses = ChooseSourceAddresses(options);
        _wheel = new HeartbeatWheel(TimeSpan.FromSeconds(options.HeartbeatSeconds));
        var random = new Random(options.Seed);
        DeviceLog = options.DeviceLog is { } path ? new DeviceLog(path) : null;
        _sessions = _devices.Select((d, i) => new DeviceSession(d, options, Stats, _wheel, random.NextDouble(), DeviceLog,
            SourceAddresses.Count == 0 ? null : SourceAddresses[i % SourceAddresses.Count])).ToArray();
    }

    public SimulatorStats Stats { get; } = new();
    /// <summary>The device-side log (--device-log), null when not asked for; complete once <see cref="RunAsync"/> has returned.</summary>
    public DeviceLog? DeviceLog { get; }
    /// <summary>Raised when the measured window starts (after ramp and warm-up).</summary>
    public event Action? MeasurementStarted;
    /// <summary>Raised when the run ends, before connections are closed.</summary>
    public event Action? MeasurementStopped;
    public IReadOnlyList<SimulatedDevice> Devices => _devices;
    /// <summary>The 127.0.0.x addresses connections are bound to; empty when the OS picks.</summary>
    public IReadOnlyList<IPAddress> SourceAddresses { get; }

    /// <summary>The client of a router of this run (what its reader handled and lost on its current connection).</summary>
    public FirmwareClient Client(string deviceId) => _sessions[_index[deviceId]].Client;

    private static List<IPAddress> ChooseSourceAddresses(SimulatorOptions o)
    {
        var host = o.Url.IdnHost;
        var loopback = IPAddress.TryParse(host, out var ip) ? IPAddress.IsLoopback(ip) && ip.AddressFamily == AddressFamily.InterNetwork
            : host == "localhost";
        var count = o.SourceAddresses > 0 ? o.SourceAddresses : (o.Devices + DevicesPerSourceAddress - 1) / DevicesPerSourceAddress;
        if (!loopback || count <= 1 && o.SourceAddresses == 0) return [];
        var first = o.SourceAddressBase;
        return Enumerable.Range(first, Math.Min(count, 255 - first)).Select(i => new IPAddress(new byte[] { 127, 0, 0, (byte)i })).ToList();
    }

    /// <summary>
    /// Runs until <see cref="SimulatorOptions.Duration"/> has passed (from the start of the ramp) or
    /// <paramref name="ct"/> is cancelled; then closes every connection and returns.
    /// </summary>
    public async Task RunAsync(CancellationToken ct = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (_options.Duration is { } d) stop.CancelAfter(d);
        var token = stop.Token;
        var sessions = new Task[_devices.Length];
        var progress = _options.StatsSeconds > 0 && _log is not null ? ProgressAsync(token) : Task.CompletedTask;
        var beating = Task.Run(() => _wheel.RunAsync(token), CancellationToken.None);
        var stalls = DeviceLog is { } log ? Task.Run(() => WatchStallsAsync(log, token), CancellationToken.None) : Task.CompletedTask;
        var started = Stopwatch.GetTimestamp();
        var launched = 0;
        try
        {
            while (launched < _devices.Length && !token.IsCancellationRequested)
            {
                var due = Math.Min(_devices.Length, (int)(Stopwatch.GetElapsedTime(started).TotalSeconds * _options.Ramp) + 1);
                for (; launched < due; launched++)
                {
                    var session = _sessions[launched];
                    sessions[launched] = Task.Run(() => session.RunAsync(token), CancellationToken.None);
                }
                if (launched < _devices.Length) await Task.Delay(10, token).ConfigureAwait(false);
            }
            if (launched == _devices.Length) _log?.WriteLine($"ramp done: {launched} devices launched in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0}s");
            if (_options.WarmupSeconds > 0) await Task.Delay(TimeSpan.FromSeconds(_options.WarmupSeconds), token).ConfigureAwait(false);
            Stats.StartMeasurement();
            MeasurementStarted?.Invoke();
            _log?.WriteLine($"measuring from t={Stats.Elapsed.TotalSeconds:0.0}s ({Stats.Connected} connected)");
            await Task.Delay(Timeout.Infinite, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested) { }
        Stats.StopMeasurement();
        MeasurementStopped?.Invoke();
        await Task.WhenAll(sessions.Take(launched)).ConfigureAwait(false);
        await beating.ConfigureAwait(false);
        await progress.ConfigureAwait(false);
        await stalls.ConfigureAwait(false);
        DeviceLog?.Flush();
    }

    /// <summary>
    /// Notes in the device log every time this process ran a 20 ms timer 100 ms or more late: its routers read
    /// nothing meanwhile (a loss then is the simulator's stall, not the controller's pacing; the checker tells them apart).
    /// </summary>
    private static async Task WatchStallsAsync(DeviceLog log, CancellationToken ct)
    {
        var tick = TimeSpan.FromMilliseconds(20);
        try
        {
            while (true)
            {
                var before = Stopwatch.GetTimestamp();
                await Task.Delay(tick, ct).ConfigureAwait(false);
                var late = Stopwatch.GetElapsedTime(before) - tick;
                if (late >= TimeSpan.FromMilliseconds(100)) log.Stall((long)late.TotalMilliseconds);
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Waits until <paramref name="count"/> devices are connected at once, or throws at the deadline.</summary>
    public async Task WaitConnectedAsync(int count, TimeSpan timeout, CancellationToken ct = default)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stats.Connected < count)
        {
            if (Stopwatch.GetTimestamp() > deadline)
                throw new TimeoutException($"{Stats.Connected} of {count} devices connected after {timeout.TotalSeconds}s");
            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }

    private async Task ProgressAsync(CancellationToken ct)
    {
        var cpu = new CpuMeter();
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(_options.StatsSeconds), ct).ConfigureAwait(false);
                _log!.WriteLine(Stats.Line(cpu.PercentSinceLast()));
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Closes the device-side log, if any (nothing else is left to free once <see cref="RunAsync"/> has returned).</summary>
    public void Dispose() => DeviceLog?.Dispose();
}

/// <summary>This process's CPU use (all cores: 200% = both of two cores busy).</summary>
public sealed class CpuMeter
{
    private readonly Process _self = Process.GetCurrentProcess();
    private readonly TimeSpan _startCpu;
    private readonly long _startWall;
    private TimeSpan _lastCpu;
    private long _lastWall;

    public CpuMeter()
    {
        _self.Refresh();
        _startCpu = _lastCpu = _self.TotalProcessorTime;
        _startWall = _lastWall = Stopwatch.GetTimestamp();
    }

    public double PercentSinceLast()
    {
        _self.Refresh();
        var cpu = _self.TotalProcessorTime;
        var now = Stopwatch.GetTimestamp();
        var wall = Stopwatch.GetElapsedTime(_lastWall, now).TotalSeconds;
        var pct = wall <= 0 ? 0 : (cpu - _lastCpu).TotalSeconds / wall * 100;
        _lastCpu = cpu;
        _lastWall = now;
        return pct;
    }

    public double PercentSinceStart()
    {
        _self.Refresh();
        var wall = Stopwatch.GetElapsedTime(_startWall).TotalSeconds;
        return wall <= 0 ? 0 : CpuSecondsSinceStart() / wall * 100;
    }

    public double CpuSecondsSinceStart()
    {
        _self.Refresh();
        return (_self.TotalProcessorTime - _startCpu).TotalSeconds;
    }
}
