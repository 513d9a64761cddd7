using System.Collections.Immutable;
using System.Text.Json;
using Fleet.Protocol;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;

namespace Fleet.Server.Jobs;

/// <summary>
/// Which devices a job names: a directory query as a JSON object (docs/ADMIN_API.md, "Selections"). Every field that is set
/// must match; an empty selection is refused, the whole fleet is <see cref="All"/>.
/// </summary>
public sealed record Selection(
    IReadOnlyList<string>? DeviceIds = null, IReadOnlyDictionary<string, string>? Tags = null, string? GwId = null,
    bool? Online = null, string? Protocol = null, string? Release = null, string? Q = null, string? ClientMac = null, bool All = false)
{
    public const int MaxDeviceIds = 10_000;

    public DirectoryQuery ToQuery() => new(Online, GwId, Q, 1000, null, Protocol, null,
        Tags?.Select(t => new KeyValuePair<string, string>(t.Key, t.Value)).ToList(), Release, DeviceIds);

    public static (Selection? Selection, string? Problem) Parse(JsonElement s)
    {
        if (s.ValueKind != JsonValueKind.Object) return (null, "selection must be an object (see docs/ADMIN_API.md, Selections)");
        string[] known = ["device_ids", "tags", "gw_id", "online", "protocol", "release", "q", "client_mac", "all"];
        foreach (var p in s.EnumerateObject())
            if (!known.Contains(p.Name)) return (null, $"selection has no field '{p.Name}'; it takes {string.Join(", ", known)}");
        var sel = new Selection();
        if (s.TryGetProperty("device_ids", out var ids))
        {
            if (ids.ValueKind != JsonValueKind.Array) return (null, "selection.device_ids must be an array of device ids");
            var list = new List<string>();
            foreach (var id in ids.EnumerateArray())
            {
                if (id.ValueKind != JsonValueKind.String || !FieldRules.IsDeviceId(id.GetString()))
                    return (null, $"selection.device_ids: {id.GetRawText()} is not a device id");
                list.Add(id.GetString()!);
            }
            if (list.Count is 0 or > MaxDeviceIds) return (null, $"selection.device_ids must hold 1 to {MaxDeviceIds} ids");
            sel = sel with { DeviceIds = list.Distinct(StringComparer.Ordinal).ToList() };
        }
        if (s.TryGetProperty("tags", out var tags))
        {
            var (parsed, problem) = DeviceTags.Parse(tags, "selection.tags");
            if (parsed is null) return (null, problem);
            sel = sel with { Tags = parsed.Count > 0 ? parsed : null };
        }
        if (Text(s, "gw_id", FieldRules.IsGwId, "a gateway id", out var gw) is { } e1) return (null, e1);
        if (Text(s, "protocol", p => p is "seed" or "2025" or "9", "seed, 2025 or 9", out var protocol) is { } e2) return (null, e2);
        if (Text(s, "release", r => r is { Length: > 0 and <= 100 }, "1 to 100 characters", out var release) is { } e3) return (null, e3);
        if (Text(s, "q", r => r is { Length: > 0 and <= 100 }, "1 to 100 characters", out var q) is { } e4) return (null, e4);
        if (Text(s, "client_mac", FieldRules.IsMac, "a MAC address", out var mac) is { } e5) return (null, e5);
        sel = sel with { GwId = gw, Protocol = protocol, Release = release, Q = q, ClientMac = mac?.ToLowerInvariant() };
        if (s.TryGetProperty("online", out var online))
        {
            if (online.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) return (null, "selection.online must be true or false");
            sel = sel with { Online = online.GetBoolean() };
        }
        if (s.TryGetProperty("all", out var all))
        {
            if (all.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) return (null, "selection.all must be true or false");
            sel = sel with { All = all.GetBoolean() };
        }
        if (sel == new Selection())
            return (null, "the selection is empty: name devices (device_ids, tags, gw_id, online, protocol, release, q, client_mac) or say {\"all\": true}");
        return (sel, null);
    }

    private static string? Text(JsonElement s, string name, Func<string?, bool> valid, string what, out string? value)
    {
        value = null;
        if (!s.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind != JsonValueKind.String || !valid(v.GetString())) return $"selection.{name} must be {what}, got {v.GetRawText()}";
        value = v.GetString();
        return null;
    }
}

/// <summary>One device a job names, with what it needs to know of it: its tags (a rollout's zone), a client's place on it.</summary>
public sealed record JobTarget(string DeviceId, string? Zone = null, string? ClientIp = null, string? GwId = null);

/// <summary>Where a client is (from the client plane): which router, which gateway, its address there.</summary>
public sealed record ClientPlace(string DeviceId, string? GwId, string? ClientIp);

/// <summary>Turns a selection into the devices it names now, from the directory (and the client plane for client_mac).</summary>
public sealed class SelectionResolver(DirectoryStore directory, NodeIdentity node, Microsoft.Extensions.Options.IOptions<FleetSettings> settings,
    IClientPlaces? clients = null)
{
    public async Task<IReadOnlyList<(string DeviceId, IReadOnlyDictionary<string, string> Tags, ClientPlace? Client)>> ResolveAsync(
        Selection selection, CancellationToken ct)
    {
        var max = settings.Value.Jobs.MaxDevices;
        Dictionary<string, ClientPlace>? places = null;
        var query = selection.ToQuery();
        if (selection.ClientMac is { } mac)
        {
            places = new Dictionary<string, ClientPlace>(StringComparer.Ordinal);
            foreach (var p in clients is null ? [] : await clients.WhereAsync(mac, ct)) places.TryAdd(p.DeviceId, p);
            var ids = selection.DeviceIds is { } named ? places.Keys.Intersect(named, StringComparer.Ordinal) : places.Keys;
            query = query with { DeviceIds = ids.Order(StringComparer.Ordinal).ToList() };
        }
        var rows = await directory.SelectAllAsync(query, node.LiveNodes(), max, ct);
        var found = rows.Select(r => (r.DeviceId, r.Tags, places?.GetValueOrDefault(r.DeviceId))).ToList();
        // Devices named by id and nothing else are all taken, also those the directory does not list yet (it is a moment
        // behind the entities): a device the fleet has never seen is then refused by its entity and recorded as failed.
        if (selection with { DeviceIds = null } == new Selection() && selection.DeviceIds is { } byId)
        {
            var listed = found.Select(f => f.DeviceId).ToHashSet(StringComparer.Ordinal);
            found.AddRange(byId.Where(id => !listed.Contains(id)).Select(id => (id, (IReadOnlyDictionary<string, string>)new Dictionary<string, string>(), (ClientPlace?)null)));
            found.Sort((a, b) => string.CompareOrdinal(a.DeviceId, b.DeviceId));
        }
        return found.Take(max).ToList();
    }
}

/// <summary>The client plane's lookup: the routers that hold a client MAC.</summary>
public interface IClientPlaces
{
    Task<IReadOnlyList<ClientPlace>> WhereAsync(string clientMac, CancellationToken ct);
}
