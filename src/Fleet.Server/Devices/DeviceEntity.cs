using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Fleet.Server.Hosting;

namespace Fleet.Server.Devices;

/// <summary>
/// One router: the only writer of its state. Every decision is <see cref="DeviceDecider.Decide"/>'s; this
/// actor persists the events it returns, applies them, replies, and performs the effects (frames to the
/// connection, watching it, timers, waking waiters). Snapshots every N events; passivates when offline
/// and idle; recovers everything but the socket.
/// </summary>
public sealed class DeviceEntity : UntypedPersistentActor, IWithTimers
{
    // Arguments, not an expression: Props.Create(() => new …) compiles the argument expressions on
    // every call, and an entity is created per device (a reconnect storm creates thousands a second).
    public static Props Props(string deviceId, FleetSettings settings, TimeProvider clock) =>
        Akka.Actor.Props.Create<DeviceEntity>(deviceId, settings, clock).WithMailbox(LightMailbox.ConfigPath);

    private const string DeadlineTimer = "deadline";

    private readonly string _deviceId;
    private readonly FleetSettings _settings;
    private readonly TimeProvider _clock;
    private DeviceState _state;
    private DeviceLive _live;
    private int _sinceSnapshot;
    private bool _recoveredOnline;

    public override string PersistenceId { get; }
    public ITimerScheduler Timers { get; set; } = null!;

    public DeviceEntity(string deviceId, FleetSettings settings, TimeProvider clock)
    {
        _deviceId = deviceId;
        _settings = settings;
        _clock = clock;
        _state = DeviceState.Empty with { HistoryLimit = settings.Devices.CommandHistory };
        PersistenceId = FleetNames.PersistenceIdPrefix + deviceId;
    }

    // Untyped: a ReceivePersistentActor builds its handler tables per instance (~0.8 KB on every router).
    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case IDeviceEvent e:
                _state = _state.Apply(e);
                break;
            case SnapshotOffer { Snapshot: DeviceState s }:
                _state = s with { HistoryLimit = _settings.Devices.CommandHistory };
                break;
            case RecoveryCompleted:
                // The socket does not survive a restart: the device is offline until it reconnects. The view
                // says so at once; the transition is persisted by the first command (messages stashed during
                // recovery, such as the connect that woke us, are handled before it).
                _recoveredOnline = _state.Online;
                _state = _state with { Online = false };
                Self.Tell(new Recovered(_recoveredOnline));
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case IToDeviceEntity or Recovered or DeadlineReached: Handle(message); break;
            case Terminated t: Handle(new ConnectionLost(t.ActorRef)); break;
            case ReceiveTimeout: Handle(IdleTimeout.Instance); break;
            case SaveSnapshotSuccess s: DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)); break;
            case SaveSnapshotFailure f: Log.Warning(f.Cause, "snapshot of {0} failed", _deviceId); break;
            case DeleteSnapshotsSuccess: break;
            case DeleteSnapshotsFailure f: Log.Warning(f.Cause, "deleting old snapshots of {0} failed", _deviceId); break;
            default: Unhandled(message); break;
        }
    }

    private void Handle(object input)
    {
        var decision = DeviceDecider.Decide(_deviceId, _state, _live, input, _clock.GetUtcNow());
        _live = decision.Live;
        var sender = Sender;
        if (decision.Events.IsEmpty)
        {
            Perform(decision, sender);
            return;
        }
        var remaining = decision.Events.Count;
        PersistAll(decision.Events, e =>
        {
            _state = _state.Apply(e);
            _sinceSnapshot++;
            if (--remaining > 0) return;
            if (_sinceSnapshot >= _settings.Devices.SnapshotEvery)
            {
                SaveSnapshot(_state);
                _sinceSnapshot = 0;
            }
            Perform(decision, sender);
        });
    }

    private void Perform(Decision decision, IActorRef sender)
    {
        foreach (var effect in decision.Effects)
        {
            switch (effect)
            {
                case Tell t: t.To.Tell(t.Message, Self); break;
                case Watch w: Context.Watch(w.Connection); break;
                case Unwatch u: Context.Unwatch(u.Connection); break;
                case AddWaiter a:
                    _live = _live with
                    {
                        Waiters = _live.Waiters.SetItem(a.CommandId, _live.Waiters.GetValueOrDefault(a.CommandId, []).Add(sender)),
                    };
                    break;
                case ScheduleDeadline { At: { } at }:
                    Timers.StartSingleTimer(DeadlineTimer, DeadlineReached.Instance,
                        TimeSpan.FromTicks(Math.Max(0, (at - _clock.GetUtcNow()).Ticks)) + TimeSpan.FromMilliseconds(5));
                    break;
                case ScheduleDeadline: Timers.Cancel(DeadlineTimer); break;
                case IdleTimer i: SetReceiveTimeout(i.On ? TimeSpan.FromSeconds(_settings.Devices.PassivateAfterSeconds) : null); break;
                case Passivate: Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(PoisonPill.Instance)); break;
                case Note { Warning: true } n: Log.Warning(n.Text); break;
                case Note n: Log.Info(n.Text); break;
            }
        }
        if (decision.Reply is not null) sender.Tell(decision.Reply);
    }
}
