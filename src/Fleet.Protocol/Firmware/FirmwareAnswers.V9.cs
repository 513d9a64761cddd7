using System.Text.Json;

namespace Fleet.Protocol;

/// <summary>What an auth request does to the router besides its answer.</summary>
public enum AuthEffect
{
    /// <summary>Nothing (refused, portal auth disabled, client already there).</summary>
    None,
    /// <summary>The client is let through on its gateway.</summary>
    ClientAdded,
    /// <summary>once_auth: the gateway's auth_mode becomes 0; no client is added.</summary>
    GatewayOpened,
}

/// <summary>An auth request's answer (null: one-way, nothing is sent) and what it does.</summary>
public readonly record struct AuthDecision(IAnswerFrame? Answer, AuthEffect Effect);

/// <summary>A tmp_pass request's answer (null: one-way) and whether the MAC is let through, for how long.</summary>
public readonly record struct TmpPassDecision(IAnswerFrame? Answer, bool Applies, int TimeoutSeconds);

public static partial class FirmwareAnswers
{
    // ------------------------------------------------------------------ 9.x texts (FIRMWARE_FACTS.md D, E)

    /// <summary>auth 1000 (api_handlers_auth.c handle_auth_request; the text says "response", the firmware's words).</summary>
    public const string AuthMissingFields = "Missing required fields in JSON response";
    public const string GatewayNotFound = "Gateway not found";
    public const string ClientAlreadyAuthenticated = "Client already authenticated";
    public const string ClientAuthenticated = "Client authenticated successfully";
    public const string OnceAuthEnabled = "Once-auth enabled, gateway auth mode set to 0. Please authenticate client on the next request.";
    /// <summary>auth (a success!) and kickoff (1003) when the router's portal auth is disabled.</summary>
    public const string PortalAuthDisabled = "Portal authentication is currently disabled on this gateway";
    /// <summary>tmp_pass 1003: a shorter text than auth's and kickoff's.</summary>
    public const string TmpPassPortalDisabled = "Portal authentication is disabled";
    public const string MissingClientMac = "Missing client_mac";
    public const string InvalidClientMac = "Invalid client_mac";
    public const string TmpPassSet = "Temporary pass set successfully";
    public const string RebootInitiated = "Device reboot initiated";
    public const string UpgradeInProgress = "Firmware upgrade is already in progress";
    public const string InvalidUrlProtocol = "Invalid URL protocol, only HTTP/HTTPS allowed";
    public const string UrlTooLong = "URL too long";
    public const string DeviceInfoUpdated = "Device info updated successfully";
    public const string MissingDeviceInfo = "Missing 'device_info' field in request";
    public const string MissingMac = "Missing 'mac' field in request";
    public const string MissingData = "Missing 'data' field";
    public const string WifiUpdated = "Wi-Fi configuration updated successfully";
    public const string TrustedDomainsSynced = "Trusted domains synchronized successfully";
    /// <summary>set_*_serv success texts (api_handlers_auth.c).</summary>
    public const string WebSocketServerUpdated = "WebSocket server configuration updated";
    public const string AuthServerUpdated = "Auth server configuration updated";
    public const string MqttServerUpdated = "MQTT server configuration updated";
    /// <summary>shell 1000 (handle_shell_request): no command, or one that is not a JSON string.</summary>
    public const string MissingCommand = "Missing command";
    /// <summary>generic_response 400 texts of ws_thread.c process_ws_msg / send_ws_error_response.</summary>
    public const string InvalidJsonRequest = "Invalid JSON request";
    public const string MissingReqId = "Missing or invalid req_id";
    public const string MissingOp = "Missing 'op' field in JSON";
    public const string UnknownOperation = "Unknown operation";
    public const string GenericResponse = "generic_response";
    /// <summary>get_firmware_info's own field_descriptions (api_handlers_sys.c).</summary>
    public const string FirmwareInfoDescription = "Map of firmware/release keys to string values (e.g. DISTRIB_RELEASE, DISTRIB_ID). Keys vary by device image.";
    public const int DefaultTmpPassSeconds = 300;

    /// <summary>The codes 9.x answers use (FIRMWARE_9.md, FIRMWARE_FACTS.md E).</summary>
    public static class Codes
    {
        public const int Ok = 0;
        public const int BadRequest = 400;
        public const int MissingField = 1000;
        public const int Invalid = 1002;
        public const int PortalDisabled = 1003;
        public const int UpgradeRunning = 1004;
        public const int NotFound = 2000;
        public const int CommandFailed = 3000;
        public const int NotAvailable = 3001;
    }

    /// <summary>
    /// Every op 9.07 routes (src/api_routes.c). A request named otherwise gets "Unknown operation";
    /// these it handles, whether or not Fleet has a record for them.
    /// </summary>
    public static readonly IReadOnlySet<string> V9Operations = new HashSet<string>(StringComparer.Ordinal)
    {
        "get_sys_info", "get_status", "gateway_heartbeat", "auth", "kickoff", "tmp_pass", "get_client_info", "get_clients",
        "shell", "get_firmware_info", "firmware_upgrade", "ota", "update_device_info", "get_device_info", "set_auth_serv",
        "get_auth_serv", "set_mqtt_serv", "get_mqtt_serv", "set_websocket_serv", "get_websocket_serv", "reboot_device",
        "get_wifi_info", "set_wifi_info", "scan_wifi", "set_wifi_relay", "delete_wifi_relay", "unset_wifi_relay",
        "get_ipsec_vpn", "set_ipsec_vpn", "get_ipsec_vpn_status", "get_wireguard_vpn", "set_wireguard_vpn",
        "get_wireguard_vpn_status", "generate_wireguard_keys", "get_vpn_routes", "set_vpn_routes", "delete_vpn_routes",
        "bpf_add", "qos_monitor_add_by_mac", "bpf_del", "qos_monitor_del_by_mac", "bpf_flush", "qos_monitor_flush_by_mac",
        "bpf_json", "qos_get_traffic_json_by_mac", "bpf_update", "qos_rule_update_by_mac", "bpf_update_all",
        "qos_update_all_by_mac", "sync_trusted_domain", "get_trusted_domains", "sync_trusted_wildcard_domains",
        "get_trusted_wildcard_domains", "sync_trusted_mac", "get_trusted_mac", "sync_untrusted_mac", "get_untrusted_mac",
    };

    /// <summary>The answer type of a 9.x request: <c>{op}_response</c>, except get_firmware_info's and the set_*_serv ones.</summary>
    public static string ResponseTypeV9(string op) => op switch
    {
        "get_firmware_info" => FirmwareInfoResponse.TypeName,
        "ota" => RequestKinds.FirmwareUpgrade.SuccessType!,
        // api_handlers_auth.c names these after the server, not the op.
        "set_auth_serv" => "set_auth_server_response",
        "set_mqtt_serv" => "set_mqtt_server_response",
        "get_mqtt_serv" => "get_mqtt_server_response",
        "set_websocket_serv" => "set_websocket_server_response",
        _ => op + "_response",
    };

    // ------------------------------------------------------------------ auth, tmp_pass, kickoff, reboot

    /// <summary>
    /// auth as each era takes it. Seed and 2025: one-way, no answer on any path; once_auth opens the
    /// gateway, otherwise the client is added. 9.x (api_handlers_auth.c handle_auth_request): portal auth
    /// disabled → success with <see cref="PortalAuthDisabled"/> and nothing done; token, client_ip, client_mac,
    /// gw_id and once_auth must all be present (JSON null counts as absent) → 1000; unknown gw_id → 2000;
    /// once_auth true → that gateway's auth_mode 0, success <see cref="OnceAuthEnabled"/>, no client added;
    /// the client already there (by IP and MAC) → 1002; else added, success <see cref="ClientAuthenticated"/>.
    /// </summary>
    public static AuthDecision Auth(FirmwareEra era, AuthRequest r, Func<string, bool> hasGateway, Func<string, string, bool> hasClient,
        bool portalDisabled = false)
    {
        const string type = "auth_response";
        if (era != FirmwareEra.V9)
        {
            if (portalDisabled) return new(null, AuthEffect.None);
            return new(null, r.OnceAuth == true ? AuthEffect.GatewayOpened : AuthEffect.ClientAdded);
        }
        if (portalDisabled) return new(OpAnswer.Ok(type, PortalAuthDisabled) with { ReqId = r.ReqId }, AuthEffect.None);
        if (r.Token is null || r.ClientIp is null || r.ClientMac is null || r.GwId is null || r.OnceAuth is null)
            return new(OpAnswer.Fail(type, Codes.MissingField, AuthMissingFields) with { ReqId = r.ReqId }, AuthEffect.None);
        if (!hasGateway(r.GwId))
            return new(OpAnswer.Fail(type, Codes.NotFound, GatewayNotFound) with { ReqId = r.ReqId }, AuthEffect.None);
        if (r.OnceAuth == true)
            return new(OpAnswer.Ok(type, OnceAuthEnabled) with { ReqId = r.ReqId }, AuthEffect.GatewayOpened);
        if (hasClient(r.ClientIp, MacKey(r.ClientMac)))
            return new(OpAnswer.Fail(type, Codes.Invalid, ClientAlreadyAuthenticated) with { ReqId = r.ReqId }, AuthEffect.None);
        return new(OpAnswer.Ok(type, ClientAuthenticated) with { ReqId = r.ReqId }, AuthEffect.ClientAdded);
    }

    /// <summary>
    /// tmp_pass as each era takes it. Seed and 2025: one-way. 9.x (handle_tmp_pass_request): portal auth
    /// disabled → 1003; no client_mac → 1000; not a MAC → 1002; else success with data
    /// <c>{client_mac, timeout}</c>, the timeout as requested (default 300), not as applied.
    /// </summary>
    public static TmpPassDecision TmpPass(FirmwareEra era, TmpPassRequest r, bool portalDisabled = false)
    {
        var timeout = r.Timeout ?? DefaultTmpPassSeconds;
        if (era != FirmwareEra.V9) return new(null, !portalDisabled && r.ClientMac is not null, timeout);
        const string type = "tmp_pass_response";
        if (portalDisabled) return new(OpAnswer.Fail(type, Codes.PortalDisabled, TmpPassPortalDisabled) with { ReqId = r.ReqId }, false, timeout);
        if (r.ClientMac is null) return new(OpAnswer.Fail(type, Codes.MissingField, MissingClientMac) with { ReqId = r.ReqId }, false, timeout);
        if (!FieldRules.IsMac(r.ClientMac)) return new(OpAnswer.Fail(type, Codes.Invalid, InvalidClientMac) with { ReqId = r.ReqId }, false, timeout);
        var data = FirmwareJson.Object(w =>
        {
            w.WriteString("client_mac", r.ClientMac);
            w.WriteNumber("timeout", timeout);
        });
        return new(OpAnswer.Ok(type, TmpPassSet, data) with { ReqId = r.ReqId }, true, timeout);
    }

    /// <summary>
    /// kickoff as each era answers it: seed and 2025 through <see cref="Kickoff(KickoffRequest, string, Func{string, string, KnownClient})"/>;
    /// 9.x (handle_kickoff_request) in the same order with codes: portal auth disabled 1003 → fields 1000 →
    /// client by IP and MAC 2000 → device_id 1002 → gateway 1002 → success data <c>{client_ip, client_mac}</c>.
    /// <see cref="KickedOffBy"/> tells whether the caller removes the client.
    /// </summary>
    public static IAnswerFrame Kickoff(FirmwareEra era, KickoffRequest r, string ownDeviceId, Func<string, string, KnownClient> findByIpAndMac,
        bool portalDisabled = false)
    {
        if (era != FirmwareEra.V9) return Echo(era, Kickoff(r, ownDeviceId, findByIpAndMac), r.ReqId);
        const string type = KickoffResponse.TypeName;
        OpAnswer Fail(int code, string text) => OpAnswer.Fail(type, code, text) with { ReqId = r.ReqId };
        if (portalDisabled) return Fail(Codes.PortalDisabled, PortalAuthDisabled);
        if (r.ClientIp is null || r.ClientMac is null || r.DeviceId is null || r.GwId is null) return Fail(Codes.MissingField, KickoffError.MissingFields);
        var client = findByIpAndMac(r.ClientIp, MacKey(r.ClientMac));
        if (!client.Found) return Fail(Codes.NotFound, KickoffError.ClientNotFound);
        if (r.DeviceId != ownDeviceId) return Fail(Codes.Invalid, KickoffError.DeviceIdMismatch);
        if (r.GwId != client.GwId) return Fail(Codes.Invalid, KickoffError.GatewayIdMismatch);
        var data = FirmwareJson.Object(w =>
        {
            w.WriteString("client_ip", r.ClientIp);
            w.WriteString("client_mac", r.ClientMac);
        });
        return OpAnswer.Ok(type, KickedOff, data) with { ReqId = r.ReqId };
    }

    /// <summary>Whether a kickoff answer of any era means the client was removed.</summary>
    public static bool KickedOffBy(IAnswerFrame answer) => answer is KickoffResponse or OpAnswer { Succeeded: true };

    /// <summary>
    /// reboot_device: 9.x answers success <see cref="RebootInitiated"/> after starting the reboot (since
    /// 1dfffb4); 2025 answers nothing on success; seed has no such request (ignored, no reboot).
    /// </summary>
    public static IAnswerFrame? Reboot(FirmwareEra era, ReqId? reqId) =>
        era == FirmwareEra.V9 ? OpAnswer.Ok("reboot_device_response", RebootInitiated) with { ReqId = reqId } : null;

    // ------------------------------------------------------------------ firmware

    /// <summary>
    /// firmware_upgrade as each era answers it. Seed and 2025: <see cref="RefuseUpgrade"/> or
    /// <see cref="UpgradeAccepted"/>. 9.x (handle_firmware_upgrade_request): an upgrade already launched →
    /// 1004 (the flag is never cleared once sysupgrade runs); no url → 1000; empty → 1002; not http(s) →
    /// 1002; longer than 1024 → 1002; else success, sent before sysupgrade starts (which then does nothing
    /// when the command line does not fit, see <see cref="ReaderLimits.MaxFirmwareUrlLength"/>).
    /// </summary>
    public static IAnswerFrame FirmwareUpgrade(FirmwareEra era, FirmwareUpgradeRequest r, bool upgradeInProgress = false)
    {
        if (era != FirmwareEra.V9) return Echo(era, RefuseUpgrade(r) ?? UpgradeAccepted(r.ReqId), r.ReqId);
        var type = RequestKinds.FirmwareUpgrade.SuccessType!;
        OpAnswer Fail(int code, string text) => OpAnswer.Fail(type, code, text) with { ReqId = r.ReqId };
        if (upgradeInProgress) return Fail(Codes.UpgradeRunning, UpgradeInProgress);
        if (r.Url is null) return Fail(Codes.MissingField, FirmwareUrlInvalid);
        if (r.Url.Length == 0) return Fail(Codes.Invalid, FirmwareUrlInvalid);
        if (!r.Url.StartsWith("http://", StringComparison.Ordinal) && !r.Url.StartsWith("https://", StringComparison.Ordinal))
            return Fail(Codes.Invalid, InvalidUrlProtocol);
        if (r.Url.Length > 1024) return Fail(Codes.Invalid, UrlTooLong);
        return OpAnswer.Ok(type, UpgradeStarted) with { ReqId = r.ReqId };
    }

    /// <summary>Whether a firmware_upgrade answer of any era accepted the upgrade.</summary>
    public static bool UpgradeAcceptedBy(IAnswerFrame answer) =>
        answer is OpAnswer { Succeeded: true } or GenericResponse { IsError: false };

    /// <summary>
    /// get_firmware_info: the /etc/openwrt_release keys. 9.x answers success "OK" with the keys in data and a
    /// field_descriptions of its own (so none is generated).
    /// </summary>
    public static IAnswerFrame FirmwareInfo(FirmwareEra era, IReadOnlyDictionary<string, string> release, ReqId? reqId)
    {
        if (era != FirmwareEra.V9)
            return Echo(era, new FirmwareInfoResponse { Data = release.ToDictionary(kv => kv.Key, kv => FirmwareJson.String(kv.Value)) }, reqId);
        return OpAnswer.Ok(FirmwareInfoResponse.TypeName, "OK", FirmwareJson.Strings(release)) with
        {
            ReqId = reqId,
            FieldDescriptions = FirmwareJson.Object(w => w.WriteString("data", FirmwareInfoDescription)),
        };
    }

    // ------------------------------------------------------------------ frames 9.x cannot use

    /// <summary>The generic_response 400 of <c>send_ws_error_response</c>; <paramref name="requestedOp"/> goes into data.</summary>
    public static OpAnswer BadRequestAnswer(string message, ReqId? reqId, string? requestedOp = null) =>
        OpAnswer.Fail(GenericResponse, Codes.BadRequest, message,
            requestedOp is null ? null : FirmwareJson.Object(w => w.WriteString("requested_op", requestedOp))) with { ReqId = reqId };

    public static OpAnswer UnknownOperationAnswer(string op, ReqId? reqId) => BadRequestAnswer(UnknownOperation, reqId, op);

    /// <summary>A shell answer that ran nothing: data <c>{output:"", exit_code:-1}</c>, as handle_shell_request writes it.</summary>
    public static OpAnswer ShellFailed(int code, string message, ReqId? reqId) =>
        OpAnswer.Fail("shell_response", code, message, FirmwareJson.Object(w =>
        {
            w.WriteString("output", "");
            w.WriteNumber("exit_code", -1);
        })) with { ReqId = reqId };

    /// <summary>
    /// What 9.x answers to a request its handler finds incomplete (the codec's MissingField/WrongKind), or
    /// to a frame that is no request: JSON it cannot parse → 400 "Invalid JSON request" without req_id; not
    /// an object (no req_id can be read) → 400 "Missing or invalid req_id"; no op → 400 "Missing 'op' field
    /// in JSON"; an op it has no route for → 400 "Unknown operation". json-c reads a value of the wrong
    /// kind as best it can; here it counts as missing, the handler's 1000.
    /// </summary>
    private static IAnswerFrame? ToBadFrameV9(DecodeError e) => e.Kind switch
    {
        DecodeErrorKind.NotJson => BadRequestAnswer(InvalidJsonRequest, null),
        DecodeErrorKind.NotObject => BadRequestAnswer(MissingReqId, null),
        DecodeErrorKind.MissingType => BadRequestAnswer(MissingOp, e.ReqId),
        DecodeErrorKind.UnknownType => UnknownOperationAnswer(e.Type!, e.ReqId),
        _ => e.Type switch
        {
            AuthRequest.TypeName => OpAnswer.Fail("auth_response", Codes.MissingField, AuthMissingFields) with { ReqId = e.ReqId },
            KickoffRequest.TypeName => OpAnswer.Fail(KickoffResponse.TypeName, Codes.MissingField, KickoffError.MissingFields) with { ReqId = e.ReqId },
            TmpPassRequest.TypeName => OpAnswer.Fail("tmp_pass_response", Codes.MissingField, MissingClientMac) with { ReqId = e.ReqId },
            FirmwareUpgradeRequest.TypeName => OpAnswer.Fail(RequestKinds.FirmwareUpgrade.SuccessType!, Codes.MissingField, FirmwareUrlInvalid) with { ReqId = e.ReqId },
            UpdateDeviceInfoRequest.TypeName => OpAnswer.Fail("update_device_info_response", Codes.MissingField, MissingDeviceInfo) with { ReqId = e.ReqId },
            SetWifiInfoRequest.TypeName => OpAnswer.Fail("set_wifi_info_response", Codes.MissingField, MissingData) with { ReqId = e.ReqId },
            GetClientInfoRequest.TypeName => OpAnswer.Fail("get_client_info_response", Codes.MissingField, MissingMac) with { ReqId = e.ReqId },
            ShellRequest.TypeName => ShellFailed(Codes.MissingField, MissingCommand, e.ReqId),
            { } t => OpAnswer.Fail(ResponseTypeV9(t), Codes.MissingField, $"Missing or invalid '{e.Field}' field") with { ReqId = e.ReqId },
            null => BadRequestAnswer(MissingOp, e.ReqId),
        },
    };

    /// <summary>
    /// A seed/2025-shaped answer as 9.x would give it: <c>x_error</c> becomes <c>x_response</c> with status
    /// error and a code (the kickoff errors keep theirs: 2000 not found, 1002 mismatches, 1000 missing),
    /// request_error becomes the generic_response 400, top-level domains move into data.
    /// </summary>
    public static OpAnswer ToOpAnswer(IAnswerFrame answer)
    {
        switch (answer)
        {
            case OpAnswer o:
                return o;
            case KickoffResponse k:
                return OpAnswer.Ok(KickoffResponse.TypeName, k.Message ?? KickedOff, FirmwareJson.Object(w =>
                {
                    if (k.ClientIp is not null) w.WriteString("client_ip", k.ClientIp);
                    if (k.ClientMac is not null) w.WriteString("client_mac", k.ClientMac);
                })) with { ReqId = k.ReqId };
            case KickoffError e:
                return OpAnswer.Fail(KickoffResponse.TypeName, e.Error switch
                {
                    KickoffError.ClientNotFound => Codes.NotFound,
                    KickoffError.DeviceIdMismatch or KickoffError.GatewayIdMismatch => Codes.Invalid,
                    _ => Codes.MissingField,
                }, e.Error) with { ReqId = e.ReqId };
            case FirmwareInfoResponse f:
                return (OpAnswer)FirmwareInfo(FirmwareEra.V9, f.DataAsStrings(), f.ReqId);
            case GenericResponse { Type: RequestKinds.RequestError } g:
                return g.RequestedType is { } op ? UnknownOperationAnswer(op, g.ReqId) : BadRequestAnswer(MissingOp, g.ReqId);
            case GenericResponse g:
            {
                var type = g.IsError ? g.Type[..^"_error".Length] + "_response" : g.Type;
                JsonElement? data = g.Data is { ValueKind: JsonValueKind.Object } ? g.Data
                    : g.Domains is { } domains ? FirmwareJson.Object(w =>
                    {
                        w.WriteStartArray("domains");
                        foreach (var d in domains) w.WriteStringValue(d);
                        w.WriteEndArray();
                    })
                    : null;
                return g.IsError
                    ? OpAnswer.Fail(type, g.Code ?? Codes.MissingField, g.Error ?? g.Message, data) with { ReqId = g.ReqId }
                    : OpAnswer.Ok(type, g.Message, data) with { ReqId = g.ReqId };
            }
            default:
                throw new ArgumentException($"no 9.x form for {answer.GetType().Name}", nameof(answer));
        }
    }

    /// <summary>The MAC as the client table keys it (lower case, colons) when it is one; else as given.</summary>
    private static string MacKey(string mac) => FieldRules.IsMac(mac) ? FieldRules.NormalizeMac(mac) : mac;
}
