using System.Text.Json;
using System.Text.RegularExpressions;
using Fleet.Edge.Firewall;
using Fleet.Protocol;

namespace Fleet.Edge.Config;

/// <summary>Reads and validates edge.json. Every problem names the key and says what is wrong.</summary>
public static partial class ConfigLoader
{
    public sealed record Result(EdgeConfig? Config, IReadOnlyList<string> Errors)
    {
        public bool IsOk => Config is not null && Errors.Count == 0;
    }

    public static Result Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new(null, [$"config file '{path}' cannot be read: {ex.Message}"]);
        }
        return Parse(text);
    }

    public static Result Parse(string json)
    {
        EdgeConfig? config;
        try
        {
            config = JsonSerializer.Deserialize(json, ConfigJsonContext.Default.EdgeConfig);
        }
        catch (JsonException ex)
        {
            return new(null, [Describe(ex)]);
        }
        if (config is null) return new(null, ["config file is empty (null), expected a JSON object"]);
        var errors = Validate(config);
        return new(errors.Count == 0 ? config : null, errors);
    }

    public static List<string> Validate(EdgeConfig c)
    {
        var errors = new List<string>();
        void Check(string? problem) { if (problem is not null) errors.Add(problem); }

        if (c.ControllerUrl is null) errors.Add("controller_url: missing (expected ws:// or wss:// URL of the controller)");
        else if (!Uri.TryCreate(c.ControllerUrl, UriKind.Absolute, out var u) || (u.Scheme != "ws" && u.Scheme != "wss"))
            errors.Add($"controller_url: '{c.ControllerUrl}' is not a ws:// or wss:// URL");

        if (c.DeviceId is null) errors.Add("device_id: missing");
        else Check(FieldRules.CheckDeviceId("device_id", c.DeviceId));

        if (c.DeviceInfo?.ApMacAddress is { } apMac) Check(FieldRules.CheckMac("device_info.ap_mac_address", apMac));

        if (c.Gateways is null || c.Gateways.Count == 0) errors.Add("gateways: missing or empty (expected at least one gateway)");
        else
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < c.Gateways.Count; i++)
            {
                var g = c.Gateways[i];
                var key = $"gateways[{i}]";
                if (g is null) { errors.Add($"{key}: is null, expected an object"); continue; }
                if (g.GwId is null) errors.Add($"{key}.gw_id: missing");
                else if (FieldRules.CheckGwId($"{key}.gw_id", g.GwId) is { } bad) errors.Add(bad);
                else if (!seen.Add(g.GwId)) errors.Add($"{key}.gw_id: '{g.GwId}' appears twice");
                if (g.GwInterface is null) errors.Add($"{key}.gw_interface: missing (the client-facing interface, e.g. br-lan)");
                else if (!FieldRules.IsInterfaceName(g.GwInterface))
                    errors.Add($"{key}.gw_interface: '{g.GwInterface}' is not an interface name (1–{FieldRules.MaxInterfaceNameLength} letters, digits, - _ .)");
                if (g.GwAddressV4 is not null) Check(FieldRules.CheckIPv4($"{key}.gw_address_v4", g.GwAddressV4));
                if (g.GwAddressV6 is not null) Check(FieldRules.CheckIPv6($"{key}.gw_address_v6", g.GwAddressV6));
                if (g.AuthMode < 0) errors.Add($"{key}.auth_mode: must be 0 or more, got {g.AuthMode}");
            }
        }

        Check(FieldRules.CheckPositive("heartbeat_interval_seconds", c.HeartbeatIntervalSeconds));
        Check(FieldRules.CheckPositive("reconnect_max_backoff_seconds", c.ReconnectMaxBackoffSeconds));

        if (c.Firewall is null) errors.Add("firewall: is null, expected an object");
        else
        {
            if (c.Firewall.Backend is not ("nftables" or "memory"))
                errors.Add($"firewall.backend: '{c.Firewall.Backend}' is not one of nftables, memory");
            if (!NftScript.IsTableName(c.Firewall.Table))
                errors.Add($"firewall.table: '{c.Firewall.Table}' is not an nft table name (letter or _, then letters, digits, _; at most 32)");
            Check(FieldRules.CheckPositive("firewall.check_interval_seconds", c.Firewall.CheckIntervalSeconds));
            if (string.IsNullOrWhiteSpace(c.Firewall.NftCommand)) errors.Add("firewall.nft_command: is empty");
        }

        CheckAbsolute(errors, "state_directory", c.StateDirectory);
        CheckAbsolute(errors, "sysupgrade_command", c.SysupgradeCommand);
        CheckAbsolute(errors, "reboot_command", c.RebootCommand);
        CheckAbsolute(errors, "release_file", c.ReleaseFile);
        return errors;
    }

    private static void CheckAbsolute(List<string> errors, string key, string? path)
    {
        if (string.IsNullOrEmpty(path)) errors.Add($"{key}: is empty, expected an absolute path");
        else if (!Path.IsPathFullyQualified(path)) errors.Add($"{key}: '{path}' is not an absolute path");
    }

    private static string Describe(JsonException ex)
    {
        var key = ex.Path is null or "$" ? null : ex.Path.StartsWith("$.", StringComparison.Ordinal) ? ex.Path[2..] : ex.Path.TrimStart('$');
        var m = ex.Message;
        // STJ's texts name CLR types; say it in the file's terms instead. The published agent is built with
        // UseSystemResourceKeys (smaller): its messages are the resource key and the arguments
        // ("UnmappedJsonProperty, heartbet_interval_seconds, Fleet.Edge.Config.EdgeConfig"), so both forms are read.
        var unmapped = UnmappedName().Match(m);
        var what = unmapped.Success ? "unknown key (misspelt?)"
            : m.Contains("Int32", StringComparison.Ordinal) ? "expected an integer"
            : m.Contains("Boolean", StringComparison.Ordinal) ? "expected true or false"
            : m.Contains("System.String", StringComparison.Ordinal) ? "expected a string"
            : m.Contains("IReadOnlyList", StringComparison.Ordinal) ? "expected an array"
            : m.Contains("Fleet.", StringComparison.Ordinal) ? "expected an object"
            : null;
        // Otherwise the text itself is broken JSON: say where, in the file's lines (STJ counts from 0).
        what ??= ex.LineNumber is { } line ? $"not valid JSON (line {line + 1}, position {ex.BytePositionInLine + 1})" : "not valid JSON";
        if (unmapped.Success)
        {
            // The message names the property; STJ's path stops at the parent, or (with resource keys) names it too.
            var name = unmapped.Groups[1].Success ? unmapped.Groups[1].Value : unmapped.Groups[2].Value;
            key = key is null ? name : key == name || key.EndsWith("." + name, StringComparison.Ordinal) ? key : $"{key}.{name}";
        }
        return key is null ? $"config file: {what}" : $"{key}: {what}";
    }

    [GeneratedRegex("property '([^']+)' could not be mapped|^UnmappedJsonProperty, ([^,]+),")] private static partial Regex UnmappedName();
}
