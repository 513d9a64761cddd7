using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fleet.Edge.Firewall;
using Fleet.Edge.Hosting;
using Fleet.Edge.Link;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

/// <summary>The agent against a Kestrel stand-in controller, with the in-memory firewall.</summary>
public sealed class LinkTests : IAsyncLifetime
{
    /// <summary>The firmware's delays shrunk a hundredfold, heartbeats every 300 ms.</summary>
    internal static readonly LinkTimings Fast = new(
        HeartbeatInterval: TimeSpan.FromMilliseconds(300),
        ErrorDelay: TimeSpan.FromMilliseconds(20), EofDelay: TimeSpan.FromMilliseconds(50), CloseDelay: TimeSpan.FromMilliseconds(30),
        QuickTries: 5, MaxBackoff: TimeSpan.FromMilliseconds(500), ConnectTimeout: TimeSpan.FromSeconds(5));

    private readonly Workspace _ws = new();
    private readonly MemoryFirewallBackend _backend = new();
    private FakeController _controller = null!;
    private EdgeAgent? _agent;

    public async ValueTask InitializeAsync() => _controller = await FakeController.StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_agent is not null) await _agent.DisposeAsync();
        await _controller.DisposeAsync();
        _ws.Dispose();
    }

    private async Task<DeviceSocket> StartAgent(Uri? url = null, MemoryFirewallBackend? backend = null)
    {
        _agent = EdgeAgent.Start(_ws.Config(url ?? _controller.Url), new EdgeOverrides
        {
            Backend = backend ?? _backend, Timings = Fast, FirewallCheckInterval = TimeSpan.FromMilliseconds(100),
        });
        return await _controller.NextConnectionAsync();
    }

    private static string Auth(string mac = "aa:bb:cc:dd:ee:01", string ip = "10.231.1.10") =>
        ProtocolCodec.EncodeToString(new AuthRequest { Token = "tok", ClientIp = ip, ClientMac = mac, GwId = "gw-1", OnceAuth = false });

    [Fact]
    public async Task Connect_is_sent_first_with_device_id_info_and_gateways()
    {
        var device = await StartAgent();
        var connect = await device.ExpectAsync("connect");
        Assert.Equal("router-1", connect.GetProperty("device_id").GetString());
        Assert.Equal("8c:de:f9:5e:f7:06", connect.GetProperty("device_info").GetProperty("ap_mac_address").GetString());
        var gw = connect.GetProperty("gateway")[0];
        Assert.Equal(("gw-1", "br-lan", 1), (gw.GetProperty("gw_id").GetString(), gw.GetProperty("gw_interface").GetString(), gw.GetProperty("auth_mode").GetInt32()));
    }

    [Fact]
    public async Task Heartbeats_repeat_and_report_the_auth_mode_the_controller_set()
    {
        var device = await StartAgent();
        await device.ExpectAsync("connect");
        var first = await device.ExpectAsync("heartbeat");
        Assert.Equal(1, first.GetProperty("gateway")[0].GetProperty("auth_mode").GetInt32());
        await device.SendAsync("""{"type":"heartbeat","gateway":[{"gw_id":"gw-1","auth_mode":0}]}""");
        await Eventually.True(() => _backend.Installed?.Gateways[0].Open == true, "gw-1 opened in the firewall");
        await Eventually.True(async () =>
            (await device.ExpectAsync("heartbeat")).GetProperty("gateway")[0].GetProperty("auth_mode").GetInt32() == 0,
            "a heartbeat reporting auth_mode 0");
    }

    [Theory]
    [InlineData("42")]
    [InlineData("\"cmd-7\"")]
    public async Task Get_firmware_info_is_answered_from_the_release_file_echoing_req_id(string reqId)
    {
        var device = await StartAgent();
        await device.SendAsync(new JsonObject { ["type"] = "get_firmware_info", ["req_id"] = JsonNode.Parse(reqId) }.ToJsonString());
        var r = await device.ExpectAsync("firmware_info_response");
        Assert.Equal(reqId, r.GetProperty("req_id").GetRawText());
        Assert.Equal("ChaWrt", r.GetProperty("data").GetProperty("DISTRIB_ID").GetString());
        Assert.Equal("ramips/mt7621", r.GetProperty("data").GetProperty("DISTRIB_TARGET").GetString());
    }

    [Fact]
    public async Task A_missing_release_file_answers_firmware_info_error()
    {
        File.Delete(_ws.ReleaseFile);
        var device = await StartAgent();
        await device.SendAsync("""{"type":"get_firmware_info"}""");
        var r = await device.ExpectAsync("firmware_info_error");
        Assert.Equal("Failed to execute command", r.GetProperty("error").GetString());
        Assert.False(r.TryGetProperty("req_id", out _));
    }

    [Fact]
    public async Task Garbage_frames_are_survived_and_later_requests_answered()
    {
        var device = await StartAgent();
        foreach (var junk in new[] { "not json", "[1,2]", "{\"type\":", "null", "{\"type\":42}", new string('x', 100_000) })
            await device.SendAsync(junk);
        await device.SendAsync("""{"type":"get_firmware_info","req_id":1}""");
        await device.ExpectAsync("firmware_info_response");
        Assert.Equal(1, _controller.Connections);
    }

    [Theory]
    [InlineData("make_coffee")] // not in the protocol at all
    [InlineData("get_status")]  // in the protocol, not handled by this agent
    public async Task An_unknown_request_type_gets_request_error_with_req_id(string type)
    {
        var device = await StartAgent();
        await device.SendAsync(new JsonObject { ["type"] = type, ["req_id"] = "c-1" }.ToJsonString());
        var r = await device.ExpectAsync("request_error");
        Assert.Equal("c-1", r.GetProperty("req_id").GetString());
        // The 2025 firmware's wording: a fixed text, the type in requested_type.
        Assert.Equal(("Unknown WebSocket message type", type),
            (r.GetProperty("error").GetString(), r.GetProperty("requested_type").GetString()));
    }

    [Fact]
    public async Task Auth_then_kickoff_lets_the_client_in_then_out_and_answers_success()
    {
        var device = await StartAgent();
        await device.SendAsync(Auth());
        await Eventually.True(() => _backend.Installed?.Allows("gw-1", "aa:bb:cc:dd:ee:01") == true, "client allowed");
        await device.SendAsync("""{"type":"kickoff","req_id":9,"client_ip":"10.231.1.10","client_mac":"aa:bb:cc:dd:ee:01","device_id":"router-1","gw_id":"gw-1"}""");
        var r = await device.ExpectAsync("kickoff_response");
        Assert.Equal(("success", "Client kicked off successfully", 9), (r.GetProperty("status").GetString(), r.GetProperty("message").GetString(), r.GetProperty("req_id").GetInt32()));
        Assert.False(_backend.Installed!.Allows("gw-1", "aa:bb:cc:dd:ee:01"));
    }

    [Fact]
    public async Task Kickoff_with_missing_fields_answers_the_seeds_error_with_req_id()
    {
        var device = await StartAgent();
        await device.SendAsync("""{"type":"kickoff","req_id":3,"client_ip":"10.231.1.10"}""");
        var r = await device.ExpectAsync("kickoff_error");
        Assert.Equal(("Missing required fields in request", 3), (r.GetProperty("error").GetString(), r.GetProperty("req_id").GetInt32()));
    }

    [Fact]
    public async Task Kickoff_for_an_unknown_client_answers_client_not_found()
    {
        var device = await StartAgent();
        await device.SendAsync("""{"type":"kickoff","client_ip":"10.231.1.77","client_mac":"aa:bb:cc:dd:ee:77","device_id":"router-1","gw_id":"gw-1"}""");
        var r = await device.ExpectAsync("kickoff_error");
        Assert.Equal(("Client not found", "10.231.1.77", "aa:bb:cc:dd:ee:77"),
            (r.GetProperty("error").GetString(), r.GetProperty("client_ip").GetString(), r.GetProperty("client_mac").GetString()));
    }

    [Fact]
    public async Task Tmp_pass_installs_a_timed_element()
    {
        var device = await StartAgent();
        await device.SendAsync("""{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:05","timeout":120}""");
        await Eventually.True(() => _backend.Installed?.Gateways[0].Allowed.Any(a => a.Mac == "aa:bb:cc:dd:ee:05" && a.Timeout > TimeSpan.FromSeconds(100)) == true,
            "a timed element for the pass");
    }

    [Fact]
    public async Task Firmware_upgrade_runs_sysupgrade_with_force_and_url_as_separate_arguments()
    {
        var device = await StartAgent();
        const string url = "http://10.231.9.9/images/openwrt-sysupgrade.bin";
        await device.SendAsync(ProtocolCodec.EncodeToString(new FirmwareUpgradeRequest { ReqId = new ReqId("5", IsNumber: true), Url = url, Force = true }));
        var r = await device.ExpectAsync("firmware_upgrade_response");
        Assert.Equal(("success", "Firmware upgrade initiated successfully", 5), (r.GetProperty("status").GetString(), r.GetProperty("message").GetString(), r.GetProperty("req_id").GetInt32()));
        await Eventually.True(() => File.Exists(_ws.SysupgradeLog), "sysupgrade ran");
        Assert.Equal(["-F", url], File.ReadAllLines(_ws.SysupgradeLog));
    }

    [Fact]
    public async Task Firmware_upgrade_without_force_passes_only_the_url()
    {
        var device = await StartAgent();
        await device.SendAsync("""{"type":"firmware_upgrade","url":"https://fw.example/x.bin"}""");
        await device.ExpectAsync("firmware_upgrade_response");
        await Eventually.True(() => File.Exists(_ws.SysupgradeLog), "sysupgrade ran");
        Assert.Equal(["https://fw.example/x.bin"], File.ReadAllLines(_ws.SysupgradeLog));
    }

    [Theory]
    [InlineData("\"http://x/a.bin; reboot\"")]
    [InlineData("\"ftp://x/a.bin\"")]
    [InlineData("\"$(reboot)\"")]
    [InlineData("null")]
    public async Task Firmware_upgrade_with_a_bad_url_is_refused_and_runs_nothing(string url)
    {
        var device = await StartAgent();
        await device.SendAsync(new JsonObject { ["type"] = "firmware_upgrade", ["req_id"] = 6, ["url"] = JsonNode.Parse(url) }.ToJsonString());
        var r = await device.ExpectAsync("firmware_upgrade_error");
        Assert.Equal("Missing or invalid 'url' field", r.GetProperty("error").GetString());
        Assert.False(File.Exists(_ws.SysupgradeLog));
    }

    [Fact]
    public async Task Firmware_upgrade_whose_command_fails_answers_the_seeds_error()
    {
        Workspace.WriteRecorder(_ws.Sysupgrade, 1);
        var device = await StartAgent();
        await device.SendAsync("""{"type":"firmware_upgrade","url":"http://fw.example/x.bin"}""");
        var r = await device.ExpectAsync("firmware_upgrade_error");
        Assert.Equal("Failed to execute sysupgrade command", r.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Reboot_runs_the_reboot_command_and_sends_no_answer()
    {
        var device = await StartAgent();
        await device.SendAsync("""{"type":"reboot_device","req_id":8}""");
        await Eventually.True(() => File.Exists(_ws.RebootLog), "reboot ran");
        // Frames are answered in order: once this answer is in, a reboot answer would have been too.
        await device.SendAsync("""{"type":"get_firmware_info","req_id":10}""");
        await device.ExpectAsync("firmware_info_response");
        Assert.DoesNotContain(device.Types, t => t.StartsWith("reboot_device", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failing_reboot_command_answers_reboot_device_error()
    {
        File.Delete(_ws.Reboot);
        var device = await StartAgent();
        await device.SendAsync("""{"type":"reboot_device","req_id":8}""");
        var r = await device.ExpectAsync("reboot_device_error");
        Assert.Equal(8, r.GetProperty("req_id").GetInt32());
    }

    [Fact]
    public async Task Get_sys_info_answers_figures_from_proc()
    {
        var device = await StartAgent();
        await device.SendAsync("""{"type":"get_sys_info","req_id":11}""");
        var r = await device.ExpectAsync("get_sys_info_response");
        Assert.True(r.GetProperty("data").GetProperty("sys_uptime").GetInt64() > 0);
        Assert.True(r.GetProperty("data").GetProperty("sys_memfree").GetInt64() > 0);
    }

    [Fact]
    public async Task The_agent_reconnects_after_a_close_frame_and_after_a_dropped_connection()
    {
        var first = await StartAgent();
        await first.ExpectAsync("connect");
        await first.CloseAsync();
        var second = await _controller.NextConnectionAsync();
        await second.ExpectAsync("connect");
        second.Abort();
        var third = await _controller.NextConnectionAsync();
        await third.ExpectAsync("connect");
        await third.SendAsync("""{"type":"get_firmware_info","req_id":2}""");
        await third.ExpectAsync("firmware_info_response");
    }

    [Fact]
    public async Task The_agent_keeps_retrying_until_a_controller_appears()
    {
        var port = FreePort();
        var url = new Uri($"ws://127.0.0.1:{port}/ws/wifidogx");
        _agent = EdgeAgent.Start(_ws.Config(url), new EdgeOverrides { Backend = _backend, Timings = Fast });
        // Kestrel takes longer to start than the five quick tries (5 × 20 ms): the backoff phase is reached.
        await Eventually.True(() => _backend.Applies > 0, "agent started");
        await using var late = await FakeController.StartAsync(port);
        var device = await late.NextConnectionAsync(TimeSpan.FromSeconds(10));
        await device.ExpectAsync("connect");
    }

    [Fact]
    public async Task The_client_table_survives_a_restart_of_the_agent()
    {
        var device = await StartAgent();
        await device.SendAsync(Auth());
        await Eventually.True(() => _backend.Installed?.Allows("gw-1", "aa:bb:cc:dd:ee:01") == true, "client allowed");
        await _agent!.DisposeAsync();
        _agent = null;
        var fresh = new MemoryFirewallBackend();
        await StartAgent(backend: fresh);
        await Eventually.True(() => fresh.Installed?.Allows("gw-1", "aa:bb:cc:dd:ee:01") == true, "client re-applied after restart");
    }

    [Fact]
    public async Task A_vanished_firewall_is_re_applied()
    {
        var device = await StartAgent();
        await device.SendAsync(Auth());
        await Eventually.True(() => _backend.Installed?.Allows("gw-1", "aa:bb:cc:dd:ee:01") == true, "client allowed");
        _backend.Vanish();
        await Eventually.True(() => _backend.Installed?.Allows("gw-1", "aa:bb:cc:dd:ee:01") == true, "client re-applied");
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
