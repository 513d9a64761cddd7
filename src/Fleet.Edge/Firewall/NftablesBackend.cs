using Fleet.Edge.Platform;

namespace Fleet.Edge.Firewall;

/// <summary>
/// The real backend: `nft -f -` with the rendered script on stdin. <paramref name="command"/> is the
/// nft executable, optionally behind a prefix such as ["ip", "netns", "exec", "ns1", "nft"] (tests).
/// </summary>
public sealed class NftablesBackend(string table, IReadOnlyList<string> command) : IFirewallBackend
{
    public string Table { get; } = NftScript.IsTableName(table) ? table : throw new ArgumentException($"bad table name '{table}'", nameof(table));

    public async Task ApplyAsync(FirewallSpec spec, CancellationToken ct)
    {
        var script = NftScript.Render(Table, spec);
        var r = await ProcessRunner.RunAsync(command, ["-f", "-"], script, ct);
        if (!r.Ok) throw new InvalidOperationException($"nft -f - failed ({r.ExitCode}): {r.StdErr.Trim()}");
    }

    public async Task<bool> IsInstalledAsync(CancellationToken ct)
    {
        var r = await ProcessRunner.RunAsync(command, ["list", "table", "inet", Table], null, ct);
        return r.Ok;
    }
}
