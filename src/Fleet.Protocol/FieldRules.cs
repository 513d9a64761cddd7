using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Fleet.Protocol;

/// <summary>
/// The one set of value rules the controller, the admin API and the edge agent share.
/// Each Check* returns null when the value is good, else a sentence naming the field and the value.
/// Values that pass these rules are safe to put into an nft script or a process argument list.
/// </summary>
public static class FieldRules
{
    public const int MaxIdLength = 64;
    public const int MaxDeviceIdLength = 128;
    public const int MaxUrlLength = 2048;

    /// <summary>aa:bb:cc:dd:ee:ff (or with '-'), any case. See <see cref="NormalizeMac"/>.</summary>
    public static bool IsMac(string? value)
    {
        if (value is null || value.Length != 17) return false;
        var sep = value[2];
        if (sep is not (':' or '-')) return false;
        for (var i = 0; i < 17; i++)
        {
            var c = value[i];
            if (i % 3 == 2) { if (c != sep) return false; }
            else if (!char.IsAsciiHexDigit(c)) return false;
        }
        return true;
    }

    /// <summary>The canonical form: lower case, colon separated.</summary>
    public static string NormalizeMac(string mac) => mac.ToLowerInvariant().Replace('-', ':');

    /// <summary>
    /// A checked request as a router gets it: <paramref name="reqId"/> as req_id, MACs in canonical form, and the
    /// defaults the firmware needs spelled out (9.x requires once_auth present, handle_auth_request; older firmware
    /// ignores a false one).
    /// </summary>
    public static IControllerRequest Normalize(IControllerRequest request, ReqId reqId) => request.WithReqId(reqId) switch
    {
        AuthRequest a => a with { ClientMac = NormalizeMac(a.ClientMac!), OnceAuth = a.OnceAuth ?? false },
        KickoffRequest k => k with { ClientMac = NormalizeMac(k.ClientMac!) },
        TmpPassRequest t => t with { ClientMac = NormalizeMac(t.ClientMac!), Timeout = t.Timeout ?? TmpPassRequest.DefaultTimeoutSeconds },
        FirmwareUpgradeRequest f => f with { Force = f.Force ?? false },
        SyncMacsRequest m => m with { Macs = m.Macs!.Select(NormalizeMac).ToList() },
        var other => other,
    };

    /// <summary>Dotted quad, four decimal parts 0–255, nothing else (IPAddress.TryParse accepts "1" and "0x1").</summary>
    public static bool IsIPv4(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 15) return false;
        var parts = value.Split('.');
        if (parts.Length != 4) return false;
        foreach (var p in parts)
        {
            if (p.Length is 0 or > 3 || !p.All(char.IsAsciiDigit)) return false;
            if (p.Length > 1 && p[0] == '0') return false;
            if (int.Parse(p, CultureInfo.InvariantCulture) > 255) return false;
        }
        return true;
    }

    public static bool IsIPv6(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= 45 && value.Contains(':') && !value.Contains('%')
        && value.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.')
        && IPAddress.TryParse(value, out var a) && a.AddressFamily == AddressFamily.InterNetworkV6;

    public static bool IsIp(string? value) => IsIPv4(value) || IsIPv6(value);

    /// <summary>Identifiers (gw_id, device_id): letters, digits and - _ . : @, no spaces or quotes.</summary>
    public static bool IsIdentifier(string? value, int maxLength = MaxIdLength) =>
        !string.IsNullOrEmpty(value) && value.Length <= maxLength
        && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@');

    public static bool IsGwId(string? value) => IsIdentifier(value);
    public static bool IsDeviceId(string? value) => IsIdentifier(value, MaxDeviceIdLength);

    /// <summary>Linux's IFNAMSIZ (16) less the terminating NUL.</summary>
    public const int MaxInterfaceNameLength = 15;

    /// <summary>
    /// A network interface name (a gateway's gw_interface, e.g. br-lan): 1–15 letters, digits and - _ .
    /// Linux allows more characters; these are the ones that stay inert inside a quoted nft string.
    /// </summary>
    public static bool IsInterfaceName(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= MaxInterfaceNameLength
        && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    /// <summary>
    /// An absolute http(s) URL with a host, made only of characters that mean nothing to a shell:
    /// letters, digits and - . _ ~ : / % + = , @ [ ]. No whitespace, quotes, ; | &amp; $ ` ? # etc.
    /// </summary>
    public static bool IsFirmwareUrl(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= MaxUrlLength
        && value.All(c => char.IsAsciiLetterOrDigit(c) || "-._~:/%+=,@[]".Contains(c))
        && Uri.TryCreate(value, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && !string.IsNullOrEmpty(uri.Host);

    /// <summary>A trusted domain: host name labels, optionally "*." in front when wildcards are allowed.</summary>
    public static bool IsDomain(string? value, bool allowWildcard)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 253) return false;
        var v = allowWildcard && value.StartsWith("*.", StringComparison.Ordinal) ? value[2..] : value;
        var labels = v.Split('.');
        return labels.Length >= 1 && labels.All(l =>
            l.Length is > 0 and <= 63 && l[0] != '-' && l[^1] != '-' && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));
    }

    public static string? CheckMac(string field, string? value) =>
        IsMac(value) ? null : $"{field} '{value}' is not a MAC address (expected aa:bb:cc:dd:ee:ff)";

    public static string? CheckIp(string field, string? value) =>
        IsIp(value) ? null : $"{field} '{value}' is not an IPv4 or IPv6 address";

    public static string? CheckIPv4(string field, string? value) =>
        IsIPv4(value) ? null : $"{field} '{value}' is not an IPv4 address";

    public static string? CheckIPv6(string field, string? value) =>
        IsIPv6(value) ? null : $"{field} '{value}' is not an IPv6 address";

    public static string? CheckGwId(string field, string? value) =>
        IsGwId(value) ? null : $"{field} '{value}' is not a gateway id (1–{MaxIdLength} letters, digits or - _ . : @)";

    public static string? CheckDeviceId(string field, string? value) =>
        IsDeviceId(value) ? null : $"{field} '{value}' is not a device id (1–{MaxDeviceIdLength} letters, digits or - _ . : @)";

    public static string? CheckFirmwareUrl(string field, string? value) =>
        !IsFirmwareUrl(value) ? $"{field} '{value}' is not an absolute http(s) URL without whitespace or shell metacharacters"
        : value!.Length > ReaderLimits.MaxFirmwareUrlLength
            ? $"{field} is {value.Length} characters; the firmware builds its sysupgrade command in a 512-byte buffer and does nothing with a longer URL: at most {ReaderLimits.MaxFirmwareUrlLength}"
            : null;

    /// <summary>
    /// Whether a request (its req_id set) fits the device's reader in every dialect: the seed's "type"
    /// framing with a command id is the longest. Lists the firmware replaces whole (sync_*) cannot be split.
    /// </summary>
    public static string? CheckWireSize(IControllerRequest request)
    {
        var bytes = ProtocolCodec.Encode(request).Length;
        if (bytes <= ReaderLimits.MaxPayloadBytes) return null;
        var whole = request is SyncDomainsRequest or SyncMacsRequest
            ? $"; {request.Type} replaces the router's whole list, so it cannot be split into several requests: send fewer or shorter entries"
            : "";
        return $"the request is {bytes} bytes on the wire; a router's reader takes frames of at most {ReaderLimits.MaxFrameBytes} bytes " +
               $"with their header ({ReaderLimits.MaxPayloadBytes} of request){whole}";
    }

    /// <summary>The firmware's shell executor refuses longer commands (client_library/shell_executor.h MAX_COMMAND_LENGTH).</summary>
    public const int MaxShellCommandLength = 4096;

    /// <summary>The shell executor's own limit (SHELL_TIMEOUT): a timeout outside 1–30 s becomes 30 on the router.</summary>
    public const int MaxShellTimeoutSeconds = 30;

    /// <summary>
    /// A server's host name or address for the set_*_serv requests: a DNS name, an IPv4 or an IPv6 address,
    /// at most 253 characters. The router stores it in UCI and its configuration file: nothing else may pass.
    /// </summary>
    public static bool IsServerHost(string? value) =>
        IsIp(value) || IsDomain(value, allowWildcard: false);

    /// <summary>
    /// A server path for set_websocket_serv / set_auth_serv: starts with '/', at most 255 characters of
    /// letters, digits and / . _ ~ % = &amp; ? + - (a query string such as ?key=… included). No spaces, quotes,
    /// parentheses or control characters: the router writes it into its configuration and an HTTP request line.
    /// </summary>
    public static bool IsServerPath(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= 255 && value[0] == '/'
        && value.All(c => char.IsAsciiLetterOrDigit(c) || "/._~%=&?+-".Contains(c));

    /// <summary>An MQTT user name or password: 1–128 printable ASCII characters without spaces or quotes.</summary>
    public static bool IsCredentialText(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= 128 && value.All(c => c is > ' ' and <= '~' and not ('"' or '\\' or '\''));

    private static string? CheckServer(string? hostname, int? port, string? path) =>
        (hostname is not null && !IsServerHost(hostname) ? $"hostname '{hostname}' is not a host name or an IP address" : null)
        ?? (port is not null and not (>= 1 and <= 65535) ? $"port must be from 1 to 65535, got {port}" : null)
        ?? (path is not null && !IsServerPath(path)
            ? $"path '{path}' must start with / and hold only letters, digits and / . _ ~ % = & ? + - (at most 255 characters)" : null);

    public static string? CheckDomain(string field, string? value, bool allowWildcard) =>
        IsDomain(value, allowWildcard) ? null
            : $"{field} '{value}' is not a {(allowWildcard ? "wildcard domain (*.example.com) or " : "")}domain name";

    public static string? CheckPositive(string field, long? value) =>
        value is > 0 ? null : $"{field} must be a positive integer, got {value?.ToString(CultureInfo.InvariantCulture) ?? "null"}";

    /// <summary>
    /// Validates a server→device request the way the device would need it: every field it carries.
    /// Returns the first problem, or null. <paramref name="knownGateways"/>, when non-empty, limits gw_id.
    /// </summary>
    public static string? CheckRequest(IControllerRequest request, IReadOnlyCollection<string>? knownGateways = null)
    {
        string? Gw(string? gw) =>
            CheckGwId("gw_id", gw)
            ?? (knownGateways is { Count: > 0 } && !knownGateways.Contains(gw!)
                ? $"gw_id '{gw}' is not a gateway of this device (known: {string.Join(", ", knownGateways)})" : null);

        return request switch
        {
            AuthRequest a => CheckIp("client_ip", a.ClientIp) ?? CheckMac("client_mac", a.ClientMac) ?? Gw(a.GwId)
                ?? (string.IsNullOrWhiteSpace(a.Token) || a.Token.Length > 256 ? "token must be a non-empty string of at most 256 characters" : null)
                ?? (a.ClientName is { Length: > 128 } ? "client_name is longer than 128 characters" : null),
            KickoffRequest k => CheckIp("client_ip", k.ClientIp) ?? CheckMac("client_mac", k.ClientMac)
                ?? CheckDeviceId("device_id", k.DeviceId) ?? Gw(k.GwId),
            TmpPassRequest t => CheckMac("client_mac", t.ClientMac)
                ?? (t.Timeout is null ? null : CheckPositive("timeout", t.Timeout)),
            FirmwareUpgradeRequest f => CheckFirmwareUrl("url", f.Url),
            GetClientInfoRequest g => CheckMac("mac", g.Mac),
            SyncMacsRequest m => m.Macs!.Select((mac, i) => CheckMac($"macs[{i}]", mac)).FirstOrDefault(e => e is not null),
            SyncDomainsRequest s => s.Domains!.Select((d, i) => CheckDomain($"domains[{i}]", d,
                s.Type == SyncDomainsRequest.WildcardTypeName)).FirstOrDefault(e => e is not null),
            UpdateDeviceInfoRequest u => u.DeviceInfo!.ApMacAddress is { } m ? CheckMac("device_info.ap_mac_address", m) : null,
            SetWifiInfoRequest w => w.Data!.Value.ValueKind == System.Text.Json.JsonValueKind.Object ? null : "data must be an object keyed by radio",
            ShellRequest sh => string.IsNullOrWhiteSpace(sh.Command) ? "command must be a non-empty string"
                : sh.Command.Length > MaxShellCommandLength ? $"command is {sh.Command.Length} characters; the router's shell executor takes at most {MaxShellCommandLength}"
                : sh.Command.Any(c => char.IsControl(c) && c is not ('\n' or '\t')) ? "command must not contain control characters other than newline and tab"
                : sh.Timeout is not null and not (>= 1 and <= MaxShellTimeoutSeconds) ? $"timeout must be from 1 to {MaxShellTimeoutSeconds} seconds (the router's limit), got {sh.Timeout}"
                : null,
            SetAuthServRequest a => a is { Hostname: null, Port: null, Path: null } ? "set_auth_serv needs at least one of hostname, port, path"
                : CheckServer(a.Hostname, a.Port, a.Path),
            SetWebSocketServRequest ws => ws is { Hostname: null, Port: null, Path: null, UseSsl: null } ? "set_websocket_serv needs at least one of hostname, port, path, use_ssl"
                : CheckServer(ws.Hostname, ws.Port, ws.Path),
            SetMqttServRequest m => m is { Hostname: null, Port: null, Username: null, Password: null, UseSsl: null } ? "set_mqtt_serv needs at least one of hostname, port, username, password, use_ssl"
                : CheckServer(m.Hostname, m.Port, null)
                  ?? (m.Username is not null && !IsCredentialText(m.Username) ? "username must be 1–128 printable characters without spaces or quotes" : null)
                  ?? (m.Password is not null && !IsCredentialText(m.Password) ? "password must be 1–128 printable characters without spaces or quotes" : null),
            _ => null,
        };
    }
}
