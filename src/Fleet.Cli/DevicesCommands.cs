using System.CommandLine;
using System.Text.Json.Nodes;
using System.Web;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>fleetctl devices list|get: the directory (GET /api/v1/devices) and one device's view.</summary>
public static class DevicesCommands
{
    public static Command Build(Session session)
    {
        var online = new Option<bool?>("--online") { Description = "only devices online (true) or offline (false)" };
        var protocol = new Option<string?>("--protocol") { Description = "only devices speaking this firmware dialect" }.AcceptOnlyFromAmong("seed", "2025", "9");
        var admission = new Option<string?>("--admission") { Description = "only devices pending or approved" }.AcceptOnlyFromAmong("pending", "approved");
        var gwId = new Option<string?>("--gw-id") { Description = "only devices that reported this gateway" };
        var q = new Option<string?>("--q") { Description = "search device ids, locations and MAC addresses" };
        var limit = new Option<int?>("--limit") { Description = "devices per page (API default 100, at most 1000)" };
        var cursor = new Option<string?>("--cursor") { Description = "the next_cursor of an earlier page" };
        var all = new Option<bool>("--all") { Description = "follow next_cursor to the end (with --json: one document with every item)" };
        var list = new Command("list", "list devices from the directory (about 1 s behind the devices)")
        {
            online, protocol, admission, gwId, q, limit, cursor, all,
        };
        session.Act(list, async (parse, api, ct) =>
        {
            var query = HttpUtility.ParseQueryString("");
            if (parse.GetValue(online) is { } o) query["online"] = o ? "true" : "false";
            Set(query, "protocol", parse.GetValue(protocol));
            Set(query, "admission", parse.GetValue(admission));
            Set(query, "gw_id", parse.GetValue(gwId));
            Set(query, "q", parse.GetValue(q));
            Set(query, "limit", parse.GetValue(limit)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Set(query, "cursor", parse.GetValue(cursor));
            var answer = await api.GetAsync("/api/v1/devices?" + query, ct);
            if (!parse.GetValue(all))
            {
                session.Show(parse, answer, ListTable);
                return ExitCodes.Ok;
            }
            var items = new JsonArray();
            var page = answer.Json;
            while (true)
            {
                foreach (var item in Tables.Items(page)) items.Add(item.DeepClone());
                if (page["next_cursor"]?.GetValue<string>() is not { } next) break;
                query["cursor"] = next;
                page = (await api.GetAsync("/api/v1/devices?" + query, ct)).Json;
            }
            var whole = new JsonObject { ["items"] = items, ["next_cursor"] = null };
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
        return new Command("devices", "the fleet's routers") { list, get };
    }

    private static void Set(System.Collections.Specialized.NameValueCollection query, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value)) query[name] = value;
    }

    private static IRenderable ListTable(JsonNode page) => Tables.Of(
        ["DEVICE", "ONLINE", "PROTOCOL", "GATEWAYS", "LOCATION", "NODE", "LAST SEEN"],
        Tables.Items(page).Select(d => new[]
        {
            Tables.Text(d["device_id"]), Tables.Text(d["online"]), Tables.Text(d["protocol"]),
            string.Join(",", d["gateways"]?.AsArray().Select(g => Tables.Text(g)) ?? []), Tables.Text(d["location_id"]),
            Tables.Text(d["node"]), Tables.Time(d["last_seen"]),
        }));

    private static IRenderable DeviceView(JsonNode d) => Tables.Stack(
        (null, Tables.Fields(
            ("device_id", Tables.Text(d["device_id"])), ("online", Tables.Text(d["online"])), ("protocol", Tables.Text(d["protocol"])),
            ("node", Tables.Text(d["node"])), ("connected_at", Tables.Time(d["connected_at"])), ("last_seen", Tables.Time(d["last_seen"])),
            ("location_id", Tables.Text(d["device_info"]?["location_id"])), ("ap_mac_address", Tables.Text(d["device_info"]?["ap_mac_address"])),
            ("admission", Tables.Text(d["admission"])), ("firmware", Tables.Text(d["firmware"]?["DISTRIB_RELEASE"])))),
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
}
