using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fleet.Cli;

/// <summary>
/// The devices a job or rollout names (docs/ADMIN_API.md "Selections"): --selection-json's object, with the options
/// given set over it. Every field must match; an empty selection is refused before the API is called (the whole fleet
/// is --all).
/// </summary>
public sealed class SelectionOptions
{
    public readonly Option<string?> Json = new("--selection-json")
    {
        Description = "the selection as a JSON object (the options below go over it)", HelpName = "JSON",
    };
    public readonly Option<string[]> Tags = new("--tag") { Description = "devices with this tag (repeatable: all must match)", HelpName = "KEY=VALUE" };
    public readonly Option<string[]> Devices = new("--device") { Description = "this device (repeatable: any of them)", HelpName = "DEVICE_ID" };
    public readonly Option<bool?> Online = new("--online") { Description = "only devices online (true) or offline (false)" };
    public readonly Option<string?> GwId = new("--gw-id") { Description = "only devices that reported this gateway" };
    public readonly Option<string?> Protocol = new Option<string?>("--protocol") { Description = "only devices speaking this firmware dialect" }
        .AcceptOnlyFromAmong("seed", "2025", "9");
    public readonly Option<string?> Release;
    public readonly Option<string?> Q = new("--q") { Description = "search device ids, locations and MAC addresses" };
    public readonly Option<string?> ClientMac = new("--client-mac") { Description = "only the routers that know this client" };
    public readonly Option<bool> All = new("--all") { Description = "the whole fleet" };

    /// <param name="releaseOption">The name of the option that selects by release: --release for a job; a rollout's --release
    /// is the release it installs, so its selection takes --from-release.</param>
    public SelectionOptions(string releaseOption = "--release") => Release = new Option<string?>(releaseOption)
    {
        Description = "only devices whose last firmware report says this DISTRIB_RELEASE", HelpName = "RELEASE",
    };

    public IEnumerable<Option> Options => [Json, Tags, Devices, Online, GwId, Protocol, Release, Q, ClientMac, All];

    /// <summary>The selection object, or a usage error when it is not JSON, not an object, or empty.</summary>
    public JsonObject Read(ParseResult parse)
    {
        var selection = Object(parse.GetValue(Json), "--selection-json");
        var tags = KeyValues(parse.GetValue(Tags), "--tag");
        if (tags.Count > 0)
        {
            var merged = selection["tags"] as JsonObject ?? new JsonObject();
            foreach (var (k, v) in tags) merged[k] = v?.DeepClone();
            selection["tags"] = merged;
        }
        if (parse.GetValue(Devices) is { Length: > 0 } devices) selection["device_ids"] = new JsonArray(devices.Select(d => (JsonNode?)d).ToArray());
        if (parse.GetValue(Online) is { } online) selection["online"] = online;
        Set(selection, "gw_id", parse.GetValue(GwId));
        Set(selection, "protocol", parse.GetValue(Protocol));
        Set(selection, "release", parse.GetValue(Release));
        Set(selection, "q", parse.GetValue(Q));
        Set(selection, "client_mac", parse.GetValue(ClientMac));
        if (parse.GetValue(All)) selection["all"] = true;
        if (selection.Count == 0)
            throw new FleetctlException(ExitCodes.Usage,
                $"no selection: give --selection-json, --tag, --device, --online, --gw-id, --protocol, {Release.Name}, --q, --client-mac or --all (the whole fleet)");
        return selection;
    }

    private static void Set(JsonObject o, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value)) o[name] = value;
    }

    /// <summary>A JSON object from an option's text; an empty object when the option was not given.</summary>
    public static JsonObject Object(string? json, string option)
    {
        if (json is null) return new JsonObject();
        try
        {
            return JsonNode.Parse(json) as JsonObject ?? throw new FleetctlException(ExitCodes.Usage, $"{option} must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new FleetctlException(ExitCodes.Usage, $"{option} is not valid JSON: {e.Message}");
        }
    }

    /// <summary>key=value items as an object (the value may be empty: the API says what it accepts); a key given twice is a usage error.</summary>
    public static JsonObject KeyValues(IEnumerable<string>? items, string what)
    {
        var o = new JsonObject();
        foreach (var item in items ?? [])
        {
            var at = item.IndexOf('=');
            if (at < 1) throw new FleetctlException(ExitCodes.Usage, $"{what} '{item}' must be key=value");
            var key = item[..at];
            if (o.ContainsKey(key)) throw new FleetctlException(ExitCodes.Usage, $"{what}: the key '{key}' is given twice");
            o[key] = item[(at + 1)..];
        }
        return o;
    }
}
