using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace Fleet.Edge.Hosting;

/// <summary>
/// Akka's scheduler on .NET timers: each scheduled message or action is one <see cref="Timer"/>, so the process sleeps
/// until the next heartbeat, reconnect or expiry is due. Akka's default (<c>HashedWheelTimerScheduler</c>) ticks every
/// 10 ms whether anything is due or not: on an idle router that was ~100 wake-ups a second and most of the agent's idle
/// CPU (docs/EDGE.md, "Footprint"). A wheel pays off with thousands of timers; the agent has a handful.
/// Selected by <c>akka.scheduler.implementation</c> in agent.conf.
/// </summary>
public sealed class TimerScheduler : SchedulerBase, IDateTimeOffsetNowTimeProvider, IDisposable
{
    private readonly ILoggingAdapter _log;
    private readonly ConcurrentDictionary<Entry, byte> _entries = new();
    private volatile bool _disposed;

    public TimerScheduler(Akka.Configuration.Config scheduler, ILoggingAdapter log) : base(scheduler, log) => _log = log;

    protected override DateTimeOffset TimeNow => DateTimeOffset.UtcNow;
    public override TimeSpan MonotonicClock => Clock.Elapsed;
    public override TimeSpan HighResMonotonicClock => Clock.Elapsed;
    private static readonly System.Diagnostics.Stopwatch Clock = System.Diagnostics.Stopwatch.StartNew();

    protected override void InternalScheduleTellOnce(TimeSpan delay, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        Schedule(delay, null, () => receiver.Tell(message, sender), cancelable);

    protected override void InternalScheduleTellRepeatedly(TimeSpan initialDelay, TimeSpan interval, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        Schedule(initialDelay, interval, () => receiver.Tell(message, sender), cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, Action action, ICancelable cancelable) => Schedule(delay, null, action, cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, IRunnable action, ICancelable cancelable) => Schedule(delay, null, action.Run, cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, Action action, ICancelable cancelable) =>
        Schedule(initialDelay, interval, action, cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, IRunnable action, ICancelable cancelable) =>
        Schedule(initialDelay, interval, action.Run, cancelable);

    private void Schedule(TimeSpan delay, TimeSpan? interval, Action run, ICancelable? cancelable)
    {
        // As Akka's own scheduler: nothing is scheduled once the system has shut the scheduler down.
        if (_disposed) throw new SchedulerException("cannot schedule after the scheduler was stopped");
        if (cancelable?.IsCancellationRequested == true) return;
        var entry = new Entry(this, run, interval is null, cancelable);
        _entries.TryAdd(entry, 0);
        if (cancelable is not null) entry.Registration = cancelable.Token.Register(static e => ((Entry)e!).Stop(), entry);
        try { entry.Timer.Change(delay, interval ?? Timeout.InfiniteTimeSpan); }
        catch (ObjectDisposedException) { } // cancelled between Register and here
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var entry in _entries.Keys) entry.Stop();
    }

    private sealed class Entry
    {
        private readonly TimerScheduler _owner;
        private readonly Action _run;
        private readonly bool _once;
        private readonly ICancelable? _cancelable;

        public Entry(TimerScheduler owner, Action run, bool once, ICancelable? cancelable)
        {
            (_owner, _run, _once, _cancelable) = (owner, run, once, cancelable);
            Timer = new Timer(static e => ((Entry)e!).Fire(), this, Timeout.Infinite, Timeout.Infinite);
        }

        public Timer Timer { get; }
        public CancellationTokenRegistration Registration { get; set; }

        private void Fire()
        {
            if (_cancelable?.IsCancellationRequested == true || _owner._disposed) { Stop(); return; }
            if (_once) Stop();
            try { _run(); }
            catch (Exception e) { _owner._log.Error(e, "A scheduled action failed"); }
        }

        public void Stop()
        {
            Timer.Dispose();
            Registration.Dispose();
            _owner._entries.TryRemove(this, out _);
        }
    }
}
