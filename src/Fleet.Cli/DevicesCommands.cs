using System.CommandLine;
using System.Text.Json.Nodes;
using System.Web;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>fleetctl devices list|get|tag: the directory (GET /api/v1/devices), one device's view, an operator's tags.</summary>
public static class DevicesCommands
{
    public static Command Build(Session session)
    {
        var online = new Option<bool?>("--online") { Description = "only devices online (true) or offline (false)" };
        var protocol = new Option<string?>("--protocol") { Description = "only devices speaking this firmware dialect" }.AcceptOnlyFromAmong("seed", "2025", "9");
        var admission = new Option<string?>("--admission") { Description = "only devices pending or approved" }.AcceptOnlyFromAmong("pending", "approved");
        var gwId = new Option<string?>("--gw-id") { Description = "only devices that reported this gateway" };
        var q = new Option<string?>("--q") { Description = "search device ids, locations and MAC addresses" };
        var tags = new Option<string[]>("--tag") { Description = "only devices with this tag (repeatable: all must match)", HelpName = "KEY=VALUE" };
        var release = new Option<string?>("--release") { Description = "only devices whose last firmware report says this DISTRIB_RELEASE" };
        var count = new Option<bool>("--count") { Description = "also say how many devices match in all (not only this page)" };
        var limit = new Option<int?>("--limit") { Description = "devices per page (API default 100, at most 1000)" };
        var cursor = new Option<string?>("--cursor") { Description = "the next_cursor of an earlier page" };
        var all = new Option<bool>("--all") { Description = "follow next_cursor to the end (with --json: one document with every item)" };
        var list = new Command("list", "list devices from the directory (about 1 s behind the devices)")
        {
            online, protocol, admission, gwId, q, tags, release, count, limit, cursor, all,
        };
        session.Act(list, async (parse, api, ct) =>
        {
            var query = HttpUtility.ParseQueryString("");
            if (parse.GetValue(online) is { } o) query["online"] = o ? "true" : "false";
            Set(query, "protocol", parse.GetValue(protocol));
            Set(query, "admission", parse.GetValue(admission));
            Set(query, "gw_id", parse.GetValue(gwId));
            Set(query, "q", parse.GetValue(q));
            foreach (var (k, v) in SelectionOptions.KeyValues(parse.GetValue(tags), "--tag")) query.Add("tag", $"{k}={Tables.Text(v)}");
            Set(query, "release", parse.GetValue(release));
            if (parse.GetValue(count)) query["count"] = "true";
            Set(query, "limit", parse.GetValue(limit)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Set(query, "cursor", parse.GetValue(cursor));
            var answer = await api.GetAsync("/api/v1/devices?" + query, ct);
            if (!parse.GetValue(all))
            {
                session.Show(parse, answer, ListTable);
                return ExitCodes.Ok;
            }
            var whole = await Listing.Whole(api, "/api/v1/devices", query, answer.Json, ct);
            if (answer.Json["count"] is { } matching) whole["count"] = matching.DeepClone();
            if (session.Json(parse)) session.Line(whole.ToJsonString());
            else session.Write(ListTable(whole));
            return ExitCodes.Ok;
        });

        var deviceId = new Argument<string>("device_id") { Description = "the device" };
        var get = new Command("get", "one device: status, gateways, clients, firmware") { deviceId };
        session.Act(get, async (parse, api, ct) =>
        {
            session.Show(parse, await api.GetAsync(Paths.Device(parse.GetValue(deviceId)!), ct), DeviceView);
            return ExitCodes.Ok;
        });

        var tagDevice = new Argument<string>("device_id") { Description = "the device" };
        var tagItems = new Argument<string[]>("tags") { Description = "the operator's tags, key=value; they replace the ones it had", Arity = ArgumentArity.ZeroOrMore };
        var clear = new Option<bool>("--clear") { Description = "remove every operator tag (tags derived from device_info stay)" };
        var tag = new Command("tag", "set a device's operator tags, e.g. tag r1 site=paris tz=Europe/Paris (they replace its operator tags)")
        {
            tagDevice, tagItems, clear,
        };
        session.Act(tag, async (parse, api, ct) =>
        {
            var items = parse.GetValue(tagItems) ?? [];
            if (items.Length == 0 && !parse.GetValue(clear))
                throw new FleetctlException(ExitCodes.Usage, "give the tags (key=value …), or --clear to remove them all");
            if (items.Length > 0 && parse.GetValue(clear))
                throw new FleetctlException(ExitCodes.Usage, "give the tags or --clear, not both");
            var body = new JsonObject { ["tags"] = SelectionOptions.KeyValues(items, "tag") };
            session.Show(parse, await api.SendAsync(HttpMethod.Put, Paths.Device(parse.GetValue(tagDevice)!) + "/tags", body, ct),
                t => Tables.Fields(("device_id", Tables.Text(t["device_id"])), ("tags", TagsText(t["tags"])),
                    ("operator_tags", TagsText(t["operator_tags"]))));
            return ExitCodes.Ok;
        });
        return new Command("devices", "the fleet's routers") { list, get, tag };
    }

    /// <summary>{"site":"paris","tz":"UTC"} as "site=paris,tz=UTC"; "-" for none.</summary>
    public static string TagsText(JsonNode? tags) =>
        tags is JsonObject { Count: > 0 } o ? string.Join(",", o.Select(t => $"{t.Key}={Tables.Text(t.Value)}")) : "-";

    private static void Set(System.Collections.Specialized.NameValueCollection query, string name, string? value) => Query.Set(query, name, value);

    private static IRenderable ListTable(JsonNode page)
    {
        var table = Tables.Of(
            ["DEVICE", "ONLINE", "PROTOCOL", "GATEWAYS", "LOCATION", "NODE", "LAST SEEN", "RELEASE", "TAGS"],
            Tables.Items(page).Select(d => new[]
            {
                Tables.Text(d["device_id"]), Tables.Text(d["online"]), Tables.Text(d["protocol"]),
                string.Join(",", d["gateways"]?.AsArray().Select(g => Tables.Text(g)) ?? []), Tables.Text(d["location_id"]),
                Tables.Text(d["node"]), Tables.Time(d["last_seen"]), Tables.Text(d["release"]), TagsText(d["tags"]),
            }));
        return page["count"] is { } count ? Tables.Stack((null, table), (null, new Spectre.Console.Text($"{Tables.Text(count)} devices match"))) : table;
    }

    private static IRenderable DeviceView(JsonNode d) => Tables.Stack(
        (null, Tables.Fields(
            ("device_id", Tables.Text(d["device_id"])), ("online", Tables.Text(d["online"])), ("protocol", Tables.Text(d["protocol"])),
            ("node", Tables.Text(d["node"])), ("connected_at", Tables.Time(d["connected_at"])), ("last_seen", Tables.Time(d["last_seen"])),
            ("location_id", Tables.Text(d["device_info"]?["location_id"])), ("ap_mac_address", Tables.Text(d["device_info"]?["ap_mac_address"])),
            ("admission", Tables.Text(d["admission"])), ("firmware", Tables.Text(d["firmware"]?["DISTRIB_RELEASE"])),
            ("tags", TagsText(d["tags"])))),
        ("Gateways", Tables.Of(["GW_ID", "CHANNEL", "ADDRESS", "INTERFACE", "AUTH_MODE", "DESIRED"],
            (d["gateways"]?.AsArray().OfType<JsonNode>() ?? []).Select(g => new[]
            {
                Tables.Text(g["gw_id"]), Tables.Text(g["gw_channel"]), Tables.Text(g["gw_address_v4"]), Tables.Text(g["gw_interface"]),
                Tables.Text(g["auth_mode"]), Tables.Text(g["desired_auth_mode"]),
            }))),
        ("Clients", Tables.Of(["CLIENT_MAC", "CLIENT_IP", "NAME", "GW_ID", "AUTHORIZED", "EXPIRES"],
            (d["clients"]?.AsArray().OfType<JsonNode>() ?? []).Select(c => new[]
            {
                Tables.Text(c["client_mac"]), Tables.Text(c["client_ip"]), Tables.Text(c["client_name"]), Tables.Text(c["gw_id"]),
                Tables.Time(c["authorized_at"]), Tables.Time(c["expires_at"]),
            }))));
}

/// <summary>API paths, with every name from the command line escaped.</summary>
public static class Paths
{
    public static string Device(string deviceId) => "/api/v1/devices/" + Uri.EscapeDataString(deviceId);
    public static string Commands(string deviceId) => Device(deviceId) + "/commands";
    public static string Command(string deviceId, string commandId) => Commands(deviceId) + "/" + Uri.EscapeDataString(commandId);
    public static string Job(string jobId) => "/api/v1/jobs/" + Uri.EscapeDataString(jobId);
    public static string Rollout(string rolloutId) => "/api/v1/rollouts/" + Uri.EscapeDataString(rolloutId);
    public static string Client(string mac) => "/api/v1/clients/" + Uri.EscapeDataString(mac);
}
