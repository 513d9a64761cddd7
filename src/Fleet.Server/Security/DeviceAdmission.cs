using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Fleet.Server.Connections;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Security;

/// <summary>How a node admits router sockets (Fleet:Security:DeviceAdmission).</summary>
public enum AdmissionMode
{
    /// <summary>The seed's behaviour: a socket is whatever device_id it claims.</summary>
    Open,
    /// <summary>The WebSocket path must carry an enrolment key of the fleet or the device's own key.</summary>
    FleetKey,
    /// <summary>Each device must present its own key; an unknown device with an enrolment key is enrolled (pending).</summary>
    DeviceKey,
}

/// <summary>What a socket showed at its upgrade. Credential: none, fleet-key (an enrolment key) or device-key (<see cref="DeviceKey"/> says whose).</summary>
public sealed record AdmissionTicket(string Credential, DeviceKeyMatch? DeviceKey, string Path)
{
    public const string None = "none";
    public const string FleetKey = "fleet-key";
    public const string OwnKey = "device-key";
}

/// <summary>Admission's decision on a socket's first connect: bind (with what the entity must record), or refuse.</summary>
public sealed record ConnectVerdict(AdmissionGrant? Grant, string? Refused = null, HandOverKey? HandOver = null);

/// <summary>
/// Device admission: which sockets may claim which device_id (docs/SECURITY.md, "Device admission"). Real firmware sends
/// no token or certificate; the WebSocket path, query included, is the one thing a router presents, so keys
/// travel as <c>/ws/wifidogx?key=…</c>. Checked twice: at the upgrade (is the key one of ours at all? else
/// 401 before any WebSocket exists) and at the socket's first connect (may this key claim this device_id? else
/// the socket is closed before anything reaches the device's entity, so the device's current connection is
/// never disturbed). Never logs a key; names keys by <see cref="DeviceKeyStore.Fingerprint(byte[])"/>.
/// </summary>
public sealed class DeviceAdmission
{
    public const string KeyParameter = "key";
    private const int MaxKeyLength = 256;

    private readonly DeviceKeyStore _keys;
    private readonly AuditLog _audit;
    private readonly ILogger<DeviceAdmission> _log;
    private readonly byte[][] _enrolment;
    private readonly CommandSettings _commands;

    public DeviceAdmission(IOptions<FleetSettings> settings, DeviceKeyStore keys, AuditLog audit, AdmissionMetrics metrics,
        ILogger<DeviceAdmission> log)
    {
        var s = settings.Value.Security;
        Mode = ParseMode(s.DeviceAdmission);
        AutoApprove = s.AutoApprove;
        HandOverPath = string.IsNullOrEmpty(s.DeviceKeyPath) ? null : s.DeviceKeyPath;
        _enrolment = s.EnrolmentKeys.Select(ApiKeyStore.Hash).ToArray();
        _commands = settings.Value.Commands;
        _keys = keys;
        _audit = audit;
        Metrics = metrics;
        _log = log;
    }

    public AdmissionMode Mode { get; }
    public bool AutoApprove { get; }
    /// <summary>Fleet:Security:DeviceKeyPath: the path a router is handed with its key, when not the one it connected on.</summary>
    public string? HandOverPath { get; }
    public AdmissionMetrics Metrics { get; }

    public static string Name(AdmissionMode m) => m switch
    {
        AdmissionMode.FleetKey => "fleet-key",
        AdmissionMode.DeviceKey => "device-key",
        _ => "open",
    };

    /// <summary>Reads Fleet:Security:DeviceAdmission; throws with what to fix.</summary>
    public static AdmissionMode ParseMode(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "open" => AdmissionMode.Open,
        "fleet-key" => AdmissionMode.FleetKey,
        "device-key" => AdmissionMode.DeviceKey,
        _ => throw new InvalidOperationException(
            $"Fleet:Security:DeviceAdmission '{text}' must be open, fleet-key or device-key (see docs/SECURITY.md, device admission)"),
    };

    /// <summary>Checks the admission settings at start; throws with what to fix.</summary>
    public static void Validate(SecuritySettings s)
    {
        var mode = ParseMode(s.DeviceAdmission);
        for (var i = 0; i < s.EnrolmentKeys.Length; i++)
        {
            var k = s.EnrolmentKeys[i];
            if (k is null || k.Length < 16 || k.Length > MaxKeyLength || !k.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~'))
                throw new InvalidOperationException(
                    $"Fleet:Security:EnrolmentKeys:{i} must be 16 to {MaxKeyLength} characters of letters, digits and - _ . ~ " +
                    "(it travels unescaped in the router's WebSocket path: ?key=…)");
        }
        if (mode == AdmissionMode.FleetKey && s.EnrolmentKeys.Length == 0)
            throw new InvalidOperationException(
                "Fleet:Security:DeviceAdmission is fleet-key but Fleet:Security:EnrolmentKeys is empty: no router could connect");
        if (s.DeviceKeyPath is { Length: > 0 } path && (!Fleet.Protocol.FieldRules.IsServerPath(path) || path.Contains('?') || path.Contains('&')))
            throw new InvalidOperationException(
                $"Fleet:Security:DeviceKeyPath '{s.DeviceKeyPath}' must be a path such as /ws/wifidogx (letters, digits and / . _ ~ % + -, no query)");
    }

    // ------------------------------------------------------------------ at the upgrade

    /// <summary>
    /// The key of the upgrade request (?key=…), judged before the WebSocket exists: an enrolment key of the fleet,
    /// some device's key, or nothing. Open admission takes anything; the others refuse (the reason is returned,
    /// for a 401) a request without a key or with a key that is neither.
    /// </summary>
    public async ValueTask<(AdmissionTicket? Ticket, string? Refusal)> AtUpgradeAsync(HttpRequest request, CancellationToken ct)
    {
        try
        {
            return await JudgeUpgradeAsync(request, ct);
        }
        catch (DbException e)
        {
            // Open admission needs no key: a router is not turned away because the keys cannot be read.
            var path = (request.PathBase + request.Path).Value ?? "/";
            if (Mode == AdmissionMode.Open) return (new AdmissionTicket(AdmissionTicket.None, null, path), null);
            Metrics.UpgradeRefused("admission_unavailable");
            _log.LogError("WebSocket upgrade from {Remote} refused: the device keys could not be read: {Error}",
                request.HttpContext.Connection.RemoteIpAddress, e.Message);
            return (null, Unavailable);
        }
    }

    /// <summary>The refusal when the device keys cannot be read (a 503 with Retry-After, not a 401).</summary>
    public const string Unavailable = "the device keys could not be read; retry shortly";

    private async ValueTask<(AdmissionTicket? Ticket, string? Refusal)> JudgeUpgradeAsync(HttpRequest request, CancellationToken ct)
    {
        var path = (request.PathBase + request.Path).Value ?? "/";
        var values = request.Query[KeyParameter];
        var presented = values.Count == 1 ? values[0] : null;
        if (values.Count > 1) return NoneOfOurs("several_keys", "the WebSocket path carries more than one key");
        if (string.IsNullOrEmpty(presented))
            return NoneOfOurs("no_key", $"device admission is {Name(Mode)}: the WebSocket path must carry a key (?{KeyParameter}=…)");
        const string unknown = "the key is neither an enrolment key of this fleet nor a device's key";
        if (presented.Length > MaxKeyLength) return NoneOfOurs("unknown_key", unknown);
        var hash = ApiKeyStore.Hash(presented);
        var enrolment = false;
        foreach (var e in _enrolment) enrolment |= CryptographicOperations.FixedTimeEquals(hash, e);
        if (enrolment) return (new AdmissionTicket(AdmissionTicket.FleetKey, null, path), null);
        var match = await _keys.FindAsync(presented, ct);
        if (match is not null) return (new AdmissionTicket(AdmissionTicket.OwnKey, match, path), null);
        return NoneOfOurs("unknown_key", unknown);

        // Open admission takes a socket without a key of ours as it takes one without any key.
        (AdmissionTicket?, string?) NoneOfOurs(string reason, string detail) =>
            Mode == AdmissionMode.Open ? (new AdmissionTicket(AdmissionTicket.None, null, path), null) : Refuse(reason, detail);

        (AdmissionTicket?, string?) Refuse(string reason, string detail)
        {
            Metrics.UpgradeRefused(reason);
            _log.LogWarning("Refused WebSocket upgrade from {Remote}: {Reason}: {Detail}",
                request.HttpContext.Connection.RemoteIpAddress, reason, detail);
            return (null, detail);
        }
    }

    // ------------------------------------------------------------------ at the first connect

    /// <summary>
    /// May a socket with <paramref name="ticket"/> claim <paramref name="deviceId"/>? A device key belonging to
    /// another device never may (in any mode but open); in device-key mode an enrolment key no longer may once the
    /// device has used a key of its own (or had its keys revoked). Admitted sockets get what the entity must
    /// record: approve the device, enrol it as pending, or nothing (open). With auto-approve, a 9.x router that
    /// enrols with an enrolment key and has no key yet is issued one, handed over by the entity.
    /// </summary>
    public async ValueTask<ConnectVerdict> AtConnectAsync(AdmissionTicket ticket, string deviceId, bool speaksOp, string remote,
        CancellationToken ct)
    {
        try
        {
            var own = ticket.DeviceKey is { } k && k.DeviceId == deviceId ? k : null;
            if (own is { FirstUse: true }) await FirstUseAsync(own, ct);
            var credential = own is not null ? AdmissionTicket.OwnKey
                : ticket.Credential == AdmissionTicket.FleetKey ? AdmissionTicket.FleetKey : AdmissionTicket.None;
            if (Mode == AdmissionMode.Open)
                return new ConnectVerdict(new AdmissionGrant(credential, AdmissionEffect.None, null, ticket.Path));
            if (ticket.DeviceKey is { } other && own is null)
                return Refuse("key_of_another_device",
                    $"the key presented belongs to device '{other.DeviceId}' (fingerprint {DeviceKeyStore.Fingerprint(other.Sha256)})");
            if (own is not null)
                return new ConnectVerdict(new AdmissionGrant(credential, AdmissionEffect.Approve, "device key", ticket.Path));
            if (Mode == AdmissionMode.FleetKey)
                return new ConnectVerdict(new AdmissionGrant(credential, AdmissionEffect.Approve, "fleet key", ticket.Path));

            // device-key admission, an enrolment key
            if (await _keys.KeyRequiredAsync(deviceId, ct))
                return Refuse("key_required",
                    "this device has used a key of its own (or had its keys revoked): an enrolment key no longer admits it");
            if (!AutoApprove)
            {
                Metrics.Enrolment();
                return new ConnectVerdict(new AdmissionGrant(credential, AdmissionEffect.Enrol, "fleet key", ticket.Path));
            }
            Metrics.AutoApproved();
            var grant = new AdmissionGrant(credential, AdmissionEffect.Approve, AutoApproveActor, ticket.Path);
            // A 9.x router is handed a key of its own, once: a router whose hand-over failed is not issued key after key.
            if (!speaksOp || await _keys.HasKeyAsync(deviceId, ct)) return new ConnectVerdict(grant);
            var key = await _keys.IssueAsync(deviceId, AutoApproveActor, ct);
            var handOver = NewHandOver(deviceId, key, AutoApproveActor);
            await _audit.RecordAsync(new Caller(AutoApproveActor, Role.Admin, remote), "device.approve", deviceId, "auto",
                $"enrolled with a fleet key; key {DeviceKeyStore.Fingerprint(key)} issued, handed over as command {handOver.CommandId}", ct);
            _log.LogInformation("Device {Device} auto-approved; key {Fingerprint} issued and handed over (command {Command})",
                deviceId, DeviceKeyStore.Fingerprint(key), handOver.CommandId);
            return new ConnectVerdict(grant, HandOver: handOver);
        }
        catch (DbException e)
        {
            _log.LogError("Admission of {Device} from {Remote} could not read the device keys: {Error}", deviceId, remote, e.Message);
            // Open admission needs no key: the router is admitted as it would be without one.
            return Mode == AdmissionMode.Open
                ? new ConnectVerdict(new AdmissionGrant(AdmissionTicket.None, AdmissionEffect.None, null, ticket.Path))
                : Refuse("admission_unavailable", "the device keys could not be read; the router will retry");
        }

        ConnectVerdict Refuse(string reason, string detail)
        {
            Metrics.ConnectRefused(reason);
            _log.LogWarning("Refused connect of {Device} from {Remote}: {Reason}: {Detail}; the device's current connection is untouched",
                deviceId, remote, reason, detail);
            return new ConnectVerdict(null, reason);
        }
    }

    public const string AutoApproveActor = "auto-approve";

    /// <summary>The message that makes a device's entity hand <paramref name="key"/> to its router (9.x), as a command of its own.</summary>
    public HandOverKey NewHandOver(string deviceId, string key, string by) =>
        new(deviceId, key, "a" + Guid.CreateVersion7().ToString("N"), by, _commands.DefaultTtlSeconds, _commands.DefaultTimeoutSeconds,
            HandOverPath);

    private async Task FirstUseAsync(DeviceKeyMatch key, CancellationToken ct)
    {
        var dropped = await _keys.MarkUsedAsync(key, ct);
        Metrics.KeyFirstUsed();
        _log.LogInformation("Device {Device} presented its key {Fingerprint} for the first time ({Dropped} older key(s) dropped); " +
                            "from now on it must present a key of its own", key.DeviceId, DeviceKeyStore.Fingerprint(key.Sha256), dropped);
    }
}

/// <summary>Admission's counters, on GET /api/v1/node (admission) and the "Fleet.Server" meter.</summary>
public sealed class AdmissionMetrics : IDisposable
{
    private readonly Meter _meter = new(ConnectionMetrics.MeterName);
    private readonly ConcurrentDictionary<string, long> _upgrades = new(), _connects = new();
    private long _enrolments, _autoApproved, _firstUses, _cloneEpisodes;

    public AdmissionMetrics()
    {
        _meter.CreateObservableCounter("fleet.admission.upgrades_refused",
            () => _upgrades.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("reason", kv.Key))));
        _meter.CreateObservableCounter("fleet.admission.connects_refused",
            () => _connects.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("reason", kv.Key))));
        _meter.CreateObservableCounter("fleet.admission.clone_episodes", () => Interlocked.Read(ref _cloneEpisodes));
    }

    public void UpgradeRefused(string reason) => _upgrades.AddOrUpdate(reason, 1, (_, n) => n + 1);
    public void ConnectRefused(string reason) => _connects.AddOrUpdate(reason, 1, (_, n) => n + 1);
    public void Enrolment() => Interlocked.Increment(ref _enrolments);
    public void AutoApproved() => Interlocked.Increment(ref _autoApproved);
    public void KeyFirstUsed() => Interlocked.Increment(ref _firstUses);
    /// <summary>A device_id whose connections kept replacing each other (counted by the node holding its entity, once per episode).</summary>
    public void CloneEpisode() => Interlocked.Increment(ref _cloneEpisodes);

    public long CloneEpisodes => Interlocked.Read(ref _cloneEpisodes);

    public object Snapshot() => new
    {
        UpgradesRefused = _upgrades.ToDictionary(kv => kv.Key, kv => kv.Value),
        ConnectsRefused = _connects.ToDictionary(kv => kv.Key, kv => kv.Value),
        Enrolments = Interlocked.Read(ref _enrolments),
        AutoApproved = Interlocked.Read(ref _autoApproved),
        KeysFirstUsed = Interlocked.Read(ref _firstUses),
        CloneEpisodes = CloneEpisodes,
    };

    public void Dispose() => _meter.Dispose();
}

public static class DeviceAdmissionServices
{
    /// <summary>
    /// Off altogether, not only below Warning: while this category logs anything (even Critical) ASP.NET Core starts an
    /// Activity and a logging scope for every request, and a router's request lasts as long as its socket (~450 B per
    /// connected router, allocated again on every reconnect; docs/PERFORMANCE.md). Its lines are the per-request ones
    /// (Information) and a failed start, which also ends the process with the exception on stderr.
    /// </summary>
    public const string HostingDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>
    /// Loggers that print a request's URL, and so the key in a router's WebSocket path (?key=…): ASP.NET Core's
    /// "Request starting/finished" lines (Information), Kestrel's bad-request lines, the HTTP logging middleware.
    /// </summary>
    public static readonly string[] UrlLoggingCategories =
        [HostingDiagnostics, "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.HttpLogging"];

    public static IServiceCollection AddDeviceAdmission(this IServiceCollection services, SecuritySettings settings)
    {
        DeviceAdmission.Validate(settings);
        services.AddSingleton<DeviceKeyStore>();
        services.AddSingleton<IStoreTables>(sp => sp.GetRequiredService<DeviceKeyStore>());
        services.AddSingleton<AdmissionMetrics>();
        services.AddSingleton<DeviceAdmission>();
        services.AddHostedService<AdmissionAnnouncement>();
        // Applied after configuration, for every provider by name: a provider-specific or later rule in
        // appsettings.json cannot turn these categories below Warning again.
        services.AddOptions<LoggerFilterOptions>().PostConfigure<IEnumerable<ILoggerProvider>>((o, providers) =>
        {
            foreach (var category in UrlLoggingCategories)
            {
                var level = category == HostingDiagnostics ? LogLevel.None : LogLevel.Warning;
                o.Rules.Add(new LoggerFilterRule(null, category, level, null));
                foreach (var p in providers)
                    o.Rules.Add(new LoggerFilterRule(p.GetType().FullName, category, level, null));
            }
        });
        return services;
    }
}

/// <summary>Says at start how this node admits routers; open admission is a warning.</summary>
public sealed class AdmissionAnnouncement(DeviceAdmission admission, IOptions<FleetSettings> settings, ILogger<AdmissionAnnouncement> log)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var s = settings.Value.Security;
        if (admission.Mode == AdmissionMode.Open)
            log.LogWarning("device admission is open: any socket may claim any device_id " +
                           "(set Fleet:Security:DeviceAdmission to fleet-key or device-key; see docs/SECURITY.md)");
        else
            log.LogInformation("Device admission {Mode}: {Keys} enrolment key(s), auto-approve {AutoApprove}",
                DeviceAdmission.Name(admission.Mode), s.EnrolmentKeys.Length, admission.Mode == AdmissionMode.DeviceKey && s.AutoApprove);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
