using System.Collections.Immutable;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Fleet.Server.Devices;

/// <summary>Fleet:Tags — tags derived from device_info fields.</summary>
public sealed class TagSettings
{
    /// <summary>Tag ← device_info field (location_id, ap_device_id, ap_mac_address, ap_longitude, ap_latitude).</summary>
    public Dictionary<string, string> FromDeviceInfo { get; set; } = new() { ["location"] = "location_id" };

    public static readonly string[] Fields = ["location_id", "ap_device_id", "ap_mac_address", "ap_longitude", "ap_latitude"];

    public ImmutableSortedDictionary<string, string> Rules() =>
        FromDeviceInfo.Where(r => DeviceTags.IsKey(r.Key) && Fields.Contains(r.Value)).ToImmutableSortedDictionary(StringComparer.Ordinal);
}

/// <summary>What a tag may be: keys <c>[a-z0-9_.-]{1,40}</c>, values 1–100 characters without ',' or control characters.</summary>
public static partial class DeviceTags
{
    public const int MaxTags = 32;
    public const int MaxValueLength = 100;

    [GeneratedRegex("^[a-z0-9_.-]{1,40}$")]
    private static partial Regex KeyPattern();

    public static bool IsKey(string? key) => key is not null && KeyPattern().IsMatch(key);

    public static bool IsValue(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= MaxValueLength && !value.Any(c => c == ',' || char.IsControl(c));

    /// <summary>A tags object ({"k":"v",…}) checked, or what is wrong with it.</summary>
    public static (ImmutableSortedDictionary<string, string>? Tags, string? Problem) Parse(JsonElement tags, string name = "tags")
    {
        if (tags.ValueKind != JsonValueKind.Object) return (null, $"{name} must be an object of key: value strings");
        var b = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach (var p in tags.EnumerateObject())
        {
            if (!IsKey(p.Name)) return (null, $"tag key '{p.Name}' must be 1 to 40 of a-z, 0-9, '_', '.', '-'");
            if (p.Value.ValueKind != JsonValueKind.String || !IsValue(p.Value.GetString()))
                return (null, $"tag '{p.Name}' must be a string of 1 to {MaxValueLength} characters without ',' or control characters");
            b[p.Name] = p.Value.GetString()!;
        }
        return b.Count > MaxTags ? (null, $"at most {MaxTags} tags, got {b.Count}") : (b.ToImmutable(), null);
    }

    /// <summary>The directory's column: ",k=v,k2=v2," (a tag filter is a LIKE on ",k=v,").</summary>
    public static string Column(IReadOnlyDictionary<string, string> tags) =>
        "," + string.Concat(tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => t.Key + "=" + t.Value + ","));

    public static IReadOnlyDictionary<string, string> FromColumn(string? column)
    {
        var d = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in (column ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            if (eq > 0) d[part[..eq]] = part[(eq + 1)..];
        }
        return d;
    }
}
