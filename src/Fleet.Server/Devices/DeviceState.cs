using System.Collections.Immutable;
using Fleet.Server.Commands;
using Fleet.Server.Serialization;

namespace Fleet.Server.Devices;

public sealed record DeviceInfoState(string? ApDeviceId, string? ApMacAddress, string? ApLongitude, string? ApLatitude, string? LocationId);

/// <summary>A gateway as the device last reported it (auth_mode is the reported one).</summary>
public sealed record GatewayState(string GwId, string? GwChannel, string? GwAddressV4, string? GwAddressV6, string? GwInterface, int? AuthMode);

/// <summary>
/// A client as the controller believes its router holds it (docs/FIRMWARE.md, "Clients"). The firmware keeps
/// two things apart: its client list (an <c>auth</c>: no end of its own — it stays until a kickoff, the
/// router's idle timeout, a restart, or the router reporting it gone) and its tmp-trust nft set (a
/// <c>tmp_pass</c>: an element timeout). <see cref="ExpiresAt"/> null: in the client list. Set: only a pass
/// lets the client through, until then. <see cref="PassUntil"/>: when the latest pass ends (beside an
/// authorisation it ends nothing; after a kickoff the pass alone still lets the client through).
/// </summary>
public sealed record ClientState(string ClientMac, string? ClientIp, string? ClientName, string? GwId, DateTimeOffset AuthorizedAt,
    DateTimeOffset? ExpiresAt, DateTimeOffset? PassUntil = null)
{
    /// <summary>In the router's client list (an auth went through), not only on a pass.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool Authorized => ExpiresAt is null;

    /// <summary>
    /// How an entry replaces the one before. Journals of earlier releases hold a tmp_pass for an authorised
    /// client as an entry with ExpiresAt and no PassUntil that replaced the authorisation: read as the pass
    /// beside it, which is what the router did.
    /// </summary>
    public static ClientState Merge(ClientState? before, ClientState next) =>
        before is { Authorized: true } && next is { ExpiresAt: { } legacyPass, PassUntil: null }
            ? before with { PassUntil = legacyPass }
            : next;
}

/// <summary>
/// Everything a device entity persists, as one immutable value. <see cref="Apply"/> is the only way
/// it changes; it is also the snapshot.
/// </summary>
public sealed record DeviceState : IFleetSerializable
{
    public bool Exists { get; init; }
    public bool Online { get; init; }
    public DateTimeOffset? ConnectedAt { get; init; }
    public DateTimeOffset? DisconnectedAt { get; init; }
    public string? Node { get; init; }
    /// <summary>The protocol dialect the device speaks: "seed", "2025" or "9".</summary>
    public string? Protocol { get; init; }
    public DeviceInfoState? Info { get; init; }
    public ImmutableList<GatewayState> Gateways { get; init; } = [];
    public ImmutableSortedDictionary<string, int> DesiredAuthModes { get; init; } = ImmutableSortedDictionary<string, int>.Empty;
    public ImmutableSortedDictionary<string, ClientState> Clients { get; init; } = ImmutableSortedDictionary<string, ClientState>.Empty;
    public ImmutableSortedDictionary<string, string> Firmware { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    /// <summary>Device admission: "pending" (enrolled with a fleet key, awaiting approval), "approved", or null (never decided: open admission).</summary>
    public string? Admission { get; init; }
    /// <summary>Who decided <see cref="Admission"/> ("fleet key", "device key", "auto-approve", an admin key's name), and when.</summary>
    public string? AdmissionBy { get; init; }
    public DateTimeOffset? AdmissionAt { get; init; }
    /// <summary>Effective tags: derived from device_info by <see cref="TagRules"/>, with <see cref="OperatorTags"/> over them.</summary>
    public ImmutableSortedDictionary<string, string> Tags { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    public ImmutableSortedDictionary<string, string> OperatorTags { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    /// <summary>Tag ← device_info field (Fleet:Tags:FromDeviceInfo). Set from settings, like <see cref="HistoryLimit"/>.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public ImmutableSortedDictionary<string, string> TagRules { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    /// <summary>Oldest first. Finished commands beyond <see cref="HistoryLimit"/> are dropped.</summary>
    public ImmutableList<CommandRecord> Commands { get; init; } = [];
    public int HistoryLimit { get; init; } = 200;
    /// <summary>Most unfinished (queued or sent) commands a device holds; more are refused (429). Set from settings, like <see cref="HistoryLimit"/>.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int QueueLimit { get; init; } = 100;

    public static readonly DeviceState Empty = new();

    public CommandRecord? FindCommand(string id) => Commands.Find(c => c.CommandId == id);

    public GatewayState? FindGateway(string gwId) => Gateways.Find(g => g.GwId == gwId);

    public const string Pending = "pending";
    public const string Approved = "approved";

    /// <summary>Enrolled with a fleet key and not approved yet: reads only (commands and auth-mode changes get 409).</summary>
    public bool IsPending => Admission == Pending;

    public DeviceState Apply(IDeviceEvent e) => e switch
    {
        DeviceConnected c => this with { Exists = true, Online = true, ConnectedAt = c.At, Node = c.Node },
        DeviceDisconnected d => this with { Online = false, DisconnectedAt = d.At },
        DeviceInfoReported i => this with { Exists = true, Info = i.Info },
        GatewaysReported g => this with { Exists = true, Gateways = g.Gateways },
        DesiredAuthModeSet m => this with { DesiredAuthModes = DesiredAuthModes.SetItem(m.GwId, m.AuthMode) },
        ClientAuthorized a => this with { Clients = Clients.SetItem(a.Client.ClientMac, ClientState.Merge(Clients.GetValueOrDefault(a.Client.ClientMac), a.Client)) },
        // Earlier releases removed an authorised client when a pass given to it ended; the router kept it.
        ClientRemoved { Reason: ClientRemoved.PassExpired } r when Clients.GetValueOrDefault(r.ClientMac) is { Authorized: true } => this,
        ClientRemoved r => this with { Clients = Clients.Remove(r.ClientMac) },
        ClientsCleared c => this with { Clients = AfterRestart(Clients, c.KeepAuthorized) },
        FirmwareReported f => this with { Firmware = f.Firmware },
        ProtocolReported p => this with { Protocol = p.Protocol },
        AdmissionChanged a => this with { Admission = a.Admission, AdmissionBy = a.By, AdmissionAt = a.At },
        TagsChanged t => this with { Tags = t.Tags, OperatorTags = t.OperatorTags },
        ICommandEvent c => this with { Commands = CommandLifecycle.Apply(Commands, c, HistoryLimit) },
        _ => this,
    };

    /// <summary>
    /// The router restarted: every pass is gone (nft set elements); authorised clients are gone too unless its
    /// firmware restores its client list (<see cref="ClientsCleared.KeepAuthorized"/>).
    /// </summary>
    private static ImmutableSortedDictionary<string, ClientState> AfterRestart(ImmutableSortedDictionary<string, ClientState> clients, bool keepAuthorized)
    {
        if (!keepAuthorized) return clients.Clear();
        var b = clients.ToBuilder();
        foreach (var c in clients.Values)
            if (!c.Authorized) b.Remove(c.ClientMac);
            else if (c.PassUntil is not null) b[c.ClientMac] = c with { PassUntil = null };
        return b.ToImmutable();
    }

    /// <summary>The effective tags for this device_info and these operator tags (an operator's tag wins over a derived one).</summary>
    public ImmutableSortedDictionary<string, string> EffectiveTags(DeviceInfoState? info, ImmutableSortedDictionary<string, string> operatorTags)
    {
        var tags = operatorTags.ToBuilder();
        foreach (var (tag, field) in TagRules)
        {
            var value = field switch
            {
                "location_id" => info?.LocationId,
                "ap_device_id" => info?.ApDeviceId,
                "ap_mac_address" => info?.ApMacAddress,
                "ap_longitude" => info?.ApLongitude,
                "ap_latitude" => info?.ApLatitude,
                _ => null,
            };
            if (!tags.ContainsKey(tag) && Fleet.Server.Devices.DeviceTags.IsValue(value)) tags[tag] = value!;
        }
        return tags.ToImmutable();
    }

    public DeviceState ApplyAll(IEnumerable<IDeviceEvent> events)
    {
        var s = this;
        foreach (var e in events) s = s.Apply(e);
        return s;
    }
}
