using System.Text.Json;
using System.Text.Json.Serialization;
using Fleet.Protocol;

namespace Fleet.Edge.Config;

/// <summary>
/// /etc/fleet-edge/edge.json. The key names are a contract with operators and provisioning scripts:
/// keep them. Optional keys have defaults that suit an OpenWrt router.
/// </summary>
public sealed record EdgeConfig
{
    [JsonPropertyName("controller_url")] public string? ControllerUrl { get; set; }
    [JsonPropertyName("device_id")] public string? DeviceId { get; set; }
    [JsonPropertyName("device_info")] public DeviceInfo? DeviceInfo { get; set; }
    [JsonPropertyName("gateways")] public IReadOnlyList<GatewayConfig>? Gateways { get; set; }
    [JsonPropertyName("heartbeat_interval_seconds")] public int HeartbeatIntervalSeconds { get; set; } = 60;
    /// <summary>Upper bound of the reconnect backoff once the five quick tries are spent.</summary>
    [JsonPropertyName("reconnect_max_backoff_seconds")] public int ReconnectMaxBackoffSeconds { get; set; } = 300;
    [JsonPropertyName("firewall")] public FirewallConfig Firewall { get; set; } = new();
    /// <summary>
    /// Where the portal state (clients.json) is kept. On flash by default: /var is RAM on OpenWrt (a symlink to /tmp),
    /// so a state kept there is gone after every reboot. Written once per change (temporary file, then rename).
    /// </summary>
    [JsonPropertyName("state_directory")] public string StateDirectory { get; set; } = DefaultStateDirectory;

    public const string DefaultStateDirectory = "/etc/fleet-edge/state";
    [JsonPropertyName("sysupgrade_command")] public string SysupgradeCommand { get; set; } = "/sbin/sysupgrade";
    [JsonPropertyName("reboot_command")] public string RebootCommand { get; set; } = "/sbin/reboot";
    [JsonPropertyName("release_file")] public string ReleaseFile { get; set; } = "/etc/openwrt_release";

    /// <summary>The validated device_id (only call after <see cref="ConfigLoader"/> accepted the file).</summary>
    [JsonIgnore] public string Id => DeviceId!;
    [JsonIgnore] public IReadOnlyList<GatewayConfig> GatewayList => Gateways ?? [];
}

public sealed record GatewayConfig
{
    [JsonPropertyName("gw_id")] public string? GwId { get; set; }
    [JsonPropertyName("gw_channel")] public string? GwChannel { get; set; }
    [JsonPropertyName("gw_address_v4")] public string? GwAddressV4 { get; set; }
    [JsonPropertyName("gw_address_v6")] public string? GwAddressV6 { get; set; }
    /// <summary>0: the gateway is open (no portal); anything else: only authorised clients pass.</summary>
    [JsonPropertyName("auth_mode")] public int AuthMode { get; set; } = 1;
    [JsonPropertyName("gw_interface")] public string? GwInterface { get; set; }
}

public sealed record FirewallConfig
{
    /// <summary>"nftables" on a router; "memory" enforces nothing (development, dry runs).</summary>
    [JsonPropertyName("backend")] public string Backend { get; set; } = "nftables";
    [JsonPropertyName("table")] public string Table { get; set; } = "fleet";
    /// <summary>How often the agent checks its table is still there (a `nft flush ruleset`, a firewall reload).</summary>
    [JsonPropertyName("check_interval_seconds")] public int CheckIntervalSeconds { get; set; } = 30;
    /// <summary>The nft executable.</summary>
    [JsonPropertyName("nft_command")] public string NftCommand { get; set; } = "nft";
}

[JsonSourceGenerationOptions(
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    // A misspelt key would otherwise be ignored silently and its default used.
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    WriteIndented = true)]
[JsonSerializable(typeof(EdgeConfig))]
internal sealed partial class ConfigJsonContext : JsonSerializerContext;
