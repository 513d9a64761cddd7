using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Text;
using System.Net.Http.Json;
using System.Text.Json;

namespace Fleet.Edge.Tests;

/// <summary>A Fleet.Server node as a child process on a host loopback port (SQLite in a temp directory), as EndToEndTests starts it.</summary>
public sealed class FleetServerNode : IAsyncLifetime
{
    private readonly Workspace _ws = new();
    private readonly StringBuilder _log = new();
    private Process? _server;

    public HttpClient Http { get; private set; } = null!;
    public int Port { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var config = typeof(FleetServerNode).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var dll = Path.Combine(ConfigTests.RepoRoot(), "src", "Fleet.Server", "bin", config, "net10.0", "Fleet.Server.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException($"{dll} is missing: the test project's ProjectReference should have built it");
        // A private copy: a rebuild of Fleet.Server during the test must not change the running node's files.
        var from = Path.GetDirectoryName(dll)!;
        var copy = Path.Combine(_ws.Dir, "server");
        foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(copy, Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        Port = LinkTests.FreePort();
        var psi = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _ws.Dir,
        };
        foreach (var a in new[] { Path.Combine(copy, "Fleet.Server.dll"), "--urls", $"http://127.0.0.1:{Port}" }) psi.ArgumentList.Add(a);
        psi.Environment["Fleet__Persistence__ConnectionString"] = $"Data Source={Path.Combine(_ws.Dir, "fleet.db")}";
        psi.Environment["Fleet__Cluster__Port"] = "0";
        foreach (var (name, value) in TestKeys.Environment()) psi.Environment[name] = value;
        _server = Process.Start(psi)!;
        _server.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _server.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port}"), Timeout = TimeSpan.FromSeconds(20) }.Authorize();
        try
        {
            await Eventually.True(async () =>
            {
                if (_server.HasExited) throw new InvalidOperationException($"Fleet.Server exited with {_server.ExitCode}:\n{Log()}");
                try { return (await Http.GetAsync("/readyz", TestContext.Current.CancellationToken)).StatusCode == HttpStatusCode.OK; }
                catch (HttpRequestException) { return false; }
            }, "Fleet.Server /readyz answers 200", TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException ex) { throw new TimeoutException(ex.Message + "\n" + Log(), ex); }
    }

    public bool HasExited => _server?.HasExited ?? true;

    /// <summary>An admin API command to a device, waiting up to 5 s for its result.</summary>
    public async Task<JsonElement> Command(string deviceId, string body)
    {
        var response = await Http.PostAsync($"/api/v1/devices/{deviceId}/commands?wait=5",
            new StringContent(body, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>
    /// An operator's auth, kickoff, second kickoff and get_firmware_info through this node reach an agent (in-process or
    /// a published binary) whose firewall is nft in <paramref name="ns"/>. <paramref name="agentExited"/> ends the
    /// wait early when the agent is a process that died.
    /// </summary>
    public async Task KickoffScenario(string deviceId, NetNs ns, Func<bool>? agentExited = null)
    {
        await Eventually.True(async () =>
        {
            if (agentExited?.Invoke() == true) throw new InvalidOperationException("the agent exited");
            var r = await Http.GetAsync($"/api/v1/devices/{deviceId}", TestContext.Current.CancellationToken);
            return r.IsSuccessStatusCode && (await r.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("online").GetBoolean();
        }, "the device online at the controller", TimeSpan.FromSeconds(30));

        var auth = await Command(deviceId, """{"type":"auth","token":"tok","client_ip":"10.231.1.10","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1","once_auth":false}""");
        Assert.Equal("delivered", auth.GetProperty("status").GetString());
        await Eventually.True(async () => (await NftablesTests.ElementsIn(ns)).Contains(("aa:bb:cc:dd:ee:01", null)), "the MAC in the nft set after auth");

        var kick = await Command(deviceId, """{"type":"kickoff","client_ip":"10.231.1.10","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1"}""");
        Assert.Equal("succeeded", kick.GetProperty("status").GetString());
        Assert.Equal("kickoff_response", kick.GetProperty("response").GetProperty("type").GetString());
        Assert.DoesNotContain(await NftablesTests.ElementsIn(ns), e => e.Mac == "aa:bb:cc:dd:ee:01");

        var again = await Command(deviceId, """{"type":"kickoff","client_ip":"10.231.1.10","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1"}""");
        Assert.Equal(("failed", "Client not found"), (again.GetProperty("status").GetString(), again.GetProperty("error").GetString()));

        var info = await Command(deviceId, """{"type":"get_firmware_info"}""");
        Assert.Equal("succeeded", info.GetProperty("status").GetString());
        Assert.Equal("ChaWrt", info.GetProperty("response").GetProperty("data").GetProperty("DISTRIB_ID").GetString());
    }

    public string Log() { lock (_log) return _log.ToString(); }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
            await _server.WaitForExitAsync();
        }
        _server?.Dispose();
        _ws.Dispose();
    }
}

