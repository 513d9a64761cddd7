using System.CommandLine;
using System.Text.Json.Nodes;

namespace Fleet.Cli;

/// <summary>fleetctl keys list|create|delete: the admin API keys (/api/v1/keys; an admin key only).</summary>
public static class KeysCommands
{
    public static Command Build(Session session)
    {
        var list = new Command("list", "the API keys (never the keys themselves)");
        session.Act(list, async (parse, api, ct) =>
        {
            session.Show(parse, await api.GetAsync("/api/v1/keys", ct), page => Tables.Of(["NAME", "ROLE", "SOURCE", "CREATED"],
                Tables.Items(page).Select(k => new[]
                {
                    Tables.Text(k["name"]), Tables.Text(k["role"]), Tables.Text(k["source"]), Tables.Time(k["created_at"]),
                })));
            return ExitCodes.Ok;
        });

        var name = new Argument<string>("name") { Description = "the key's name (letters, digits, '.', '_', '-')" };
        var role = new Option<string>("--role") { Description = "what the key may do", Required = true }.AcceptOnlyFromAmong("viewer", "operator", "admin");
        var create = new Command("create", "create a key; it is shown this once") { name, role };
        session.Act(create, async (parse, api, ct) =>
        {
            var answer = await api.SendAsync(HttpMethod.Post, "/api/v1/keys",
                new JsonObject { ["name"] = parse.GetValue(name), ["role"] = parse.GetValue(role) }, ct);
            session.Show(parse, answer, k => Tables.Fields(("name", Tables.Text(k["name"])), ("role", Tables.Text(k["role"])),
                ("key", Tables.Text(k["key"]))));
            session.Err.WriteLine("fleetctl: the key is shown this once; keep it now");
            return ExitCodes.Ok;
        });

        var deleteName = new Argument<string>("name") { Description = "the key's name" };
        var delete = new Command("delete", "delete a key (not one from configuration, nor the caller's own)") { deleteName };
        session.Act(delete, async (parse, api, ct) =>
        {
            var keyName = parse.GetValue(deleteName)!;
            await api.SendAsync(HttpMethod.Delete, "/api/v1/keys/" + Uri.EscapeDataString(keyName), null, ct);
            if (!session.Json(parse)) session.Line($"key '{keyName}' deleted");
            return ExitCodes.Ok;
        });
        return new Command("keys", "admin API keys (admin only)") { list, create, delete };
    }
}
