using System.Globalization;
using System.Text;
using System.Text.Json;
using Fleet.Simulator;

namespace Fleet.Cluster.Tests.Chaos;

/// <summary>A command the admin API accepted (200/202 with its id), as the operator recorded it.</summary>
public sealed record AcceptedCommand(string CommandId, string DeviceId, string Type, int Attempts = 1);

/// <summary>A command as one node's admin API listed it at the end (<c>GET …/commands</c>); <see cref="ContentKey"/> from its <c>request</c>.</summary>
public sealed record ApiCommand(string CommandId, string DeviceId, string Type, string Status, string? ContentKey, string ReadFrom,
    string? Error = null);

/// <summary>One line of the simulator's device-side log (<see cref="DeviceLog"/>).</summary>
public sealed record DeviceLogLine(DateTimeOffset T, string Device, string Era, string Ev, string? Kind = null, string? ReqId = null,
    bool ReqIdIsNumber = false, string? Content = null, string? Answer = null, string? Loss = null, string Line = "", long StallMs = 0)
{
    public static DeviceLogLine Parse(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        string? S(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        string? reqId = null;
        var isNumber = false;
        if (r.TryGetProperty("req_id", out var id))
        {
            if (id.ValueKind == JsonValueKind.String) reqId = id.GetString();
            else if (id.ValueKind == JsonValueKind.Number) { reqId = id.GetRawText(); isNumber = true; }
        }
        return new DeviceLogLine(DateTimeOffset.Parse(S("t")!, CultureInfo.InvariantCulture), S("device") ?? "", S("era") ?? "", S("ev")!,
            S("kind"), reqId, isNumber, S("content"), S("answer"), S("loss"), line,
            r.TryGetProperty("ms", out var ms) && ms.ValueKind == JsonValueKind.Number ? ms.GetInt64() : 0);
    }

    public static List<DeviceLogLine> ReadFile(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(Parse).ToList();
}

/// <summary>A device as the directory lists it, or as its entity (<c>GET /api/v1/devices/{id}</c>) shows it: the fields both have.</summary>
public sealed record DeviceRow(string DeviceId, bool Online, string? Node, string? Protocol, string? LocationId, string? ApMac,
    IReadOnlyList<string> Gateways);

/// <summary>What the simulated router itself is: its dialect and the device info it reports.</summary>
public sealed record RouterTruth(string DeviceId, string Era, string? LocationId, string? ApMac);

/// <summary>Everything the checker reads at the end of a chaos run.</summary>
public sealed record ChaosInput
{
    public IReadOnlyList<AcceptedCommand> Accepted { get; init; } = [];
    /// <summary>Every command every node listed (each node is read: they must agree).</summary>
    public IReadOnlyList<ApiCommand> ApiCommands { get; init; } = [];
    public IReadOnlyList<DeviceLogLine> DeviceLog { get; init; } = [];
    public IReadOnlyList<RouterTruth> Routers { get; init; } = [];
    public IReadOnlyList<DeviceRow> Directory { get; init; } = [];
    public IReadOnlyList<DeviceRow> Entities { get; init; } = [];
    /// <summary>Node ids (<c>akka.tcp://…@host:port#uid</c>) prefixes of the live nodes: <c>akka.tcp://…@host:port#</c>.</summary>
    public IReadOnlyList<string> LiveNodes { get; init; } = [];
    public IReadOnlyList<Support.NodeExit> NodeExits { get; init; } = [];
}

public enum ViolationKind
{
    /// <summary>An accepted command no node lists.</summary>
    CommandLost,
    /// <summary>An accepted command still queued or sent at the end.</summary>
    CommandNotFinal,
    /// <summary>Nodes list one command with different statuses.</summary>
    CommandStatusesDisagree,
    /// <summary>A command the router answered with success is recorded as never answered by it, or the reverse: succeeded without the router ever executing it.</summary>
    CommandSucceededUnexecuted,
    /// <summary>A router executed one command twice (same req_id, or more executions of a content than commands with it).</summary>
    ExecutedTwice,
    /// <summary>A router executed a request no command of the API accounts for.</summary>
    ExecutedUnknown,
    /// <summary>A frame from the controller that the router's reader lost (or a read that wedged it), the simulator not stalled then.</summary>
    FrameLost,
    /// <summary>A router is not online (on a live node) in its entity's view.</summary>
    RouterOffline,
    /// <summary>The directory does not list a router, lists it offline, or differs from its entity.</summary>
    DirectoryDrift,
    /// <summary>The entity's view of a router differs from what the router is (dialect, device info).</summary>
    EntityDisagreesWithRouter,
    /// <summary>A node process exited other than by the run's own signal.</summary>
    UnexpectedNodeExit,
}

public sealed record Violation(ViolationKind Kind, string Detail)
{
    public override string ToString() => $"{Kind}: {Detail}";
}

/// <summary>What the checker found: figures (name → value, in order) and every violation with its evidence.</summary>
public sealed class ChaosReport
{
    public List<(string Name, string Value)> Figures { get; } = [];
    public List<Violation> Violations { get; } = [];

    public int Count(ViolationKind kind) => Violations.Count(v => v.Kind == kind);

    internal void Figure(string name, object value) => Figures.Add((name, Convert.ToString(value, CultureInfo.InvariantCulture) ?? ""));
    internal void Add(ViolationKind kind, string detail) => Violations.Add(new Violation(kind, detail));

    public string Render(int maxPerKind = 10)
    {
        var sb = new StringBuilder();
        foreach (var (name, value) in Figures) sb.AppendLine($"  {name}: {value}");
        sb.AppendLine($"  violations: {Violations.Count}" + (Violations.Count == 0 ? "" :
            " (" + string.Join(", ", Violations.GroupBy(v => v.Kind).Select(g => $"{g.Key} {g.Count()}")) + ")"));
        foreach (var g in Violations.GroupBy(v => v.Kind))
        {
            foreach (var v in g.Take(maxPerKind)) sb.AppendLine($"    {v}");
            if (g.Count() > maxPerKind) sb.AppendLine($"    … {g.Count() - maxPerKind} more {g.Key}");
        }
        return sb.ToString();
    }
}

/// <summary>
/// The chaos run's invariant checker: holds what the admin API says at the end against what the routers did
/// (the simulator's device-side log) and what the run did to the nodes. Pure: it reads its input and returns a
/// report, so each violation kind is shown to be caught on small synthetic inputs (ChaosCheckerTests).
/// </summary>
public static class ChaosChecker
{
    public static readonly IReadOnlySet<string> FinalStatuses =
        new HashSet<string>(["delivered", "succeeded", "failed", "timed_out", "expired", "cancelled"], StringComparer.Ordinal);

    /// <summary>A stall of the simulator this long (its 20 ms timer that late) lets two paced frames pile up in one read.</summary>
    public const int StallExplainsLossMs = 200;

    public static ChaosReport Check(ChaosInput input)
    {
        var report = new ChaosReport();
        Commands(input, report);
        Executions(input, report);
        Losses(input, report);
        Routers(input, report);
        Nodes(input, report);
        return report;
    }

    // ------------------------------------------------------------------ every accepted command: exactly one final status

    private static void Commands(ChaosInput input, ChaosReport report)
    {
        var byId = input.ApiCommands.GroupBy(c => c.CommandId).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var accepted = input.Accepted.GroupBy(a => a.CommandId).Select(g => g.First()).ToList();
        report.Figure("commands accepted", accepted.Count);
        report.Figure("submits retried (same Idempotency-Key)", input.Accepted.Count(a => a.Attempts > 1));
        report.Figure("command types accepted", accepted.Select(a => a.Type).Distinct().Count()
            + " (" + string.Join(", ", accepted.GroupBy(a => a.Type).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}")) + ")");
        var statuses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var a in accepted)
        {
            if (!byId.TryGetValue(a.CommandId, out var reads))
            {
                report.Add(ViolationKind.CommandLost, $"{a.CommandId} ({a.Type} for {a.DeviceId}) accepted but listed by no node");
                continue;
            }
            var distinct = reads.Select(r => r.Status).Distinct(StringComparer.Ordinal).ToList();
            if (distinct.Count > 1)
                report.Add(ViolationKind.CommandStatusesDisagree,
                    $"{a.CommandId} ({a.Type} for {a.DeviceId}): " + string.Join(", ", reads.Select(r => $"{r.ReadFrom} says {r.Status}")));
            var status = reads[0].Status;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            if (!FinalStatuses.Contains(status))
                report.Add(ViolationKind.CommandNotFinal, $"{a.CommandId} ({a.Type} for {a.DeviceId}) still {status} at the end");
        }
        report.Figure("final statuses", string.Join(", ", statuses.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value}")));
        var acceptedIds = accepted.Select(a => a.CommandId).ToHashSet(StringComparer.Ordinal);
        report.Figure("commands listed but never accepted (a submit that got no 200/202)", byId.Keys.Count(k => !acceptedIds.Contains(k)));
    }

    // ------------------------------------------------------------------ no command executed twice

    private static void Executions(ChaosInput input, ChaosReport report)
    {
        var requests = input.DeviceLog.Where(l => l.Ev == DeviceLog.Events.Request).ToList();
        report.Figure("requests executed by routers", requests.Count + " (" + string.Join(", ",
            requests.GroupBy(r => r.Era).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}")) + ")");
        // One entry per command (nodes list the same command; take one listing of each).
        var commands = input.ApiCommands.GroupBy(c => c.CommandId, StringComparer.Ordinal).Select(g => g.First()).ToList();
        var commandIds = commands.ToDictionary(c => c.CommandId, StringComparer.Ordinal);

        // By req_id: type-dialect frames carry the command id as req_id; 2025 routers echo it (seed-era ones do not: by content below).
        var executedById = new Dictionary<string, List<DeviceLogLine>>(StringComparer.Ordinal);
        foreach (var r in requests.Where(r => r.Era != "seed" && !r.ReqIdIsNumber && r.ReqId is not null))
        {
            if (!executedById.TryGetValue(r.ReqId!, out var list)) executedById[r.ReqId!] = list = [];
            list.Add(r);
        }
        foreach (var (id, list) in executedById.Where(p => p.Value.Count > 1))
            report.Add(ViolationKind.ExecutedTwice,
                $"req_id {id} ({list[0].Kind}) executed {list.Count} times by {list[0].Device}, at {string.Join(", ", list.Select(l => l.T.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)))}");

        // By content, per device: no more executions of one request than commands that asked for it. Seed-era
        // routers (no req_id) and 9.x routers (an integer req_id per connection) are checked this way only.
        var asked = commands.Where(c => c.ContentKey is not null)
            .GroupBy(c => (c.DeviceId, c.ContentKey!)).ToDictionary(g => g.Key, g => g.ToList());
        var matched = 0;
        foreach (var g in requests.Where(r => r.Content is not null).GroupBy(r => (r.Device, r.Content!)))
        {
            var executions = g.ToList();
            if (!asked.TryGetValue(g.Key, out var cmds))
            {
                foreach (var e in executions)
                    report.Add(ViolationKind.ExecutedUnknown, $"{e.Device} ({e.Era}) executed {e.Kind} req_id {e.ReqId ?? "none"} that no command asked for: {e.Content}");
                continue;
            }
            matched += executions.Count;
            if (executions.Count > cmds.Count && !executions.Any(e => e.Era != "seed" && !e.ReqIdIsNumber && e.ReqId is not null && executedById[e.ReqId].Count > 1))
                report.Add(ViolationKind.ExecutedTwice,
                    $"{g.Key.Device} ({executions[0].Era}) executed {executions[0].Kind} {executions.Count} times, asked by {cmds.Count} command(s) " +
                    $"[{string.Join(", ", cmds.Select(c => $"{c.CommandId} {c.Status}"))}], at " +
                    string.Join(", ", executions.Select(e => e.T.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) + (e.ReqId is null ? "" : $" req_id {e.ReqId}"))) +
                    $": {g.Key.Item2}");
        }
        report.Figure("executions matched to a command", $"{matched} of {requests.Count}");

        // A command the API says succeeded must have been executed by its router (req_id echoed, or its content executed there).
        var executedContent = requests.Where(r => r.Content is not null).Select(r => (r.Device, r.Content!)).ToHashSet();
        var succeeded = commands.Where(c => c.Status == "succeeded").ToList();
        foreach (var c in succeeded)
        {
            if (executedById.ContainsKey(c.CommandId)) continue;
            if (c.ContentKey is not null && executedContent.Contains((c.DeviceId, c.ContentKey))) continue;
            report.Add(ViolationKind.CommandSucceededUnexecuted, $"{c.CommandId} ({c.Type} for {c.DeviceId}) succeeded but its router never executed it");
        }

        // Not violations by themselves (a socket that dies between the router's answer and the node, or a frame in a
        // socket's buffer when it dies, explain them), but the shape of the defects the run exists for: listed with evidence.
        bool Executed(ApiCommand c) => executedById.ContainsKey(c.CommandId)
                                       || (c.ContentKey is not null && executedContent.Contains((c.DeviceId, c.ContentKey)));
        var answeredButTimedOut = commands.Where(c => c.Status == "timed_out" && Executed(c)).ToList();
        report.Figure("timed_out although the router executed it (and answered, where its dialect answers)",
            Listed(answeredButTimedOut));
        var deliveredUnexecuted = commands.Where(c => c.Status == "delivered" && !Executed(c)).ToList();
        report.Figure("delivered but never executed by the router", Listed(deliveredUnexecuted));
    }

    private static string Listed(IReadOnlyList<ApiCommand> commands) =>
        commands.Count == 0 ? "0" : $"{commands.Count} ({string.Join(", ", commands.Take(8).Select(c => $"{c.CommandId} {c.Type} for {c.DeviceId}"))}{(commands.Count > 8 ? ", …" : "")})";

    // ------------------------------------------------------------------ no frame lost to the real reader's rules

    private static void Losses(ChaosInput input, ChaosReport report)
    {
        var losses = input.DeviceLog.Where(l => l.Ev is DeviceLog.Events.Loss or DeviceLog.Events.Wedged).ToList();
        // The node keeps frames FramePauseMs (250 ms) apart; a router that reads nothing for that long gets them in one
        // read whatever the node does (a busy real router too). When the simulator's own process stalled that long
        // (it notes each stall), a loss right after is the stall's: counted and shown, not the node's violation.
        var stalls = input.DeviceLog.Where(l => l.Ev == DeviceLog.Events.Stall && l.StallMs >= StallExplainsLossMs).ToList();
        DeviceLogLine? StallBefore(DeviceLogLine loss) => stalls.FirstOrDefault(s =>
            loss.T >= s.T.AddMilliseconds(-s.StallMs) && loss.T <= s.T.AddSeconds(1));
        var explained = 0;
        var examples = new List<string>();
        foreach (var l in losses)
        {
            if (StallBefore(l) is { } stall)
            {
                explained++;
                if (examples.Count < 3) examples.Add($"{l.Device} {l.Kind ?? l.Ev} at {l.T:HH:mm:ss.fff} after a {stall.StallMs} ms stall ending {stall.T:HH:mm:ss.fff}");
                continue;
            }
            report.Add(ViolationKind.FrameLost, l.Line);
        }
        report.Figure("frames lost by routers' readers", losses.Count);
        report.Figure($"of which right after the simulator process itself stalled ≥ {StallExplainsLossMs} ms (not counted as violations)",
            explained == 0 ? "0" : $"{explained} ({string.Join("; ", examples)})");
        report.Figure("simulator stalls ≥ 100 ms", input.DeviceLog.Count(l => l.Ev == DeviceLog.Events.Stall) +
            (stalls.Count == 0 ? "" : $", ≥ {StallExplainsLossMs} ms: {stalls.Count}, longest {stalls.Max(s => s.StallMs)} ms"));
        var ups = input.DeviceLog.Count(l => l.Ev == DeviceLog.Events.Up);
        report.Figure("router connections (upgrades)", ups);
    }

    // ------------------------------------------------------------------ every router online, directory = entity = router

    private static void Routers(ChaosInput input, ChaosReport report)
    {
        var directory = input.Directory.GroupBy(d => d.DeviceId).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var entities = input.Entities.GroupBy(d => d.DeviceId).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        bool Live(string? node) => node is not null && input.LiveNodes.Any(p => node.StartsWith(p, StringComparison.Ordinal));
        var online = 0;
        foreach (var r in input.Routers)
        {
            if (!entities.TryGetValue(r.DeviceId, out var e))
            {
                report.Add(ViolationKind.RouterOffline, $"{r.DeviceId}: no entity view");
                continue;
            }
            if (!e.Online || !Live(e.Node)) report.Add(ViolationKind.RouterOffline, $"{r.DeviceId}: entity says online={e.Online} node={e.Node ?? "null"}");
            else online++;
            if (e.Protocol != r.Era || e.LocationId != r.LocationId || e.ApMac != r.ApMac)
                report.Add(ViolationKind.EntityDisagreesWithRouter,
                    $"{r.DeviceId}: entity protocol={e.Protocol} location_id={e.LocationId} mac={e.ApMac}; router {r.Era} {r.LocationId} {r.ApMac}");
            if (!directory.TryGetValue(r.DeviceId, out var d))
            {
                report.Add(ViolationKind.DirectoryDrift, $"{r.DeviceId}: not in the directory");
                continue;
            }
            var diffs = new List<string>();
            if (d.Online != e.Online) diffs.Add($"online {d.Online} vs {e.Online}");
            if (d.Node != e.Node) diffs.Add($"node {d.Node ?? "null"} vs {e.Node ?? "null"}");
            if (d.Protocol != e.Protocol) diffs.Add($"protocol {d.Protocol} vs {e.Protocol}");
            if (d.LocationId != e.LocationId) diffs.Add($"location_id {d.LocationId} vs {e.LocationId}");
            if (d.ApMac != e.ApMac) diffs.Add($"ap_mac_address {d.ApMac} vs {e.ApMac}");
            if (!d.Gateways.Order(StringComparer.Ordinal).SequenceEqual(e.Gateways.Order(StringComparer.Ordinal)))
                diffs.Add($"gateways [{string.Join(",", d.Gateways)}] vs [{string.Join(",", e.Gateways)}]");
            if (!d.Online) diffs.Add("directory lists it offline");
            if (diffs.Count > 0) report.Add(ViolationKind.DirectoryDrift, $"{r.DeviceId}: directory vs entity: {string.Join("; ", diffs)}");
        }
        report.Figure("routers online on a live node (entity view)", $"{online} of {input.Routers.Count}");
        report.Figure("directory rows", input.Directory.Count);
    }

    // ------------------------------------------------------------------ no node died but by the run's signals

    private static void Nodes(ChaosInput input, ChaosReport report)
    {
        report.Figure("node exits by the run's signals", input.NodeExits.Count(e => e.Signalled));
        foreach (var e in input.NodeExits.Where(e => !e.Signalled))
            report.Add(ViolationKind.UnexpectedNodeExit, $"{e.Node} incarnation {e.Incarnation} exited with {e.ExitCode} at {e.At:HH:mm:ss} unsignalled; log {e.LogFile}");
    }
}
