using System.CommandLine;
using System.CommandLine.Invocation;
using System.Runtime.InteropServices;
using Akka.Actor;
using Fleet.Edge.Config;

namespace Fleet.Edge.Hosting;

/// <summary>
/// The agent's command line: <c>Fleet.Edge --config &lt;edge.json&gt; [--check]</c>, plus <c>--help</c> and
/// <c>--version</c>. The exit codes are a contract with the procd script and operators: 0 ran (or the config
/// is valid), 64 bad arguments (EX_USAGE), 78 bad config (EX_CONFIG).
/// </summary>
public static class EdgeCommandLine
{
    public const int Success = 0;
    public const int UsageError = 64;
    /// <summary>EX_CONFIG: procd should not respawn into the same mistake quickly.</summary>
    public const int ConfigError = 78;
    public const string DefaultConfigPath = "/etc/fleet-edge/edge.json";

    private const string Usage = "usage: Fleet.Edge --config <edge.json> [--check]  (--help for more)";

    /// <summary>Parses <paramref name="args"/> and runs the agent, or only checks its config; returns the exit code.</summary>
    /// <param name="output">Where --check and --help write (standard output by default).</param>
    /// <param name="error">Where problems are written (standard error by default).</param>
    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        // No @response-files: every argument is what procd passed, nothing is read from elsewhere.
        var parsed = BuildCommand().Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parsed.Action is ParseErrorAction)
        {
            foreach (var e in parsed.Errors) await error.WriteLineAsync($"fleet-edge: {e.Message}");
            await error.WriteLineAsync(Usage);
            return UsageError;
        }
        return await parsed.InvokeAsync(new InvocationConfiguration
        {
            Output = output,
            Error = error,
            // The agent handles SIGTERM/SIGINT itself (an orderly CoordinatedShutdown), and a crash
            // must stay a crash for procd to see, not become exit code 1.
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = false,
        });
    }

    private static RootCommand BuildCommand()
    {
        var config = new Option<string>("--config")
        {
            Description = "The agent's configuration file (keys: docs/EDGE.md).",
            HelpName = "edge.json",
            DefaultValueFactory = _ => DefaultConfigPath,
        };
        var check = new Option<bool>("--check")
        {
            Description = $"Validate the configuration and exit: {Success} when valid, {ConfigError} with one line per problem when not.",
        };
        var command = new RootCommand(
            "Fleet.Edge: the router's side of the WiFiDogX protocol, enforcing the controller's decisions with nftables, sysupgrade and reboot.")
        {
            config,
            check,
        };
        command.SetAction((parse, _) =>
        {
            var path = parse.GetValue(config)!;
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            return parse.GetValue(check) ? Task.FromResult(Check(path, output, error)) : RunAgentAsync(path, error);
        });
        return command;
    }

    private static int Check(string path, TextWriter output, TextWriter error)
    {
        if (Load(path, error) is null) return ConfigError;
        output.WriteLine($"fleet-edge: {path} is valid");
        return Success;
    }

    private static EdgeConfig? Load(string path, TextWriter error)
    {
        var loaded = ConfigLoader.Load(path);
        if (loaded.IsOk) return loaded.Config!;
        error.WriteLine($"fleet-edge: bad config {path}:");
        foreach (var e in loaded.Errors) error.WriteLine("  " + e);
        return null;
    }

    private static async Task<int> RunAgentAsync(string path, TextWriter error)
    {
        if (Load(path, error) is not { } config) return ConfigError;
        var agent = EdgeAgent.Start(config);
        void Stop(PosixSignalContext ctx)
        {
            ctx.Cancel = true; // let CoordinatedShutdown end the process in order
            _ = CoordinatedShutdown.Get(agent.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        await agent.System.WhenTerminated;
        return Success;
    }
}
