using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Fleet.Edge.Config;
using Fleet.Edge.Platform;

namespace Fleet.Edge.Tests;

/// <summary>
/// The published ("lightweight") Fleet.Edge binaries that run on this machine, as deploy/openwrt/build.sh makes them:
/// <c>linux-x64</c> (self-contained, fully trimmed, JIT: the glibc twin of the OpenWrt musl build) and
/// <c>linux-x64-aot</c> (Native AOT). They live in <c>&lt;repo&gt;/out/edge/&lt;target&gt;/Fleet.Edge</c>, or under the out
/// directory <c>FLEET_EDGE_OUT</c> names. A binary that is missing, or older than the sources it is built from, is
/// (re)built once per test run with build.sh; a failed build fails every test of that target with the log's tail.
/// </summary>
public static class PublishedBuild
{
    public const string Trimmed = "linux-x64";
    public const string Aot = "linux-x64-aot";

    // One build at a time: both targets publish the same project for the same RID (obj/…/linux-x64), so two
    // publishes side by side would write the same intermediate files. Results (a path or a failure) are kept.
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static readonly Dictionary<string, (string? Binary, string? Failure)> Results = new(StringComparer.Ordinal);

    public static string OutDir =>
        Environment.GetEnvironmentVariable("FLEET_EDGE_OUT") is { Length: > 0 } dir
            ? Path.GetFullPath(dir)
            : Path.Combine(ConfigTests.RepoRoot(), "out", "edge");

    /// <summary>The path of the target's binary, built first if needed.</summary>
    public static async Task<string> BinaryAsync(string target)
    {
        if (target is not (Trimmed or Aot)) throw new ArgumentException($"'{target}' is no target that runs here ({Trimmed}, {Aot})", nameof(target));
        await Gate.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (!Results.TryGetValue(target, out var result))
            {
                var binary = Path.Combine(OutDir, target, "Fleet.Edge");
                var why = WhyBuild(binary);
                result = why is null ? (binary, null) : await BuildAsync(target, binary, why);
                Results[target] = result;
            }
            return result.Binary ?? throw new InvalidOperationException(result.Failure);
        }
        finally { Gate.Release(); }
    }

    /// <summary>Why the binary must be built (missing, or older than a source file), or null when it is current.</summary>
    private static string? WhyBuild(string binary)
    {
        if (!File.Exists(binary)) return $"{binary} is missing";
        var built = File.GetLastWriteTimeUtc(binary);
        var newer = Sources().FirstOrDefault(f => File.GetLastWriteTimeUtc(f) > built);
        return newer is null ? null : $"{binary} is older than {Path.GetRelativePath(ConfigTests.RepoRoot(), newer)}";
    }

    /// <summary>What the published agent is made from: its project, Fleet.Protocol, the build settings and the script.</summary>
    private static IEnumerable<string> Sources()
    {
        var root = ConfigTests.RepoRoot();
        foreach (var project in new[] { "Fleet.Edge", "Fleet.Protocol" })
        {
            var dir = Path.Combine(root, "src", project);
            foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            {
                var rel = Path.GetRelativePath(dir, f);
                if (rel.StartsWith("bin" + Path.DirectorySeparatorChar, StringComparison.Ordinal)
                    || rel.StartsWith("obj" + Path.DirectorySeparatorChar, StringComparison.Ordinal)) continue;
                yield return f;
            }
        }
        foreach (var f in new[] { "Directory.Build.props", "Directory.Packages.props", "deploy/openwrt/build.sh" })
            if (File.Exists(Path.Combine(root, f))) yield return Path.Combine(root, f);
    }

    private static async Task<(string?, string?)> BuildAsync(string target, string binary, string why)
    {
        var root = ConfigTests.RepoRoot();
        var psi = new ProcessStartInfo("bash")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root,
        };
        psi.ArgumentList.Add(Path.Combine(root, "deploy", "openwrt", "build.sh"));
        psi.ArgumentList.Add(target);
        psi.Environment["OUT"] = OutDir;
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("bash did not start");
        var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        try { await p.WaitForExitAsync(TestContext.Current.CancellationToken); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); throw; }
        var output = await stdout + await stderr;
        if (p.ExitCode == 0 && File.Exists(binary)) return (binary, null);
        var log = Path.Combine(OutDir, target + ".log");
        var tail = File.Exists(log) ? $"\n--- {log} (tail) ---\n{Tail(await File.ReadAllTextAsync(log, TestContext.Current.CancellationToken), 40)}" : "";
        return (null, $"build.sh {target} ({why}) failed with exit code {p.ExitCode} after {clock.Elapsed.TotalSeconds:0} s; " +
                      $"{(File.Exists(binary) ? "" : binary + " was not made; ")}output:\n{Tail(output, 40)}{tail}");
    }

    internal static string Tail(string text, int lines)
    {
        var all = text.Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    /// <summary>Runs the binary with <paramref name="args"/> to its end (the command-line behaviours).</summary>
    public static async Task<ProcessResult> RunToEndAsync(string target, params string[] args)
    {
        var binary = await BinaryAsync(target);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        return await ProcessRunner.RunAsync([binary], args, null, cts.Token);
    }
}

/// <summary>
/// One run of a published binary as a child process: <c>&lt;binary&gt; --config &lt;workspace&gt;/edge.json</c>, inside a
/// network namespace when one is given (<c>ip netns exec</c> execs the binary: the child's pid is the agent's). Its
/// standard output and error are kept (<see cref="Output"/>) for failure messages. Disposing kills it if it still runs.
/// </summary>
public sealed class PublishedAgent : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Target { get; }
    public string ConfigPath { get; }
    public int Pid { get; }

    private PublishedAgent(string target, string configPath, Process process)
    {
        Target = target;
        ConfigPath = configPath;
        _process = process;
        Pid = process.Id;
    }

    /// <summary>Writes <paramref name="config"/> as edge.json in the workspace and starts the target's binary on it.</summary>
    public static async Task<PublishedAgent> StartAsync(string target, Workspace ws, EdgeConfig config, NetNs? ns = null)
    {
        var binary = await PublishedBuild.BinaryAsync(target);
        var path = Path.Combine(ws.Dir, "edge.json");
        var json = JsonSerializer.Serialize(config, ConfigJsonContext.Default.EdgeConfig);
        // The test's own config must be valid: a refusal by the binary is then the binary's fault, not the test's.
        var check = ConfigLoader.Parse(json);
        if (!check.IsOk) throw new InvalidOperationException($"the test wrote a bad config: {string.Join("; ", check.Errors)}\n{json}");
        await File.WriteAllTextAsync(path, json, TestContext.Current.CancellationToken);

        var psi = ProcessRunner.StartInfo([.. ns?.Prefix ?? [], binary], ["--config", path], redirectStdin: false);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.Start();
        var agent = new PublishedAgent(target, path, process);
        process.OutputDataReceived += (_, e) => agent.Keep("out", e.Data);
        process.ErrorDataReceived += (_, e) => agent.Keep("err", e.Data);
        process.Exited += (_, _) => agent._exited.TrySetResult();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (process.HasExited) agent._exited.TrySetResult();
        return agent;
    }

    private void Keep(string stream, string? line)
    {
        if (line is null) return;
        lock (_output) _output.Append(stream).Append("| ").AppendLine(line);
    }

    /// <summary>Everything the binary wrote so far, each line marked out| or err|.</summary>
    public string Output { get { lock (_output) return _output.ToString(); } }

    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>Its exit code once it has exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// Awaits <paramref name="task"/>, failing at once (with the binary's output) if the agent exits first: a crash
    /// shows as the crash, not as a wait that timed out.
    /// </summary>
    public async Task<T> WhileRunning<T>(Task<T> task)
    {
        if (await Task.WhenAny(task, _exited.Task) != task)
            throw new InvalidOperationException($"{Target} exited with code {_process.ExitCode} while the test waited");
        return await task;
    }

    /// <summary>SIGTERM (what procd sends), then its exit code; a timeout if it does not end within <paramref name="within"/>.</summary>
    public async Task<int> TerminateAsync(TimeSpan? within = null)
    {
        var kill = await Sh.Try("kill", "-TERM", Pid.ToString(CultureInfo.InvariantCulture));
        if (!kill.Ok && !HasExited) throw new InvalidOperationException($"kill -TERM {Pid} failed: {kill.StdErr}");
        return await WaitForExitAsync(within ?? TimeSpan.FromSeconds(15));
    }

    public async Task<int> WaitForExitAsync(TimeSpan within)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(within);
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{Target} (pid {Pid}) did not exit within {within.TotalSeconds:0} s");
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // Only this child (and its own children, e.g. a sysupgrade recorder still running), by its pid.
            try { _process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { } // it ended meanwhile
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { }
        }
        _process.Dispose();
    }
}

/// <summary>
/// A TCP port on a network namespace's own loopback that forwards every connection to a port on the host's
/// loopback. The published agent runs inside a namespace (its nft must change that namespace's ruleset, never the
/// machine's), where 127.0.0.1 is the namespace's own loopback; the controllers of the tests (FakeController, a
/// Fleet.Server node) listen on the host's 127.0.0.1. The listening socket is opened inside the namespace
/// (<see cref="NetNs.Socket"/>), so the agent dials 127.0.0.1 as a router dials its controller, over a real TCP
/// connection, and no veth, address or route has to be set up (or can collide between parallel tests). Half-closes
/// are passed on as half-closes and resets as resets, so the agent sees a dropped controller as it would directly.
/// </summary>
public sealed class LoopbackBridge : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly int _hostPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly Task _accepting;

    /// <summary>The port inside the namespace.</summary>
    public int Port { get; }

    private LoopbackBridge(Socket listener, int hostPort)
    {
        _listener = listener;
        _hostPort = hostPort;
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        _accepting = Task.Run(AcceptLoop);
    }

    public static LoopbackBridge Open(NetNs ns, int hostPort)
    {
        var listener = ns.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        return new LoopbackBridge(listener, hostPort);
    }

    /// <summary>A host-loopback URL as the namespace reaches it: the same, on the bridge's port.</summary>
    public Uri Inside(Uri hostUrl) => new UriBuilder(hostUrl) { Host = "127.0.0.1", Port = Port }.Uri;

    private async Task AcceptLoop()
    {
        try
        {
            while (true)
            {
                var inner = await _listener.AcceptAsync(_stop.Token);
                _ = Relay(inner);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    private async Task Relay(Socket inner)
    {
        var outer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _open[inner] = 0;
        _open[outer] = 0;
        try
        {
            try { await outer.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _hostPort), _stop.Token); }
            catch (SocketException) { return; } // nobody listens on the host: the agent's connect fails as it would
            var up = Pump(inner, outer);
            var down = Pump(outer, inner);
            var first = await Task.WhenAny(up, down);
            // A reset or error on one side: reset the other at once. A half-close: wait for the other direction.
            if (await first) await (first == up ? down : up);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException) { }
        finally
        {
            _open.TryRemove(inner, out _);
            _open.TryRemove(outer, out _);
            inner.Dispose();
            outer.Dispose();
        }
    }

    /// <summary>Copies until end of stream (true: half-closes <paramref name="to"/>) or an error (false: resets <paramref name="to"/>).</summary>
    private async Task<bool> Pump(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return true;
                }
                for (var sent = 0; sent < n;) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            try { to.LingerState = new LingerOption(true, 0); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        foreach (var s in _open.Keys) s.Dispose();
        await _accepting;
        _stop.Dispose();
    }
}
