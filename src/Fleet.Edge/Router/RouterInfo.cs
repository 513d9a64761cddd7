using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fleet.Edge.Router;

/// <summary>get_sys_info's data, named as upstream firmware's heartbeat figures are (EXTENSIONS.md).</summary>
public sealed record SysInfo
{
    [JsonPropertyName("sys_uptime")] public long? SysUptime { get; init; }
    [JsonPropertyName("sys_memfree")] public long? SysMemfree { get; init; }
    [JsonPropertyName("sys_memtotal")] public long? SysMemtotal { get; init; }
    [JsonPropertyName("sys_load")] public double? SysLoad { get; init; }
    [JsonPropertyName("nf_conntrack_count")] public long? NfConntrackCount { get; init; }
    [JsonPropertyName("wifidog_uptime")] public long? WifidogUptime { get; init; }
}

/// <summary>Reading the router: the release file and /proc. Pure parsers plus thin file reads.</summary>
public static class RouterInfo
{
    /// <summary>
    /// Parses /etc/openwrt_release: shell assignments KEY='value' (or "value", or bare). Blank
    /// lines and comments are skipped; it is read as data, never sourced by a shell.
    /// </summary>
    public static Dictionary<string, string> ParseRelease(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            if (line.StartsWith("export ", StringComparison.Ordinal)) line = line[7..].TrimStart();
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) continue;
            var key = line[..eq];
            if (!key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')) continue;
            var value = line[(eq + 1)..];
            if (value.Length >= 2 && (value[0] == '\'' || value[0] == '"') && value[^1] == value[0]) value = value[1..^1];
            result[key] = value.Replace("'\\''", "'", StringComparison.Ordinal);
        }
        return result;
    }

    /// <summary>The release file as firmware_info_response data; null when it is missing, unreadable or empty.</summary>
    public static IReadOnlyDictionary<string, JsonElement>? ReadRelease(string path)
    {
        try
        {
            var pairs = ParseRelease(File.ReadAllText(path));
            if (pairs.Count == 0) return null;
            return pairs.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value, RouterJsonContext.Default.String));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Figures from a /proc tree (a directory of fakes in tests). Missing files leave their figure null.</summary>
    public static SysInfo ReadSysInfo(string procRoot, TimeSpan agentUptime)
    {
        string? Read(string rel)
        {
            try { return File.ReadAllText(Path.Combine(procRoot, rel)); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return null; }
        }
        static double? FirstNumber(string? text) =>
            text is not null && double.TryParse(text.Split(' ', '\n', '\t')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
        var mem = ParseMeminfo(Read("meminfo") ?? "");
        return new SysInfo
        {
            SysUptime = FirstNumber(Read("uptime")) is { } up ? (long)up : null,
            SysMemfree = mem.GetValueOrDefault("MemAvailable") ?? mem.GetValueOrDefault("MemFree"),
            SysMemtotal = mem.GetValueOrDefault("MemTotal"),
            SysLoad = FirstNumber(Read("loadavg")),
            NfConntrackCount = FirstNumber(Read("sys/net/netfilter/nf_conntrack_count")) is { } n ? (long)n : null,
            WifidogUptime = (long)agentUptime.TotalSeconds,
        };
    }

    /// <summary>"MemFree:   123456 kB" lines → kB values.</summary>
    public static Dictionary<string, long?> ParseMeminfo(string text)
    {
        var result = new Dictionary<string, long?>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) continue;
            var parts = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length > 0 && long.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                result[line[..colon]] = v;
        }
        return result;
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SysInfo))]
[JsonSerializable(typeof(string))]
internal sealed partial class RouterJsonContext : JsonSerializerContext;
