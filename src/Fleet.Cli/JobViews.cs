using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>
/// Jobs and rollouts as tables (docs/ADMIN_API.md "Jobs", "Rollouts"), and watching one until it is final: a progress
/// bar of finished/total (a rollout: one more per stage) live on stderr when it is a terminal, polling GET the job.
/// </summary>
public static class JobViews
{
    /// <summary>Device statuses that end a device's part in a job or rollout; the others (pending, queued, sent, waiting, checking, …) do not.</summary>
    public static readonly IReadOnlySet<string> FinishedStatuses = new HashSet<string>
    {
        "offline", "skipped", "delivered", "succeeded", "failed", "timed_out", "expired", "cancelled", "upgraded", "already",
    };

    /// <summary>A rollout device's statuses between its turn and its outcome.</summary>
    public static readonly IReadOnlySet<string> InProgressStatuses = new HashSet<string> { "checking", "upgrading", "rebooting", "verifying" };

    /// <summary>Job statuses after which nothing changes.</summary>
    public static readonly IReadOnlySet<string> FinalJobStatuses = new HashSet<string> { "completed", "cancelled", "aborted" };

    /// <summary>The order statuses are listed in: as a device goes through them, then the outcomes.</summary>
    private static readonly string[] StatusOrder =
    [
        "pending", "waiting", "queued", "sent", "checking", "upgrading", "rebooting", "verifying",
        "delivered", "succeeded", "upgraded", "already", "failed", "timed_out", "expired", "cancelled", "offline", "skipped",
    ];

    public static bool IsFinal(JsonNode job) => FinalJobStatuses.Contains(Tables.Text(job["status"]));

    public static long Count(JsonNode? counts, string status) =>
        counts?[status] is JsonValue v && v.TryGetValue<long>(out var n) ? n : 0;

    /// <summary>Devices whose part is over, from a counts object.</summary>
    public static long Finished(JsonNode? counts) =>
        counts is JsonObject o ? o.Where(c => FinishedStatuses.Contains(c.Key)).Sum(c => Count(o, c.Key)) : 0;

    public static long Total(JsonNode job) => job["total"] is JsonValue v && v.TryGetValue<long>(out var n) ? n : 0;

    /// <summary>"finished/total", e.g. "280/300".</summary>
    public static string Progress(JsonNode job) => $"{Finished(job["counts"])}/{Total(job)}";

    /// <summary>A counts object as "succeeded 3, failed 1", in <see cref="StatusOrder"/>.</summary>
    public static string CountsText(JsonNode? counts) =>
        string.Join(", ", Ordered(counts).Select(c => $"{c.Status} {c.Count}"));

    private static IEnumerable<(string Status, long Count)> Ordered(JsonNode? counts) =>
        counts is JsonObject o
            ? o.Select(c => (Status: c.Key, Count: Count(o, c.Key)))
                .OrderBy(c => Array.IndexOf(StatusOrder, c.Status) is var i and >= 0 ? i : StatusOrder.Length).ThenBy(c => c.Status, StringComparer.Ordinal)
            : [];

    public static IRenderable ListTable(JsonNode page) => Tables.Of(
        ["JOB_ID", "KIND", "STATUS", "PROGRESS", "CREATED", "CREATED_BY", "NAME"],
        Tables.Items(page).Select(j => new[]
        {
            Tables.Text(j["job_id"]), Tables.Text(j["kind"]), Tables.Text(j["status"]), Progress(j), Tables.Time(j["created_at"]),
            Tables.Text(j["created_by"]), Tables.Text(j["name"]),
        }));

    public static IRenderable DevicesTable(JsonNode page) => Tables.Of(
        ["DEVICE", "STATUS", "STAGE", "COMMAND_ID", "UPDATED", "ERROR"],
        Tables.Items(page).Select(d => new[]
        {
            Tables.Text(d["device_id"]), Tables.Text(d["status"]), Tables.Text(d["stage"]), Tables.Text(d["command_id"]),
            Tables.Time(d["updated_at"]), Tables.Text(d["error"]),
        }));

    /// <summary>A job's (or rollout's) view: its fields, the devices per status, and a rollout's plan and stages.</summary>
    public static IRenderable View(JsonNode j)
    {
        var parts = new List<(string?, IRenderable)>
        {
            (null, Tables.Fields(
                ("job_id", Tables.Text(j["job_id"])), ("kind", Tables.Text(j["kind"])), ("name", Tables.Text(j["name"])),
                ("status", Tables.Text(j["status"])), ("reason", Tables.Text(j["reason"])), ("progress", Progress(j) + " finished"),
                ("created_at", Tables.Time(j["created_at"])),
                ("created_by", Tables.Text(j["created_by"])), ("deadline", Tables.Time(j["deadline"])), ("finished_at", Tables.Time(j["finished_at"])),
                ("rate_per_minute", Tables.Text(j["rate_per_minute"])), ("wait_offline", Tables.Text(j["wait_offline"])),
                ("selection", Tables.Text(Given(j["selection"]))), ("command", Tables.Text(j["command"])))),
            ("Devices", CountsTable(j["counts"])),
        };
        if (j["rollout"] is JsonObject r)
        {
            parts.Add(("Rollout", Tables.Fields(
                ("url", Tables.Text(r["url"])), ("release", Tables.Text(r["release"])), ("revision", Tables.Text(r["revision"])),
                ("current_stage", Tables.Text(r["current_stage"])), ("abort", Abort(r)), ("windows", Windows(r["windows"])),
                ("zone", Tables.Text(r["zone"])), ("zone_tag", Tables.Text(r["zone_tag"])), ("approval", Tables.Text(r["approval"])),
                ("device_timeout_seconds", Tables.Text(r["device_timeout_seconds"])), ("retries", Tables.Text(r["retries"])))));
            parts.Add(("Stages", StagesTable(r["stages"])));
        }
        return Tables.Stack([.. parts]);
    }

    /// <summary>A selection with only the fields it sets (the view spells out every field, null or false).</summary>
    public static JsonNode? Given(JsonNode? selection) =>
        selection is JsonObject o
            ? new JsonObject(o.Where(f => f.Value is not null && !(f.Value is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.False))
                .Select(f => KeyValuePair.Create(f.Key, f.Value?.DeepClone())))
            : selection;

    public static IRenderable CountsTable(JsonNode? counts) =>
        Tables.Of(["STATUS", "DEVICES"], Ordered(counts).Select(c => new[] { c.Status, c.Count.ToString(CultureInfo.InvariantCulture) }));

    public static IRenderable StagesTable(JsonNode? stages) => Tables.Of(
        ["STAGE", "SIZE", "STATUS", "FINISHED", "UPGRADED", "ALREADY", "FAILED", "WAITING", "IN_PROGRESS", "PENDING", "SKIPPED"],
        Stages(stages).Select(s =>
        {
            var c = s["counts"];
            string N(long n) => n.ToString(CultureInfo.InvariantCulture);
            return new[]
            {
                Tables.Text(s["index"]), Tables.Text(s["size"]), Tables.Text(s["status"]), N(Finished(c)), N(Count(c, "upgraded")),
                N(Count(c, "already")), N(Count(c, "failed")), N(Count(c, "waiting")), N(InProgress(c)), N(Count(c, "pending")),
                N(Count(c, "skipped")),
            };
        }));

    public static IEnumerable<JsonNode> Stages(JsonNode? stages) => stages?.AsArray().OfType<JsonNode>() ?? [];

    public static long InProgress(JsonNode? counts) => InProgressStatuses.Sum(s => Count(counts, s));

    /// <summary>[{"start":"01:00","end":"05:00"}] (or ["01:00-05:00"]) as "01:00-05:00"; "-" for none.</summary>
    public static string Windows(JsonNode? windows) =>
        windows is JsonArray { Count: > 0 } a
            ? string.Join(", ", a.OfType<JsonNode>().Select(w => w is JsonObject ? $"{Tables.Text(w["start"])}-{Tables.Text(w["end"])}" : Tables.Text(w)))
            : "-";

    /// <summary>The abort rule ({"failure_percent","min_finished"}, or the view's abort_failure_percent and abort_min_finished) in words.</summary>
    public static string Abort(JsonNode rollout)
    {
        var percent = rollout["abort"]?["failure_percent"] ?? rollout["abort_failure_percent"];
        var min = rollout["abort"]?["min_finished"] ?? rollout["abort_min_finished"];
        return percent is null ? "-" : $"more than {Tables.Text(percent)} % of a stage failed, once {(min is null ? "1" : Tables.Text(min))} of it finished";
    }

    /// <summary>A dry run's answer: how many devices, and the first of them.</summary>
    public static IRenderable DryRun(JsonNode d) => Tables.Stack(
        (null, Tables.Fields(("dry_run", "true: nothing was created"), ("devices", Tables.Text(d["count"])))),
        ("Selected devices", Tables.Of(["DEVICE"], (d["device_ids"]?.AsArray().OfType<JsonNode>() ?? []).Select(id => new[] { Tables.Text(id) }))));

    /// <summary>How long watch waits between two reads of the job, by default.</summary>
    public const double DefaultInterval = 2;

    /// <summary>Consecutive failed reads (5xx, the node unreachable) watch rides out before it gives up.</summary>
    public const int TransientFailures = 5;

    public static Option<int?> WatchWait() =>
        new("--wait") { Description = "stop watching after this long (exit 7 if the job is not final then)", HelpName = "SECONDS" };

    public static Option<double?> WatchInterval() =>
        new("--interval") { Description = $"seconds between two reads of the job (default {DefaultInterval})", HelpName = "SECONDS" };

    /// <summary>
    /// Reads <paramref name="path"/> (a job or rollout view) every <paramref name="interval"/> seconds until its status is
    /// final or <paramref name="wait"/> seconds have passed, showing progress on stderr; prints the last view.
    /// Exit 0 when it completed, <see cref="ExitCodes.JobNotCompleted"/> when it ended otherwise (cancelled, aborted),
    /// <see cref="ExitCodes.StillPending"/> when the wait ran out first.
    /// </summary>
    public static async Task<int> Watch(Session session, ParseResult parse, FleetApi api, string path, int? wait, double? interval,
        CancellationToken ct, FleetApi.Answer? first = null)
    {
        if (wait < 0) throw new FleetctlException(ExitCodes.Usage, "--wait must not be negative");
        if (interval is <= 0 or > 3600) throw new FleetctlException(ExitCodes.Usage, "--interval must be more than 0 and at most 3600 seconds");
        var every = TimeSpan.FromSeconds(interval ?? DefaultInterval);
        var clock = Stopwatch.StartNew();
        TimeSpan? Left() => wait is { } w ? TimeSpan.FromSeconds(w) - clock.Elapsed : null;
        var last = first ?? await api.GetAsync(path, ct);

        async Task Loop(Action<JsonNode> show)
        {
            show(last.Json);
            var failures = 0;
            while (!IsFinal(last.Json))
            {
                var left = Left();
                if (left <= TimeSpan.Zero) break;
                var pause = left < every ? left.Value : every;
                await Task.Delay(pause, ct);
                try
                {
                    last = await api.GetAsync(path, ct);
                    failures = 0;
                }
                catch (FleetctlException e) when (e.ExitCode == ExitCodes.Error && ++failures < TransientFailures)
                {
                    continue; // a node restarting, a load balancer between two nodes: read again
                }
                show(last.Json);
            }
        }

        if (session.Progress is { } terminal)
        {
            await terminal.Live(Board(last.Json)).AutoClear(false).StartAsync(ctx => Loop(view =>
            {
                ctx.UpdateTarget(Board(view));
                ctx.Refresh();
            }));
        }
        else
        {
            string? shown = null;
            await Loop(view =>
            {
                var line = Line(view);
                if (line != shown) session.Err.WriteLine($"fleetctl: {line}");
                shown = line;
            });
        }

        session.Show(parse, last, View);
        var job = last.Json;
        var status = Tables.Text(job["status"]);
        var what = $"{Kind(job)} {Tables.Text(job["job_id"])}";
        if (status == "completed") return ExitCodes.Ok;
        if (IsFinal(job))
        {
            session.Err.WriteLine($"fleetctl: {what} ended {status}");
            return ExitCodes.JobNotCompleted;
        }
        session.Err.WriteLine($"fleetctl: {what} is still {status} after {wait} s");
        return ExitCodes.StillPending;
    }

    private static string Kind(JsonNode job) => Tables.Text(job["kind"]) == "rollout" || job["rollout"] is not null ? "rollout" : "job";

    /// <summary>
    /// What watch draws on a terminal, redrawn at each read: a bar of finished/total for the job, then one for each stage of a
    /// rollout, each with its figures and status in words beside it (the bar's colours only repeat them: green went well,
    /// red failed, yellow skipped or offline). A grid of fixed columns, so that a narrow terminal wraps the words, never the bar.
    /// </summary>
    public static IRenderable Board(JsonNode job)
    {
        var grid = new Grid()
            .AddColumn(new GridColumn().NoWrap())
            .AddColumn(new GridColumn().NoWrap())
            .AddColumn(new GridColumn().NoWrap().RightAligned())
            .AddColumn(new GridColumn().NoWrap().RightAligned())
            .AddColumn(new GridColumn());
        var status = Tables.Text(job["status"]);
        var words = status.Replace('_', ' ');
        if (status == "awaiting_approval") words += $" (fleetctl rollouts approve {Tables.Text(job["job_id"])})";
        if (job["rollout"]?["current_stage"] is { } current && !IsFinal(job)) words += $", stage {Tables.Text(current)}";
        var counts = CountsText(job["counts"]);
        AddBar(grid, Kind(job), job["counts"], Total(job), counts.Length > 0 ? $"{words}: {counts}" : words);
        foreach (var stage in Stages(job["rollout"]?["stages"]))
        {
            var c = stage["counts"];
            var size = stage["size"] is JsonValue v && v.TryGetValue<long>(out var n) ? n : 0;
            AddBar(grid, "  " + StageName(stage), c, size,
                $"{Tables.Text(stage["status"])}: upgraded {Count(c, "upgraded")}, already {Count(c, "already")}, failed {Count(c, "failed")}, " +
                $"waiting {Count(c, "waiting")}, in progress {InProgress(c)}");
        }
        return grid;
    }

    private const int BarWidth = 24;
    private static readonly IReadOnlySet<string> WentWell = new HashSet<string> { "succeeded", "delivered", "upgraded", "already" };
    private static readonly IReadOnlySet<string> WentBadly = new HashSet<string> { "failed", "timed_out", "expired", "cancelled" };

    private static void AddBar(Grid grid, string label, JsonNode? counts, long total, string words)
    {
        var done = Finished(counts);
        long Of(IReadOnlySet<string> statuses) => counts is JsonObject o ? o.Where(c => statuses.Contains(c.Key)).Sum(c => Count(o, c.Key)) : 0;
        var good = Of(WentWell);
        var bad = Of(WentBadly);
        // Cumulative rounding: the segments always add up to the bar's width.
        int Cells(long upTo) => total <= 0 ? 0 : (int)Math.Round(BarWidth * (double)Math.Min(upTo, total) / total);
        var (g, b, d) = (Cells(good), Cells(good + bad), Cells(done));
        var bar = $"[green]{new string('━', g)}[/][red]{new string('━', b - g)}[/][yellow]{new string('━', Math.Max(0, d - b))}[/][grey]{new string('━', BarWidth - Math.Max(d, b))}[/]";
        var percent = total <= 0 ? "-" : $"{100 * done / total}%";
        grid.AddRow(new Text(label), new Markup(bar), new Text($"{done}/{total}"), new Text(percent), new Text(words));
    }

    public static string StageName(JsonNode stage) =>
        Tables.Text(stage["index"]) is "0" ? "canary" : $"wave {Tables.Text(stage["index"])}";

    /// <summary>One line of progress for a log (stderr that is not a terminal): printed when it changes.</summary>
    public static string Line(JsonNode job)
    {
        var line = $"{Kind(job)} {Tables.Text(job["job_id"])} {Tables.Text(job["status"])}: {Progress(job)} finished";
        var counts = CountsText(job["counts"]);
        if (counts.Length > 0) line += $" ({counts})";
        if (job["rollout"] is JsonObject r && r["current_stage"] is { } current) line += $"; stage {Tables.Text(current)}";
        return line;
    }
}
