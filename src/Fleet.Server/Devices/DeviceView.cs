using System.Text.Json.Serialization;
using Fleet.Protocol;

namespace Fleet.Server.Devices;

/// <summary>One device as the admin API shows it (snake_case JSON).</summary>
public sealed record DeviceView(
    string DeviceId, bool Online, DateTimeOffset? ConnectedAt, DateTimeOffset? LastSeen, string? Node,
    DeviceInfoView? DeviceInfo, IReadOnlyList<GatewayView> Gateways, IReadOnlyList<ClientView> Clients,
    IReadOnlyDictionary<string, string> Firmware, int? Mode, SystemFigures? System, string? Protocol,
    string? Admission = null, string? AdmissionBy = null, DateTimeOffset? AdmissionAt = null, string? Credential = null,
    bool Cloned = false, DateTimeOffset? ClonedSince = null, IReadOnlyDictionary<string, string>? Tags = null,
    IReadOnlyDictionary<string, string>? OperatorTags = null)
{
    /// <param name="now">For the cloned flag (an episode ends a window after the last replacement); null: not shown.</param>
    public static DeviceView From(DeviceState s, string deviceId, DeviceLive live, DateTimeOffset? now = null) =>
        new(deviceId, s.Online, s.ConnectedAt, live.LastSeen ?? (s.Online ? s.ConnectedAt : s.DisconnectedAt), s.Node,
            s.Info is { } i ? new DeviceInfoView(i.ApDeviceId, i.ApMacAddress, i.ApLongitude, i.ApLatitude, i.LocationId) : null,
            s.Gateways.Select(g => GatewayView.From(g, s)).ToList(),
            s.Clients.Values.Select(c => new ClientView(c.ClientMac, c.ClientIp, c.ClientName, c.GwId, c.AuthorizedAt, c.ExpiresAt, c.PassUntil)).ToList(),
            s.Firmware, live.Mode, live.Figures, s.Protocol,
            s.Admission, s.AdmissionBy, s.AdmissionAt, live.Connection is null ? null : live.Credential,
            now is { } t && live.Clones is { } c && c.ActiveAt(t), now is { } t2 && live.Clones is { } c2 && c2.ActiveAt(t2) ? c2.Since : null, s.Tags, s.OperatorTags);
}

public sealed record DeviceInfoView(string? ApDeviceId, string? ApMacAddress, string? ApLongitude, string? ApLatitude, string? LocationId);

/// <summary>A gateway with its reported auth_mode and the operator's desired one.</summary>
public sealed record GatewayView(
    string GwId, string? GwChannel,
    [property: JsonPropertyName("gw_address_v4")] string? GwAddressV4,
    [property: JsonPropertyName("gw_address_v6")] string? GwAddressV6,
    string? GwInterface, int? AuthMode, int? DesiredAuthMode)
{
    public static GatewayView From(GatewayState g, DeviceState s) =>
        new(g.GwId, g.GwChannel, g.GwAddressV4, g.GwAddressV6, g.GwInterface, g.AuthMode,
            s.DesiredAuthModes.TryGetValue(g.GwId, out var d) ? d : null);
}

/// <summary>
/// A client in the view: <c>expires_at</c> null while the router holds it in its client list (auth), else when
/// its pass ends and it leaves the view; <c>pass_until</c> when its latest tmp_pass ends.
/// </summary>
public sealed record ClientView(string ClientMac, string? ClientIp, string? ClientName, string? GwId, DateTimeOffset AuthorizedAt,
    DateTimeOffset? ExpiresAt, DateTimeOffset? PassUntil = null);
