using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Fleet.Cluster.Tests.Support;

/// <summary>
/// nginx in front of the nodes, with deploy/nginx/fleet.conf itself: its three `server …:8080` lines
/// become the nodes' loopback ports for routers, its three `server …:9090` lines their admin ports,
/// `listen 8080` / `listen 9090` free loopback ports and /var/log/nginx/ the work directory. Runs in the
/// foreground (daemon off) as our child, with its pid, logs and temp files in the work directory.
/// </summary>
public sealed class Nginx : IAsyncDisposable
{
    private readonly Process _process;
    /// <summary>The routers' listener.</summary>
    public int Port { get; }
    /// <summary>The admin API's listener.</summary>
    public int AdminPort { get; }
    public string Dir { get; }
    public Uri WebSocketUri => new($"ws://127.0.0.1:{Port}/ws/wifidogx");

    private Nginx(Process process, int port, int adminPort, string dir)
    {
        _process = process;
        Port = port;
        AdminPort = adminPort;
        Dir = dir;
    }

    /// <summary>deploy/nginx/fleet.conf for these ports; fails if the file no longer has what we replace.</summary>
    public static string SiteConfig(int listenPort, IReadOnlyList<int> upstreamPorts, int adminListenPort, IReadOnlyList<int> adminPorts)
    {
        var text = File.ReadAllText(Paths.NginxConf);
        text = Upstreams(text, 8080, upstreamPorts);
        text = Upstreams(text, 9090, adminPorts);
        text = ListenOn(text, 8080, listenPort);
        return ListenOn(text, 9090, adminListenPort);
    }

    private static string Upstreams(string text, int port, IReadOnlyList<int> ports)
    {
        var server = new Regex($@"(?m)^(\s*)server\s+\S+:{port}\b");
        var found = server.Matches(text).Count;
        if (found != ports.Count)
            throw new InvalidOperationException($"{Paths.NginxConf} has {found} upstream `server …:{port}` lines, the test has {ports.Count} nodes");
        var i = 0;
        return server.Replace(text, m => $"{m.Groups[1].Value}server 127.0.0.1:{ports[i++]}");
    }

    private static string ListenOn(string text, int port, int to)
    {
        var listen = new Regex($@"(?m)^(\s*)listen\s+{port}\s*;");
        if (listen.Matches(text).Count != 1) throw new InvalidOperationException($"{Paths.NginxConf} has not exactly one `listen {port};`");
        return listen.Replace(text, m => $"{m.Groups[1].Value}listen 127.0.0.1:{to};");
    }

    public static string MainConfig(string dir) => $$"""
        daemon off;
        worker_processes 1;
        pid {{dir}}/nginx.pid;
        error_log {{dir}}/error.log info;
        events { worker_connections 4096; }
        http {
            access_log {{dir}}/access.log;
            client_body_temp_path {{dir}}/client_body;
            proxy_temp_path {{dir}}/proxy;
            fastcgi_temp_path {{dir}}/fastcgi;
            uwsgi_temp_path {{dir}}/uwsgi;
            scgi_temp_path {{dir}}/scgi;
            include {{dir}}/fleet.conf;
        }
        """;

    public static async Task<Nginx> StartAsync(IReadOnlyList<int> upstreamPorts, IReadOnlyList<int> adminPorts, string workDir)
    {
        var dir = Path.Combine(workDir, "nginx");
        Directory.CreateDirectory(dir);
        var port = Ports.Free();
        var adminPort = Ports.Free();
        await File.WriteAllTextAsync(Path.Combine(dir, "fleet.conf"),
            SiteConfig(port, upstreamPorts, adminPort, adminPorts).Replace("/var/log/nginx/", dir + "/", StringComparison.Ordinal));
        var conf = Path.Combine(dir, "nginx.conf");
        await File.WriteAllTextAsync(conf, MainConfig(dir));
        var psi = new ProcessStartInfo(NginxBinary())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-e", Path.Combine(dir, "error.log"), "-p", dir + "/", "-c", conf }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var nginx = new Nginx(p, port, adminPort, dir);
        try
        {
            await Eventually.True(async () =>
            {
                if (p.HasExited) throw new InvalidOperationException($"nginx exited with {p.ExitCode}: {await p.StandardError.ReadToEndAsync()} {File.ReadAllText(Path.Combine(dir, "error.log"))}");
                using var c = new System.Net.Sockets.TcpClient();
                try { await c.ConnectAsync("127.0.0.1", port); return true; }
                catch (System.Net.Sockets.SocketException) { return false; }
            }, "nginx listening", TimeSpan.FromSeconds(15));
        }
        catch
        {
            await nginx.DisposeAsync();
            throw;
        }
        return nginx;
    }

    public static string NginxBinary()
    {
        foreach (var candidate in new[] { "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx" })
            if (File.Exists(candidate)) return candidate;
        throw new InvalidOperationException("nginx is not installed (tests/run.sh installs it: apt-get install nginx)");
    }

    /// <summary>Fast shutdown (SIGTERM) of the master, which stops its workers; SIGKILL for all of them if that hangs.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            var workers = Signals.Children(_process.Id);
            Signals.Send(_process.Id, Signals.SIGTERM);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException)
            {
                foreach (var w in workers) Signals.Send(w, Signals.SIGKILL);
                _process.Kill();
            }
        }
        _process.Dispose();
    }
}
