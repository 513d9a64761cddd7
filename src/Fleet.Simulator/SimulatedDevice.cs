using System.Globalization;
using System.Text;
using System.Text.Json;
using Fleet.Protocol;

namespace Fleet.Simulator;

/// <summary>What a device does with one frame from the controller.</summary>
public sealed record DeviceAction(IDeviceFrame? Reply, bool Reboot = false, bool StateChanged = false)
{
    public static readonly DeviceAction None = new((IDeviceFrame?)null);
}

/// <summary>A client the device lets through (fed by auth and tmp_pass).</summary>
public sealed record SimulatedClient(string Mac, string? Ip, string? GwId, string? Token, DateTimeOffset? ExpiresAt);

/// <summary>
/// Where the router's WebSocket goes, as set_websocket_serv left it: each field null until that request set it
/// (the configured address applies). <see cref="UrlFrom"/> combines the two as the firmware's ws_request does.
/// </summary>
public sealed record WebSocketServer(string? Hostname = null, int? Port = null, string? Path = null, bool? UseSsl = null)
{
    public static readonly WebSocketServer Configured = new();

    /// <summary>The URL of the next connection: what set_websocket_serv changed, the rest as <paramref name="configured"/>.</summary>
    public Uri UrlFrom(Uri configured)
    {
        if (this == Configured) return configured;
        var scheme = UseSsl is { } ssl ? ssl ? "wss" : "ws" : configured.Scheme;
        var host = Hostname ?? configured.Host;
        if (host.Contains(':') && !host.StartsWith('[')) host = $"[{host}]";
        return new Uri($"{scheme}://{host}:{Port ?? configured.Port}{Path ?? configured.PathAndQuery}");
    }
}

/// <summary>One gateway of a simulated device.</summary>
public sealed record SimulatedGateway(string GwId, string Channel, string AddressV4, string Interface, int AuthMode);

/// <summary>
/// The pure decide-the-answer logic of one simulated router: what it reports in connect and
/// heartbeat, and how it answers each controller request, in the firmware era it plays
/// (<see cref="Era"/>): the seed protocol (WEBSOCKET_API.md), 2025 (EXTENSIONS.md: req_id echo,
/// request_error, the extra request types) or 9 (FIRMWARE_9.md: the op dialect, answers with
/// status/code/message, auth and tmp_pass answered, reboot_device answered). Whatever the real
/// firmware decides (kickoff checks, error texts, codes, answers to bad frames, req_id echo) comes from
/// <see cref="FirmwareAnswers"/>, the one device-side model Fleet.Edge answers through too; this
/// class adds only the router's state (clients, gateways, domains). How its era writes and reads frames
/// is <see cref="Dialect"/>. No I/O: the socket loop lives in <see cref="FirmwareClient"/>.
/// </summary>
public sealed class SimulatedDevice
{
    public const string FirmwareRelease = "24.10-SNAPSHOT";
    public const string FirmwareRevision = "r28790-abc123";

    private readonly TimeProvider _time;
    private readonly DateTimeOffset _bootedAt;
    private readonly Dictionary<string, SimulatedClient> _clients = new(StringComparer.Ordinal);
    private readonly List<string> _trustedDomains = [];
    private readonly List<string> _wildcardDomains = [];
    private readonly List<string> _trustedMacs = [];
    private SimulatedGateway[] _gateways;
    private DeviceInfo _deviceInfo;
    private bool _upgradeInProgress;
    private WebSocketServer _server = WebSocketServer.Configured;

    public SimulatedDevice(string deviceId, int gateways = 1, bool seedEra = false, int index = 0, TimeProvider? time = null)
        : this(deviceId, seedEra ? FirmwareEra.Seed : FirmwareEra.V2025, gateways, index, time)
    {
    }

    public SimulatedDevice(string deviceId, FirmwareEra era, int gateways = 1, int index = 0, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(gateways, 1);
        DeviceId = deviceId;
        Era = era;
        Dialect = RouterDialects.For(era);
        _time = time ?? TimeProvider.System;
        _bootedAt = _time.GetUtcNow();
        var mac = MacOf(index, 0x02);
        _deviceInfo = new DeviceInfo
        {
            ApDeviceId = deviceId,
            ApMacAddress = mac,
            ApLongitude = (116.0 + index % 1000 / 1000.0).ToString("0.000", CultureInfo.InvariantCulture),
            ApLatitude = (39.0 + index % 997 / 1000.0).ToString("0.000", CultureInfo.InvariantCulture),
            LocationId = $"loc-{index % 100}",
        };
        _gateways = Enumerable.Range(0, gateways)
            .Select(g => new SimulatedGateway($"gw-{g + 1}", $"ch{g + 1}", $"192.168.{g + 1}.1", g == 0 ? "br-lan" : $"br-lan{g}", 1))
            .ToArray();
    }

    public string DeviceId { get; }

    /// <summary>Which firmware this router runs, and so which firmware <see cref="FirmwareAnswers"/> answers as.</summary>
    public FirmwareEra Era { get; }

    /// <summary>How this era writes its reports and answers and reads the controller's frames.</summary>
    public IRouterDialect Dialect { get; }

    /// <summary>Seed-era firmware: no req_id echo, no request_error, only the seed's request types.</summary>
    public bool SeedEra => Era == FirmwareEra.Seed;

    /// <summary>
    /// The router's DisablePortalAuth setting: 9.x then answers auth with success and does nothing, refuses
    /// tmp_pass and kickoff with 1003 (FIRMWARE_FACTS.md D); seed and 2025 let auth and tmp_pass do nothing.
    /// </summary>
    public bool PortalAuthDisabled { get; set; }

    /// <summary>
    /// 9.x: a firmware upgrade was launched; the firmware never clears this flag (only a reboot does), so
    /// every later upgrade gets 1004.
    /// </summary>
    public bool UpgradeInProgress => _upgradeInProgress;

    /// <summary>
    /// 9.x: the WebSocket server set_websocket_serv set, kept in memory and used from the next connection (the
    /// firmware does not reconnect by itself; the controller drops the connection for it to take effect).
    /// </summary>
    public WebSocketServer Server => _server;

    /// <summary>Bumped whenever what the device reports changes (so a cached heartbeat frame can be rebuilt).</summary>
    public int ReportVersion { get; private set; }

    public IReadOnlyList<SimulatedGateway> Gateways => _gateways;
    public DeviceInfo DeviceInfo => _deviceInfo;
    public IReadOnlyDictionary<string, SimulatedClient> Clients => _clients;

    /// <summary>The connect report (never with sys_info). Mode is what a 9.x router reports; other eras' dialects leave it out.</summary>
    public ConnectMessage Connect() => new() { DeviceId = DeviceId, DeviceInfo = _deviceInfo, Gateway = Reports(), Mode = 0 };

    /// <summary>A heartbeat: with sys_info from 2025 on (nested; seed firmware sends none).</summary>
    public HeartbeatMessage Heartbeat()
    {
        if (SeedEra) return new HeartbeatMessage { DeviceId = DeviceId, DeviceInfo = _deviceInfo, Gateway = Reports() };
        PurgeExpired();
        return new HeartbeatMessage
        {
            DeviceId = DeviceId, DeviceInfo = _deviceInfo, Gateway = Reports(), Mode = 0,
            SysInfo = new SystemFigures
            {
                SysUptime = UptimeSeconds(), SysMemfree = 61_440, SysLoad = 0.08, NfConntrackCount = 120,
                CpuUsage = 3.5, CpuTemp = 48.0, WifidogUptime = UptimeSeconds(),
                OnlineClients = _clients.Count, OfflineClients = 0,
            },
        };
    }

    private List<GatewayReport> Reports() =>
        _gateways.Select(g => new GatewayReport
        {
            GwId = g.GwId, GwChannel = g.Channel, GwAddressV4 = g.AddressV4, AuthMode = g.AuthMode, GwInterface = g.Interface,
        }).ToList();

    /// <summary>The client's lookup by IP and MAC, as the firmware's client_list_find does.</summary>
    public bool HasClient(string ip, string mac) => _clients.TryGetValue(mac, out var c) && c.Ip == ip;

    public bool HasGateway(string gwId) => Array.Exists(_gateways, g => g.GwId == gwId);

    /// <summary>
    /// Decides what the device does with a frame as its era's dialect read it: a request is handled, a
    /// reply's or gateway_heartbeat's auth modes are taken when the dialect says the firmware takes them,
    /// a complaint is answered with the firmware's answer (or nothing).
    /// </summary>
    public DeviceAction Handle(RouterInbound inbound) => inbound.Kind switch
    {
        InboundKind.Request => Handle(inbound.Request!),
        InboundKind.ReportReply or InboundKind.GatewayModes => inbound.ApplyModes ? ApplyModes(inbound.Gateway ?? []) : DeviceAction.None,
        _ => inbound.Answer is { } answer ? new DeviceAction(answer) : DeviceAction.None,
    };

    /// <summary>Decides what the device does with a decoded controller frame.</summary>
    public DeviceAction Handle(IControllerFrame message) => Era == FirmwareEra.V9 ? HandleV9(message) : message switch
    {
        ReportReply r => ApplyHeartbeatReply(r),
        AuthRequest a => Auth(a),
        TmpPassRequest t => TmpPass(t),
        KickoffRequest k => Kickoff(k),
        FirmwareUpgradeRequest f => Reply(FirmwareAnswers.RefuseUpgrade(f) ?? FirmwareAnswers.UpgradeAccepted(f.ReqId), f.ReqId),
        SimpleRequest { Type: "get_firmware_info" } s => Reply(FirmwareInfo(), s.ReqId),
        _ when SeedEra => Unknown(message), // seed firmware logs unknown types and answers nothing
        SimpleRequest { Type: "reboot_device" } => new DeviceAction(null, Reboot: true),
        SimpleRequest s => Reply(Simple(s.Type, s.ReqId), s.ReqId),
        UpdateDeviceInfoRequest u => UpdateDeviceInfo(u),
        SetWifiInfoRequest w => Reply(new GenericResponse { Type = "set_wifi_info_response", Status = "success", Message = "Wireless configuration updated" }, w.ReqId),
        SyncDomainsRequest d => SyncDomains(d),
        GetClientInfoRequest c => Reply(ClientInfo(c.Mac!), c.ReqId),
        _ => Unknown(message),
    };

    /// <summary>
    /// Decides what the device does with a frame it could not decode, as the firmware does
    /// (<see cref="FirmwareAnswers.ToBadFrame"/>): a request with missing fields gets that request's
    /// error answer; a missing or unknown type gets request_error from 2025 firmware and nothing from
    /// seed-era firmware; unparseable JSON gets nothing.
    /// </summary>
    public DeviceAction HandleUndecodable(DecodeError error) =>
        FirmwareAnswers.ToBadFrame(Era, error) is { } answer ? Reply(answer, error.ReqId) : DeviceAction.None;

    // ------------------------------------------------------------------ requests

    private DeviceAction ApplyHeartbeatReply(ReportReply reply) => ApplyModes(reply.Gateway ?? []);

    /// <summary>Each known gateway takes its auth_mode (handle_gateway_state_heartbeat_request; unknown gw_ids skipped).</summary>
    private DeviceAction ApplyModes(IReadOnlyList<GatewayAuthMode> modes)
    {
        var changed = false;
        foreach (var g in modes)
        {
            if (g.GwId is null || g.AuthMode is not { } mode) continue;
            var i = Array.FindIndex(_gateways, x => x.GwId == g.GwId);
            if (i < 0 || _gateways[i].AuthMode == mode) continue;
            _gateways[i] = _gateways[i] with { AuthMode = mode };
            changed = true;
        }
        return changed ? Changed() : DeviceAction.None;
    }

    private DeviceAction Auth(AuthRequest a)
    {
        if (a.OnceAuth == true)
        {
            // Seed: once_auth sets the gateway's auth mode to 0 (and reloads the firewall).
            var i = Array.FindIndex(_gateways, x => x.GwId == a.GwId);
            if (i >= 0 && _gateways[i].AuthMode != 0) { _gateways[i] = _gateways[i] with { AuthMode = 0 }; return Changed(); }
            return DeviceAction.None;
        }
        var mac = FieldRules.NormalizeMac(a.ClientMac!);
        _clients[mac] = new SimulatedClient(mac, a.ClientIp, a.GwId, a.Token, null);
        return Changed();
    }

    private DeviceAction TmpPass(TmpPassRequest t)
    {
        var mac = FieldRules.NormalizeMac(t.ClientMac!);
        var seconds = t.Timeout ?? TmpPassRequest.DefaultTimeoutSeconds;
        if (Era == FirmwareEra.V9)
        {
            // nft_fw_set_mac_temporary: 0 trusted with no timeout, above 600 clamped, negative blocked (no client).
            if (seconds < 0) return _clients.Remove(mac) ? Changed() : DeviceAction.None;
            seconds = Math.Min(seconds, 600);
        }
        DateTimeOffset? expires = Era == FirmwareEra.V9 && seconds == 0 ? null : _time.GetUtcNow().AddSeconds(seconds);
        _clients[mac] = new SimulatedClient(mac, null, _gateways[0].GwId, null, expires);
        return Changed();
    }

    /// <summary>The firmware's kickoff over this device's client table; a success removes the client.</summary>
    private DeviceAction Kickoff(KickoffRequest k)
    {
        PurgeExpired();
        var answer = FirmwareAnswers.Kickoff(k, DeviceId, FindByIpAndMac);
        if (answer is not KickoffResponse) return Reply(answer, k.ReqId);
        // Found means the request's MAC (normalised as FirmwareAnswers does) is a key of the table.
        _clients.Remove(FieldRules.IsMac(k.ClientMac) ? FieldRules.NormalizeMac(k.ClientMac!) : k.ClientMac!);
        ReportVersion++;
        return Reply(answer, k.ReqId) with { StateChanged = true };
    }

    /// <summary>
    /// The firmware looks a client up by IP and MAC together: a client let through by tmp_pass has no
    /// IP yet, so a kickoff cannot find it (on the real router as here).
    /// </summary>
    private KnownClient FindByIpAndMac(string ip, string mac) =>
        _clients.TryGetValue(mac, out var c) && c.Ip == ip ? new KnownClient(true, c.GwId) : default;

    private FirmwareInfoResponse FirmwareInfo() => new()
    {
        Data = new Dictionary<string, JsonElement>
        {
            ["DISTRIB_ID"] = Str("ChaWrt"),
            ["DISTRIB_RELEASE"] = Str(FirmwareRelease),
            ["DISTRIB_REVISION"] = Str(FirmwareRevision),
            ["DISTRIB_CODENAME"] = Str("snapshot"),
            ["DISTRIB_TARGET"] = Str("ramips/mt7621"),
            ["DISTRIB_ARCH"] = Str("mipsel_24kc"),
            ["DISTRIB_DESCRIPTION"] = Str($"ChaWrt {FirmwareRelease} {FirmwareRevision}"),
        },
    };

    private IAnswerFrame? Simple(string type, ReqId? reqId)
    {
        switch (type)
        {
            case "get_sys_info":
                return Data("get_sys_info_response", w =>
                {
                    w.WriteNumber("sys_uptime", UptimeSeconds());
                    w.WriteNumber("sys_memfree", 61_440);
                    w.WriteNumber("sys_load", 0.08);
                    w.WriteNumber("nf_conntrack_count", 120);
                    w.WriteNumber("cpu_usage", 3.5);
                    w.WriteNumber("cpu_temp", 48.0);
                    w.WriteNumber("wifidog_uptime", UptimeSeconds());
                    w.WriteNumber("online_clients", _clients.Count);
                    w.WriteNumber("offline_clients", 0);
                });
            case "get_status":
                return Data("get_status_response", w =>
                {
                    w.WriteString("device_id", DeviceId);
                    w.WriteNumber("uptime", UptimeSeconds());
                    w.WriteNumber("clients", _clients.Count);
                    w.WriteNumber("gateways", _gateways.Length);
                });
            case "get_wifi_info":
                return Data("get_wifi_info_response", w =>
                {
                    w.WriteStartObject("radio0");
                    w.WriteString("channel", "6"); w.WriteString("htmode", "HT20"); w.WriteString("ssid", $"{DeviceId}-2g");
                    w.WriteEndObject();
                    w.WriteStartObject("radio1");
                    w.WriteString("channel", "36"); w.WriteString("htmode", "VHT80"); w.WriteString("ssid", $"{DeviceId}-5g");
                    w.WriteEndObject();
                });
            case "get_trusted_domains":
                return new GenericResponse { Type = "get_trusted_domains_response", Domains = _trustedDomains.ToArray() };
            case "get_trusted_wildcard_domains":
                return new GenericResponse { Type = "get_trusted_wildcard_domains_response", Domains = _wildcardDomains.ToArray() };
            default:
                return RequestKinds.Find(type)?.SuccessType is { } ok
                    ? new GenericResponse { Type = ok, Status = "success" }
                    : FirmwareAnswers.UnknownRequest(Era, type, reqId);
        }
    }

    private DeviceAction UpdateDeviceInfo(UpdateDeviceInfoRequest u)
    {
        var d = u.DeviceInfo!;
        _deviceInfo = _deviceInfo with
        {
            ApDeviceId = d.ApDeviceId ?? _deviceInfo.ApDeviceId,
            ApMacAddress = d.ApMacAddress ?? _deviceInfo.ApMacAddress,
            ApLongitude = d.ApLongitude ?? _deviceInfo.ApLongitude,
            ApLatitude = d.ApLatitude ?? _deviceInfo.ApLatitude,
            LocationId = d.LocationId ?? _deviceInfo.LocationId,
        };
        ReportVersion++;
        return Reply(new GenericResponse { Type = "update_device_info_response", Status = "success", Message = "Device info updated successfully" }, u.ReqId)
            with { StateChanged = true };
    }

    private DeviceAction SyncDomains(SyncDomainsRequest d)
    {
        var target = d.Type == SyncDomainsRequest.WildcardTypeName ? _wildcardDomains : _trustedDomains;
        target.Clear();
        target.AddRange(d.Domains!);
        var text = Era == FirmwareEra.V9 && d.Type == SyncDomainsRequest.TrustedTypeName ? FirmwareAnswers.TrustedDomainsSynced : "Domains synchronized successfully";
        return Reply(new GenericResponse { Type = d.Type + "_response", Status = "success", Message = text }, d.ReqId);
    }

    private IAnswerFrame ClientInfo(string mac)
    {
        var key = FieldRules.IsMac(mac) ? FieldRules.NormalizeMac(mac) : mac;
        if (!_clients.TryGetValue(key, out var c))
            return new GenericResponse { Type = "get_client_info_error", Error = "Client not found" };
        return Data("get_client_info_response", w =>
        {
            w.WriteString("mac", c.Mac);
            if (c.Ip is not null) w.WriteString("ip", c.Ip);
            if (c.Token is not null) w.WriteString("token", c.Token);
            if (c.GwId is not null) w.WriteString("gw_id", c.GwId);
            w.WriteStartObject("counters");
            w.WriteNumber("incoming_bytes", 0); w.WriteNumber("outgoing_bytes", 0);
            w.WriteEndObject();
        });
    }

    // ------------------------------------------------------------------ 9.x

    /// <summary>The op dialect's handlers (9.07 api_routes.c): every answer in the 9.x form, with the request's req_id.</summary>
    private DeviceAction HandleV9(IControllerFrame message)
    {
        var reqId = (message as IControllerRequest)?.ReqId;
        switch (message)
        {
            case ReportReply r:
                return ApplyHeartbeatReply(r);
            case AuthRequest a:
            {
                var d = FirmwareAnswers.Auth(FirmwareEra.V9, a, HasGateway, HasClient, PortalAuthDisabled);
                var effect = d.Effect switch
                {
                    AuthEffect.ClientAdded => Auth(a with { OnceAuth = false }),
                    AuthEffect.GatewayOpened => Auth(a with { OnceAuth = true }),
                    _ => DeviceAction.None,
                };
                return new DeviceAction(d.Answer, StateChanged: effect.StateChanged);
            }
            case TmpPassRequest t:
            {
                var d = FirmwareAnswers.TmpPass(FirmwareEra.V9, t, PortalAuthDisabled);
                var changed = d.Applies && TmpPass(t).StateChanged;
                return new DeviceAction(d.Answer, StateChanged: changed);
            }
            case KickoffRequest k:
            {
                PurgeExpired();
                var answer = FirmwareAnswers.Kickoff(FirmwareEra.V9, k, DeviceId, FindByIpAndMac, PortalAuthDisabled);
                if (!FirmwareAnswers.KickedOffBy(answer)) return new DeviceAction(answer);
                _clients.Remove(FieldRules.IsMac(k.ClientMac) ? FieldRules.NormalizeMac(k.ClientMac!) : k.ClientMac!);
                ReportVersion++;
                return new DeviceAction(answer, StateChanged: true);
            }
            case FirmwareUpgradeRequest f:
            {
                var answer = FirmwareAnswers.FirmwareUpgrade(FirmwareEra.V9, f, _upgradeInProgress);
                if (FirmwareAnswers.UpgradeAcceptedBy(answer)) _upgradeInProgress = true;
                return new DeviceAction(answer);
            }
            case SimpleRequest { Type: "get_firmware_info" }:
                return new DeviceAction(FirmwareAnswers.FirmwareInfo(FirmwareEra.V9, ReleaseKeys, reqId));
            case SimpleRequest { Type: "reboot_device" }:
                _upgradeInProgress = false; // the reboot ends whatever ran
                return new DeviceAction(FirmwareAnswers.Reboot(FirmwareEra.V9, reqId), Reboot: true);
            case SimpleRequest { Type: "get_clients" }:
                return Reply(Data("get_clients_response", w =>
                {
                    w.WriteStartArray("clients");
                    foreach (var c in _clients.Values)
                    {
                        w.WriteStartObject();
                        w.WriteString("mac", c.Mac);
                        if (c.Ip is not null) w.WriteString("ip", c.Ip);
                        w.WriteBoolean("is_online", true);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }), reqId);
            case SimpleRequest { Type: "get_device_info" }:
                return Reply(new GenericResponse { Type = "get_device_info_response", Data = FirmwareJson.Object(w =>
                {
                    if (_deviceInfo.ApDeviceId is not null) w.WriteString("ap_device_id", _deviceInfo.ApDeviceId);
                    if (_deviceInfo.ApMacAddress is not null) w.WriteString("ap_mac_address", _deviceInfo.ApMacAddress);
                    if (_deviceInfo.ApLongitude is not null) w.WriteString("ap_longitude", _deviceInfo.ApLongitude);
                    if (_deviceInfo.ApLatitude is not null) w.WriteString("ap_latitude", _deviceInfo.ApLatitude);
                    if (_deviceInfo.LocationId is not null) w.WriteString("location_id", _deviceInfo.LocationId);
                }) }, reqId);
            case SetWebSocketServRequest ws:
                // handle_set_websocket_server_request: each field present replaces the running value (and UCI's);
                // the connection stays, the new address is used from the next one.
                _server = new WebSocketServer(ws.Hostname ?? _server.Hostname, ws.Port ?? _server.Port, ws.Path ?? _server.Path,
                    ws.UseSsl ?? _server.UseSsl);
                return new DeviceAction(OpAnswer.Ok(FirmwareAnswers.ResponseTypeV9(ws.Type), FirmwareAnswers.WebSocketServerUpdated) with { ReqId = reqId },
                    StateChanged: true);
            case SetAuthServRequest a:
                return new DeviceAction(OpAnswer.Ok(FirmwareAnswers.ResponseTypeV9(a.Type), FirmwareAnswers.AuthServerUpdated) with { ReqId = reqId });
            case SetMqttServRequest m:
                return new DeviceAction(OpAnswer.Ok(FirmwareAnswers.ResponseTypeV9(m.Type), FirmwareAnswers.MqttServerUpdated) with { ReqId = reqId });
            case ShellRequest:
                // A pretend router runs nothing: success with empty output, as a command printing nothing would.
                return new DeviceAction(OpAnswer.Ok("shell_response", "OK", FirmwareJson.Object(w =>
                {
                    w.WriteString("output", "");
                    w.WriteNumber("exit_code", 0);
                })) with { ReqId = reqId });
            case SimpleRequest s when RequestKinds.Find(s.Type) is null:
                // Routed by 9.07 but not modelled here (VPN, bpf…): a plain success.
                return FirmwareAnswers.V9Operations.Contains(s.Type)
                    ? new DeviceAction(OpAnswer.Ok(FirmwareAnswers.ResponseTypeV9(s.Type)) with { ReqId = reqId })
                    : new DeviceAction(FirmwareAnswers.UnknownOperationAnswer(s.Type, reqId));
            case SimpleRequest s:
                return Reply(Simple(s.Type, s.ReqId), s.ReqId);
            case UpdateDeviceInfoRequest u:
                return UpdateDeviceInfo(u);
            case SetWifiInfoRequest w:
                return Reply(new GenericResponse { Type = "set_wifi_info_response", Message = FirmwareAnswers.WifiUpdated,
                    Data = FirmwareJson.Object(j => j.WriteBoolean("reloaded", true)) }, w.ReqId);
            case SyncDomainsRequest d:
                return SyncDomains(d);
            case SyncMacsRequest m:
                // api_handlers_auth.c handle_sync_trusted_mac_request: replaces the list, always success.
                _trustedMacs.Clear();
                _trustedMacs.AddRange(m.Macs ?? []);
                return Reply(new GenericResponse { Type = "sync_trusted_mac_response", Message = "Trusted MACs synchronized successfully" }, m.ReqId);
            case GetClientInfoRequest c:
                return _clients.ContainsKey(FieldRules.IsMac(c.Mac) ? FieldRules.NormalizeMac(c.Mac!) : c.Mac!)
                    ? Reply(ClientInfo(c.Mac!), c.ReqId)
                    : new DeviceAction(OpAnswer.Fail("get_client_info_response", FirmwareAnswers.Codes.NotFound, "Client not found") with { ReqId = c.ReqId });
            default:
                return new DeviceAction(FirmwareAnswers.UnknownOperationAnswer(message.Type, reqId));
        }
    }

    private static readonly Dictionary<string, string> ReleaseKeys = new()
    {
        ["DISTRIB_ID"] = "ChaWrt",
        ["DISTRIB_RELEASE"] = FirmwareRelease,
        ["DISTRIB_REVISION"] = FirmwareRevision,
        ["DISTRIB_CODENAME"] = "snapshot",
        ["DISTRIB_TARGET"] = "ramips/mt7621",
        ["DISTRIB_ARCH"] = "mipsel_24kc",
        ["DISTRIB_DESCRIPTION"] = $"ChaWrt {FirmwareRelease} {FirmwareRevision}",
    };

    // ------------------------------------------------------------------ helpers

    /// <summary>Sends <paramref name="answer"/> (if any) with req_id echoed as this firmware era does.</summary>
    private DeviceAction Reply(IAnswerFrame? answer, ReqId? reqId) =>
        answer is null ? DeviceAction.None : new(FirmwareAnswers.Echo(Era, answer, reqId));

    private DeviceAction Unknown(IControllerFrame message) =>
        Reply(FirmwareAnswers.UnknownRequest(Era, message.Type, (message as IControllerRequest)?.ReqId),
            (message as IControllerRequest)?.ReqId);

    private DeviceAction Changed() { ReportVersion++; return new DeviceAction(null, StateChanged: true); }

    private void PurgeExpired()
    {
        var now = _time.GetUtcNow();
        List<string>? expired = null;
        foreach (var (mac, c) in _clients)
            if (c.ExpiresAt is { } e && e <= now) (expired ??= []).Add(mac);
        if (expired is null) return;
        foreach (var mac in expired) _clients.Remove(mac);
        ReportVersion++;
    }

    private long UptimeSeconds() => 3600 + (long)(_time.GetUtcNow() - _bootedAt).TotalSeconds;

    private static JsonElement Str(string value) => JsonSerializer.SerializeToElement(value, ProtocolJsonContext.Default.String);

    private static GenericResponse Data(string type, Action<Utf8JsonWriter> body)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return new GenericResponse { Type = type, Data = doc.RootElement.Clone() };
    }

    /// <summary>A locally administered MAC derived from the device index.</summary>
    public static string MacOf(int index, byte first) =>
        string.Create(17, (index, first), static (span, s) =>
        {
            Span<byte> b = [s.first, 0x00, (byte)(s.index >> 24), (byte)(s.index >> 16), (byte)(s.index >> 8), (byte)s.index];
            for (var i = 0; i < 6; i++)
            {
                b[i].TryFormat(span[(i * 3)..], out _, "x2", CultureInfo.InvariantCulture);
                if (i < 5) span[i * 3 + 2] = ':';
            }
        });
}
