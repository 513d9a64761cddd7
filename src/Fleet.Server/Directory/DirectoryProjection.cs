using Akka;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Fleet.Server.Serialization;

namespace Fleet.Server.Directory;

public sealed record GetProjectionStatus : IFleetSerializable
{
    public static readonly GetProjectionStatus Instance = new();
}

public sealed record ProjectionStatus(long Offset) : IFleetSerializable;

public static class DirectoryProjectionHosting
{
    /// <summary>One projection per cluster: a singleton on the oldest node.</summary>
    public static AkkaConfigurationBuilder WithDirectoryProjection(this AkkaConfigurationBuilder builder, DirectoryStore store,
        DirectorySettings? settings = null) =>
        builder.WithSingleton<DirectoryProjection>(FleetNames.DirectoryProjection, DirectoryProjection.Props(store, settings),
            new ClusterSingletonOptions(), createProxyToo: false);
}

/// <summary>
/// Feeds the device directory from the journal: every device event, in journal order, applied in batches together with
/// the offset. Runs as a cluster singleton, but a singleton can overlap its successor (a batch still in flight at a
/// handover, a node downed while alive): each incarnation first claims the directory (the next epoch, a fencing token),
/// and every write checks the epoch and the expected offset in its own transaction. A stale incarnation's write is
/// refused and it stops; the incarnation that claimed last writes alone. Under a split-brain resolver the last claimant
/// is the surviving singleton (a new singleton starts only once the old oldest node is downed).
/// Also runs the reconciliation (<see cref="DirectoryReconciliation"/>) every
/// <see cref="DirectorySettings.ReconcileEverySeconds"/>, under the same fence.
/// </summary>
public sealed class DirectoryProjection : ReceiveActor, IWithTimers
{
    private sealed record Claimed(DirectoryFence Fence);
    private sealed record ClaimFailed(Exception Cause);
    private sealed record Progress(long Offset);
    private sealed record Failed(Exception Cause);
    private sealed record Fenced(string Why);
    private sealed record RunAgain;
    private sealed record StartReconciliation;
    private sealed record ReconciliationDue(TimeSpan After);
    private sealed record ReconciliationDone(ReconciliationFigures? Figures, Exception? Error);

    private const string ReconcileTimer = "reconcile";
    private const string ClaimTimer = "claim";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly DirectoryStore _store;
    private readonly DirectorySettings _settings;
    private readonly CancellationTokenSource _stop = new();
    private readonly IMaterializer _materializer = Context.Materializer();
    private long _offset;
    private long _epoch;
    private bool _reconciling;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(DirectoryStore store, DirectorySettings? settings = null) =>
        Akka.Actor.Props.Create(() => new DirectoryProjection(store, settings ?? new DirectorySettings()));

    public DirectoryProjection(DirectoryStore store, DirectorySettings settings)
    {
        _store = store;
        _settings = settings;
        Receive<Claimed>(c => Run(c.Fence));
        Receive<ClaimFailed>(f =>
        {
            _log.Warning(f.Cause, "directory projection: claiming the directory failed; retrying");
            Timers.StartSingleTimer(ClaimTimer, ClaimAgain.Instance, TimeSpan.FromSeconds(2));
        });
        Receive<ClaimAgain>(_ => Claim());
        Receive<Progress>(p => _offset = p.Offset);
        Receive<GetProjectionStatus>(_ => Sender.Tell(new ProjectionStatus(_offset)));
        // Not a restart of the actor: that would claim a new epoch, and a stale incarnation must never fence its successor.
        Receive<Failed>(f =>
        {
            _log.Error(f.Cause, "directory projection stream failed; it starts again (epoch {0})", _epoch);
            Timers.StartSingleTimer(ClaimTimer, new RunAgain(), TimeSpan.FromSeconds(2));
        });
        Receive<RunAgain>(_ => Run(new DirectoryFence(_epoch, _offset)));
        Receive<Fenced>(f =>
        {
            _log.Warning("directory projection (epoch {0}) stops: {1}", _epoch, f.Why);
            Context.Stop(Self);
        });
        Receive<ReconciliationDue>(d => Timers.StartSingleTimer(ReconcileTimer, new StartReconciliation(), d.After));
        Receive<StartReconciliation>(_ => Reconcile());
        Receive<ReconciliationDone>(Reconciled);
    }

    private sealed record ClaimAgain
    {
        public static readonly ClaimAgain Instance = new();
    }

    protected override void PreStart() => Claim();

    protected override void PostStop()
    {
        _stop.Cancel();
        _stop.Dispose();
    }

    private void Claim() => _store.ClaimAsync(_stop.Token).PipeTo(Self, success: f => new Claimed(f), failure: e => new ClaimFailed(e));

    private void Run(DirectoryFence fence)
    {
        _epoch = fence.Epoch;
        _offset = fence.Offset;
        _log.Info("directory projection runs: epoch {0}, from offset {1}", fence.Epoch, fence.Offset);
        var epoch = fence.Epoch;
        var self = Self;
        long lastOffsetWrite = 0;
        var journal = PersistenceQuery.Get(Context.System).ReadJournalFor<SqlReadJournal>(FleetNames.QueryJournal);
        var materializer = _materializer;
        // The stream restarts itself with backoff (database blips); it resumes from the stored offset, which is the one
        // its next write must find (a different one: another projection wrote, and this one is stale).
        RestartSource.OnFailuresWithBackoff(() =>
                {
                    long stored = 0;
                    return Source.FromTask(_store.ReadFenceAsync())
                        .Select(f => stored = f.Offset)
                        // All events in journal order, not EventsByTag: tags cost a second row per event, and
                        // the tag query scans every "device" row on each poll (the tags index is on tag alone).
                        // Job entities persist to the same journal (persistence ids "job-…"): their events are read and left out below.
                        .ConcatMany(offset => journal.AllEvents(Offset.Sequence(offset)))
                        .Where(env => env.Event is IDeviceEvent && env.PersistenceId.StartsWith(FleetNames.PersistenceIdPrefix, StringComparison.Ordinal))
                        .Select(env => new DirectoryEvent(
                            env.PersistenceId[FleetNames.PersistenceIdPrefix.Length..], (IDeviceEvent)env.Event,
                            ((Sequence)env.Offset).Value, env.SequenceNr))
                        .GroupedWithin(1000, TimeSpan.FromMilliseconds(200))
                        .SelectAsync(1, async batch =>
                        {
                            // Every write competes with the journal (SQLite has one writer): batches that
                            // change no row (of the directory or the client plane) only move the offset, and
                            // that can wait a few seconds — replaying them after a crash changes nothing.
                            var list = batch.ToList();
                            var now = Environment.TickCount64;
                            if (list.Exists(e => DirectoryStore.Affects(e.Event) || Fleet.Server.Clients.ClientStore.Affects(e.Event))
                                || now - lastOffsetWrite > 5000)
                            {
                                try
                                {
                                    await _store.ApplyAsync(list, epoch, stored);
                                }
                                catch (DirectoryFencedException e)
                                {
                                    return new Outcome(0, e.Message);
                                }
                                stored = list[^1].Ordering;
                                lastOffsetWrite = now;
                            }
                            return new Outcome(list[^1].Ordering, null);
                        })
                        // Fenced: the stream ends (no restart) and the actor stops.
                        .TakeWhile(o => o.FencedBecause is null, inclusive: true);
                },
                RestartSettings.Create(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), 0.2))
            .RunForeach(o => self.Tell(o.FencedBecause is { } why ? new Fenced(why) : new Progress(o.Offset)), materializer)
            .ContinueWith(t =>
            {
                if (t.IsFaulted) self.Tell(new Failed(t.Exception!));
            }, TaskScheduler.Default);
        ScheduleReconciliation();
    }

    private sealed record Outcome(long Offset, string? FencedBecause);

    /// <summary>
    /// The next pass starts a period after the last one ended (stored: a new singleton keeps the rhythm), but not sooner
    /// than a little after this projection started, so that it first catches up with the journal.
    /// </summary>
    private void ScheduleReconciliation()
    {
        if (_settings.ReconcileEverySeconds <= 0) return;
        var period = TimeSpan.FromSeconds(_settings.ReconcileEverySeconds);
        var settle = period < TimeSpan.FromSeconds(30) ? period : TimeSpan.FromSeconds(30);
        _store.ReadReconciliationAsync(_stop.Token).PipeTo(Self, success: f =>
        {
            var due = (f.FinishedAt ?? f.StartedAt) is { } last ? last + period - DateTimeOffset.UtcNow : TimeSpan.Zero;
            return new ReconciliationDue(due > settle ? due : settle);
        }, failure: e => new ReconciliationDone(null, e));
    }

    private void Reconcile()
    {
        if (_reconciling) return;
        _reconciling = true;
        var pass = new DirectoryReconciliation(Context.System, _store, _settings, _materializer);
        pass.RunAsync(_epoch, _stop.Token).PipeTo(Self, success: f => new ReconciliationDone(f, null), failure: e => new ReconciliationDone(null, e));
    }

    private void Reconciled(ReconciliationDone done)
    {
        _reconciling = false;
        switch (done.Error?.GetBaseException())
        {
            case DirectoryFencedException f:
                Self.Tell(new Fenced(f.Message));
                return;
            case OperationCanceledException when _stop.IsCancellationRequested:
                return;
            case { } e:
                _log.Warning(e, "directory reconciliation failed; the next pass runs as scheduled");
                break;
            default:
                if (done.Figures is { } figures)
                    _log.Info("directory reconciliation: {0} devices checked, {1} rows repaired ({2} missing added)",
                        figures.Checked, figures.Repaired, figures.Missing);
                break;
        }
        Timers.StartSingleTimer(ReconcileTimer, new StartReconciliation(), TimeSpan.FromSeconds(Math.Max(1, _settings.ReconcileEverySeconds)));
    }
}
