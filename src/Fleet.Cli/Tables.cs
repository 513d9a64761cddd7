using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>How API JSON is shown as tables: borderless columns (kubectl-like, easy to grep) and field grids.</summary>
public static class Tables
{
    public static Table Of(IEnumerable<string> headers, IEnumerable<IEnumerable<string>> rows)
    {
        var table = new Table().NoBorder();
        foreach (var h in headers) table.AddColumn(new TableColumn(new Text(h, new Style(decoration: Decoration.Bold))).NoWrap());
        foreach (var row in rows) table.AddRow(row.Select(cell => new Text(cell)));
        return table;
    }

    /// <summary>Name/value pairs, one per line.</summary>
    public static Grid Fields(params (string Name, string Value)[] fields)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        foreach (var (name, value) in fields) grid.AddRow(new Text(name, new Style(decoration: Decoration.Bold)), new Text(value));
        return grid;
    }

    /// <summary>Renderables one under another, with a titled blank line before each titled part.</summary>
    public static IRenderable Stack(params (string? Title, IRenderable Part)[] parts) =>
        new Rows(parts.SelectMany(p => p.Title is null
            ? new[] { p.Part }
            : new IRenderable[] { new Text(""), new Text(p.Title, new Style(decoration: Decoration.Bold | Decoration.Underline)), p.Part }));

    /// <summary>A field as text: a string as is, a number or object as JSON, null or absent as "-".</summary>
    public static string Text(JsonNode? node) => node switch
    {
        null => "-",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => node.ToJsonString(),
    };

    /// <summary>An ISO 8601 time as "yyyy-MM-dd HH:mm:ss" UTC; "-" when absent.</summary>
    public static string Time(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String
        && DateTimeOffset.TryParse(v.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)
            : Text(node);

    public static IEnumerable<JsonNode> Items(JsonNode page) => page["items"]?.AsArray().OfType<JsonNode>() ?? [];
}
