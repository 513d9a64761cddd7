using Fleet.Edge.Platform;

namespace Fleet.Edge.Firewall;

/// <summary>
/// The real backend: `nft -f -` with a script on stdin. <paramref name="command"/> is the nft executable,
/// optionally behind a prefix such as ["ip", "netns", "exec", "ns1", "nft"] (tests).
/// The first apply, and any apply after the table vanished or the layout changed (gateways, open/closed),
/// writes the whole table; every other change adds and deletes only the set elements that differ, so a
/// router with thousands of clients does not rewrite them all for one auth. An element change that nft
/// refuses (an element it dropped by itself, a set edited by hand) is followed by a whole rewrite.
/// </summary>
public sealed class NftablesBackend(string table, IReadOnlyList<string> command, TimeProvider? time = null) : IFirewallBackend
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    /// <summary>What the table holds as far as we know; null: unknown, rewrite it whole.</summary>
    private FirewallSpec? _installed;

    public string Table { get; } = NftScript.IsTableName(table) ? table : throw new ArgumentException($"bad table name '{table}'", nameof(table));

    /// <summary>Whole-table writes and element-only changes so far (diagnostics, tests).</summary>
    public int FullWrites { get; private set; }
    public int ElementChanges { get; private set; }

    public async Task ApplyAsync(FirewallSpec spec, CancellationToken ct)
    {
        if (_installed is { } installed && installed.SameLayout(spec))
        {
            var changes = NftScript.RenderChanges(Table, installed, spec, _time.GetUtcNow());
            if (changes.Length == 0) { _installed = spec; return; }
            var r = await ProcessRunner.RunAsync(command, ["-f", "-"], changes, ct);
            if (r.Ok) { _installed = spec; ElementChanges++; return; }
        }
        _installed = null;
        var script = NftScript.Render(Table, spec);
        var full = await ProcessRunner.RunAsync(command, ["-f", "-"], script, ct);
        if (!full.Ok) throw new InvalidOperationException($"nft -f - failed ({full.ExitCode}): {full.StdErr.Trim()}");
        _installed = spec;
        FullWrites++;
    }

    public async Task<bool> IsInstalledAsync(CancellationToken ct)
    {
        // -t (terse): without the sets' elements. The check only asks whether the table is there; with 5,000 clients the
        // full listing was ~200 KB read through a pipe every check interval (docs/EDGE.md, "Footprint").
        var r = await ProcessRunner.RunAsync(command, ["-t", "list", "table", "inet", Table], null, ct);
        if (!r.Ok) _installed = null;
        return r.Ok;
    }
}
