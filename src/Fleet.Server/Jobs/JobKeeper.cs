using Akka.Actor;
using Akka.Event;
using Akka.Hosting;

namespace Fleet.Server.Jobs;

/// <summary>
/// Keeps unfinished jobs running: a cluster singleton that, every <see cref="JobSettings.WakeEverySeconds"/>, wakes each
/// job the jobs table says is not finished. A sharded entity only starts when a message reaches it: after a whole
/// cluster's restart, or when the node that held a job died, this is what brings the job back (it recovers from its
/// journal and carries on where it stopped).
/// </summary>
public sealed class JobKeeper : ReceiveActor, IWithTimers
{
    private sealed record Wake
    {
        public static readonly Wake Instance = new();
    }

    private sealed record Found(IReadOnlyList<string> JobIds);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IActorRef _jobs = ActorRefs.Nobody;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(JobStore store, JobSettings settings) => Akka.Actor.Props.Create(() => new JobKeeper(store, settings));

    public JobKeeper(JobStore store, JobSettings settings)
    {
        Receive<Wake>(_ => store.UnfinishedAsync(CancellationToken.None)
            .PipeTo(Self, success: ids => new Found(ids), failure: e => new Status.Failure(e)));
        Receive<Found>(f =>
        {
            foreach (var id in f.JobIds) _jobs.Tell(new WakeJob(id));
        });
        Receive<Status.Failure>(f => _log.Warning("job keeper: reading unfinished jobs failed: {0}", f.Cause.Message));
        Timers.StartPeriodicTimer("wake", Wake.Instance, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(settings.WakeEverySeconds));
    }

    protected override void PreStart() => _jobs = ActorRegistry.For(Context.System).Get<JobEntity>();
}
