using System.Collections.Immutable;
using System.Text.Json.Serialization;
using Fleet.Protocol;

namespace Fleet.Edge.Portal;

/// <summary>A client the controller authorised on one gateway (auth with once_auth false).</summary>
public sealed record ClientEntry(
    [property: JsonPropertyName("client_mac")] string Mac,
    [property: JsonPropertyName("client_ip")] string Ip,
    [property: JsonPropertyName("gw_id")] string GwId,
    [property: JsonPropertyName("token")] string? Token,
    [property: JsonPropertyName("client_name")] string? Name,
    [property: JsonPropertyName("authorized_at")] DateTimeOffset AuthorizedAt);

/// <summary>A time-limited pass for a MAC on every gateway (tmp_pass); it has no IP, so it is not a client.</summary>
public sealed record TmpPass(
    [property: JsonPropertyName("client_mac")] string Mac,
    [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt);

/// <summary>
/// What the controller wants this router to enforce: each gateway's auth_mode, the authorised
/// clients and the temporary passes. It is the desired state the firewall is reconciled to, and
/// what is kept in state_directory across restarts. Changed only by the pure functions of <see cref="PortalDecisions"/>.
/// </summary>
public sealed record PortalState
{
    [JsonPropertyName("auth_modes")] public ImmutableSortedDictionary<string, int> AuthModes { get; init; } = ImmutableSortedDictionary<string, int>.Empty;
    [JsonPropertyName("clients")] public ImmutableList<ClientEntry> Clients { get; init; } = [];
    [JsonPropertyName("tmp_passes")] public ImmutableList<TmpPass> TmpPasses { get; init; } = [];

    /// <summary>The state a fresh router starts with: auth modes from its config, nobody allowed.</summary>
    public static PortalState Initial(IEnumerable<(string GwId, int AuthMode)> gateways) =>
        new() { AuthModes = gateways.ToImmutableSortedDictionary(g => g.GwId, g => g.AuthMode, StringComparer.Ordinal) };

    public int AuthModeOf(string gwId) => AuthModes.GetValueOrDefault(gwId, 1);
}

/// <summary>The outcome of a request: the new state, the answer to send (if any), and why nothing changed (if so).</summary>
public sealed record Decision(PortalState State, IAnswerFrame? Reply = null, string? Ignored = null)
{
    public bool Changed(PortalState before) => !ReferenceEquals(State, before);
}

/// <summary>
/// The portal's decisions, as pure functions of (state, request, now). They follow the seed
/// firmware: auth and tmp_pass are one-way (no answer), kickoff answers in exactly the seed's forms.
/// </summary>
public static class PortalDecisions
{
    /// <summary>The longest pass the seed firmware grants, whatever timeout the request names.</summary>
    public const int MaxPassSeconds = 300;

    public static Decision Auth(PortalState s, AuthRequest r, DateTimeOffset now)
    {
        if (r.GwId is null || !s.AuthModes.ContainsKey(r.GwId)) return new(s, Ignored: $"auth for unknown gateway '{r.GwId}'");
        if (r.OnceAuth == true)
            return s.AuthModeOf(r.GwId) == 0 ? new(s) : new(s with { AuthModes = s.AuthModes.SetItem(r.GwId, 0) });
        if ((FieldRules.CheckMac("client_mac", r.ClientMac) ?? FieldRules.CheckIp("client_ip", r.ClientIp)) is { } bad) return new(s, Ignored: "auth: " + bad);
        var mac = FieldRules.NormalizeMac(r.ClientMac!);
        var entry = new ClientEntry(mac, r.ClientIp!, r.GwId, r.Token, r.ClientName, now);
        // One entry per MAC: a client that moves to another gateway or gets a new address replaces its old entry.
        var clients = s.Clients.RemoveAll(c => c.Mac == mac).Add(entry);
        return new(s with { Clients = clients });
    }

    /// <summary>
    /// The firmware's kickoff (<see cref="FirmwareAnswers.Kickoff"/>: missing fields → client not found by IP
    /// and MAC → device_id → gateway); on success the client is removed.
    /// </summary>
    public static Decision Kickoff(PortalState s, string ownDeviceId, KickoffRequest r)
    {
        ClientEntry? found = null;
        var answer = FirmwareAnswers.Kickoff(r, ownDeviceId, (ip, mac) =>
        {
            found = s.Clients.Find(c => c.Mac == mac && c.Ip == ip);
            return new KnownClient(found is not null, found?.GwId);
        });
        return answer is KickoffResponse && found is not null
            ? new(s with { Clients = s.Clients.Remove(found) }, answer)
            : new(s, answer);
    }

    public static Decision TmpPass(PortalState s, TmpPassRequest r, DateTimeOffset now)
    {
        if (FieldRules.CheckMac("client_mac", r.ClientMac) is { } bad) return new(s, Ignored: "tmp_pass: " + bad);
        // The seed firmware caps a pass's nft element timeout at 300 s (fw_nft.c nft_fw_set_mac_temporary).
        var seconds = Math.Min(r.Timeout is > 0 ? r.Timeout.Value : TmpPassRequest.DefaultTimeoutSeconds, MaxPassSeconds);
        var mac = FieldRules.NormalizeMac(r.ClientMac!);
        var pass = new TmpPass(mac, now.AddSeconds(seconds));
        return new(s with { TmpPasses = s.TmpPasses.RemoveAll(p => p.Mac == mac).Add(pass) });
    }

    /// <summary>The controller's heartbeat reply sets auth_mode of the gateways it names (unknown ones are ignored).</summary>
    public static Decision ReportReply(PortalState s, ReportReply r)
    {
        var modes = s.AuthModes;
        foreach (var g in r.Gateway ?? [])
            if (g?.GwId is { } id && g.AuthMode is { } mode && mode >= 0 && modes.ContainsKey(id) && modes[id] != mode)
                modes = modes.SetItem(id, mode);
        return ReferenceEquals(modes, s.AuthModes) ? new(s) : new(s with { AuthModes = modes });
    }

    /// <summary>The router restarts: its clients and passes are gone, its gateways' auth modes stay.</summary>
    public static Decision Restart(PortalState s) =>
        s.Clients.IsEmpty && s.TmpPasses.IsEmpty ? new(s) : new(s with { Clients = [], TmpPasses = [] });

    /// <summary>Drops expired passes (the kernel already dropped their set elements).</summary>
    public static PortalState Prune(PortalState s, DateTimeOffset now) =>
        s.TmpPasses.Exists(p => p.ExpiresAt <= now) ? s with { TmpPasses = s.TmpPasses.RemoveAll(p => p.ExpiresAt <= now) } : s;

    /// <summary>Brings a stored state in line with the current config: gateways removed from the config go, new ones get their configured mode.</summary>
    public static PortalState Reconcile(PortalState stored, IReadOnlyList<(string GwId, int AuthMode)> gateways)
    {
        var ids = gateways.Select(g => g.GwId).ToHashSet(StringComparer.Ordinal);
        var modes = gateways.ToImmutableSortedDictionary(g => g.GwId,
            g => stored.AuthModes.TryGetValue(g.GwId, out var m) ? m : g.AuthMode, StringComparer.Ordinal);
        return stored with { AuthModes = modes, Clients = stored.Clients.RemoveAll(c => !ids.Contains(c.GwId)) };
    }
}
