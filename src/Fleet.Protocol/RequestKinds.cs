namespace Fleet.Protocol;

/// <summary>
/// What a server→device request expects back: the type of its success answer, of its error answer,
/// and whether it is one-way (no answer on success). One table for the seed and EXTENSIONS.md.
/// </summary>
public sealed record RequestKind(string Type, string? SuccessType, string? ErrorType)
{
    /// <summary>One-way requests (auth, tmp_pass, reboot_device) complete as delivered once sent.</summary>
    public bool OneWay => SuccessType is null;

    /// <summary>
    /// Requests that run anything on the router or point it at another server (shell, set_*_serv on 9.x):
    /// only an admin key may send them, and each is audited.
    /// </summary>
    public bool Privileged => RequestKinds.PrivilegedTypes.Contains(Type);
}

public static class RequestKinds
{
    public static readonly RequestKind Auth = new("auth", null, null);
    public static readonly RequestKind Kickoff = new("kickoff", "kickoff_response", "kickoff_error");
    public static readonly RequestKind TmpPass = new("tmp_pass", null, null);
    public static readonly RequestKind GetFirmwareInfo = new("get_firmware_info", "firmware_info_response", "firmware_info_error");
    public static readonly RequestKind FirmwareUpgrade = new("firmware_upgrade", "firmware_upgrade_response", "firmware_upgrade_error");
    public static readonly RequestKind GetStatus = new("get_status", "get_status_response", "get_status_error");
    public static readonly RequestKind RebootDevice = new("reboot_device", null, "reboot_device_error");
    public static readonly RequestKind UpdateDeviceInfo = new("update_device_info", "update_device_info_response", "update_device_info_error");
    public static readonly RequestKind GetWifiInfo = new("get_wifi_info", "get_wifi_info_response", "get_wifi_info_error");
    public static readonly RequestKind SetWifiInfo = new("set_wifi_info", "set_wifi_info_response", "set_wifi_info_error");
    public static readonly RequestKind GetSysInfo = new("get_sys_info", "get_sys_info_response", "get_sys_info_error");
    public static readonly RequestKind SyncTrustedDomain = new("sync_trusted_domain", "sync_trusted_domain_response", "sync_trusted_domain_error");
    public static readonly RequestKind GetTrustedDomains = new("get_trusted_domains", "get_trusted_domains_response", "get_trusted_domains_error");
    public static readonly RequestKind SyncTrustedWildcardDomains = new("sync_trusted_wildcard_domains", "sync_trusted_wildcard_domains_response", "sync_trusted_wildcard_domains_error");
    public static readonly RequestKind GetTrustedWildcardDomains = new("get_trusted_wildcard_domains", "get_trusted_wildcard_domains_response", "get_trusted_wildcard_domains_error");
    public static readonly RequestKind GetClientInfo = new("get_client_info", "get_client_info_response", "get_client_info_error");
    // Only the current firmware (the op dialect) has these; older firmware ignores them and they time out.
    public static readonly RequestKind GetClients = new("get_clients", "get_clients_response", "get_clients_error");
    public static readonly RequestKind GetDeviceInfo = new("get_device_info", "get_device_info_response", "get_device_info_error");
    public static readonly RequestKind SyncTrustedMac = new("sync_trusted_mac", "sync_trusted_mac_response", "sync_trusted_mac_error");
    public static readonly RequestKind GetTrustedMac = new("get_trusted_mac", "get_trusted_mac_response", "get_trusted_mac_error");
    // 9.x only and privileged (run something on the router, point it at another server). Their answer types are
    // the firmware's own: set_*_serv answer set_*_server_response. Errors come as status "error" in the same type.
    public static readonly RequestKind Shell = new("shell", "shell_response", null);
    public static readonly RequestKind SetAuthServ = new("set_auth_serv", "set_auth_server_response", null);
    public static readonly RequestKind SetMqttServ = new("set_mqtt_serv", "set_mqtt_server_response", null);
    public static readonly RequestKind SetWebSocketServ = new("set_websocket_serv", "set_websocket_server_response", null);

    public static readonly IReadOnlyList<RequestKind> All =
    [
        Auth, Kickoff, TmpPass, GetFirmwareInfo, FirmwareUpgrade, GetStatus, RebootDevice, UpdateDeviceInfo,
        GetWifiInfo, SetWifiInfo, GetSysInfo, SyncTrustedDomain, GetTrustedDomains, SyncTrustedWildcardDomains,
        GetTrustedWildcardDomains, GetClientInfo, GetClients, GetDeviceInfo, SyncTrustedMac, GetTrustedMac,
        Shell, SetAuthServ, SetMqttServ, SetWebSocketServ,
    ];

    private static readonly Dictionary<string, RequestKind> ByType = All.ToDictionary(k => k.Type, StringComparer.Ordinal);
    private static readonly Dictionary<string, RequestKind> ByAnswer = All
        .SelectMany(k => new[] { (k.SuccessType, k), (k.ErrorType, k) })
        .Where(p => p.Item1 is not null)
        .ToDictionary(p => p.Item1!, p => p.k, StringComparer.Ordinal);

    /// <summary>See <see cref="RequestKind.Privileged"/>.</summary>
    public static readonly IReadOnlySet<string> PrivilegedTypes =
        new HashSet<string>(["shell", "set_auth_serv", "set_mqtt_serv", "set_websocket_serv"], StringComparer.Ordinal);

    public static RequestKind? Find(string type) => ByType.GetValueOrDefault(type);

    /// <summary>The request kind an answer type belongs to (kickoff_error → kickoff), or null.</summary>
    public static RequestKind? ForAnswer(string answerType) => ByAnswer.GetValueOrDefault(answerType);

    /// <summary>Answer types a device may send: every success and error type, plus request_error.</summary>
    public static bool IsAnswerType(string type) => ByAnswer.ContainsKey(type) || type == RequestError;

    /// <summary>Upstream firmware's answer to a request with a missing or unsupported type.</summary>
    public const string RequestError = "request_error";
}
