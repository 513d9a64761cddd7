using Fleet.Edge.Config;
using Fleet.Edge.Hosting;

namespace Fleet.Edge.Tests;

public class ConfigTests
{
    private const string Sample = """
        {
          "controller_url": "ws://controller.example:8080/ws/wifidogx",
          "device_id": "router-1",
          "device_info": { "ap_device_id": "router-1", "ap_mac_address": "8c:de:f9:5e:f7:06",
                           "ap_longitude": "116.39", "ap_latitude": "39.90", "location_id": "lobby" },
          "gateways": [ { "gw_id": "gw-1", "gw_channel": "apfree", "gw_address_v4": "192.168.1.1",
                          "auth_mode": 1, "gw_interface": "br-lan" } ],
          "heartbeat_interval_seconds": 60,
          "firewall": { "backend": "nftables", "table": "fleet" },
          "state_directory": "/var/lib/fleet-edge",
          "sysupgrade_command": "/sbin/sysupgrade",
          "reboot_command": "/sbin/reboot",
          "release_file": "/etc/openwrt_release"
        }
        """;

    private static string Error(string json)
    {
        var r = ConfigLoader.Parse(json);
        Assert.False(r.IsOk, "config should have been refused");
        return string.Join("\n", r.Errors);
    }

    [Fact]
    public void The_issue_sample_config_is_accepted_with_its_values()
    {
        var r = ConfigLoader.Parse(Sample);
        Assert.True(r.IsOk, string.Join("\n", r.Errors));
        var c = r.Config!;
        Assert.Equal("router-1", c.DeviceId);
        Assert.Equal("br-lan", c.GatewayList[0].GwInterface);
        Assert.Equal(60, c.HeartbeatIntervalSeconds);
        Assert.Equal(300, c.ReconnectMaxBackoffSeconds);
        Assert.Equal("fleet", c.Firewall.Table);
    }

    [Fact]
    public void The_state_directory_defaults_to_flash_not_to_ram()
    {
        var r = ConfigLoader.Parse(Sample.Replace("\"state_directory\": \"/var/lib/fleet-edge\",", ""));
        Assert.True(r.IsOk, string.Join("\n", r.Errors));
        Assert.Equal("/etc/fleet-edge/state", r.Config!.StateDirectory);
        var shipped = ConfigLoader.Load(Path.Combine(RepoRoot(), "deploy", "openwrt", "files", "etc", "fleet-edge", "edge.json"));
        Assert.False(shipped.Config!.StateDirectory.StartsWith("/var/", StringComparison.Ordinal) || shipped.Config.StateDirectory.StartsWith("/tmp/", StringComparison.Ordinal),
            $"the shipped config keeps its state in RAM: {shipped.Config.StateDirectory}");
    }

    [Fact]
    public void The_shipped_openwrt_sample_config_is_valid()
    {
        var path = Path.Combine(RepoRoot(), "deploy", "openwrt", "files", "etc", "fleet-edge", "edge.json");
        var r = ConfigLoader.Load(path);
        Assert.True(r.IsOk, string.Join("\n", r.Errors));
    }

    [Fact]
    public void Missing_controller_url_is_named() =>
        Assert.Contains("controller_url: missing", Error(Sample.Replace("\"controller_url\": \"ws://controller.example:8080/ws/wifidogx\",", "")));

    [Fact]
    public void Http_controller_url_is_refused() =>
        Assert.Contains("controller_url: 'http://x/' is not a ws:// or wss:// URL", Error(Sample.Replace("ws://controller.example:8080/ws/wifidogx", "http://x/")));

    [Fact]
    public void Heartbeat_interval_as_string_names_the_key() =>
        Assert.Contains("heartbeat_interval_seconds: expected an integer", Error(Sample.Replace("\"heartbeat_interval_seconds\": 60", "\"heartbeat_interval_seconds\": \"soon\"")));

    [Fact]
    public void Zero_heartbeat_interval_is_refused() =>
        Assert.Contains("heartbeat_interval_seconds must be a positive integer", Error(Sample.Replace("\"heartbeat_interval_seconds\": 60", "\"heartbeat_interval_seconds\": 0")));

    [Fact]
    public void Misspelt_key_is_named() =>
        Assert.Contains("heartbeat_interval: unknown key", Error(Sample.Replace("\"heartbeat_interval_seconds\"", "\"heartbeat_interval\"")));

    [Fact]
    public void Bad_gateway_interface_names_the_gateway_and_key() =>
        Assert.Contains("gateways[0].gw_interface: 'br-lan; rm -rf /' is not an interface name", Error(Sample.Replace("\"br-lan\"", "\"br-lan; rm -rf /\"")));

    [Fact]
    public void Bad_gateway_id_is_refused() =>
        Assert.Contains("gateways[0].gw_id", Error(Sample.Replace("\"gw-1\"", "\"gw 1\"")));

    [Fact]
    public void Missing_gateways_are_refused() =>
        Assert.Contains("gateways: missing or empty", Error(System.Text.RegularExpressions.Regex.Replace(Sample, "\"gateways\": \\[.*?\\],", "\"gateways\": [],",
            System.Text.RegularExpressions.RegexOptions.Singleline)));

    [Fact]
    public void Bad_table_name_is_refused() =>
        Assert.Contains("firewall.table: 'my table'", Error(Sample.Replace("\"table\": \"fleet\"", "\"table\": \"my table\"")));

    [Fact]
    public void Relative_state_directory_is_refused() =>
        Assert.Contains("state_directory: 'state' is not an absolute path", Error(Sample.Replace("/var/lib/fleet-edge", "state")));

    [Fact]
    public void Not_json_says_so() =>
        Assert.Contains("not valid JSON", Error("{ nope"));

    [Fact]
    public async Task The_agent_refuses_to_start_on_a_bad_config_and_names_the_key()
    {
        using var ws = new Workspace();
        var path = Path.Combine(ws.Dir, "edge.json");
        File.WriteAllText(path, Sample.Replace("\"device_id\": \"router-1\"", "\"device_id\": \"router 1\""));
        var dll = typeof(EdgeAgent).Assembly.Location;
        var r = await Sh.Try("dotnet", dll, "--config", path);
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("device_id 'router 1' is not a device id", r.StdErr);
    }

    internal static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Fleet.sln"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("Fleet.sln not found above " + AppContext.BaseDirectory);
    }
}
