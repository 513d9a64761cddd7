using System.CommandLine;
using System.CommandLine.Help;
using Spectre.Console;

namespace Fleet.Cli;

/// <summary>
/// fleetctl: the admin API on the command line. <see cref="RunAsync"/> is the whole program with its console,
/// HTTP handler and environment given, so that tests run it in-process; Program.cs gives it the real ones.
/// </summary>
public static class Fleetctl
{
    public const string DefaultUrl = "http://localhost:8080";

    /// <param name="stdout">Tables and --json output.</param>
    /// <param name="stderr">Errors ("fleetctl: detail") and, when <paramref name="stderrIsTerminal"/>, the --wait spinner.</param>
    /// <param name="handler">The HTTP handler to use (tests); null: a new SocketsHttpHandler.</param>
    /// <param name="env">The environment (FLEET_URL, FLEET_KEY); null: the process's.</param>
    public static async Task<int> RunAsync(string[] args, IAnsiConsole stdout, TextWriter stderr, HttpMessageHandler? handler = null,
        IDictionary<string, string?>? env = null, bool stderrIsTerminal = false, CancellationToken ct = default)
    {
        var session = new Session(stdout, stderr, handler, env, stderrIsTerminal);
        var root = Build(session);
        var parse = root.Parse(args);
        var invocation = new InvocationConfiguration { Output = stdout.Profile.Out.Writer, Error = stderr };
        if (parse.Action is not HelpWithEpilog && parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) stderr.WriteLine($"fleetctl: {error.Message}");
            stderr.WriteLine($"Try '{string.Join(' ', CommandPath(parse.CommandResult.Command))} --help'.");
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(invocation, ct);
    }

    private static IEnumerable<string> CommandPath(Command command)
    {
        var names = new List<string>();
        for (var c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
            names.Insert(0, c is RootCommand ? "fleetctl" : c.Name);
        return names;
    }

    private static RootCommand Build(Session session)
    {
        var root = new RootCommand("fleetctl: drive a Fleet controller through its admin API (devices, commands, auth modes, keys, events, jobs, rollouts, clients).")
        {
            session.Options.Url, session.Options.Key, session.Options.KeyFile, session.Options.Json,
            DevicesCommands.Build(session),
            CommandsCommands.Build(session),
            AuthModeCommands.Build(session),
            KeysCommands.Build(session),
            EventsCommand.Build(session),
            JobsCommands.Build(session),
            RolloutsCommands.Build(session),
            ClientsCommands.Build(session),
        };
        // The exit codes and environment variables close the root's help (the "epilog").
        var help = root.Options.OfType<HelpOption>().Single();
        if (help.Action is HelpAction standard) help.Action = new HelpWithEpilog(standard);
        return root;
    }
}

/// <summary>The standard help, followed on the root command by the exit codes (<see cref="ExitCodes.Help"/>).</summary>
internal sealed class HelpWithEpilog(HelpAction standard) : System.CommandLine.Invocation.SynchronousCommandLineAction
{
    public override int Invoke(ParseResult parseResult)
    {
        var result = standard.Invoke(parseResult);
        if (parseResult.CommandResult.Command is RootCommand) parseResult.InvocationConfiguration.Output.WriteLine(ExitCodes.Help);
        return result;
    }
}

/// <summary>Options every command takes (recursive on the root); one set per run, as a symbol belongs to one command tree.</summary>
public sealed class GlobalOptions
{
    public readonly Option<string?> Url = new("--url")
    {
        Description = $"the node or load balancer [env FLEET_URL, default {Fleetctl.DefaultUrl}]", Recursive = true, HelpName = "URL",
    };
    public readonly Option<string?> Key = new("--key")
    {
        Description = "the API key [env FLEET_KEY]", Recursive = true, HelpName = "KEY",
    };
    public readonly Option<FileInfo?> KeyFile = new("--key-file")
    {
        Description = "read the API key from this file (e.g. data/admin.key)", Recursive = true, HelpName = "PATH",
    };
    public readonly Option<bool> Json = new("--json")
    {
        Description = "print the API's JSON as is (for scripts) instead of tables", Recursive = true,
    };
}
