using System.Collections.Immutable;
using System.Text;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using Fleet.Protocol;
using Fleet.Server.Hosting;

namespace Fleet.Server.Devices;

/// <summary>
/// One router: the only writer of its state. Persists changes (never plain heartbeats), keeps its
/// commands' lifecycle, knows its current connection by reference and watches it. Passivates when
/// offline and idle; recovers everything but the socket.
/// </summary>
public sealed class DeviceEntity : UntypedPersistentActor, IWithTimers
{
    // Arguments, not an expression: Props.Create(() => new …) compiles the argument expressions on
    // every call, and an entity is created per device (a reconnect storm creates thousands a second).
    public static Props Props(string deviceId, FleetSettings settings, TimeProvider clock) =>
        Akka.Actor.Props.Create<DeviceEntity>(deviceId, settings, clock).WithMailbox(LightMailbox.ConfigPath);

    private sealed class DeadlineTick : INotInfluenceReceiveTimeout
    {
        public static readonly DeadlineTick Instance = new();
    }

    private sealed class AfterRecovery
    {
        public static readonly AfterRecovery Instance = new();
    }

    private readonly string _deviceId;
    private readonly FleetSettings _settings;
    private readonly TimeProvider _clock;
    private readonly Dictionary<string, List<IActorRef>> _waiters = new();
    /// <summary>
    /// Commands handed to the current connection whose write it has not confirmed yet. If that
    /// connection goes away first (its node died: no FrameNotWritten will ever come), they are queued
    /// again for the next connection instead of waiting "sent" for an answer that cannot come.
    /// </summary>
    private readonly HashSet<string> _unconfirmed = new();
    private DeviceState _state;
    private IActorRef? _connection;
    private DateTimeOffset? _lastSeen;
    // From the latest report, for the device view. Only what the view shows, and a new object only when
    // it changed: a heartbeat message kept until the next one outlives gen 0 and fills gen 2 with garbage.
    private int? _mode;
    private SystemFigures? _figures;
    private SendFrame? _heartbeatReply;
    private SendFrame? _sentReply;
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
                Self.Tell(AfterRecovery.Instance);
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case AfterRecovery:
                if (_recoveredOnline && _connection is null) PersistThen([new DeviceDisconnected(Now)]);
                else AfterChange();
                break;
            case DeviceConnect connect: OnConnect(connect); break;
            case DeviceHeartbeat h: OnHeartbeat(h); break;
            case AnswerReceived a: OnAnswer(a); break;
            case ConnectionClosed closed: OnConnectionGone(closed.Connection); break;
            case Terminated t: OnConnectionGone(t.ActorRef); break;
            case FrameWritten w:
                _unconfirmed.Remove(w.CommandId);
                PersistThen(DeviceLogic.OnWritten(_state, w.CommandId, Now));
                break;
            case FrameNotWritten w:
                _unconfirmed.Remove(w.CommandId);
                if (_state.FindCommand(w.CommandId) is { Status: CommandStatus.Sent })
                    PersistThen([new CommandRequeued(w.CommandId)]);
                break;
            case DeadlineTick: PersistThen(DeviceLogic.OnTick(_state, Now)); break;

            case GetDevice:
                Sender.Tell(_state.Exists
                    ? new DeviceFound(Views.Of(_state, _deviceId, _lastSeen, _mode, _figures))
                    : new DeviceNotFound(_deviceId));
                break;
            case SetDesiredAuthMode m: OnSetAuthMode(m); break;
            case SubmitCommand submit: OnSubmit(submit); break;
            case GetCommands:
                Sender.Tell(_state.Exists
                    ? new CommandList(_state.Commands.Reverse().Select(c => Views.Of(c, _deviceId)).ToList())
                    : new DeviceNotFound(_deviceId));
                break;
            case GetCommand g:
                Sender.Tell(!_state.Exists ? new DeviceNotFound(_deviceId)
                    : _state.FindCommand(g.CommandId) is { } found ? new CommandFound(Views.Of(found, _deviceId))
                    : new CommandNotFound(g.CommandId));
                break;
            case AwaitCommand a: OnAwait(a); break;
            case CancelCommand cancel: OnCancel(cancel); break;

            case SaveSnapshotSuccess s: DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)); break;
            case SaveSnapshotFailure f: Log.Warning(f.Cause, "snapshot of {0} failed", _deviceId); break;
            case DeleteSnapshotsSuccess: break;
            case DeleteSnapshotsFailure f: Log.Warning(f.Cause, "deleting old snapshots of {0} failed", _deviceId); break;
            case ReceiveTimeout:
                if (_connection is null && _waiters.Count == 0) Context.Parent.Tell(new Passivate(PoisonPill.Instance));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private DateTimeOffset Now => _clock.GetUtcNow();

    private void OnConnect(DeviceConnect c)
    {
        if (_connection is not null && !_connection.Equals(c.Connection))
        {
            Log.Info("device {0}: a newer connection replaces {1}", _deviceId, _connection.Path);
            Context.Unwatch(_connection);
            _connection.Tell(new CloseConnection("replaced by a newer connection for the same device"));
        }
        var requeued = c.Connection.Equals(_connection) ? [] : RequeueUnconfirmed();
        Attach(c.Connection);
        _lastSeen = Now;
        Remember(c.Message);
        var reply = c.Connection;
        PersistThen([..requeued, ..DeviceLogic.OnReport(_state, c.Message, newConnection: true, Now, c.Node)],
            () => SendReply(reply));
    }

    private void OnHeartbeat(DeviceHeartbeat h)
    {
        var adopt = _connection is null;
        if (adopt) Attach(h.Connection); // the entity restarted or moved while the socket stayed up
        _lastSeen = Now;
        Remember(h.Message);
        var events = DeviceLogic.OnReport(_state, h.Message, adopt, Now, h.Node);
        var reply = h.Connection;
        if (events.IsEmpty)
        {
            // Adopting a connection always answers: the connection may hold no reply of ours yet.
            if (h.ReplyWanted || adopt) SendReply(reply);
        }
        else
            // A change that altered our answer was already pushed (AfterChange): don't send it twice.
            PersistThen(events, () =>
            {
                if (!reply.Equals(_connection) || !ReferenceEquals(_sentReply, HeartbeatReplyFrame())) SendReply(reply);
            });
    }

    private void Remember(DeviceReport report)
    {
        _mode = report.Mode;
        if (!report.HasFigures) _figures = null;
        else if (_figures is null || !report.SameFigures(_figures)) _figures = report.Figures();
    }

    private void Attach(IActorRef connection)
    {
        _connection = connection;
        _sentReply = null;
        Context.Watch(connection);
        SetReceiveTimeout(null);
    }

    private void OnConnectionGone(IActorRef connection)
    {
        if (!connection.Equals(_connection)) return;
        Context.Unwatch(connection);
        _connection = null;
        PersistThen([..RequeueUnconfirmed(), new DeviceDisconnected(Now)]);
    }

    /// <summary>Sent commands whose frame the outgoing connection never confirmed writing go back to the queue.</summary>
    private List<IDeviceEvent> RequeueUnconfirmed()
    {
        var events = _unconfirmed
            .Where(id => _state.FindCommand(id) is { Status: CommandStatus.Sent })
            .Select(id => (IDeviceEvent)new CommandRequeued(id))
            .ToList();
        if (events.Count > 0) Log.Info("device {0}: {1} command(s) never confirmed written by the old connection, queued again", _deviceId, events.Count);
        _unconfirmed.Clear();
        return events;
    }

    private void OnAnswer(AnswerReceived a)
    {
        _lastSeen = Now;
        var decoded = ProtocolCodec.DecodeFromDevice(Encoding.UTF8.GetBytes(a.Json));
        if (decoded.Message is not IAnswerFrame response)
        {
            Log.Warning("device {0}: answer refused: {1}", _deviceId, decoded.Error);
            return;
        }
        var result = DeviceLogic.OnAnswer(_state, response, a.Json, Now);
        if (result.Dropped is not null)
        {
            Log.Info("device {0}: {1} dropped: {2}", _deviceId, response.Type, result.Dropped);
            return;
        }
        PersistThen(result.Events);
    }

    private void OnSetAuthMode(SetDesiredAuthMode m)
    {
        if (!_state.Exists) { Sender.Tell(new DeviceNotFound(_deviceId)); return; }
        if (_state.Gateways.All(g => g.GwId != m.GwId)) { Sender.Tell(new GatewayNotFound(_deviceId, m.GwId)); return; }
        var sender = Sender;
        PersistThen([new DesiredAuthModeSet(m.GwId, m.AuthMode)], () =>
        {
            sender.Tell(new GatewayUpdated(Views.Of(_state.Gateways.First(g => g.GwId == m.GwId), _state)));
        });
    }

    private void OnSubmit(SubmitCommand s)
    {
        if (!_state.Exists) { Sender.Tell(new DeviceNotFound(_deviceId)); return; }
        if (s.Problem is not null) { Sender.Tell(new CommandInvalid(s.Problem)); return; }
        var decoded = ProtocolCodec.DecodeFromController(s.RequestJson ?? "");
        if (decoded.Message is not IControllerRequest request)
        {
            Sender.Tell(new CommandInvalid(decoded.Error?.Message ?? "not a request"));
            return;
        }
        var id = "c" + Guid.CreateVersion7().ToString("N");
        var result = DeviceLogic.Submit(_state, id, request, s.TtlSeconds, s.TimeoutSeconds, Now);
        if (result.Queued is null) { Sender.Tell(new CommandInvalid(result.Problem!)); return; }
        var sender = Sender;
        // Reply after persist: an accepted command survives a crash.
        PersistThen([result.Queued], () => sender.Tell(new CommandFound(Views.Of(_state.FindCommand(id)!, _deviceId))));
    }

    private void OnAwait(AwaitCommand a)
    {
        if (!_state.Exists) { Sender.Tell(new DeviceNotFound(_deviceId)); return; }
        var c = _state.FindCommand(a.CommandId);
        if (c is null) { Sender.Tell(new CommandNotFound(a.CommandId)); return; }
        if (c.Status.IsFinal()) { Sender.Tell(new CommandFound(Views.Of(c, _deviceId))); return; }
        if (!_waiters.TryGetValue(a.CommandId, out var list)) _waiters[a.CommandId] = list = [];
        list.Add(Sender);
    }

    private void OnCancel(CancelCommand c)
    {
        if (!_state.Exists) { Sender.Tell(new DeviceNotFound(_deviceId)); return; }
        var (outcome, ev) = DeviceLogic.Cancel(_state, c.CommandId, Now);
        switch (outcome)
        {
            case DeviceLogic.CancelOutcome.NotFound:
                Sender.Tell(new CommandNotFound(c.CommandId));
                break;
            case DeviceLogic.CancelOutcome.NotQueued:
                var view = Views.Of(_state.FindCommand(c.CommandId)!, _deviceId);
                Sender.Tell(new CommandConflict($"command {c.CommandId} is {view.Status}, only a queued command can be cancelled", view));
                break;
            default:
                var sender = Sender;
                PersistThen([ev!], () => sender.Tell(new CommandFound(Views.Of(_state.FindCommand(c.CommandId)!, _deviceId))));
                break;
        }
    }

    /// <summary>Persists events, applies each, then runs the follow-ups once.</summary>
    private void PersistThen(IReadOnlyList<IDeviceEvent> events, Action? then = null)
    {
        if (events.Count == 0)
        {
            then?.Invoke();
            return;
        }
        var remaining = events.Count;
        PersistAll(events, e =>
        {
            _state = _state.Apply(e);
            _sinceSnapshot++;
            if (--remaining > 0) return;
            AfterChange();
            then?.Invoke();
        });
    }

    /// <summary>After any change: refresh caches, snapshot, wake waiters, reschedule, send what can go.</summary>
    private void AfterChange()
    {
        _heartbeatReply = null;
        PushReplyIfChanged();
        if (_sinceSnapshot >= _settings.Devices.SnapshotEvery)
        {
            SaveSnapshot(_state);
            _sinceSnapshot = 0;
        }
        foreach (var id in _waiters.Keys.ToList())
        {
            var c = _state.FindCommand(id);
            if (c is not null && !c.Status.IsFinal()) continue;
            IAdminReply reply = c is null ? new CommandNotFound(id) : new CommandFound(Views.Of(c, _deviceId));
            foreach (var w in _waiters[id]) w.Tell(reply);
            _waiters.Remove(id);
        }
        var next = DeviceLogic.NextDeadline(_state);
        if (next is null) Timers.Cancel("deadline");
        else Timers.StartSingleTimer("deadline", DeadlineTick.Instance,
            TimeSpan.FromTicks(Math.Max(0, (next.Value - Now).Ticks)) + TimeSpan.FromMilliseconds(5));
        SetReceiveTimeout(_connection is null ? TimeSpan.FromSeconds(_settings.Devices.PassivateAfterSeconds) : null);
        Dispatch();
    }

    private void Dispatch()
    {
        if (_connection is null) return;
        var now = Now;
        var toSend = DeviceLogic.ToSend(_state, now);
        if (toSend.Count == 0) return;
        var connection = _connection;
        PersistThen(toSend.Select(c => (IDeviceEvent)new CommandSent(c.CommandId, now)).ToList(), () =>
        {
            foreach (var c in toSend)
            {
                _unconfirmed.Add(c.CommandId);
                connection.Tell(new SendFrame(_deviceId, Encoding.UTF8.GetBytes(c.RequestJson), c.CommandId));
            }
        });
    }

    private SendFrame HeartbeatReplyFrame() =>
        _heartbeatReply ??= new SendFrame(_deviceId, ProtocolCodec.Encode(DeviceLogic.ReportReply(_state)), null, ReportReply: true);

    /// <summary>Sends the heartbeat reply, remembering what the current connection was last told.</summary>
    private void SendReply(IActorRef to)
    {
        var frame = HeartbeatReplyFrame();
        if (to.Equals(_connection)) _sentReply = frame;
        to.Tell(frame);
    }

    /// <summary>
    /// The connection answers unchanged heartbeats with the last reply it got from us, so whenever our
    /// answer changes (desired auth_mode, once_auth, reported gateways) it gets the new one at once.
    /// </summary>
    private void PushReplyIfChanged()
    {
        if (_connection is null || _sentReply is null) return;
        if (!HeartbeatReplyFrame().Frame.AsSpan().SequenceEqual(_sentReply.Frame)) SendReply(_connection);
    }
}
