using System.CommandLine;
using System.Text.Json.Nodes;

namespace Fleet.Cli;

/// <summary>fleetctl auth-mode set: a gateway's desired auth_mode (PUT …/gateways/{gw_id}/auth-mode).</summary>
public static class AuthModeCommands
{
    public static Command Build(Session session)
    {
        var deviceId = new Argument<string>("device_id") { Description = "the device" };
        var gwId = new Argument<string>("gw_id") { Description = "the gateway, as the device reported it" };
        var mode = new Argument<int>("auth_mode") { Description = "the auth_mode the router should keep (0: no portal, 1: portal)" };
        var set = new Command("set", "set a gateway's desired auth_mode; every heartbeat reply carries it") { deviceId, gwId, mode };
        session.Act(set, async (parse, api, ct) =>
        {
            var path = $"{Paths.Device(parse.GetValue(deviceId)!)}/gateways/{Uri.EscapeDataString(parse.GetValue(gwId)!)}/auth-mode";
            session.Show(parse, await api.SendAsync(HttpMethod.Put, path, new JsonObject { ["auth_mode"] = parse.GetValue(mode) }, ct),
                g => Tables.Fields(("gw_id", Tables.Text(g["gw_id"])), ("auth_mode", Tables.Text(g["auth_mode"])),
                    ("desired_auth_mode", Tables.Text(g["desired_auth_mode"]))));
            return ExitCodes.Ok;
        });
        return new Command("auth-mode", "gateways' auth modes") { set };
    }
}
