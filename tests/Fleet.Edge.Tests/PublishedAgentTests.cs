using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Fleet.Edge.Config;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

/// <summary>
/// Everything the agent does, done by the published binaries (issue 15): the trimmed JIT build and the Native AOT
/// build, each run as a child process inside a network namespace of the test's own, where its nft changes that
/// namespace's ruleset. It reaches the test's <see cref="FakeController"/> through a <see cref="LoopbackBridge"/>.
/// Nothing is shortened for the test: heartbeats every second where a test needs them, and the firmware's real
/// reconnect delays. What trimming or AOT broke shows here and not in the in-process tests.
/// </summary>
public sealed class PublishedAgentTests : IAsyncLifetime
{
    private const string Mac = "aa:bb:cc:dd:ee:01";

    private readonly Workspace _ws = new();
    private readonly List<PublishedAgent> _agents = [];
    private FakeController _controller = null!;
    private NetNs? _ns;
    private LoopbackBridge? _bridge;

    public async ValueTask InitializeAsync() => _controller = await FakeController.StartAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (var a in _agents) await a.DisposeAsync();
        if (_bridge is not null) await _bridge.DisposeAsync();
        if (_ns is not null) await _ns.DisposeAsync();
        await _controller.DisposeAsync();
        _ws.Dispose();
    }

    private sealed record Started(PublishedAgent Agent, DeviceSocket Device, JsonElement Connect);

    /// <summary>Starts the target's binary in the namespace with the workspace's config (nftables), and waits for its connect.</summary>
    private async Task<Started> Start(string target, Action<EdgeConfig>? change = null)
    {
        _ns ??= await NetNs.CreateAsync("p");
        _bridge ??= LoopbackBridge.Open(_ns, _controller.Url.Port);
        var config = _ws.Config(_bridge.Inside(_controller.Url));
        config.Firewall.Backend = "nftables";
        change?.Invoke(config);
        var agent = await PublishedAgent.StartAsync(target, _ws, config, _ns);
        _agents.Add(agent);
        var device = await agent.WhileRunning(_controller.NextConnectionAsync(TimeSpan.FromSeconds(20)));
        var connect = await agent.WhileRunning(device.ExpectAsync("connect"));
        return new Started(agent, device, connect);
    }

    /// <summary>Runs a test's body; a failure carries what every binary of the test wrote (its log is the finding).</summary>
    private async Task Run(Func<Task> body)
    {
        try { await body(); }
        catch (Exception ex)
        {
            var log = new StringBuilder(ex.Message);
            foreach (var a in _agents)
                log.Append($"\n--- {a.Target} pid {a.Pid} ({(a.HasExited ? $"exited with {a.ExitCode}" : "running")}) ---\n").Append(a.Output);
            foreach (var f in _controller.Failures) log.Append("\ncontroller: ").Append(f);
            throw new PublishedAgentFailure(log.ToString(), ex);
        }
        finally
        {
            // Kept with the result either way (the link's reconnect lines say which delay it took).
            foreach (var a in _agents) TestContext.Current.TestOutputHelper?.WriteLine($"--- {a.Target} pid {a.Pid} ---\n{a.Output}");
        }
    }

    private Task<List<(string Mac, int? Timeout)>> Elements() => NftablesTests.ElementsIn(_ns!);

    /// <summary>The comments of the rules of our table's forward chain: "gw-1: not authorised" (portal) or "gw-1: open".</summary>
    private async Task<List<string>> ForwardRules()
    {
        var rs = await NftablesTests.Ruleset(_ns!);
        if (!rs.Any(o => o.Kind == "table" && o.Body.GetProperty("name").GetString() == "fleet"))
            throw new NftObjectMissing("no table inet fleet in the ruleset");
        return rs.Where(o => o.Kind == "rule" && o.Body.GetProperty("table").GetString() == "fleet" && o.Body.GetProperty("chain").GetString() == "forward")
            .Select(o => o.Body.TryGetProperty("comment", out var c) ? c.GetString() ?? "" : "")
            .ToList();
    }

    private static int AuthMode(JsonElement report) => report.GetProperty("gateway")[0].GetProperty("auth_mode").GetInt32();

    private static string Auth(bool onceAuth = false) =>
        $$"""{"type":"auth","token":"tok","client_ip":"10.231.1.10","client_mac":"{{Mac}}","gw_id":"gw-1","once_auth":{{(onceAuth ? "true" : "false")}}}""";

    private Task MacInTheSet(string what) =>
        Eventually.True(async () => (await Elements()).Contains((Mac, null)), what);

    /// <summary>An auth from the controller: the MAC in the nft set, then the client in clients.json.</summary>
    private async Task AuthoriseAndSave(Started s)
    {
        await s.Device.SendAsync(Auth());
        await MacInTheSet("the MAC in allow_0 after auth");
        var saved = Path.Combine(_ws.StateDir, "clients.json");
        await Eventually.True(() => File.Exists(saved) && File.ReadAllText(saved).Contains(Mac, StringComparison.Ordinal), "the client saved in clients.json");
    }

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Connect_comes_first_with_device_id_info_and_gateways_then_heartbeats_repeat(string target) => Run(async () =>
    {
        var s = await Start(target, c => c.HeartbeatIntervalSeconds = 1);
        Assert.Equal("router-1", s.Connect.GetProperty("device_id").GetString());
        Assert.Equal("8c:de:f9:5e:f7:06", s.Connect.GetProperty("device_info").GetProperty("ap_mac_address").GetString());
        Assert.Equal("lobby", s.Connect.GetProperty("device_info").GetProperty("location_id").GetString());
        var gw = s.Connect.GetProperty("gateway")[0];
        Assert.Equal(("gw-1", "br-lan", "10.231.1.1", 1),
            (gw.GetProperty("gw_id").GetString(), gw.GetProperty("gw_interface").GetString(), gw.GetProperty("gw_address_v4").GetString(), gw.GetProperty("auth_mode").GetInt32()));

        var first = await s.Device.ExpectAsync("heartbeat");
        var second = await s.Device.ExpectAsync("heartbeat");
        foreach (var h in new[] { first, second })
            Assert.Equal(("router-1", "gw-1", 1), (h.GetProperty("device_id").GetString(), h.GetProperty("gateway")[0].GetProperty("gw_id").GetString(), AuthMode(h)));
        Assert.Equal("connect", s.Device.Types[0]);
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task A_heartbeat_replys_auth_mode_is_enforced_in_nft_and_reported_in_the_next_heartbeats(string target) => Run(async () =>
    {
        var s = await Start(target, c => c.HeartbeatIntervalSeconds = 1);
        Assert.Equal(1, AuthMode(await s.Device.ExpectAsync("heartbeat")));
        await Eventually.True(async () => (await ForwardRules()).Contains("gw-1: not authorised"), "the portal's drop rule for gw-1");

        await s.Device.SendModesAsync(new GatewayAuthMode { GwId = "gw-1", AuthMode = 0 });
        await Eventually.True(async () => (await ForwardRules()).Contains("gw-1: open"), "gw-1 open in the forward chain");
        Assert.DoesNotContain("gw-1: not authorised", await ForwardRules());
        // Heartbeats already on their way may still say 1; from the first that says 0, every one does.
        await Eventually.True(async () => AuthMode(await s.Device.ExpectAsync("heartbeat")) == 0, "a heartbeat reporting auth_mode 0");
        Assert.Equal(0, AuthMode(await s.Device.ExpectAsync("heartbeat")));
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Auth_adds_the_mac_to_the_gateways_nft_set_and_kickoff_removes_it_answering_kickoff_response(string target) => Run(async () =>
    {
        var s = await Start(target);
        await AuthoriseAndSave(s);

        await s.Device.SendAsync($$"""{"type":"kickoff","req_id":9,"client_ip":"10.231.1.10","client_mac":"{{Mac}}","device_id":"router-1","gw_id":"gw-1"}""");
        var r = await s.Device.ExpectAsync("kickoff_response");
        Assert.Equal(("success", "Client kicked off successfully", 9),
            (r.GetProperty("status").GetString(), r.GetProperty("message").GetString(), r.GetProperty("req_id").GetInt32()));
        // The answer goes out after the nft transaction: the MAC is gone by now.
        Assert.DoesNotContain(await Elements(), e => e.Mac == Mac);
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Kickoff_of_an_unknown_client_answers_client_not_found(string target) => Run(async () =>
    {
        var s = await Start(target);
        await s.Device.SendAsync("""{"type":"kickoff","req_id":"k-1","client_ip":"10.231.1.77","client_mac":"aa:bb:cc:dd:ee:77","device_id":"router-1","gw_id":"gw-1"}""");
        var r = await s.Device.ExpectAsync("kickoff_error");
        Assert.Equal(("Client not found", "10.231.1.77", "aa:bb:cc:dd:ee:77", "k-1"),
            (r.GetProperty("error").GetString(), r.GetProperty("client_ip").GetString(), r.GetProperty("client_mac").GetString(), r.GetProperty("req_id").GetString()));
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Tmp_pass_adds_the_mac_with_an_nft_element_timeout(string target) => Run(async () =>
    {
        var s = await Start(target);
        await s.Device.SendAsync("""{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:05","timeout":120}""");
        await Eventually.True(async () => (await Elements()).Any(e => e.Mac == "aa:bb:cc:dd:ee:05"), "the pass in allow_0");
        var pass = (await Elements()).Single(e => e.Mac == "aa:bb:cc:dd:ee:05");
        Assert.True(pass.Timeout is > 100 and <= 120, $"element timeout {pass.Timeout} s, expected about 120");
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Auth_with_once_auth_opens_the_gateway_in_nft(string target) => Run(async () =>
    {
        var s = await Start(target);
        await Eventually.True(async () => (await ForwardRules()).Contains("gw-1: not authorised"), "the portal's drop rule for gw-1");
        await s.Device.SendAsync(Auth(onceAuth: true));
        await Eventually.True(async () => (await ForwardRules()).Contains("gw-1: open"), "gw-1 open in the forward chain");
        Assert.DoesNotContain("gw-1: not authorised", await ForwardRules());
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Get_firmware_info_answers_from_the_release_file_echoing_numeric_and_string_req_ids(string target) => Run(async () =>
    {
        var s = await Start(target);
        await s.Device.SendAsync("""{"type":"get_firmware_info","req_id":42}""");
        await s.Device.SendAsync("""{"type":"get_firmware_info","req_id":"cmd-7"}""");
        foreach (var reqId in new[] { "42", "\"cmd-7\"" })
        {
            var r = await s.Device.ExpectAsync("firmware_info_response");
            Assert.Equal(reqId, r.GetProperty("req_id").GetRawText());
            var data = r.GetProperty("data");
            Assert.Equal(("ChaWrt", "ramips/mt7621", "r28790-abc123"),
                (data.GetProperty("DISTRIB_ID").GetString(), data.GetProperty("DISTRIB_TARGET").GetString(), data.GetProperty("DISTRIB_REVISION").GetString()));
        }
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Firmware_upgrade_runs_sysupgrade_with_the_url_as_an_argument_and_answers_success(string target) => Run(async () =>
    {
        var s = await Start(target);
        const string url = "http://10.231.9.9/images/openwrt-sysupgrade.bin";
        await s.Device.SendAsync($$"""{"type":"firmware_upgrade","req_id":5,"url":"{{url}}","force":true}""");
        var r = await s.Device.ExpectAsync("firmware_upgrade_response");
        Assert.Equal(("success", "Firmware upgrade initiated successfully", 5),
            (r.GetProperty("status").GetString(), r.GetProperty("message").GetString(), r.GetProperty("req_id").GetInt32()));
        await Eventually.True(() => File.Exists(_ws.SysupgradeLog), "sysupgrade ran");
        Assert.Equal(["-F", url], File.ReadAllLines(_ws.SysupgradeLog));
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Firmware_upgrade_with_a_bad_url_answers_firmware_upgrade_error_and_runs_nothing(string target) => Run(async () =>
    {
        var s = await Start(target);
        await s.Device.SendAsync("""{"type":"firmware_upgrade","req_id":6,"url":"http://x/a.bin; reboot"}""");
        var r = await s.Device.ExpectAsync("firmware_upgrade_error");
        Assert.Equal(("Missing or invalid 'url' field", 6), (r.GetProperty("error").GetString(), r.GetProperty("req_id").GetInt32()));
        Assert.False(File.Exists(_ws.SysupgradeLog), "sysupgrade ran for a refused URL");
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Reboot_device_runs_the_reboot_command_and_sends_no_answer(string target) => Run(async () =>
    {
        var s = await Start(target);
        await s.Device.SendAsync("""{"type":"reboot_device","req_id":8}""");
        await Eventually.True(() => File.Exists(_ws.RebootLog), "the reboot command ran");
        Assert.Equal([], File.ReadAllLines(_ws.RebootLog).Where(l => l.Length > 0));
        // Frames are answered in order: once this answer is in, a reboot answer would have been too.
        await s.Device.SendAsync("""{"type":"get_firmware_info","req_id":10}""");
        await s.Device.ExpectAsync("firmware_info_response");
        Assert.DoesNotContain(s.Device.Types, t => t.StartsWith("reboot_device", StringComparison.Ordinal));
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Get_sys_info_answers_the_figures_from_proc(string target) => Run(async () =>
    {
        var s = await Start(target);
        await s.Device.SendAsync("""{"type":"get_sys_info","req_id":11}""");
        var r = await s.Device.ExpectAsync("get_sys_info_response");
        Assert.Equal(11, r.GetProperty("req_id").GetInt32());
        var d = r.GetProperty("data");
        Assert.True(d.GetProperty("sys_uptime").GetInt64() > 0, d.GetRawText());
        Assert.True(d.GetProperty("sys_memfree").GetInt64() > 0, d.GetRawText());
        Assert.True(d.GetProperty("sys_memtotal").GetInt64() >= d.GetProperty("sys_memfree").GetInt64(), d.GetRawText());
        Assert.True(d.GetProperty("sys_load").GetDouble() >= 0, d.GetRawText());
        Assert.True(d.GetProperty("wifidog_uptime").GetInt64() >= 0, d.GetRawText());
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Bad_frames_get_the_2025_firmwares_answers_and_the_connection_is_kept(string target) => Run(async () =>
    {
        var s = await Start(target);
        await s.Device.SendAsync("not json");
        await s.Device.SendAsync("""{"type":"make_coffee","req_id":"c-1"}""");
        await s.Device.SendAsync("""{"req_id":"c-2"}""");
        var unknown = await s.Device.ExpectAsync("request_error");
        Assert.Equal(("c-1", "Unknown WebSocket message type", "make_coffee"),
            (unknown.GetProperty("req_id").GetString(), unknown.GetProperty("error").GetString(), unknown.GetProperty("requested_type").GetString()));
        var untyped = await s.Device.ExpectAsync("request_error");
        Assert.Equal(("c-2", "Missing message type in JSON"), (untyped.GetProperty("req_id").GetString(), untyped.GetProperty("error").GetString()));

        await s.Device.SendAsync("""{"type":"get_firmware_info","req_id":12}""");
        Assert.Equal(12, (await s.Device.ExpectAsync("firmware_info_response")).GetProperty("req_id").GetInt32());
        // Not JSON: logged, no answer (EDGE.md); the same connection throughout.
        Assert.Equal(2, s.Device.Types.Count(t => t == "request_error"));
        Assert.Equal(1, _controller.Connections);
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task Clients_survive_sigterm_and_a_flushed_ruleset_and_are_back_in_nft_after_a_restart(string target) => Run(async () =>
    {
        var s = await Start(target);
        await AuthoriseAndSave(s);

        Assert.Equal(0, await s.Agent.TerminateAsync());
        // Fail closed: the table stays after a stop.
        Assert.Contains((Mac, null), await Elements());
        await _ns!.Nft("flush", "ruleset");
        await Assert.ThrowsAsync<NftObjectMissing>(Elements);

        var again = await Start(target);
        await MacInTheSet("the MAC back in allow_0 after the restart");
        Assert.Equal(0, again.Device.FramesSent); // from clients.json: the controller resent nothing
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task A_flush_of_the_ruleset_while_running_is_repaired(string target) => Run(async () =>
    {
        var s = await Start(target, c => c.Firewall.CheckIntervalSeconds = 1);
        await s.Device.SendAsync(Auth());
        await MacInTheSet("the MAC in allow_0 after auth");
        await _ns!.Nft("flush", "ruleset");
        await MacInTheSet("the MAC back in allow_0 after nft flush ruleset");
        Assert.Contains("gw-1: not authorised", await ForwardRules());
    });

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public Task The_agent_reconnects_and_sends_connect_after_a_dropped_socket_and_after_a_close_frame(string target) => Run(async () =>
    {
        var s = await Start(target);
        // The firmware's delays, not shortened in the binary: a controller that drops is not hammered. Only lower
        // bounds are asserted (a loaded machine may take longer, never less).
        var clock = Stopwatch.StartNew();
        s.Device.Abort(); // TCP gone without a close frame: 2 s (error) or 5 s (EOF)
        var second = await s.Agent.WhileRunning(_controller.NextConnectionAsync(TimeSpan.FromSeconds(15)));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.9), $"reconnected {clock.Elapsed.TotalSeconds:0.00} s after the drop");
        Assert.Equal("router-1", (await second.ExpectAsync("connect")).GetProperty("device_id").GetString());

        clock.Restart();
        await second.CloseAsync(); // a close frame: 3 s
        var third = await s.Agent.WhileRunning(_controller.NextConnectionAsync(TimeSpan.FromSeconds(15)));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.9), $"reconnected {clock.Elapsed.TotalSeconds:0.00} s after the close frame");
        await third.ExpectAsync("connect");
        await third.SendAsync("""{"type":"get_firmware_info","req_id":2}""");
        await third.ExpectAsync("firmware_info_response");
        Assert.Equal(3, _controller.Connects["router-1"]);
    });
}

/// <summary>The published binaries' command line: the options, messages and exit codes procd and operators rely on.</summary>
public sealed class PublishedAgentCommandLineTests : IDisposable
{
    private readonly Workspace _ws = new();

    public void Dispose() => _ws.Dispose();

    private static string ShippedConfig() =>
        Path.Combine(ConfigTests.RepoRoot(), "deploy", "openwrt", "files", "etc", "fleet-edge", "edge.json");

    private static string Show(Platform.ProcessResult r) => $"exit {r.ExitCode}\nstdout:\n{r.StdOut}\nstderr:\n{r.StdErr}";

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public async Task Check_of_a_valid_config_says_so_and_exits_0(string target)
    {
        var path = ShippedConfig();
        var r = await PublishedBuild.RunToEndAsync(target, "--config", path, "--check");
        Assert.True(r.ExitCode == 0 && r.StdOut.Trim() == $"fleet-edge: {path} is valid", Show(r));
    }

    [Theory]
    [InlineData(PublishedBuild.Trimmed, "\"heartbeat_interval_seconds\": \"soon\"", "heartbeat_interval_seconds: expected an integer")]
    [InlineData(PublishedBuild.Aot, "\"heartbeat_interval_seconds\": \"soon\"", "heartbeat_interval_seconds: expected an integer")]
    [InlineData(PublishedBuild.Trimmed, "\"heartbet_interval_seconds\": 60", "heartbet_interval_seconds: unknown key (misspelt?)")]
    [InlineData(PublishedBuild.Aot, "\"heartbet_interval_seconds\": 60", "heartbet_interval_seconds: unknown key (misspelt?)")]
    public async Task A_bad_config_exits_78_naming_the_key_with_check_and_at_start(string target, string line, string message)
    {
        var path = Path.Combine(_ws.Dir, "edge.json");
        var text = File.ReadAllText(ShippedConfig()).Replace("\"heartbeat_interval_seconds\": 60", line, StringComparison.Ordinal);
        Assert.Contains(line, text);
        File.WriteAllText(path, text);
        foreach (var args in new[] { new[] { "--check", "--config", path }, ["--config", path] })
        {
            var r = await PublishedBuild.RunToEndAsync(target, args);
            Assert.True(r.ExitCode == 78, $"{string.Join(' ', args)}: {Show(r)}");
            Assert.True(r.StdErr.Contains($"fleet-edge: bad config {path}:", StringComparison.Ordinal) && r.StdErr.Contains("  " + message, StringComparison.Ordinal),
                $"{string.Join(' ', args)}: expected '{message}'; {Show(r)}");
        }
    }

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public async Task An_unknown_option_prints_the_usage_and_exits_64(string target)
    {
        var r = await PublishedBuild.RunToEndAsync(target, "--bogus");
        Assert.True(r.ExitCode == 64, Show(r));
        Assert.True(r.StdErr.Contains("usage: Fleet.Edge --config <edge.json> [--check]", StringComparison.Ordinal) && r.StdErr.Contains("--bogus", StringComparison.Ordinal), Show(r));
        Assert.True(r.StdOut.Length == 0, Show(r));
    }

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public async Task Help_lists_the_options_with_the_default_config_and_exits_0(string target)
    {
        var r = await PublishedBuild.RunToEndAsync(target, "--help");
        Assert.True(r.ExitCode == 0, Show(r));
        foreach (var expected in new[] { "--config <edge.json>", "--check", Hosting.EdgeCommandLine.DefaultConfigPath })
            Assert.True(r.StdOut.Contains(expected, StringComparison.Ordinal), $"'{expected}' missing; {Show(r)}");
    }
}

/// <summary>
/// EndToEndTests' kickoff scenario with the published binary: an operator's commands through a real Fleet.Server
/// node's admin API reach the binary, which enforces them with nft in its namespace.
/// </summary>
public sealed class PublishedAgentEndToEndTests(FleetServerNode node) : IClassFixture<FleetServerNode>, IDisposable
{
    private readonly Workspace _ws = new();

    public void Dispose() => _ws.Dispose();

    [Theory]
    [InlineData(PublishedBuild.Trimmed)]
    [InlineData(PublishedBuild.Aot)]
    public async Task An_operators_kickoff_through_the_admin_api_removes_the_mac_from_the_nft_set_and_succeeds(string target)
    {
        await using var ns = await NetNs.CreateAsync("e");
        // The node listens on the host's loopback; inside the namespace 127.0.0.1 is the namespace's own. The bridge
        // makes the node's port reachable there, so the agent runs wholly inside (its nft too) while the test's HTTP
        // client and the node stay on the host, as in EndToEndTests.
        await using var bridge = LoopbackBridge.Open(ns, node.Port);
        var deviceId = "edge-pub-" + Guid.NewGuid().ToString("N")[..6];
        var config = _ws.Config(new Uri($"ws://127.0.0.1:{bridge.Port}/ws/wifidogx"), deviceId);
        config.Firewall.Backend = "nftables";
        await using var agent = await PublishedAgent.StartAsync(target, _ws, config, ns);
        try
        {
            await node.KickoffScenario(deviceId, ns, () => agent.HasExited);
        }
        catch (Exception ex)
        {
            throw new PublishedAgentFailure(
                $"{ex.Message}\n--- {target} pid {agent.Pid} ({(agent.HasExited ? $"exited with {agent.ExitCode}" : "running")}) ---\n{agent.Output}" +
                $"\n--- Fleet.Server (exited: {node.HasExited}) ---\n{PublishedBuild.Tail(node.Log(), 60)}", ex);
        }
    }
}

/// <summary>A test of a published binary failed; the message carries the binary's output.</summary>
public sealed class PublishedAgentFailure(string message, Exception inner) : Exception(message, inner);
