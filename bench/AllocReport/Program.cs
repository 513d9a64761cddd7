// What a process allocated, from a trace of sampled allocations (dotnet-trace collect --profile gc-verbose; the runtime
// emits an AllocationTick event per ~100 KB allocated, with the type of the object that crossed the mark and its stack).
// Prints the sampled megabytes by type, then by call stack (the first DEPTH managed frames).
//   dotnet run -c Release --project bench/AllocReport -- <file.nettrace> [depth 10] [stacks 25]
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

if (args.Length < 1) { Console.Error.WriteLine("usage: AllocReport <file.nettrace> [depth] [stacks]"); return 2; }
var depth = args.Length > 1 ? int.Parse(args[1]) : 10;
var stacks = args.Length > 2 ? int.Parse(args[2]) : 25;
using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var byType = new Dictionary<string, long>();
var byStack = new Dictionary<string, long>();
long total = 0;
var first = double.MaxValue; var last = 0.0;
foreach (var ev in log.Events)
{
    if (ev is not GCAllocationTickTraceData tick) continue;
    total += tick.AllocationAmount64;
    first = Math.Min(first, ev.TimeStampRelativeMSec); last = Math.Max(last, ev.TimeStampRelativeMSec);
    byType[tick.TypeName] = byType.GetValueOrDefault(tick.TypeName) + tick.AllocationAmount64;
    var frames = new List<string>();
    for (var cs = ev.CallStack(); cs is not null && frames.Count < depth; cs = cs.Caller)
        if (cs.CodeAddress.FullMethodName is { Length: > 0 } m) frames.Add(m.Length > 120 ? m[..120] : m);
    var key = tick.TypeName + "\n      " + string.Join("\n      ", frames);
    byStack[key] = byStack.GetValueOrDefault(key) + tick.AllocationAmount64;
}
var seconds = Math.Max(0.001, (last - first) / 1000);
Console.WriteLine($"sampled {total / 1e6:F1} MB over {seconds:F1} s ({total / 1e6 / seconds:F1} MB/s)");
foreach (var (type, bytes) in byType.OrderByDescending(p => p.Value).Take(40))
    Console.WriteLine($"{bytes / 1e6,9:F1} MB  {type}");
Console.WriteLine("--- by stack");
foreach (var (stack, bytes) in byStack.OrderByDescending(p => p.Value).Take(stacks))
    Console.WriteLine($"{bytes / 1e6,9:F1} MB  {stack}");
return 0;
