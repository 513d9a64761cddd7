using System.Runtime.InteropServices;
using Akka.Actor;
using Fleet.Edge.Hosting;
using Fleet.Edge.Config;

// Fleet.Edge --config /etc/fleet-edge/edge.json [--check]
var path = "/etc/fleet-edge/edge.json";
var checkOnly = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--config" when i + 1 < args.Length: path = args[++i]; break;
        case "--check": checkOnly = true; break;
        default:
            Console.Error.WriteLine($"usage: Fleet.Edge --config <edge.json> [--check]  (unexpected '{args[i]}')");
            return 64;
    }
}

var loaded = ConfigLoader.Load(path);
if (!loaded.IsOk)
{
    Console.Error.WriteLine($"fleet-edge: bad config {path}:");
    foreach (var e in loaded.Errors) Console.Error.WriteLine("  " + e);
    return 78; // EX_CONFIG: procd should not respawn into the same mistake quickly
}
if (checkOnly) { Console.WriteLine($"fleet-edge: {path} is valid"); return 0; }

var agent = EdgeAgent.Start(loaded.Config!);
void Stop(PosixSignalContext ctx)
{
    ctx.Cancel = true; // let CoordinatedShutdown end the process in order
    _ = CoordinatedShutdown.Get(agent.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
}
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
await agent.System.WhenTerminated;
return 0;
