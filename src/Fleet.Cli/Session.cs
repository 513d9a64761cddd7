using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>
/// One run of fleetctl: where output goes, how to reach the API (from --url/--key/--key-file or the
/// environment), and the wrapper every command's action runs in (errors to stderr, exit codes).
/// </summary>
public sealed class Session(IAnsiConsole stdout, TextWriter stderr, HttpMessageHandler? handler,
    IDictionary<string, string?>? env, bool stderrIsTerminal)
{
    public GlobalOptions Options { get; } = new();
    public IAnsiConsole Out { get; } = stdout;
    public TextWriter Err { get; } = stderr;

    /// <summary>Sets <paramref name="command"/>'s action: <paramref name="run"/> with the API, its failures turned into exit codes.</summary>
    public void Act(Command command, Func<ParseResult, FleetApi, CancellationToken, Task<int>> run) =>
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var (url, key) = Target(parse);
                using var http = new HttpClient(handler ?? new SocketsHttpHandler(), disposeHandler: handler is null)
                {
                    Timeout = Timeout.InfiniteTimeSpan, // each call has its own (FleetApi), a stream has none
                };
                return await run(parse, new FleetApi(http, url, key), ct);
            }
            catch (FleetctlException e)
            {
                Err.WriteLine($"fleetctl: {e.Message}");
                return e.ExitCode;
            }
            catch (System.Text.Json.JsonException e)
            {
                Err.WriteLine($"fleetctl: the API's answer is not the JSON it documents: {e.Message}");
                return ExitCodes.Error;
            }
        });

    public bool Json(ParseResult parse) => parse.GetValue(Options.Json);

    private string? Env(string name) => env is null ? Environment.GetEnvironmentVariable(name) : env.TryGetValue(name, out var v) ? v : null;

    private (Uri Url, string? Key) Target(ParseResult parse)
    {
        var text = parse.GetValue(Options.Url) ?? Env("FLEET_URL") ?? Fleetctl.DefaultUrl;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            throw new FleetctlException(ExitCodes.Usage, $"--url '{text}' is not an http(s) URL");
        var key = parse.GetValue(Options.Key);
        if (key is null && parse.GetValue(Options.KeyFile) is { } file)
        {
            try { key = File.ReadAllText(file.FullName).Trim(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new FleetctlException(ExitCodes.Usage, $"cannot read the key file {file.FullName}: {e.Message}");
            }
        }
        return (url, key ?? Env("FLEET_KEY"));
    }

    /// <summary>
    /// The console of spinners and progress bars (stderr) when stderr is a terminal; null otherwise (no progress display).
    /// Interactive with ANSI: Spectre's own detection looks at stdout, which a script may have sent to a file or pipe
    /// (fleetctl jobs watch j1 > view.txt) while the person still watches stderr.
    /// </summary>
    public IAnsiConsole? Progress => stderrIsTerminal
        ? AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Err), Ansi = AnsiSupport.Yes, Interactive = InteractionSupport.Yes,
        })
        : null;

    /// <summary>Raw text to stdout, one line, never wrapped or read as markup (JSON for scripts).</summary>
    public void Line(string text) => Out.Profile.Out.Writer.WriteLine(text);

    public void Write(IRenderable renderable) => Out.Write(renderable);

    /// <summary>The API's JSON as is with --json; else the table <paramref name="render"/> makes of it.</summary>
    public void Show(ParseResult parse, FleetApi.Answer answer, Func<JsonNode, IRenderable> render)
    {
        if (Json(parse)) Line(answer.Body);
        else Write(render(answer.Json));
    }
}
