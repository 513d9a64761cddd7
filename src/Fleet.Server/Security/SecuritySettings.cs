namespace Fleet.Server.Security;

/// <summary>Section Fleet:Security: who may call the admin API, how devices are admitted, what is audited.</summary>
public sealed class SecuritySettings
{
    /// <summary>
    /// Admin API keys (Fleet:Security:ApiKeys:N:{Name, Key or KeySha256, Role}). Empty: the first start
    /// generates an admin key into a file beside the database (see <see cref="ApiKeyStore"/>).
    /// </summary>
    public List<ApiKeySettings> ApiKeys { get; set; } = [];

    /// <summary>open (identity is the device_id), fleet-key or device-key; checked at start. See docs/SECURITY.md.</summary>
    public string DeviceAdmission { get; set; } = "open";

    /// <summary>The fleet's enrolment keys (fleet-key and device-key admission): ?key=… on the WebSocket path.</summary>
    public string[] EnrolmentKeys { get; set; } = [];

    /// <summary>
    /// device-key admission: a device enrolled with a fleet key is approved at once instead of pending (and a 9.x
    /// router is handed a key of its own).
    /// </summary>
    public bool AutoApprove { get; set; }

    /// <summary>
    /// The WebSocket path (no query) a 9.x router is handed with its own key (set_websocket_serv), e.g.
    /// /ws/wifidogx. Empty: the path the router connected on, as this node saw it. Set it when a proxy in front
    /// of the nodes rewrites paths.
    /// </summary>
    public string? DeviceKeyPath { get; set; }

    /// <summary>When set, a firmware_upgrade URL must start with one of these (an admin may override per request, audited).</summary>
    public string[] FirmwareUrlPrefixes { get; set; } = [];

    /// <summary>Audit rows older than this are deleted.</summary>
    public int AuditRetentionDays { get; set; } = 90;

    /// <summary>Throws with what to fix when a setting cannot work.</summary>
    public void Validate()
    {
        ApiKeyStore.FromSettings(ApiKeys);
        foreach (var prefix in FirmwareUrlPrefixes)
            if (!Uri.TryCreate(prefix, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https") || string.IsNullOrEmpty(u.Host))
                throw new InvalidOperationException(
                    $"Fleet:Security:FirmwareUrlPrefixes: '{prefix}' must be an absolute http(s) URL prefix such as https://firmware.example.com/releases/");
        if (AuditRetentionDays < 1) throw new InvalidOperationException("Fleet:Security:AuditRetentionDays must be at least 1");
    }

    /// <summary>Where the generated admin key is written; default: admin.key beside the SQLite database (data/ for PostgreSQL).</summary>
    public string? GeneratedKeyFile { get; set; }
}

public sealed class ApiKeySettings
{
    public string Name { get; set; } = "";
    /// <summary>The key itself (prefer <see cref="KeySha256"/> in files that others can read).</summary>
    public string? Key { get; set; }
    /// <summary>Lower-case hex SHA-256 of the key's UTF-8 bytes.</summary>
    public string? KeySha256 { get; set; }
    public string Role { get; set; } = "";
}
