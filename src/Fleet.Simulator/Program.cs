using System.CommandLine;
using System.CommandLine.Help;
using Fleet.Simulator;

var parse = SimulatorOptions.ParseCommandLine(args);
if (parse.Action is HelpAction)
    return await parse.InvokeAsync(); // --help, -h, -?: the options, exit code 0
var (options, error) = SimulatorOptions.From(parse);
if (options is null)
{
    Console.Error.WriteLine($"error: {error}");
    await SimulatorOptions.ParseCommandLine(["--help"]).InvokeAsync(new InvocationConfiguration { Output = Console.Error });
    return 2;
}

// Ctrl-C and SIGTERM end the run (the final summary and --stats-json are still written), so
// System.CommandLine's own termination handling is not used: the run is not invoked through it.
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cts.Cancel(); });

using var runner = new SimulatorRunner(options, Console.Out);
var cpu = new CpuMeter();
runner.MeasurementStarted += () => cpu = new CpuMeter();
double? windowPct = null, windowCpuSeconds = null;
runner.MeasurementStopped += () => { windowPct = cpu.PercentSinceStart(); windowCpuSeconds = cpu.CpuSecondsSinceStart(); };
Console.WriteLine($"Fleet.Simulator: {options.Devices} devices → {options.Url} (heartbeat {options.HeartbeatSeconds}s, ramp {options.Ramp}/s, " +
                  $"firmware {options.FirmwareName}{(options.DeviceWorkMs > 0 ? $", busy {options.DeviceWorkMs} ms per frame" : "")}, source addresses: " +
                  $"{(runner.SourceAddresses.Count == 0 ? "OS default" : string.Join(",", runner.SourceAddresses))})");
await runner.RunAsync(cts.Token);
var pct = windowPct ?? cpu.PercentSinceStart();
Console.WriteLine("final: " + runner.Stats.Line(pct));
foreach (var line in runner.Stats.Summary()) Console.WriteLine(line);
foreach (var (reason, n) in runner.Stats.Errors.OrderByDescending(p => p.Value).Take(10))
    Console.WriteLine($"  {n,8} × {reason}");
if (options.StatsJson is { } path)
    await File.WriteAllTextAsync(path, runner.Stats.ToJson(pct, windowCpuSeconds ?? cpu.CpuSecondsSinceStart()));
return 0;
