using System.Globalization;
using System.Text.Json;
using Fleet.Protocol;
using Fleet.Server.Serialization;

namespace Fleet.Server.Jobs;

/// <summary>Every message to a job entity names its job; the shard extractor reads it.</summary>
public interface IToJob : IFleetSerializable
{
    string JobId { get; }
}

/// <summary>Create the job (its selection is resolved by the job itself, from the directory, once).</summary>
public sealed record CreateJob(string JobId, JobSpec Spec) : IToJob;
public sealed record GetJob(string JobId) : IToJob;
public sealed record GetJobDevices(string JobId, string? Status, int? Stage, int After, int Limit) : IToJob;
/// <summary>pause, resume, cancel, abort, approve; <paramref name="Kind"/> set: a job of another kind is not found.</summary>
public sealed record ControlJob(string JobId, string Action, string By, string? Kind = null) : IToJob;
/// <summary>From the keeper: an unfinished job is started again wherever its shard lives now (after a restart, a node's loss).</summary>
public sealed record WakeJob(string JobId) : IToJob;

public interface IJobReply : IFleetSerializable;
public sealed record JobFound(JobView View, bool Replayed = false) : IJobReply;
public sealed record JobNotFound(string JobId) : IJobReply;
public sealed record JobConflict(string Problem, JobView View) : IJobReply;
public sealed record JobDevicesPage(IReadOnlyList<JobDeviceView> Items, int? Next) : IJobReply;

public sealed record JobDeviceView(string DeviceId, string Status, int Stage, string? CommandId, int Attempt, string? Error,
    DateTimeOffset? UpdatedAt, string? Reported);

public sealed record StageView(int Index, int Size, string Status, IReadOnlyDictionary<string, int> Counts);

/// <summary>A rollout's abort rule, as the request gives it.</summary>
public sealed record AbortView(int FailurePercent, int MinFinished);

/// <summary>A maintenance window, as the request gives it ("01:00", "05:00").</summary>
public sealed record WindowView(string Start, string End);

public sealed record RolloutView(string Url, bool Force, string Release, string? Revision, IReadOnlyList<StageView> Stages, int CurrentStage,
    AbortView? Abort, IReadOnlyList<WindowView> Windows, string Zone, string? ZoneTag, bool Approval,
    int DeviceTimeoutSeconds, int Retries, int? Canary, double? CanaryPercent, double WaveFactor);

/// <summary>A job as the API shows it (docs/ADMIN_API.md, "Jobs").</summary>
public sealed record JobView(
    string JobId, string Kind, string? Name, string Status, string? Reason, DateTimeOffset CreatedAt, string CreatedBy,
    DateTimeOffset Deadline, DateTimeOffset? FinishedAt, Selection? Selection, JsonElement? Command, int RatePerMinute,
    bool WaitOffline, int Total, IReadOnlyDictionary<string, int> Counts, RolloutView? Rollout = null)
{
    public static JobView From(JobState s)
    {
        var spec = s.Spec!;
        RolloutView? rollout = null;
        if (spec.Rollout is { } r)
        {
            var stages = s.StageSizes.Select((size, i) =>
            {
                var status = i < s.Stage ? "done"
                    : i > s.Stage ? JobStatus.Pending
                    : s.StageHealth(i).Done && s.Status is JobStatus.Completed or JobStatus.AwaitingApproval ? "done"
                    : s.Status == JobStatus.Running ? JobStatus.Running : s.Status;
                return new StageView(i, size, status, s.Counts(i));
            }).ToList();
            rollout = new RolloutView(r.Url, r.Force, r.Release, r.Revision, stages, s.Stage,
                r.AbortFailurePercent is { } pct ? new AbortView(pct, r.AbortMinFinished) : null,
                r.Windows.Select(w => new WindowView(w.Start.ToString("HH\\:mm", CultureInfo.InvariantCulture), w.End.ToString("HH\\:mm", CultureInfo.InvariantCulture))).ToList(),
                r.Zone, r.ZoneTag, r.Approval, r.DeviceTimeoutSeconds,
                r.Retries, r.Canary, r.CanaryPercent, r.WaveFactor);
        }
        return new JobView(s.JobId!, spec.Kind, spec.Name, s.Status, s.Reason, spec.CreatedAt, spec.CreatedBy, spec.Deadline, s.FinishedAt,
            spec.Selection, spec.Command is { } c ? ProtocolCodec.EncodeToElement(c) : null, spec.RatePerMinute, spec.WaitOffline,
            s.Order.Count, s.Counts(), rollout);
    }

    /// <summary>For lists: the selection and command left out.</summary>
    public JobView Brief() => this with { Selection = null, Command = null };
}
