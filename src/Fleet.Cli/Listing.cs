using System.Collections.Specialized;
using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Web;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>
/// A paged list of the API ({"items":[…],"next_cursor"}): --limit, --cursor, and --all to follow next_cursor to the
/// end (with --json: one document with every item), as devices list does.
/// </summary>
public sealed class Listing
{
    public readonly Option<int?> Limit;
    public readonly Option<string?> Cursor = new("--cursor") { Description = "the next_cursor of an earlier page" };
    public readonly Option<bool> All = new("--all") { Description = "follow next_cursor to the end (with --json: one document with every item)" };

    public Listing(string what) => Limit = new Option<int?>("--limit") { Description = $"{what} per page (API default 100, at most 1000)" };

    public IEnumerable<Option> Options => [Limit, Cursor, All];

    /// <summary>
    /// Sets <paramref name="command"/>'s action: GET <paramref name="path"/> with the query <paramref name="filters"/> makes
    /// (plus limit and cursor), shown as <paramref name="render"/>'s table or, with --json, as the API's JSON.
    /// </summary>
    public void Act(Session session, Command command, Func<ParseResult, string> path,
        Action<ParseResult, NameValueCollection> filters, Func<JsonNode, IRenderable> render)
    {
        foreach (var option in Options) command.Options.Add(option);
        session.Act(command, async (parse, api, ct) =>
        {
            var query = HttpUtility.ParseQueryString("");
            filters(parse, query);
            Query.Set(query, "limit", parse.GetValue(Limit)?.ToString(CultureInfo.InvariantCulture));
            Query.Set(query, "cursor", parse.GetValue(Cursor));
            var where = path(parse);
            var answer = await api.GetAsync(Query.Path(where, query), ct);
            if (!parse.GetValue(All))
            {
                session.Show(parse, answer, render);
                return ExitCodes.Ok;
            }
            var whole = await Whole(api, where, query, answer.Json, ct);
            if (session.Json(parse)) session.Line(whole.ToJsonString());
            else session.Write(render(whole));
            return ExitCodes.Ok;
        });
    }

    /// <summary>Every item from <paramref name="first"/> page on, following next_cursor: {"items":[…],"next_cursor":null}.</summary>
    public static async Task<JsonObject> Whole(FleetApi api, string path, NameValueCollection query, JsonNode first, CancellationToken ct)
    {
        var items = new JsonArray();
        var page = first;
        while (true)
        {
            foreach (var item in Tables.Items(page)) items.Add(item.DeepClone());
            if (page["next_cursor"]?.GetValue<string>() is not { } next) break;
            query["cursor"] = next;
            page = (await api.GetAsync(Query.Path(path, query), ct)).Json;
        }
        return new JsonObject { ["items"] = items, ["next_cursor"] = null };
    }
}

/// <summary>Query strings: only the values given.</summary>
public static class Query
{
    public static void Set(NameValueCollection query, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value)) query[name] = value;
    }

    public static string Path(string path, NameValueCollection query) => query.Count > 0 ? $"{path}?{query}" : path;
}
