using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Web;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>
/// fleetctl clients find|kickoff: where a client is, fleet-wide, and a kickoff from every router that knows it
/// (/api/v1/clients, docs/ADMIN_API.md "The client plane").
/// </summary>
public static class ClientsCommands
{
    public static Command Build(Session session) => new("clients", "the client plane: where each client is, fleet-wide") { Find(session), Kickoff(session) };

    private static Command Find(Session session)
    {
        var mac = new Option<string?>("--mac") { Description = "the client's MAC address (aa:bb:cc:dd:ee:ff)" };
        var ip = new Option<string?>("--ip") { Description = "the client's IP address" };
        var find = new Command("find", "the routers that know a client (a few seconds behind the routers)") { mac, ip };
        session.Act(find, async (parse, api, ct) =>
        {
            var query = HttpUtility.ParseQueryString("");
            Query.Set(query, "mac", parse.GetValue(mac));
            Query.Set(query, "ip", parse.GetValue(ip));
            if (query.Count == 0) throw new FleetctlException(ExitCodes.Usage, "give --mac or --ip");
            session.Show(parse, await api.GetAsync(Query.Path("/api/v1/clients", query), ct), page => Tables.Of(
                ["CLIENT_MAC", "CLIENT_IP", "DEVICE", "GW_ID", "AUTHORIZED", "EXPIRES"],
                Tables.Items(page).Select(c => new[]
                {
                    Tables.Text(c["client_mac"]), Tables.Text(c["client_ip"]), Tables.Text(c["device_id"]), Tables.Text(c["gw_id"]),
                    Tables.Time(c["authorized_at"]), Tables.Time(c["expires_at"]),
                })));
            return ExitCodes.Ok;
        });
        return find;
    }

    private static Command Kickoff(Session session)
    {
        var mac = new Argument<string>("mac") { Description = "the client's MAC address" };
        var wait = new Option<int?>("--wait") { Description = "seconds to wait for the routers' answers (API default 10)", HelpName = "SECONDS" };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "makes a retry of this kickoff name the same commands and routers" };
        var kickoff = new Command("kickoff", "kick a client off every router that knows it (exit 6 if a router's kickoff did not succeed or was not sent, 7 if one is still pending)")
        {
            mac, wait, idempotencyKey,
        };
        session.Act(kickoff, async (parse, api, ct) =>
        {
            var seconds = parse.GetValue(wait);
            if (seconds < 0) throw new FleetctlException(ExitCodes.Usage, "--wait must not be negative");
            var path = Paths.Client(parse.GetValue(mac)!) + "/kickoff"
                       + (seconds is { } s ? "?wait=" + s.ToString(CultureInfo.InvariantCulture) : "");
            var answer = await api.SendAsync(HttpMethod.Post, path, null, ct, TimeSpan.FromSeconds(seconds ?? 10), parse.GetValue(idempotencyKey));
            session.Show(parse, answer, Results);
            var results = Tables.Items(new JsonObject { ["items"] = answer.Json["results"]?.DeepClone() }).ToList();
            // unknown: the device did not answer in time, the kickoff may be queued (docs/ADMIN_API.md, "The client plane").
            var pending = results.Where(r => Tables.Text(r["status"]) is "queued" or "sent" or "unknown").ToList();
            var failed = results.Where(r => Tables.Text(r["status"]) is not ("queued" or "sent" or "unknown" or "succeeded" or "delivered")).ToList();
            if (failed.Count > 0)
            {
                foreach (var r in failed)
                    session.Err.WriteLine($"fleetctl: kickoff on {Tables.Text(r["device_id"])} ended {Tables.Text(r["status"])}"
                                          + (r["error"] is { } e ? ": " + Tables.Text(e) : ""));
                return ExitCodes.CommandNotSucceeded;
            }
            if (pending.Count > 0)
            {
                session.Err.WriteLine($"fleetctl: {pending.Count} kickoff(s) still pending: {string.Join(", ", pending.Select(r => Tables.Text(r["device_id"])))}");
                return ExitCodes.StillPending;
            }
            return ExitCodes.Ok;
        });
        return kickoff;
    }

    private static IRenderable Results(JsonNode answer) => Tables.Of(
        ["DEVICE", "GW_ID", "CLIENT_IP", "COMMAND_ID", "STATUS", "ERROR"],
        (answer["results"]?.AsArray().OfType<JsonNode>() ?? []).Select(r => new[]
        {
            Tables.Text(r["device_id"]), Tables.Text(r["gw_id"]), Tables.Text(r["client_ip"]), Tables.Text(r["command_id"]),
            Tables.Text(r["status"]), Tables.Text(r["error"]),
        }));
}
