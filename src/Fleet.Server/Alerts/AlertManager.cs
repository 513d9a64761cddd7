using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Fleet.Server.Directory;
using Fleet.Server.Events;
using Fleet.Server.Hosting;

namespace Fleet.Server.Alerts;

/// <summary>Resolve an open alert by hand (POST /api/v1/alerts/{id}/resolve). Replies <see cref="AlertResolvedByHand"/> or <see cref="AlertNotOpen"/>.</summary>
public sealed record ResolveAlert(string AlertId) : Serialization.IFleetSerializable;
public sealed record AlertResolvedByHand(AlertView Alert) : Serialization.IFleetSerializable;
public sealed record AlertNotOpen(string AlertId) : Serialization.IFleetSerializable;

/// <summary>
/// The alert rules (docs/ADMIN_API.md "Alerts"), as a cluster singleton: it hears the cluster's event topic and the
/// cluster's membership, reads the directory for devices offline too long, keeps one open alert per incident (rule and
/// device or node), stores each opening and resolution before it announces it (event stream, webhooks).
/// </summary>
public sealed class AlertManager : ReceiveActor, IWithUnboundedStash, IWithTimers
{
    private const string ScanTimer = "scan";
    private readonly AlertSettings _settings;
    private readonly AlertStore _store;
    private readonly DirectoryStore _directory;
    private readonly WebhookSender _webhooks;
    private readonly TimeProvider _clock;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    /// <summary>Open alerts by incident: "rule|device_id" or "node_left|host:port".</summary>
    private readonly Dictionary<string, AlertView> _open = new(StringComparer.Ordinal);
    private readonly HashSet<string> _members = new(StringComparer.Ordinal);
    private bool _scanning;
    /// <summary>How far the offline scan has read the directory's disconnects (last_seen, device_id).</summary>
    private (DateTimeOffset LastSeen, string DeviceId)? _disconnectsRead;
    /// <summary>Devices left online on a node that is gone, and when a scan first found each so.</summary>
    private readonly Dictionary<string, DateTimeOffset> _strandedSince = new(StringComparer.Ordinal);
    /// <summary>The table's writes, one after another in the order decided (an alert's resolution never overtakes its opening).</summary>
    private Task _writes = Task.CompletedTask;

    public IStash Stash { get; set; } = null!;
    public ITimerScheduler Timers { get; set; } = null!;

    public AlertManager(AlertSettings settings, AlertStore store, DirectoryStore directory, WebhookSender webhooks, TimeProvider clock)
    {
        _settings = settings;
        _store = store;
        _directory = directory;
        _webhooks = webhooks;
        _clock = clock;
        Loading();
    }

    public static Props Props(AlertSettings settings, AlertStore store, DirectoryStore directory, WebhookSender webhooks, TimeProvider clock) =>
        Akka.Actor.Props.Create(() => new AlertManager(settings, store, directory, webhooks, clock));

    private sealed record Loaded(IReadOnlyList<AlertView> Open, IReadOnlyList<string> Members);
    private sealed record LoadFailed(Exception Cause);
    private sealed record Scan;
    private sealed record Reload;
    private sealed record CheckMembers(IReadOnlyList<string> Remembered);
    private static readonly TimeSpan RememberedCheckAfter = TimeSpan.FromSeconds(20);
    private sealed record Scanned(DateTimeOffset Before, IReadOnlyList<(string DeviceId, DateTimeOffset LastSeen)> Disconnected,
        IReadOnlyList<string> Stranded, IReadOnlySet<string> BackOnline, IReadOnlyList<string> Checked);
    private const int ScanPage = 1000;
    private const int StrandedPage = 100_000;
    private sealed record ScanFailed(Exception Cause);
    private sealed record ClonedQuiet(string DeviceId, DateTimeOffset Since);

    protected override void PreStart()
    {
        DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(FleetEvents.Topic, Self));
        Load();
    }

    private void Load() =>
        LoadAsync().PipeTo(Self, failure: e => new LoadFailed(e));

    private async Task<object> LoadAsync() =>
        new Loaded(await _store.QueryAsync(AlertView.Open, null, 100_000), await _store.ReadMembersAsync());

    private void Loading()
    {
        Receive<Loaded>(l =>
        {
            foreach (var a in l.Open) _open[Key(a.Rule, a.DeviceId ?? a.Node)] = a;
            foreach (var m in l.Members) _members.Add(m);
            Timers.StartSingleTimer("remembered", new CheckMembers(l.Members), RememberedCheckAfter);
            _log.Info("Alert manager: {0} open alerts, {1} members remembered", _open.Count, _members.Count);
            Become(Running);
            Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
                typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
            Timers.StartPeriodicTimer(ScanTimer, new Scan(), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(_settings.ScanEverySeconds));
            Stash.UnstashAll();
        });
        Receive<LoadFailed>(f =>
        {
            _log.Warning("Alert manager: reading the open alerts failed ({0}); retrying in 5 s", f.Cause.Message);
            Timers.StartSingleTimer("reload", new Reload(), TimeSpan.FromSeconds(5));
        });
        Receive<Reload>(_ => Load());
        Receive<SubscribeAck>(_ => { });
        ReceiveAny(_ => Stash.Stash());
    }

    private void Running()
    {
        Receive<SubscribeAck>(_ => { });
        Receive<FleetEvent>(OnEvent);
        Receive<ClusterEvent.CurrentClusterState>(OnClusterState);
        Receive<ClusterEvent.MemberUp>(m => NodeBack(m.Member.Address));
        Receive<ClusterEvent.ReachableMember>(m => NodeBack(m.Member.Address));
        Receive<ClusterEvent.UnreachableMember>(m => NodeGone(m.Member.Address, "unreachable"));
        Receive<ClusterEvent.MemberRemoved>(m => NodeGone(m.Member.Address, "removed from the cluster"));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<Scan>(_ => StartScan());
        Receive<CheckMembers>(c => CheckRemembered(c.Remembered));
        Receive<Scanned>(OnScanned);
        Receive<ScanFailed>(f =>
        {
            _scanning = false;
            _log.Warning("Alert manager: reading the directory failed ({0}); next scan in {1} s", f.Cause.Message, _settings.ScanEverySeconds);
        });
        Receive<ClonedQuiet>(q =>
        {
            if (_open.TryGetValue(Key(AlertRules.DeviceCloned, q.DeviceId), out var a) && a.OpenedAt <= q.Since)
                Resolve(a, "no new clone episode");
        });
        Receive<ResolveAlert>(r =>
        {
            var open = _open.Values.FirstOrDefault(a => a.AlertId == r.AlertId);
            if (open is null) { Sender.Tell(new AlertNotOpen(r.AlertId)); return; }
            Sender.Tell(new AlertResolvedByHand(Resolve(open, "by hand")));
        });
    }

    private void OnEvent(FleetEvent e)
    {
        switch (e.Type)
        {
            case FleetEvent.DeviceOnline when e.DeviceId is { } id:
                if (_open.TryGetValue(Key(AlertRules.DeviceOffline, id), out var offline)) Resolve(offline, "back online");
                break;
            case FleetEvent.CommandStatusChanged when e.DeviceId is { } id && _settings.CommandFailed:
                if (e.Status is "failed" or "timed_out")
                    Open(AlertRules.CommandFailed, id, null,
                        $"{e.CommandType} command {e.CommandId} {e.Status}{(e.Error is { Length: > 0 } err ? ": " + err : "")}");
                else if (e.Status == "succeeded" && _open.TryGetValue(Key(AlertRules.CommandFailed, id), out var failed))
                    Resolve(failed, $"{e.CommandType} command {e.CommandId} succeeded");
                break;
            case FleetEvent.DeviceCloned when e.DeviceId is { } id && _settings.DeviceCloned:
                Open(AlertRules.DeviceCloned, id, e.Node, $"device {id} flagged cloned: {e.Detail}");
                Timers.StartSingleTimer("cloned:" + id, new ClonedQuiet(id, _clock.GetUtcNow()), TimeSpan.FromMinutes(_settings.ClonedClearMinutes));
                break;
        }
    }

    private void OnClusterState(ClusterEvent.CurrentClusterState state)
    {
        foreach (var m in state.Unreachable) NodeGone(Address(m.Address), "unreachable");
        foreach (var m in state.Members.Where(m => m.Status == MemberStatus.Up && !state.Unreachable.Contains(m))) NodeBack(m.Address);
    }

    /// <summary>
    /// Members the previous incarnation saw that are not in the cluster a while after this one started: they left while no
    /// alert manager ran (it may have been on the node that went away). Checked late, so that nodes of a cluster that is
    /// starting again have had time to join.
    /// </summary>
    private void CheckRemembered(IReadOnlyList<string> remembered)
    {
        var state = Cluster.Get(Context.System).State;
        var present = state.Members.Where(m => m.Status is not (MemberStatus.Down or MemberStatus.Removed or MemberStatus.Exiting)
                                               && !state.Unreachable.Contains(m)).Select(m => Address(m.Address)).ToHashSet();
        foreach (var gone in remembered.Where(m => !present.Contains(m))) NodeGone(gone, "left the cluster (seen when the alert manager moved)");
    }

    private void NodeGone(Akka.Actor.Address address, string why) => NodeGone(Address(address), why);

    private void NodeGone(string address, string why)
    {
        if (_members.Remove(address)) SaveMembers();
        if (_settings.NodeLeft) Open(AlertRules.NodeLeft, null, address, $"node {address} {why}");
    }

    private void NodeBack(Akka.Actor.Address address) => NodeBack(Address(address));

    private void NodeBack(string address)
    {
        if (_members.Add(address)) SaveMembers();
        if (_open.TryGetValue(Key(AlertRules.NodeLeft, address), out var a)) Resolve(a, "back in the cluster");
    }

    private void SaveMembers()
    {
        var members = _members.ToList();
        _writes = _writes.ContinueWith(_ => _store.WriteMembersAsync(members), TaskScheduler.Default).Unwrap();
        _writes.ContinueWith(t =>
        {
            if (t.IsFaulted) _log.Warning("Alert manager: the member list was not saved ({0})", t.Exception?.GetBaseException().Message);
        }, TaskScheduler.Default);
    }

    private static string Address(Akka.Actor.Address a) => $"{a.Host}:{a.Port}";

    private void StartScan()
    {
        if (_scanning || _settings.DeviceOfflineSeconds == 0) return;
        _scanning = true;
        var before = _clock.GetUtcNow().AddSeconds(-_settings.DeviceOfflineSeconds);
        var live = NodeIdentity.LiveNodes(Context.System);
        var openOffline = _open.Values.Where(a => a.Rule == AlertRules.DeviceOffline && a.DeviceId is not null).Select(a => a.DeviceId!).ToList();
        ScanAsync(before, _disconnectsRead, live, openOffline).PipeTo(Self, failure: e => new ScanFailed(e));
    }

    private async Task<object> ScanAsync(DateTimeOffset before, (DateTimeOffset, string)? after, IReadOnlyCollection<string> live,
        IReadOnlyList<string> openOffline)
    {
        var disconnected = await _directory.DisconnectedAsync(before, after, ScanPage, CancellationToken.None);
        var stranded = await _directory.StrandedAsync(live, StrandedPage, CancellationToken.None);
        var back = await _directory.OnlineAmongAsync(openOffline, live, CancellationToken.None);
        return new Scanned(before, disconnected, stranded, back, openOffline);
    }

    private void OnScanned(Scanned s)
    {
        _scanning = false;
        var now = _clock.GetUtcNow();
        foreach (var id in s.Checked)
            if (s.BackOnline.Contains(id) && _open.TryGetValue(Key(AlertRules.DeviceOffline, id), out var a)) Resolve(a, "back online");
        // A disconnect is read once: the keyset moves past it (to the scan's horizon when the page was not full).
        foreach (var (id, lastSeen) in s.Disconnected)
            Open(AlertRules.DeviceOffline, id, null, $"device {id} offline since {lastSeen:yyyy-MM-dd HH:mm:ss}Z (longer than {_settings.DeviceOfflineSeconds} s)");
        _disconnectsRead = s.Disconnected.Count == ScanPage ? (s.Disconnected[^1].LastSeen, s.Disconnected[^1].DeviceId) : (s.Before, "");
        // A device stranded on a node that left has no disconnect time: it counts from when a scan first found it so.
        var stranded = s.Stranded.ToHashSet(StringComparer.Ordinal);
        foreach (var id in _strandedSince.Keys.Where(id => !stranded.Contains(id)).ToList()) _strandedSince.Remove(id);
        foreach (var id in stranded)
        {
            var since = _strandedSince.TryGetValue(id, out var t) ? t : _strandedSince[id] = now;
            if (now - since >= TimeSpan.FromSeconds(_settings.DeviceOfflineSeconds))
                Open(AlertRules.DeviceOffline, id, null,
                    $"device {id} offline since about {since:yyyy-MM-dd HH:mm:ss}Z, when its node left the cluster (longer than {_settings.DeviceOfflineSeconds} s)");
        }
    }

    private static string Key(string rule, string? subject) => rule + "|" + subject;

    /// <summary>Opens an alert unless one of the rule is open for the subject; stored before it is announced.</summary>
    private void Open(string rule, string? deviceId, string? node, string summary)
    {
        var key = Key(rule, deviceId ?? node);
        if (_open.ContainsKey(key)) return;
        var alert = new AlertView("a" + Guid.CreateVersion7().ToString("N"), rule, deviceId, node, AlertView.Open, summary, _clock.GetUtcNow(), null);
        _open[key] = alert;
        _log.Warning("Alert opened: {0} {1}: {2}", rule, deviceId ?? node, summary);
        Announce(() => _store.InsertAsync(alert), alert, FleetEvent.AlertOpened);
    }

    private AlertView Resolve(AlertView open, string why)
    {
        var resolved = open with { State = AlertView.Resolved, ResolvedAt = _clock.GetUtcNow() };
        _open.Remove(Key(open.Rule, open.DeviceId ?? open.Node));
        _log.Info("Alert resolved ({0}): {1} {2}", why, open.Rule, open.DeviceId ?? open.Node);
        Announce(() => _store.ResolveAsync(open.AlertId, resolved.ResolvedAt!.Value), resolved, FleetEvent.AlertResolved);
        return resolved;
    }

    /// <summary>After the row is written: to the event stream and the webhooks. A row that could not be written is logged; the alert still goes out.</summary>
    private void Announce(Func<Task> store, AlertView alert, string type)
    {
        var system = Context.System;
        var log = _log;
        var webhooks = _webhooks;
        _writes = _writes.ContinueWith(_ => store(), TaskScheduler.Default).Unwrap();
        _writes.ContinueWith(t =>
        {
            if (t.IsFaulted) log.Error(t.Exception?.GetBaseException(), "Alert {0} not stored", alert.AlertId);
            FleetEvents.Publish(system, new FleetEvent(type, alert.ResolvedAt ?? alert.OpenedAt, alert.DeviceId, Node: alert.Node, Alert: alert));
            webhooks.Enqueue(type, alert);
        }, TaskScheduler.Default);
    }
}
