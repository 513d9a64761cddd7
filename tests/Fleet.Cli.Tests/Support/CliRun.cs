using System.Text.Json.Nodes;
using Spectre.Console;
using Xunit;

namespace Fleet.Cli.Tests.Support;

/// <summary>One run of fleetctl: its exit code and what it wrote to stdout and stderr.</summary>
public sealed record CliRun(int Exit, string Out, string Err)
{
    /// <summary>Runs <see cref="Fleetctl.RunAsync"/> with consoles that record (no colours, wide enough for any row).</summary>
    /// <param name="stderrIsTerminal">As when stderr is a terminal: progress (spinners, bars) is drawn there.</param>
    public static Task<CliRun> InProcess(string[] args, IDictionary<string, string?> env, HttpMessageHandler? handler = null,
        bool stderrIsTerminal = false) =>
        InProcess(args, env, new StringWriter(), TestContext.Current.CancellationToken, handler, stderrIsTerminal);

    /// <summary>As above, writing stdout to <paramref name="stdout"/> as it goes (a test can watch a command that runs until stopped).</summary>
    public static async Task<CliRun> InProcess(string[] args, IDictionary<string, string?> env, StringWriter stdout, CancellationToken ct,
        HttpMessageHandler? handler = null, bool stderrIsTerminal = false)
    {
        var stderr = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 400;
        var exit = await Fleetctl.RunAsync(args, console, stderr, handler, env, stderrIsTerminal, ct);
        return new CliRun(exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>stdout as one JSON document (a --json run).</summary>
    public JsonNode Json => JsonNode.Parse(Out) ?? throw new InvalidOperationException("stdout is JSON null");

    public IReadOnlyList<string> Lines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override string ToString() => $"exit {Exit}\nstdout:\n{Out}\nstderr:\n{Err}";
}
