using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;

namespace Fleet.Server.Jobs;

/// <summary>
/// A bulk command or a firmware rollout, as a persistent actor of its own (sharded by job id; woken after restarts by the
/// <see cref="JobKeeper"/>). It resolves its selection once, then sends to device entities at its rate and records each
/// device's result. Every step is persisted (with the command id it will use) before it is sent, and the command id is
/// derived from (job, device, step, attempt): after a crash the job sends the same step again with the same id, and the
/// device entity answers with the command it already has instead of queuing another — no device gets a step twice.
/// </summary>
public sealed class JobEntity : ReceivePersistentActor, IWithTimers
{
    private sealed record Resolved(CreateJob Create, IReadOnlyList<JobTarget> Targets);
    private sealed record ResolveFailed(CreateJob Create, Exception Cause);
    private sealed record Submitted(string DeviceId, string CommandId, object Reply);
    private sealed record Presence(IReadOnlyDictionary<string, DirectoryRow> Rows, IReadOnlyCollection<string> LiveNodes);
    private sealed record OnlineNow(IReadOnlySet<string> Online);
    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private const string TickTimer = "tick";

    private readonly string _jobId;
    private readonly FleetSettings _settings;
    private readonly JobSettings _jobs;
    private readonly DirectoryStore _directory;
    private readonly SelectionResolver _resolver;
    private readonly JobStore _store;
    private readonly TimeProvider _clock;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationTokenSource _stop = new();
    private IActorRef _devices = ActorRefs.Nobody;
    private JobState _state = JobState.Empty;
    private bool _creating;
    private readonly List<IActorRef> _creators = [];
    private int _sinceSnapshot;
    private double _tokens;
    private DateTimeOffset _lastRecheck;
    private DateTimeOffset _lastPresence;
    private DateTimeOffset _lastSummary;
    private bool _summaryDirty;
    private bool _presenceRunning;
    private IReadOnlySet<string>? _online;
    private Dictionary<string, string> _byCommand = new(StringComparer.Ordinal);

    public ITimerScheduler Timers { get; set; } = null!;
    public override string PersistenceId { get; }

    public static Props Props(string jobId, FleetSettings settings, DirectoryStore directory, SelectionResolver resolver, JobStore store,
        TimeProvider clock) =>
        Akka.Actor.Props.Create(() => new JobEntity(jobId, settings, directory, resolver, store, clock));

    public JobEntity(string jobId, FleetSettings settings, DirectoryStore directory, SelectionResolver resolver, JobStore store, TimeProvider clock)
    {
        _jobId = jobId;
        _settings = settings;
        _jobs = settings.Jobs;
        _directory = directory;
        _resolver = resolver;
        _store = store;
        _clock = clock;
        PersistenceId = "job-" + jobId;

        Recover<SnapshotOffer>(o => _state = (JobState)o.Snapshot);
        Recover<IJobEvent>(e => _state = _state.Apply(e));
        Recover<RecoveryCompleted>(_ =>
        {
            if (!_state.Exists) return;
            Index();
            _summaryDirty = true;
            Resume();
        });

        Command<CreateJob>(OnCreate);
        Command<Resolved>(OnResolved);
        Command<ResolveFailed>(f =>
        {
            _creating = false;
            _log.Error(f.Cause, "job {0}: its selection could not be read", _jobId);
            _creators.ForEach(c => c.Tell(new Status.Failure(f.Cause)));
            _creators.Clear();
        });
        Command<GetJob>(_ => Sender.Tell(_state.Exists ? new JobFound(JobView.From(_state)) : new JobNotFound(_jobId)));
        Command<GetJobDevices>(OnDevices);
        Command<ControlJob>(OnControl);
        Command<WakeJob>(_ =>
        {
            if (!_state.Exists && !_creating) Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(PoisonPill.Instance));
        });
        Command<Tick>(_ => OnTick());
        Command<Submitted>(OnSubmitted);
        Command<CommandFound>(f => OnCommandView(f.View));
        Command<CommandNotFound>(n =>
        {
            // The entity does not know the command: it was never created (a submit lost on the way), so send it now.
            if (_byCommand.TryGetValue(n.CommandId, out var deviceId) && _state.Devices.TryGetValue(deviceId, out var d)) Submit(d);
        });
        Command<DeviceNotFound>(n => DeviceRefused(n.DeviceId, "the device is not known to the fleet"));
        Command<Presence>(OnPresence);
        Command<OnlineNow>(o =>
        {
            _online = o.Online;
            _presenceRunning = false;
        });
        Command<Status.Failure>(f =>
        {
            _presenceRunning = false;
            _log.Warning("job {0}: reading the directory failed: {1}", _jobId, f.Cause.Message);
        });
        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(f => _log.Warning("job {0}: snapshot failed: {1}", _jobId, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
        Command<ReceiveTimeout>(_ => Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(PoisonPill.Instance)));
    }

    protected override void PreStart()
    {
        _devices = ActorRegistry.For(Context.System).Get<DeviceEntity>();
        base.PreStart();
    }

    protected override void PostStop()
    {
        _stop.Cancel();
        _stop.Dispose();
        base.PostStop();
    }

    private DateTimeOffset Now => _clock.GetUtcNow();

    // ------------------------------------------------------------------ creation

    private void OnCreate(CreateJob c)
    {
        if (_state.Exists)
        {
            Sender.Tell(SameSpec(_state.Spec!, c.Spec)
                ? new JobFound(JobView.From(_state), Replayed: true)
                : new JobConflict($"Idempotency-Key already named job {_jobId} with a different request; use a new key", JobView.From(_state)));
            return;
        }
        _creators.Add(Sender);
        if (_creating) return; // a retry while its selection is read: answered with the first
        _creating = true;
        Resolve(c.Spec).PipeTo(Self, success: t => new Resolved(c, t), failure: e => new ResolveFailed(c, e));
    }

    private static bool SameSpec(JobSpec a, JobSpec b) =>
        a.Kind == b.Kind && System.Text.Json.JsonSerializer.Serialize(a.Selection) == System.Text.Json.JsonSerializer.Serialize(b.Selection)
        && a.Name == b.Name && a.RatePerMinute == b.RatePerMinute && a.Rollout?.Url == b.Rollout?.Url && a.Rollout?.Release == b.Rollout?.Release
        && (a.Command is null ? b.Command is null : b.Command is not null && CommandLifecycle.SameRequest(a.Command, b.Command));

    private async Task<IReadOnlyList<JobTarget>> Resolve(JobSpec spec)
    {
        var found = await _resolver.ResolveAsync(spec.Selection, _stop.Token);
        var zoneTag = spec.Rollout?.ZoneTag;
        return found.Select(f => new JobTarget(f.DeviceId, zoneTag is not null ? f.Tags.GetValueOrDefault(zoneTag) : null,
            f.Client?.ClientIp, f.Client?.GwId)).ToList();
    }

    private void OnResolved(Resolved r)
    {
        _creating = false;
        var creators = _creators.ToList();
        _creators.Clear();
        if (_state.Exists)
        {
            creators.ForEach(c => c.Tell(new JobFound(JobView.From(_state), Replayed: true)));
            return;
        }
        var spec = r.Create.Spec;
        var stages = spec.Rollout is { } ro
            ? JobState.Stages(r.Targets.Count, ro.Canary, ro.CanaryPercent, ro.WaveFactor)
            : r.Targets.Count == 0 ? ImmutableList<int>.Empty : [r.Targets.Count];
        var created = new JobCreated(_jobId, spec, r.Targets.ToImmutableList(), stages, Now);
        Persist(created, e =>
        {
            Apply(e);
            Index();
            _log.Info("job {0} ({1}) created by {2}: {3} devices, stages [{4}]", _jobId, spec.Kind, spec.CreatedBy, r.Targets.Count,
                string.Join(", ", stages));
            for (var i = 0; i < creators.Count; i++) creators[i].Tell(new JobFound(JobView.From(_state), Replayed: i > 0));
            _summaryDirty = true;
            WriteSummary(force: true);
            Resume();
        });
    }

    // ------------------------------------------------------------------ reads and controls

    private void OnDevices(GetJobDevices q)
    {
        if (!_state.Exists)
        {
            Sender.Tell(new JobNotFound(_jobId));
            return;
        }
        var items = new List<JobDeviceView>();
        int? next = null;
        for (var i = Math.Max(0, q.After); i < _state.Order.Count; i++)
        {
            var d = _state.Devices[_state.Order[i]];
            if (q.Status is not null && d.Status != q.Status) continue;
            if (q.Stage is not null && d.Stage != q.Stage) continue;
            if (items.Count == q.Limit)
            {
                next = i;
                break;
            }
            items.Add(new JobDeviceView(d.DeviceId, d.Status, d.Stage, d.CommandId, d.Attempt, d.Error, d.UpdatedAt, d.Reported));
        }
        Sender.Tell(new JobDevicesPage(items, next));
    }

    private void OnControl(ControlJob c)
    {
        if (!_state.Exists || (c.Kind is not null && c.Kind != _state.Spec!.Kind))
        {
            Sender.Tell(new JobNotFound(_jobId));
            return;
        }
        var s = _state.Status;
        var rollout = _state.IsRollout;
        var (next, problem) = c.Action switch
        {
            _ when JobStatus.IsFinal(s) => ((string?)null, $"the job is {s}"),
            "pause" when s is JobStatus.Running or JobStatus.AwaitingApproval => (JobStatus.Paused, null),
            "pause" => (null, $"only a running job can be paused; this one is {s}"),
            "resume" when s == JobStatus.Paused => (JobStatus.Running, null),
            "resume" => (null, $"only a paused job can be resumed; this one is {s}"),
            "cancel" when !rollout => (JobStatus.Cancelled, null),
            "abort" when rollout => (JobStatus.Aborted, null),
            "approve" when rollout && s == JobStatus.AwaitingApproval => (JobStatus.Running, null),
            "approve" when rollout => (null, $"the rollout is not awaiting approval; it is {s}"),
            _ => (null, $"'{c.Action}' does not apply to a {(rollout ? "rollout" : "command job")}"),
        };
        if (next is null)
        {
            Sender.Tell(new JobConflict(problem!, JobView.From(_state)));
            return;
        }
        var events = new List<IJobEvent> { new JobStatusChanged(next, $"{c.Action} by {c.By}", Now) };
        if (c.Action == "approve") events.Add(new JobStageStarted(_state.Stage + 1, Now));
        var replyTo = Sender;
        Save(events, () =>
        {
            if (c.Action == "cancel") CancelQueued();
            if (JobStatus.IsFinal(_state.Status)) FinishUnstarted();
            replyTo.Tell(new JobFound(JobView.From(_state)));
            WriteSummary(force: true);
        });
    }

    /// <summary>A cancelled job's commands still waiting in device queues are cancelled there (their results come back as cancelled).</summary>
    private void CancelQueued()
    {
        foreach (var d in _state.Devices.Values)
            if (d is { Status: JobStatus.Queued, CommandId: { } id }) _devices.Tell(new CancelCommand(d.DeviceId, id), Self);
    }

    /// <summary>Devices a finished job never started are skipped.</summary>
    private void FinishUnstarted()
    {
        var events = _state.Devices.Values.Where(d => d.Status is JobStatus.Pending or JobStatus.Waiting && !Writing(d.DeviceId))
            .Select(d => (IJobEvent)new JobDeviceChanged(d.DeviceId, JobStatus.Skipped, null, d.Attempt,
                d.Status == JobStatus.Waiting ? d.Error : null, Now))
            .ToList();
        if (events.Count > 0) Save(events, () => { });
    }

    // ------------------------------------------------------------------ the tick

    private void Resume()
    {
        _lastRecheck = Now;
        _tokens = 1; // the first device goes at once, whatever the rate
        ResubmitInFlight();
        SetReceiveTimeout(null);
        Timers.StartPeriodicTimer(TickTimer, Tick.Instance, TimeSpan.FromMilliseconds(_jobs.TickMilliseconds));
    }

    private void OnTick()
    {
        if (!_state.Exists) return;
        var now = Now;
        var spec = _state.Spec!;
        if (!JobStatus.IsFinal(_state.Status) && now >= spec.Deadline)
        {
            Save([new JobStatusChanged(JobStatus.Completed, "deadline reached", now)], () =>
            {
                FinishUnstarted();
                WriteSummary(force: true);
            });
            return;
        }
        if (_state.Status == JobStatus.Running)
        {
            var perTick = spec.RatePerMinute / 60.0 * (_jobs.TickMilliseconds / 1000.0);
            _tokens = Math.Min(_tokens + perTick, Math.Max(1, perTick));
            if (_state.IsRollout) RolloutStep(now);
            else CommandStep(now);
        }
        if (_state.IsRollout) WatchReboots(now);
        if (now - _lastRecheck >= TimeSpan.FromSeconds(_jobs.RecheckSeconds))
        {
            _lastRecheck = now;
            ResubmitInFlight();
        }
        RefreshPresence(now);
        CheckDone(now);
        WriteSummary(force: false);
        if (JobStatus.IsFinal(_state.Status) && !_state.Devices.Values.Any(d => !JobStatus.DeviceFinal(d.Status)))
        {
            Timers.Cancel(TickTimer);
            SetReceiveTimeout(TimeSpan.FromMinutes(2));
        }
    }

    private void CommandStep(DateTimeOffset now)
    {
        var spec = _state.Spec!;
        var events = new List<IJobEvent>();
        var send = new List<string>();
        foreach (var d in _state.InOrder())
        {
            if (_tokens < 1) break;
            if (d.Status != JobStatus.Pending || Writing(d.DeviceId)) continue;
            if (!spec.WaitOffline)
            {
                if (_online is null) break; // not read yet
                if (!_online.Contains(d.DeviceId))
                {
                    events.Add(new JobDeviceChanged(d.DeviceId, JobStatus.Offline, null, 0, "offline when its turn came", now));
                    continue;
                }
            }
            _tokens -= 1;
            var id = JobState.CommandIdFor(_jobId, d.DeviceId, "command", 0);
            events.Add(new JobDeviceChanged(d.DeviceId, JobStatus.Queued, id, 0, null, now));
            send.Add(d.DeviceId);
        }
        if (events.Count > 0) Save(events, () => send.ForEach(id => Submit(_state.Devices[id])));
    }

    private void RolloutStep(DateTimeOffset now)
    {
        var r = _state.Spec!.Rollout!;
        // Stage progress first: the abort rule, the next stage.
        var health = _state.StageHealth(_state.Stage);
        if (health.Abort)
        {
            Save([new JobStatusChanged(JobStatus.Aborted,
                $"stage {_state.Stage}: {health.Failed} of {health.Finished} finished devices failed (more than {r.AbortFailurePercent}%)", now)], () =>
            {
                FinishUnstarted();
                WriteSummary(force: true);
            });
            return;
        }
        if (health.Done && _state.Stage + 1 < _state.StageSizes.Count)
        {
            Save(r.Approval
                ? [new JobStatusChanged(JobStatus.AwaitingApproval, $"stage {_state.Stage} is done and healthy", now)]
                : [new JobStageStarted(_state.Stage + 1, now)], () => WriteSummary(force: true));
            return;
        }
        if (_online is null) return;
        var events = new List<IJobEvent>();
        var send = new List<string>();
        foreach (var d in _state.InOrder())
        {
            if (d.Stage > _state.Stage) break;
            if (d.Status is not (JobStatus.Pending or JobStatus.Waiting) || Writing(d.DeviceId)) continue;
            string? wait = !JobState.InWindow(r, d.Zone, now) ? "outside its maintenance window"
                : !_online.Contains(d.DeviceId) ? "offline" : null;
            if (wait is not null)
            {
                if (d.Status != JobStatus.Waiting || d.Error != wait)
                    events.Add(new JobDeviceChanged(d.DeviceId, JobStatus.Waiting, null, d.Attempt, wait, now));
                continue;
            }
            if (_tokens < 1) continue;
            _tokens -= 1;
            events.Add(new JobDeviceChanged(d.DeviceId, JobStatus.Checking, JobState.CommandIdFor(_jobId, d.DeviceId, "check", d.Attempt),
                d.Attempt, null, now));
            send.Add(d.DeviceId);
        }
        if (events.Count > 0) Save(events, () => send.ForEach(id => Submit(_state.Devices[id])));
    }

    /// <summary>Rebooting devices: back (a connection made after the upgrade was accepted) → verify; not back in time → failed.</summary>
    private void WatchReboots(DateTimeOffset now)
    {
        var timeout = TimeSpan.FromSeconds(_state.Spec!.Rollout!.DeviceTimeoutSeconds);
        var late = _state.Devices.Values
            .Where(d => d is { Status: JobStatus.Rebooting, FlashedAt: { } f } && now - f > timeout && !Writing(d.DeviceId))
            .Select(d => (IJobEvent)new JobDeviceChanged(d.DeviceId, JobStatus.Failed, null, d.Attempt,
                $"not back within {timeout.TotalSeconds:0} s after the upgrade was accepted", now))
            .ToList();
        if (late.Count > 0) Save(late, () => { });
    }

    /// <summary>Reads, from the directory, which of the devices the job is about to need are online (and when rebooting ones reconnected).</summary>
    private void RefreshPresence(DateTimeOffset now)
    {
        if (_presenceRunning || now - _lastPresence < TimeSpan.FromSeconds(Math.Min(2, _jobs.RecheckSeconds))) return;
        var spec = _state.Spec!;
        var wanted = _state.InOrder()
            .Where(d => d.Status is JobStatus.Pending or JobStatus.Waiting && (_state.IsRollout ? d.Stage <= _state.Stage : !spec.WaitOffline))
            .Select(d => d.DeviceId).Take(5000).ToList();
        var rebooting = _state.Devices.Values.Where(d => d.Status == JobStatus.Rebooting).Select(d => d.DeviceId).ToList();
        if (wanted.Count == 0 && rebooting.Count == 0) return;
        _presenceRunning = true;
        _lastPresence = now;
        var live = NodeIdentity.LiveNodes(Context.System);
        var ct = _stop.Token;
        var directory = _directory;
        var self = Self;
        _ = Task.Run(async () =>
        {
            try
            {
                if (rebooting.Count > 0)
                {
                    var rows = new Dictionary<string, DirectoryRow>(StringComparer.Ordinal);
                    foreach (var chunk in rebooting.Chunk(200))
                        foreach (var (k, v) in await directory.ReadRowsAsync(chunk, ct)) rows[k] = v;
                    self.Tell(new Presence(rows, live));
                }
                self.Tell(new OnlineNow(wanted.Count == 0 ? new HashSet<string>() : await directory.OnlineAmongAsync(wanted, live, ct)));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                self.Tell(new Status.Failure(e));
            }
        }, ct);
    }

    private void OnPresence(Presence p)
    {
        var now = Now;
        var events = new List<IJobEvent>();
        var send = new List<string>();
        foreach (var (id, row) in p.Rows)
        {
            if (!_state.Devices.TryGetValue(id, out var d) || d is not { Status: JobStatus.Rebooting, FlashedAt: { } flashed } || Writing(id)) continue;
            var connected = row.ConnectedAt is { } text ? DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : (DateTimeOffset?)null;
            if (!row.Online || row.Node is null || !p.LiveNodes.Contains(row.Node) || connected is null || connected <= flashed) continue;
            events.Add(new JobDeviceChanged(id, JobStatus.Verifying, JobState.CommandIdFor(_jobId, id, "verify", d.Checks), d.Attempt, null, now,
                Checks: d.Checks));
            send.Add(id);
        }
        if (events.Count > 0) Save(events, () => send.ForEach(id => Submit(_state.Devices[id])));
    }

    private void CheckDone(DateTimeOffset now)
    {
        if (JobStatus.IsFinal(_state.Status) || _state.Status == JobStatus.Paused) return;
        if (_writing.Count == 0 && _state.Devices.Values.All(d => JobStatus.DeviceFinal(d.Status)) && (!_state.IsRollout || _state.Stage >= _state.StageSizes.Count - 1))
            Save([new JobStatusChanged(JobStatus.Completed, "every device finished", now)], () => WriteSummary(force: true));
    }

    // ------------------------------------------------------------------ commands to devices

    private IControllerRequest RequestFor(JobDevice d)
    {
        var spec = _state.Spec!;
        return d.Status switch
        {
            JobStatus.Checking or JobStatus.Verifying => new SimpleRequest { Type = RequestKinds.GetFirmwareInfo.Type },
            JobStatus.Upgrading => new FirmwareUpgradeRequest { Url = spec.Rollout!.Url, Force = spec.Rollout.Force ? true : null },
            _ => spec.Command switch
            {
                // A kickoff of a client the job found through the client plane: that router's own address and gateway.
                KickoffRequest k => k with { DeviceId = d.DeviceId, ClientIp = k.ClientIp ?? d.ClientIp, GwId = k.GwId ?? d.GwId },
                var c => c!,
            },
        };
    }

    private void Submit(JobDevice d)
    {
        if (d.CommandId is not { } id) return;
        _byCommand[id] = d.DeviceId;
        var spec = _state.Spec!;
        var now = Now;
        var rollout = _state.IsRollout;
        var ttl = rollout ? _jobs.RolloutCommandTimeoutSeconds * 2
            : spec.WaitOffline ? (int)Math.Clamp((spec.Deadline - now).TotalSeconds, 1, CommandsApi.MaxTtlSeconds) : spec.TimeoutSeconds + 60;
        var timeout = rollout ? _jobs.RolloutCommandTimeoutSeconds : spec.TimeoutSeconds;
        var deviceId = d.DeviceId;
        _devices.Ask<object>(new SubmitCommand(deviceId, id, RequestFor(d), null, ttl, timeout), TimeSpan.FromSeconds(30))
            .PipeTo(Self, success: r => new Submitted(deviceId, id, r), failure: e => new Submitted(deviceId, id, new Status.Failure(e)));
    }

    private void ResubmitInFlight()
    {
        foreach (var d in _state.Devices.Values)
            if (JobStatus.OnCommand(d.Status) && !Writing(d.DeviceId)) Submit(d);
    }

    private void OnSubmitted(Submitted s)
    {
        if (!_state.Devices.TryGetValue(s.DeviceId, out var d) || d.CommandId != s.CommandId || Writing(s.DeviceId)) return;
        switch (s.Reply)
        {
            case CommandFound f when !CommandFinal(f.View.Status):
                // Queued or sent on the device: its final status comes back by AwaitCommand (a device stays "queued" in
                // the job until then; writing every "sent" would double the job's writes).
                _devices.Tell(new AwaitCommand(d.DeviceId, s.CommandId), Self);
                break;
            case CommandFound f:
                OnCommandView(f.View);
                break;
            case DeviceNotFound:
                DeviceRefused(d.DeviceId, "the device is not known to the fleet");
                break;
            case DevicePending:
                DeviceRefused(d.DeviceId, "the device awaits admission (approve it first)");
                break;
            case CommandInvalid i:
                DeviceRefused(d.DeviceId, i.Problem);
                break;
            case CommandRefused r:
                DeviceRefused(d.DeviceId, r.Problem);
                break;
            case CommandConflict c:
                DeviceRefused(d.DeviceId, c.Problem);
                break;
            default:
                // No answer (the device's shard is moving, a node is stopping): the recheck sends it again, with the same id.
                break;
        }
    }

    private static bool CommandFinal(string status) => status is not ("queued" or "sent");

    /// <summary>The device entity refused the step: a failure before anything reached the router.</summary>
    private void DeviceRefused(string deviceId, string why)
    {
        if (!_state.Devices.TryGetValue(deviceId, out var d) || JobStatus.DeviceFinal(d.Status) || Writing(deviceId)) return;
        var error = d.Status == JobStatus.Verifying ? "could not verify: " + why : why;
        Save([new JobDeviceChanged(deviceId, JobStatus.Failed, d.CommandId, d.Attempt, error, Now)], () => { });
    }

    private void OnCommandView(CommandView v)
    {
        if (!_state.Devices.TryGetValue(v.DeviceId, out var d) || d.CommandId != v.CommandId || !CommandFinal(v.Status) || Writing(v.DeviceId)) return;
        var now = Now;
        if (!_state.IsRollout)
        {
            if (JobStatus.OnCommand(d.Status))
                Save([new JobDeviceChanged(d.DeviceId, v.Status, d.CommandId, d.Attempt, v.Error, now)], () => { });
            return;
        }
        var r = _state.Spec!.Rollout!;
        var ok = v.Status == "succeeded";
        switch (d.Status)
        {
            case JobStatus.Checking when ok:
            {
                var (release, revision) = JobState.FirmwareOf(v.Response);
                if (Matches(r, release, revision))
                {
                    Save([new JobDeviceChanged(d.DeviceId, JobStatus.Already, d.CommandId, d.Attempt, null, now, Reported: Describe(release, revision))], () => { });
                    return;
                }
                var id = JobState.CommandIdFor(_jobId, d.DeviceId, "upgrade", d.Attempt);
                Save([new JobDeviceChanged(d.DeviceId, JobStatus.Upgrading, id, d.Attempt, null, now, Reported: Describe(release, revision))],
                    () => Submit(_state.Devices[d.DeviceId]));
                return;
            }
            case JobStatus.Checking:
                BeforeFlash(d, $"get_firmware_info {v.Status}{(v.Error is null ? "" : ": " + v.Error)}", now);
                return;
            case JobStatus.Upgrading when ok || v.Status == "timed_out":
                // Accepted (the firmware answers before it flashes), or no answer: it may be flashing. Never sent again.
                Save([new JobDeviceChanged(d.DeviceId, JobStatus.Rebooting, d.CommandId, d.Attempt,
                    ok ? null : "no answer to the upgrade; waiting for the device to come back", now, FlashedAt: v.CompletedAt ?? now)], () => { });
                return;
            case JobStatus.Upgrading:
                BeforeFlash(d, $"firmware_upgrade {v.Status}{(v.Error is null ? "" : ": " + v.Error)}", now);
                return;
            case JobStatus.Verifying when ok:
            {
                var (release, revision) = JobState.FirmwareOf(v.Response);
                Save([Matches(r, release, revision)
                    ? new JobDeviceChanged(d.DeviceId, JobStatus.Upgraded, d.CommandId, d.Attempt, null, now, Reported: Describe(release, revision), Checks: d.Checks)
                    : new JobDeviceChanged(d.DeviceId, JobStatus.Failed, d.CommandId, d.Attempt,
                        $"came back on release {Describe(release, revision) ?? "(none reported)"}, not {Describe(r.Release, r.Revision)}", now,
                        Reported: Describe(release, revision), Checks: d.Checks)], () => { });
                return;
            }
            case JobStatus.Verifying when d.Checks < 2:
            {
                // Asking what runs is harmless: ask again on the same connection or the next.
                var id = JobState.CommandIdFor(_jobId, d.DeviceId, "verify", d.Checks + 1);
                Save([new JobDeviceChanged(d.DeviceId, JobStatus.Verifying, id, d.Attempt, null, now, Checks: d.Checks + 1)],
                    () => Submit(_state.Devices[d.DeviceId]));
                return;
            }
            case JobStatus.Verifying:
                Save([new JobDeviceChanged(d.DeviceId, JobStatus.Failed, d.CommandId, d.Attempt, $"could not verify: get_firmware_info {v.Status}", now,
                    Checks: d.Checks)], () => { });
                return;
        }
    }

    /// <summary>A step failed before anything was flashed: try again later (a new attempt) while retries are left.</summary>
    private void BeforeFlash(JobDevice d, string why, DateTimeOffset now)
    {
        var retries = _state.Spec!.Rollout!.Retries;
        Save([d.Attempt < retries
            ? new JobDeviceChanged(d.DeviceId, JobStatus.Pending, null, d.Attempt + 1, $"attempt {d.Attempt + 1} failed: {why}", now)
            : new JobDeviceChanged(d.DeviceId, JobStatus.Failed, d.CommandId, d.Attempt, why, now)], () => { });
    }

    private static bool Matches(RolloutSpec r, string? release, string? revision) =>
        release == r.Release && (r.Revision is null || revision == r.Revision);

    private static string? Describe(string? release, string? revision) =>
        release is null ? null : revision is null ? release : $"{release} ({revision})";

    // ------------------------------------------------------------------ persistence

    private void Apply(IJobEvent e)
    {
        _state = _state.Apply(e);
        _summaryDirty = true;
        // Written: operators watching the event stream see the job move (its devices' commands have their own events).
        if (e is JobStatusChanged or JobStageStarted)
            Events.FleetEvents.Publish(Context.System, new Events.FleetEvent(Events.FleetEvent.JobStatusChanged, Now, null,
                Status: _state.Status, Reason: _state.Reason, Detail: $"{_state.Spec!.Kind}, stage {_state.Stage} of {_state.StageSizes.Count}",
                JobId: _jobId));
        if (++_sinceSnapshot >= _jobs.SnapshotEvery)
        {
            _sinceSnapshot = 0;
            SaveSnapshot(_state);
        }
    }

    /// <summary>
    /// Persists the events (one write), applies them, then runs <paramref name="after"/> (sends go after their intent is
    /// stored). A device's step is written without holding the job's mailbox (a job of 10,000 devices records thousands of
    /// results a second, and reads of its view must not wait behind them): until its write is done the device is
    /// <see cref="Writing"/>, and nothing else is decided for it. A change of the job's own status or stage holds the
    /// mailbox until it is written.
    /// </summary>
    private void Save(IReadOnlyList<IJobEvent> events, Action after)
    {
        if (events.Count == 0)
        {
            after();
            return;
        }
        var left = events.Count;
        if (events.All(e => e is JobDeviceChanged))
        {
            foreach (JobDeviceChanged e in events) _writing[e.DeviceId] = _writing.GetValueOrDefault(e.DeviceId) + 1;
            PersistAllAsync(events, e =>
            {
                var id = ((JobDeviceChanged)e).DeviceId;
                if (--_writing[id] == 0) _writing.Remove(id);
                Apply(e);
                if (--left == 0) after();
            });
            return;
        }
        PersistAll(events, e =>
        {
            Apply(e);
            if (--left == 0) after();
        });
    }

    /// <summary>Devices with a step being written: decided again only once it is.</summary>
    private readonly Dictionary<string, int> _writing = new(StringComparer.Ordinal);

    private bool Writing(string deviceId) => _writing.ContainsKey(deviceId);

    private void Index()
    {
        _byCommand = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var d in _state.Devices.Values)
            if (d.CommandId is { } id) _byCommand[id] = d.DeviceId;
    }

    private void WriteSummary(bool force)
    {
        if (!_state.Exists || !_summaryDirty) return;
        var now = Now;
        if (!force && now - _lastSummary < TimeSpan.FromSeconds(1)) return;
        _summaryDirty = false;
        _lastSummary = now;
        var view = JobView.From(_state);
        var log = _log;
        var id = _jobId;
        _store.UpsertAsync(view, _stop.Token).ContinueWith(t =>
        {
            if (t.IsFaulted) log.Warning("job {0}: its summary row was not written: {1}", id, t.Exception?.GetBaseException().Message);
        }, TaskScheduler.Default);
    }
}
