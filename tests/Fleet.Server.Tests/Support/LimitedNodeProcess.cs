using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Xunit;

namespace Fleet.Server.Tests.Support;

/// <summary>
/// One Fleet.Server node as a child process under an open-file limit of its own (`prlimit --nofile=N:N dotnet
/// Fleet.Server.dll …`, arguments as a list, never a shell line): the limit is per process, so it cannot be tested in
/// the test host. Devices connect on <see cref="DevicePort"/>, the admin API listens apart on <see cref="AdminPort"/>
/// (Fleet:Admin:Urls), SQLite in a temp folder; stdout/stderr go to a log file kept after the test.
/// </summary>
public sealed class LimitedNodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly object _logLock = new();

    public int DevicePort { get; }
    public int AdminPort { get; }
    public int OpenFileLimit { get; }
    public string LogFile { get; }
    public HttpClient Admin { get; }
    public int Pid => _process.Id;
    public bool Running => !_process.HasExited;

    private LimitedNodeProcess(Process process, StreamWriter log, string logFile, int devicePort, int adminPort, int limit)
    {
        _process = process;
        _log = log;
        LogFile = logFile;
        DevicePort = devicePort;
        AdminPort = adminPort;
        OpenFileLimit = limit;
        Admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{adminPort}"), Timeout = TimeSpan.FromSeconds(30) }.Authorize();
    }

    public static async Task<LimitedNodeProcess> StartAsync(int openFileLimit, params string[] extraArgs)
    {
        var dir = Path.Combine(Path.GetTempPath(), "fleet-tests", $"limited-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(dir);
        var devicePort = FreePort();
        var adminPort = FreePort();
        var psi = new ProcessStartInfo("prlimit")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir,
        };
        string[] args =
        [
            $"--nofile={openFileLimit}:{openFileLimit}", "--", "dotnet", ServerDll,
            "--urls", $"http://127.0.0.1:{devicePort}",
            "--Fleet:Admin:Urls", $"http://127.0.0.1:{adminPort}",
            "--Fleet:Cluster:Port", "0",
            "--Fleet:Persistence:ConnectionString", $"Data Source={Path.Combine(dir, "fleet.db")}",
            "--Logging:LogLevel:Default", "Warning",
            .. TestKeys.Arguments(), .. extraArgs,
        ];
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_gcServer"] = "0";
        var logFile = Path.Combine(dir, "node.log");
        var log = new StreamWriter(logFile, append: false, Encoding.UTF8) { AutoFlush = true };
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var node = new LimitedNodeProcess(process, log, logFile, devicePort, adminPort, openFileLimit);
        process.OutputDataReceived += (_, e) => node.Write(e.Data);
        process.ErrorDataReceived += (_, e) => node.Write(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Eventually.True(async () =>
            {
                if (!node.Running) throw new Xunit.Sdk.XunitException($"the node exited with {process.ExitCode}:\n{node.Log()}");
                return (await node.Admin.GetAsync("/readyz", TestContext.Current.CancellationToken)).IsSuccessStatusCode;
            }, "node under the limit ready", TimeSpan.FromSeconds(60));
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
        return node;
    }

    /// <summary>Starts a node under the limit that is expected to stop by itself; its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> RunUntilExitAsync(int openFileLimit, TimeSpan within, params string[] extraArgs)
    {
        var dir = Path.Combine(Path.GetTempPath(), "fleet-tests", $"limited-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo("prlimit")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir,
        };
        string[] args =
        [
            $"--nofile={openFileLimit}:{openFileLimit}", "--", "dotnet", ServerDll, "--urls", $"http://127.0.0.1:{FreePort()}",
            "--Fleet:Cluster:Port", "0", "--Fleet:Persistence:ConnectionString", $"Data Source={Path.Combine(dir, "fleet.db")}",
            .. TestKeys.Arguments(), .. extraArgs,
        ];
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(within);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the node did not stop by itself within {within.TotalSeconds:0} s");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    private void Write(string? line)
    {
        if (line is null) return;
        lock (_logLock) _log.WriteLine(line);
    }

    public string Log()
    {
        lock (_logLock) _log.Flush();
        using var s = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var text = new StreamReader(s).ReadToEnd();
        return text.Length > 4000 ? "…" + text[^4000..] : text;
    }

    /// <summary>File descriptors the process holds now (null once it is gone).</summary>
    public int? OpenFiles()
    {
        try { return System.IO.Directory.GetFiles($"/proc/{Pid}/fd").Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public async Task<JsonNode> NodeInfo(CancellationToken ct)
    {
        using var r = await Admin.GetAsync("/api/v1/node", ct);
        r.EnsureSuccessStatusCode();
        return JsonNode.Parse(await r.Content.ReadAsStringAsync(ct))!;
    }

    /// <summary>The Release/Debug build of Fleet.Server this test project was built with.</summary>
    private static string ServerDll
    {
        get
        {
            var config = typeof(LimitedNodeProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
            var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Name;
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                var dll = Path.Combine(d.FullName, "src", "Fleet.Server", "bin", config, tfm, "Fleet.Server.dll");
                if (File.Exists(dll)) return dll;
            }
            throw new FileNotFoundException($"Fleet.Server is not built for {config}; build tests/Fleet.Server.Tests -c {config}");
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        lock (_logLock) _log.Dispose();
        Admin.Dispose();
    }
}
