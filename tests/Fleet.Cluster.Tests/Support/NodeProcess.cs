using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace Fleet.Cluster.Tests.Support;

public sealed class NodeExitedException(string message) : Exception(message);

/// <summary>One exit of a node process: which incarnation, its exit code, and whether the test's own signal (Kill, Terminate) caused it.</summary>
public sealed record NodeExit(string Node, int Incarnation, int ExitCode, bool Signalled, DateTime At, string LogFile);

/// <summary>
/// One Fleet.Server node as a child process (`dotnet Fleet.Server.dll --config cluster-config/three-node.json`
/// plus per-node ports), its stdout/stderr in a log file. As deployed (docker-compose.yml, deploy/kubernetes), it
/// listens for routers on <see cref="HttpPort"/> and for the admin API on <see cref="AdminPort"/> (Fleet:Admin:Urls);
/// <see cref="Http"/> talks to the admin port. It can be killed (SIGKILL), stopped (SIGTERM)
/// and started again on the same ports, as a new incarnation.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly string _logDir;
    private readonly IReadOnlyList<string> _args;
    private readonly object _logLock = new();
    private StreamWriter? _log;
    private Process? _process;
    private int _incarnation;
    /// <summary>Set before the test signals the current process (per process: a late Exited event of the last one reads its own).</summary>
    private System.Runtime.CompilerServices.StrongBox<bool> _signalled = new();
    private readonly List<NodeExit> _exits = [];

    public string Name { get; }
    public int HttpPort { get; }
    public int AdminPort { get; }
    public int AkkaPort { get; }
    public string AkkaAddress => $"akka.tcp://fleet@127.0.0.1:{AkkaPort}";
    public HttpClient Http { get; }
    public bool Running => _process is { HasExited: false };
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>Every exit of this node so far, oldest first (a chaos run tells its own signals from a crash by them).</summary>
    public IReadOnlyList<NodeExit> Exits { get { lock (_exits) return _exits.ToList(); } }

    /// <summary>Log files of every incarnation, oldest first.</summary>
    public List<string> LogFiles { get; } = [];

    public NodeProcess(string name, int httpPort, int adminPort, int akkaPort, IReadOnlyList<string> seeds, string connectionString, string logDir)
    {
        Name = name;
        HttpPort = httpPort;
        AdminPort = adminPort;
        AkkaPort = akkaPort;
        _logDir = logDir;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{adminPort}"), Timeout = TimeSpan.FromSeconds(30) }.Authorize();
        var args = new List<string>
        {
            Paths.ServerDll,
            "--urls", $"http://127.0.0.1:{httpPort}",
            "--Fleet:Admin:Urls", $"http://127.0.0.1:{adminPort}",
            "--config", Paths.ThreeNodeConfig,
            "--Fleet:Cluster:Hostname", "127.0.0.1",
            "--Fleet:Cluster:Port", akkaPort.ToString(),
            "--Fleet:Persistence:ConnectionString", connectionString,
            // A job asks again after its in-flight steps every 10 s (60 by default): a kill's lost answers are re-asked sooner.
            "--Fleet:Jobs:RecheckSeconds", "10",
        };
        for (var i = 0; i < seeds.Count; i++) args.AddRange([$"--Fleet:Cluster:SeedNodes:{i}", seeds[i]]);
        args.AddRange(TestKeys.Arguments());
        _args = args;
    }

    public void Start()
    {
        if (Running) throw new InvalidOperationException($"{Name} is already running");
        _incarnation++;
        var file = Path.Combine(_logDir, $"{Name}-{_incarnation}.log");
        LogFiles.Add(file);
        lock (_logLock) _log = new StreamWriter(file, append: false, Encoding.UTF8) { AutoFlush = true };
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _logDir,
        };
        foreach (var a in _args) psi.ArgumentList.Add(a);
        // Three nodes, nginx and the tests share two cores: workstation GC keeps each node small.
        psi.Environment["DOTNET_gcServer"] = "0";
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var signalled = _signalled = new System.Runtime.CompilerServices.StrongBox<bool>();
        var incarnation = _incarnation;
        p.Exited += (_, _) =>
        {
            int code;
            try { code = p.ExitCode; } catch (InvalidOperationException) { code = -1; }
            lock (_exits) _exits.Add(new NodeExit(Name, incarnation, code, Volatile.Read(ref signalled.Value), DateTime.UtcNow, file));
        };
        p.OutputDataReceived += (_, e) => Write(e.Data);
        p.ErrorDataReceived += (_, e) => Write(e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _process = p;
        // For tests/run.sh: if the test host itself dies, it kills what these pid files name.
        File.WriteAllText(Path.Combine(_logDir, $"{Name}.pid"), p.Id.ToString());
    }

    private void Write(string? line)
    {
        if (line is null) return;
        lock (_logLock) _log?.WriteLine(line);
    }

    public int Pid => _process?.Id ?? throw new InvalidOperationException($"{Name} was never started");

    /// <summary>Ready: /readyz says 200 (member Up, database reachable).</summary>
    public async Task WaitReady(TimeSpan within) =>
        await Eventually.True(async () =>
        {
            if (!Running) throw new NodeExitedException($"{Name} exited with {ExitCode}; see {LogFiles[^1]}");
            using var r = await Http.GetAsync("/readyz");
            return r.IsSuccessStatusCode;
        }, $"{Name} ready", within);

    /// <summary>This node's view: {"node":…,"members":[…],"connections":{…}}.</summary>
    public async Task<JsonNode> NodeInfo() => await GetJson("/api/v1/node");

    public async Task<JsonNode> GetJson(string path)
    {
        using var r = await Http.GetAsync(path);
        var body = await r.Content.ReadAsStringAsync();
        // An HTTP failure, not a fault of the test: Eventually retries it.
        if (!r.IsSuccessStatusCode) throw new HttpRequestException($"{Name}: GET {path} → {(int)r.StatusCode}: {body}", null, r.StatusCode);
        return JsonNode.Parse(body)!;
    }

    public async Task<(int Status, JsonNode? Body)> Send(HttpMethod method, string path, string? json = null)
    {
        using var req = new HttpRequestMessage(method, path);
        if (json is not null) req.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var r = await Http.SendAsync(req);
        var text = await r.Content.ReadAsStringAsync();
        JsonNode? body = null;
        try { body = text.Length == 0 ? null : JsonNode.Parse(text); }
        catch (System.Text.Json.JsonException) { }
        return ((int)r.StatusCode, body);
    }

    /// <summary>SIGKILL: the node vanishes without a word, like a power cut.</summary>
    public async Task Kill()
    {
        if (_process is null || _process.HasExited) return;
        Volatile.Write(ref _signalled.Value, true);
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM: coordinated shutdown (hand shards off, leave the cluster). Returns how long it took.</summary>
    public async Task<TimeSpan> Terminate(TimeSpan within)
    {
        if (_process is null || _process.HasExited) return TimeSpan.Zero;
        var sw = Stopwatch.StartNew();
        Volatile.Write(ref _signalled.Value, true);
        Signals.Send(_process.Id, Signals.SIGTERM);
        using var cts = new CancellationTokenSource(within);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            await Kill();
            throw new TimeoutException($"{Name} did not exit within {within.TotalSeconds:0} s of SIGTERM; see {LogFiles[^1]}");
        }
        return sw.Elapsed;
    }

    /// <summary>Every log line of every incarnation so far.</summary>
    public IEnumerable<string> LogLines()
    {
        lock (_logLock) _log?.Flush();
        foreach (var f in LogFiles)
        {
            using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var r = new StreamReader(s);
            while (r.ReadLine() is { } line) yield return line;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await Kill(); }
        catch (InvalidOperationException) { }
        _process?.Dispose();
        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
        }
        Http.Dispose();
    }
}
