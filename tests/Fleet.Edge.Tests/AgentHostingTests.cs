using Akka.Actor;
using Akka.Serialization;
using Fleet.Edge.Hosting;

namespace Fleet.Edge.Tests;

/// <summary>
/// The agent's Akka settings (agent.conf): its scheduler on .NET timers and the serializer that stands in for
/// Newtonsoft.Json, in an ActorSystem made as EdgeAgent.Start makes it.
/// </summary>
public sealed class AgentHostingTests : IAsyncLifetime
{
    private readonly ActorSystem _system = ActorSystem.Create("hosting-test", EdgeAgent.AkkaSettings());

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await _system.Terminate();

    private static Task<T> Within<T>(TaskCompletionSource<T> tcs) => tcs.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

    [Fact]
    public void The_system_runs_on_the_timer_scheduler_not_akkas_10_ms_wheel() =>
        Assert.IsType<TimerScheduler>(_system.Scheduler);

    [Fact]
    public async Task A_message_scheduled_once_arrives_once_and_in_order_of_due_time()
    {
        var order = new List<string>();
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _system.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(150), () => { lock (order) order.Add("late"); done.TrySetResult(true); });
        _system.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(10), () => { lock (order) order.Add("early"); });
        await Within(done);
        lock (order) Assert.Equal(["early", "late"], order);
    }

    [Fact]
    public async Task A_repeated_action_repeats_until_cancelled_and_a_cancelled_one_never_runs()
    {
        var runs = 0;
        var three = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var repeating = new Cancelable(_system.Scheduler);
        _system.Scheduler.Advanced.ScheduleRepeatedly(TimeSpan.Zero, TimeSpan.FromMilliseconds(20), () =>
        {
            if (Interlocked.Increment(ref runs) == 3) three.TrySetResult(true);
        }, repeating);
        await Within(three);
        repeating.Cancel();
        var afterCancel = Volatile.Read(ref runs);

        var cancelledRan = false;
        var cancelled = new Cancelable(_system.Scheduler);
        _system.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(30), () => cancelledRan = true, cancelled);
        cancelled.Cancel();
        // A marker due well after both: when it runs, the cancelled action's time and several periods have passed.
        var marker = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _system.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(200), () => marker.TrySetResult(true));
        await Within(marker);

        Assert.False(cancelledRan);
        // At most one run that had already started when Cancel was called.
        Assert.InRange(Volatile.Read(ref runs), afterCancel, afterCancel + 1);
    }

    [Fact]
    public async Task A_tell_scheduled_for_an_actor_is_delivered()
    {
        var got = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var actor = _system.ActorOf(Actors.Of(() => new Forward(got)));
        _system.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(10), actor, "tick", ActorRefs.NoSender);
        Assert.Equal("tick", await Within(got));
    }

    [Fact]
    public void Nothing_is_serialized_and_saying_so_is_a_clear_error()
    {
        var serializer = _system.Serialization.FindSerializerFor(new { Any = 1 });
        Assert.IsType<LocalOnlySerializer>(serializer);
        var e = Assert.Throws<NotSupportedException>(() => serializer.ToBinary("x"));
        Assert.Contains("no remoting", e.Message);
    }

    [Fact]
    public async Task Scheduling_after_the_system_stopped_is_refused()
    {
        var scheduler = _system.Scheduler;
        await _system.Terminate();
        Assert.Throws<SchedulerException>(() => scheduler.Advanced.ScheduleOnce(TimeSpan.FromSeconds(1), () => { }));
    }

    private sealed class Forward(TaskCompletionSource<object> got) : UntypedActor
    {
        protected override void OnReceive(object message) => got.TrySetResult(message);
    }
}
