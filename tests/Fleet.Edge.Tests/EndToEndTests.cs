using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Fleet.Edge.Hosting;

namespace Fleet.Edge.Tests;

/// <summary>
/// Fleet.Edge against a real Fleet.Server node (a child process on a loopback port, SQLite in a
/// temp directory), enforcing with nftables in a network namespace.
/// </summary>
public sealed class EndToEndTests : IAsyncLifetime
{
    private readonly Workspace _ws = new();
    private readonly StringBuilder _serverLog = new();
    private Process? _server;
    private HttpClient _http = null!;
    private int _port;

    public async ValueTask InitializeAsync()
    {
        var config = typeof(EndToEndTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var dll = Path.Combine(ConfigTests.RepoRoot(), "src", "Fleet.Server", "bin", config, "net10.0", "Fleet.Server.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException($"{dll} is missing: the test project's ProjectReference should have built it");
        // Run a private copy: a rebuild of Fleet.Server during the test must not change the running node's files.
        var copy = Path.Combine(_ws.Dir, "server");
        foreach (var f in Directory.EnumerateFiles(Path.GetDirectoryName(dll)!, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(Path.GetDirectoryName(dll)!, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        dll = Path.Combine(copy, "Fleet.Server.dll");
        _port = LinkTests.FreePort();
        var psi = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
            WorkingDirectory = _ws.Dir,
        };
        foreach (var a in new[] { dll, "--urls", $"http://127.0.0.1:{_port}" }) psi.ArgumentList.Add(a);
        psi.Environment["Fleet__Persistence__ConnectionString"] = $"Data Source={Path.Combine(_ws.Dir, "fleet.db")}";
        psi.Environment["Fleet__Cluster__Port"] = "0";
        foreach (var (name, value) in TestKeys.Environment()) psi.Environment[name] = value;
        _server = Process.Start(psi)!;
        _server.OutputDataReceived += (_, e) => { lock (_serverLog) _serverLog.AppendLine(e.Data); };
        _server.ErrorDataReceived += (_, e) => { lock (_serverLog) _serverLog.AppendLine(e.Data); };
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_port}"), Timeout = TimeSpan.FromSeconds(20) }.Authorize();
        try
        {
            await Eventually.True(async () =>
            {
                if (_server.HasExited) throw new InvalidOperationException($"Fleet.Server exited with {_server.ExitCode}:\n{Log()}");
                try { return (await _http.GetAsync("/readyz", TestContext.Current.CancellationToken)).StatusCode == HttpStatusCode.OK; }
                catch (HttpRequestException) { return false; }
            }, "Fleet.Server /readyz answers 200", TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException ex) { throw new TimeoutException(ex.Message + "\n" + Log(), ex); }
    }

    private string Log() { lock (_serverLog) return _serverLog.ToString(); }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
            await _server.WaitForExitAsync();
        }
        _server?.Dispose();
        _ws.Dispose();
    }

    private async Task<JsonElement> Command(string deviceId, string body)
    {
        var response = await _http.PostAsync($"/api/v1/devices/{deviceId}/commands?wait=5",
            new StringContent(body, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task An_operators_kickoff_through_the_admin_api_removes_the_mac_from_the_nft_set_and_succeeds()
    {
        try { await KickoffScenario(); }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException || _server!.HasExited)
        {
            throw new InvalidOperationException($"{ex.Message}\n--- Fleet.Server (exited: {_server!.HasExited}) ---\n{Log()}", ex);
        }
    }

    private async Task KickoffScenario()
    {
        await using var ns = await NetNs.CreateAsync("e");
        var deviceId = "edge-e2e-" + Guid.NewGuid().ToString("N")[..6];
        var config = _ws.Config(new Uri($"ws://127.0.0.1:{_port}/ws/wifidogx"), deviceId);
        config.Firewall.Backend = "nftables";
        await using var agent = EdgeAgent.Start(config, new EdgeOverrides { NftPrefix = ns.Prefix, Timings = LinkTests.Fast });

        await Eventually.True(async () =>
        {
            var r = await _http.GetAsync($"/api/v1/devices/{deviceId}", TestContext.Current.CancellationToken);
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
    }
}
