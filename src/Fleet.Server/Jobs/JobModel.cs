using System.Collections.Immutable;
using System.Text.Json;
using Fleet.Protocol;
using Fleet.Server.Serialization;

namespace Fleet.Server.Jobs;

/// <summary>A maintenance window, local time ("01:00"–"05:00"; an end before the start runs over midnight).</summary>
public sealed record MaintenanceWindow(TimeOnly Start, TimeOnly End)
{
    public bool Contains(TimeOnly t) => Start <= End ? t >= Start && t < End : t >= Start || t < End;
}

/// <summary>What a rollout adds to a job: the image, the release it must produce, its stages and rules.</summary>
public sealed record RolloutSpec(
    string Url, bool Force, string Release, string? Revision, int? Canary, double? CanaryPercent, double WaveFactor,
    int? AbortFailurePercent, int AbortMinFinished, int DeviceTimeoutSeconds, int Retries,
    ImmutableList<MaintenanceWindow> Windows, string Zone, string? ZoneTag, bool Approval);

/// <summary>A job as created: what it sends to which devices, how fast, until when.</summary>
public sealed record JobSpec(
    string Kind, string? Name, Selection Selection, IControllerRequest? Command, int RatePerMinute, DateTimeOffset Deadline,
    bool WaitOffline, int TimeoutSeconds, string CreatedBy, DateTimeOffset CreatedAt, RolloutSpec? Rollout = null)
{
    public const string CommandKind = "command";
    public const string RolloutKind = "rollout";
}

/// <summary>One device in a job: where it stands, with the command it waits on.</summary>
public sealed record JobDevice(
    string DeviceId, int Index, int Stage, string Status, string? CommandId = null, int Attempt = 0, string? Error = null,
    DateTimeOffset? UpdatedAt = null, DateTimeOffset? FlashedAt = null, string? Zone = null, string? ClientIp = null,
    string? GwId = null, string? Reported = null, int Checks = 0);

public interface IJobEvent : IFleetSerializable;

public sealed record JobCreated(string JobId, JobSpec Spec, ImmutableList<JobTarget> Targets, ImmutableList<int> StageSizes,
    DateTimeOffset At) : IJobEvent;
/// <summary>A device moved on in the job (the command it now waits on, the attempt, what went wrong, what it reported).</summary>
public sealed record JobDeviceChanged(string DeviceId, string Status, string? CommandId, int Attempt, string? Error, DateTimeOffset At,
    DateTimeOffset? FlashedAt = null, string? Reported = null, int Checks = 0) : IJobEvent;
public sealed record JobStatusChanged(string Status, string? Reason, DateTimeOffset At) : IJobEvent;
public sealed record JobStageStarted(int Stage, DateTimeOffset At) : IJobEvent;

/// <summary>Job and device statuses (docs/ADMIN_API.md, "Jobs" and "Rollouts").</summary>
public static class JobStatus
{
    public const string Running = "running", Paused = "paused", AwaitingApproval = "awaiting_approval", Completed = "completed",
        Cancelled = "cancelled", Aborted = "aborted";

    public static bool IsFinal(string s) => s is Completed or Cancelled or Aborted;

    // device statuses
    public const string Pending = "pending", Offline = "offline", Skipped = "skipped", Queued = "queued", Sent = "sent";
    public const string Waiting = "waiting", Checking = "checking", Upgrading = "upgrading", Rebooting = "rebooting",
        Verifying = "verifying", Upgraded = "upgraded", Already = "already", Failed = "failed";

    /// <summary>A device's part in the job is over.</summary>
    public static bool DeviceFinal(string s) => s is not (Pending or Queued or Sent or Waiting or Checking or Upgrading or Rebooting or Verifying);

    /// <summary>Waiting on a command the job sent (its answer, or for it to be sent).</summary>
    public static bool OnCommand(string s) => s is Queued or Sent or Checking or Upgrading or Verifying;

    public static readonly string[] CommandDeviceStatuses =
        [Pending, Offline, Skipped, Queued, "delivered", "succeeded", Failed, "timed_out", "expired", "cancelled"];
    public static readonly string[] RolloutDeviceStatuses =
        [Pending, Waiting, Checking, Upgrading, Rebooting, Verifying, Upgraded, Already, Failed, Skipped];
}

/// <summary>Everything a job persists, as one immutable value; <see cref="Apply"/> is the only way it changes (and the snapshot).</summary>
public sealed record JobState : IFleetSerializable
{
    public string? JobId { get; init; }
    public JobSpec? Spec { get; init; }
    public string Status { get; init; } = JobStatus.Running;
    public string? Reason { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public ImmutableList<string> Order { get; init; } = [];
    public ImmutableDictionary<string, JobDevice> Devices { get; init; } = ImmutableDictionary<string, JobDevice>.Empty.WithComparers(StringComparer.Ordinal);
    public ImmutableList<int> StageSizes { get; init; } = [];
    public int Stage { get; init; }

    public static readonly JobState Empty = new();

    public bool Exists => Spec is not null;
    public bool IsRollout => Spec?.Kind == JobSpec.RolloutKind;

    public JobState Apply(IJobEvent e) => e switch
    {
        JobCreated c => this with
        {
            JobId = c.JobId, Spec = c.Spec, Status = JobStatus.Running, StageSizes = c.StageSizes, Stage = 0,
            Order = c.Targets.Select(t => t.DeviceId).ToImmutableList(),
            Devices = c.Targets.Select((t, i) => new JobDevice(t.DeviceId, i, StageOf(i, c.StageSizes), JobStatus.Pending, Zone: t.Zone,
                ClientIp: t.ClientIp, GwId: t.GwId, UpdatedAt: c.At)).ToImmutableDictionary(d => d.DeviceId, StringComparer.Ordinal),
        },
        JobDeviceChanged d when Devices.TryGetValue(d.DeviceId, out var before) => this with
        {
            Devices = Devices.SetItem(d.DeviceId, before with
            {
                Status = d.Status, CommandId = d.CommandId, Attempt = d.Attempt, Error = d.Error, UpdatedAt = d.At,
                FlashedAt = d.FlashedAt ?? before.FlashedAt, Reported = d.Reported ?? before.Reported, Checks = d.Checks,
            }),
        },
        JobStatusChanged s => this with { Status = s.Status, Reason = s.Reason, FinishedAt = JobStatus.IsFinal(s.Status) ? s.At : FinishedAt },
        JobStageStarted s => this with { Stage = s.Stage },
        _ => this,
    };

    /// <summary>The stage of the device at <paramref name="index"/> (a command job has one stage).</summary>
    public static int StageOf(int index, IReadOnlyList<int> sizes)
    {
        var end = 0;
        for (var s = 0; s < sizes.Count; s++)
        {
            end += sizes[s];
            if (index < end) return s;
        }
        return Math.Max(0, sizes.Count - 1);
    }

    /// <summary>A canary, then waves each <paramref name="factor"/> times the one before, until all <paramref name="total"/> have a stage.</summary>
    public static ImmutableList<int> Stages(int total, int? canary, double? canaryPercent, double factor)
    {
        if (total == 0) return [];
        var first = canary ?? (int)Math.Ceiling(total * (canaryPercent ?? 100) / 100.0);
        first = Math.Clamp(first, 1, total);
        var sizes = ImmutableList.CreateBuilder<int>();
        var left = total;
        double size = first;
        while (left > 0)
        {
            var n = (int)Math.Min(left, Math.Max(1, Math.Round(size)));
            sizes.Add(n);
            left -= n;
            size *= factor;
        }
        return sizes.ToImmutable();
    }

    public IEnumerable<JobDevice> InOrder() => Order.Select(id => Devices[id]);

    public SortedDictionary<string, int> Counts(int? stage = null)
    {
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var d in Devices.Values)
            if (stage is null || d.Stage == stage) counts[d.Status] = counts.GetValueOrDefault(d.Status) + 1;
        return counts;
    }

    /// <summary>
    /// A rollout stage: done (every device finished or waiting offline, at least one finished), how many finished, how many failed, and whether
    /// its abort rule fires.
    /// </summary>
    public (bool Done, int Finished, int Failed, bool Abort) StageHealth(int stage)
    {
        int finished = 0, failed = 0, open = 0;
        foreach (var d in Devices.Values)
        {
            if (d.Stage != stage) continue;
            if (d.Status is JobStatus.Upgraded or JobStatus.Already) finished++;
            else if (d.Status == JobStatus.Failed) { finished++; failed++; }
            else if (d.Status is not (JobStatus.Waiting or JobStatus.Skipped)) open++;
        }
        var rule = Spec?.Rollout;
        var abort = rule?.AbortFailurePercent is { } pct && finished >= Math.Max(1, rule.AbortMinFinished) && failed * 100.0 / finished > pct;
        // Done: nothing in progress, and at least one device finished — a stage whose devices are all offline has shown
        // nothing about the image yet, so the next one waits (until they return, or the deadline).
        return (open == 0 && finished > 0, finished, failed, abort);
    }

    /// <summary>Where a firmware answer says DISTRIB_RELEASE / DISTRIB_REVISION are, whatever the dialect's nesting.</summary>
    public static (string? Release, string? Revision) FirmwareOf(JsonElement? response)
    {
        string? release = null, revision = null;
        void Walk(JsonElement e, int depth)
        {
            if (depth > 4) return;
            if (e.ValueKind == JsonValueKind.Object)
                foreach (var p in e.EnumerateObject())
                {
                    if (p.Name == "DISTRIB_RELEASE" && p.Value.ValueKind == JsonValueKind.String) release ??= p.Value.GetString();
                    else if (p.Name == "DISTRIB_REVISION" && p.Value.ValueKind == JsonValueKind.String) revision ??= p.Value.GetString();
                    else Walk(p.Value, depth + 1);
                }
        }
        if (response is { } r) Walk(r, 0);
        return (release, revision);
    }

    /// <summary>Whether now is inside one of the rollout's windows in the device's zone (no windows: always).</summary>
    public static bool InWindow(RolloutSpec r, string? zone, DateTimeOffset now)
    {
        if (r.Windows.Count == 0) return true;
        var tz = Zone(zone ?? r.Zone) ?? Zone(r.Zone) ?? TimeZoneInfo.Utc;
        var local = TimeOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, tz).DateTime);
        return r.Windows.Exists(w => w.Contains(local));
    }

    public static TimeZoneInfo? Zone(string? id)
    {
        if (string.IsNullOrEmpty(id)) return null;
        try { return TimeZoneInfo.FindSystemTimeZoneById(id); }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException) { return null; }
    }

    /// <summary>The command id of one step of one device in one job: the same on every retry of that step (idempotent).</summary>
    public static string CommandIdFor(string jobId, string deviceId, string step, int attempt)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{jobId}\n{deviceId}\n{step}\n{attempt}"));
        return "j" + Convert.ToHexStringLower(hash.AsSpan(0, 12));
    }
}
