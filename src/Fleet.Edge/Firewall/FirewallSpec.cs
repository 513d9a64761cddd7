using Fleet.Edge.Portal;

namespace Fleet.Edge.Firewall;

/// <summary>
/// A MAC allowed through a gateway; <see cref="Timeout"/> (from now) and <see cref="ExpiresAt"/> are set for a
/// tmp_pass. Two specs hold the same element when MAC and end are equal (the timeout shrinks as time passes).
/// </summary>
public sealed record AllowedMac(string Mac, TimeSpan? Timeout, DateTimeOffset? ExpiresAt = null);

/// <summary>One gateway's rules: open gateways (auth_mode 0) let everybody through.</summary>
public sealed record GatewayRules(string GwId, string Interface, bool Open, IReadOnlyList<AllowedMac> Allowed);

/// <summary>
/// The complete firewall the agent wants, derived from the portal state. Backends install it whole,
/// so applying it is idempotent and a vanished table is repaired by applying it again.
/// </summary>
public sealed record FirewallSpec(IReadOnlyList<GatewayRules> Gateways)
{
    public static FirewallSpec From(IReadOnlyList<(string GwId, string Interface)> gateways, PortalState state, DateTimeOffset now) =>
        new(gateways.Select(g =>
        {
            var clients = state.Clients.Where(c => c.GwId == g.GwId).Select(c => c.Mac).ToHashSet(StringComparer.Ordinal);
            // A MAC that is both a client and on a pass needs no timeout: authorisation outlives the pass.
            var passes = state.TmpPasses
                .Where(p => p.ExpiresAt > now && !clients.Contains(p.Mac))
                .Select(p => new AllowedMac(p.Mac, p.ExpiresAt - now, p.ExpiresAt));
            var allowed = clients.Order(StringComparer.Ordinal).Select(m => new AllowedMac(m, null)).Concat(passes).ToList();
            return new GatewayRules(g.GwId, g.Interface, state.AuthModeOf(g.GwId) == 0, allowed);
        }).ToList());

    /// <summary>Same gateways, interfaces and open/closed rules: only set elements differ, so the table need not be rebuilt.</summary>
    public bool SameLayout(FirewallSpec other) =>
        Gateways.Count == other.Gateways.Count
        && Gateways.Zip(other.Gateways).All(p => p.First.GwId == p.Second.GwId && p.First.Interface == p.Second.Interface && p.First.Open == p.Second.Open);

    public bool Allows(string gwId, string mac) =>
        Gateways.FirstOrDefault(g => g.GwId == gwId) is { } g && (g.Open || g.Allowed.Any(a => a.Mac == mac));
}

/// <summary>Enforces a <see cref="FirewallSpec"/>. Only the firewall actor calls it, one call at a time.</summary>
public interface IFirewallBackend
{
    /// <summary>
    /// Makes the firewall <paramref name="spec"/>, atomically: the whole table after a start or when it vanished
    /// (<see cref="IsInstalledAsync"/> false), else only the set elements that changed.
    /// </summary>
    Task ApplyAsync(FirewallSpec spec, CancellationToken ct);

    /// <summary>False when the agent's rules are gone (flushed ruleset, firewall restart).</summary>
    Task<bool> IsInstalledAsync(CancellationToken ct);
}

/// <summary>Keeps the spec in memory: unit tests and dry runs. Thread-safe because tests read it from outside.</summary>
public sealed class MemoryFirewallBackend : IFirewallBackend
{
    private readonly Lock _gate = new();
    private FirewallSpec? _installed;

    public int Applies { get; private set; }
    public FirewallSpec? Installed { get { lock (_gate) return _installed; } }

    /// <summary>Makes the next apply fail, to test that failures are reported.</summary>
    public bool FailNext { get; set; }

    public Task ApplyAsync(FirewallSpec spec, CancellationToken ct)
    {
        lock (_gate)
        {
            if (FailNext) { FailNext = false; throw new InvalidOperationException("simulated firewall failure"); }
            _installed = spec;
            Applies++;
        }
        return Task.CompletedTask;
    }

    public Task<bool> IsInstalledAsync(CancellationToken ct) => Task.FromResult(Installed is not null);

    /// <summary>What a `nft flush ruleset` does to the real backend.</summary>
    public void Vanish() { lock (_gate) _installed = null; }
}
