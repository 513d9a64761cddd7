namespace Fleet.Server.Alerts;

/// <summary>Alert rules and where alerts go (configuration section Fleet:Alerts; README "Operate").</summary>
public sealed class AlertSettings
{
    /// <summary>A device offline longer than this opens a device_offline alert (0 = rule off).</summary>
    public int DeviceOfflineSeconds { get; set; } = 600;
    /// <summary>A command that ends failed or timed_out opens a command_failed alert for its device.</summary>
    public bool CommandFailed { get; set; } = true;
    /// <summary>A device flagged cloned opens a device_cloned alert.</summary>
    public bool DeviceCloned { get; set; } = true;
    /// <summary>A device_cloned alert resolves after this long without a new episode.</summary>
    public int ClonedClearMinutes { get; set; } = 60;
    /// <summary>A cluster member that becomes unreachable or leaves opens a node_left alert.</summary>
    public bool NodeLeft { get; set; } = true;
    /// <summary>How often the directory is read for devices offline too long (and ones back online).</summary>
    public int ScanEverySeconds { get; set; } = 30;
    /// <summary>Where each opening and resolution is POSTed.</summary>
    public List<WebhookSettings> Webhooks { get; set; } = [];
    /// <summary>Attempts per webhook delivery (the first included), with exponential backoff from 1 s up to a minute.</summary>
    public int WebhookAttempts { get; set; } = 8;
    /// <summary>The first retry's delay; each next one doubles (with jitter), up to a minute.</summary>
    public double WebhookFirstRetrySeconds { get; set; } = 1;

    public void Validate()
    {
        if (DeviceOfflineSeconds < 0) throw new InvalidOperationException($"Fleet:Alerts:DeviceOfflineSeconds must be 0 (off) or more, not {DeviceOfflineSeconds}");
        if (ClonedClearMinutes < 1) throw new InvalidOperationException($"Fleet:Alerts:ClonedClearMinutes must be 1 or more, not {ClonedClearMinutes}");
        if (ScanEverySeconds < 1) throw new InvalidOperationException($"Fleet:Alerts:ScanEverySeconds must be 1 or more, not {ScanEverySeconds}");
        if (WebhookAttempts is < 1 or > 100) throw new InvalidOperationException($"Fleet:Alerts:WebhookAttempts must be 1 to 100, not {WebhookAttempts}");
        if (WebhookFirstRetrySeconds is <= 0 or > 60 || double.IsNaN(WebhookFirstRetrySeconds))
            throw new InvalidOperationException($"Fleet:Alerts:WebhookFirstRetrySeconds must be above 0 and at most 60, not {WebhookFirstRetrySeconds}");
        for (var i = 0; i < Webhooks.Count; i++)
        {
            var w = Webhooks[i];
            if (!Uri.TryCreate(w.Url, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                throw new InvalidOperationException($"Fleet:Alerts:Webhooks:{i}:Url must be an absolute http(s) URL, not '{w.Url}'");
            if (string.IsNullOrEmpty(w.Secret))
                throw new InvalidOperationException($"Fleet:Alerts:Webhooks:{i}:Secret is required: every delivery is signed with it (X-Fleet-Signature)");
        }
    }
}

public sealed class WebhookSettings
{
    public string Url { get; set; } = "";
    /// <summary>The HMAC-SHA256 key of X-Fleet-Signature.</summary>
    public string Secret { get; set; } = "";
}
