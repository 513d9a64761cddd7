using Akka.Actor;
using Akka.Event;
using Fleet.Edge.Portal;
using Fleet.Protocol;

namespace Fleet.Edge.Firewall;

/// <summary>Asks the firewall actor for its current portal state (tests, diagnostics).</summary>
public sealed record GetPortalState
{
    public static readonly GetPortalState Instance = new();
}

/// <summary>Tells the firewall actor to check its rules are still installed and expired passes are gone.</summary>
public sealed record CheckFirewall
{
    public static readonly CheckFirewall Instance = new();
}

/// <summary>
/// The one owner of the portal state and of every firewall change. Each request is decided by a
/// pure function of <see cref="PortalDecisions"/>, the resulting firewall is applied whole through
/// the backend, then the state is saved and the answer (if any) goes back. Async handlers keep the
/// mailbox suspended while nft runs, so changes never overlap. On start, and whenever the table
/// has vanished, the saved state is applied again.
/// </summary>
public sealed class FirewallActor : UntypedActor, IWithTimers
{
    public const string KickoffFirewallFailed = "Failed to update firewall";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _deviceId;
    private readonly IReadOnlyList<(string GwId, string Interface)> _gateways;
    private readonly IFirewallBackend _backend;
    private readonly StateStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _checkInterval;
    private PortalState _state;
    private bool _installed;

    public ITimerScheduler Timers { get; set; } = null!;

    public FirewallActor(string deviceId, IReadOnlyList<(string GwId, string Interface, int AuthMode)> gateways,
        IFirewallBackend backend, StateStore store, TimeProvider time, TimeSpan checkInterval)
    {
        _deviceId = deviceId;
        _gateways = gateways.Select(g => (g.GwId, g.Interface)).ToList();
        _backend = backend;
        _store = store;
        _time = time;
        _checkInterval = checkInterval;
        var initial = gateways.Select(g => (g.GwId, g.AuthMode)).ToList();
        _state = PortalState.Initial(initial);
        try
        {
            if (store.Load() is { } saved) _state = PortalDecisions.Reconcile(saved, initial);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            // A corrupt table must not keep the router off the network: start empty, the controller re-auths.
            _log.Error(ex, "Cannot read {0}; starting with no authorised clients", store.FilePath);
        }

    }

    protected override void OnReceive(object message)
    {
        // Each change runs to its end (nft, the state file, the answer) before the next message is taken.
        var sender = Sender;
        switch (message)
        {
            case AuthRequest r: RunTask(() => Change(PortalDecisions.Auth(_state, r, Now), r.Type)); break;
            case TmpPassRequest r: RunTask(() => Change(PortalDecisions.TmpPass(_state, r, Now), r.Type)); break;
            case ReportReply r: RunTask(() => Change(PortalDecisions.ReportReply(_state, r), r.Type)); break;
            case KickoffRequest r:
                RunTask(async () =>
                {
                    var d = PortalDecisions.Kickoff(_state, _deviceId, r);
                    var ok = await Change(d with { Reply = null }, r.Type);
                    var reply = ok ? d.Reply : new KickoffError { ReqId = r.ReqId, Error = KickoffFirewallFailed, ClientIp = r.ClientIp, ClientMac = r.ClientMac };
                    if (reply is not null) sender.Tell(new SendToController(reply));
                });
                break;
            case ForgetClients r:
                RunTask(async () =>
                {
                    await Change(PortalDecisions.Restart(_state), r.Why);
                    sender.Tell(ClientsForgotten.Instance);
                });
                break;
            case CheckFirewall: RunTask(Check); break;
            case GetPortalState: sender.Tell(_state); break;
            default: Unhandled(message); break;
        }
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    protected override void PreStart()
    {
        Context.System.EventStream.Publish(new AuthModesChanged(_state.AuthModes));
        Timers.StartPeriodicTimer("check", CheckFirewall.Instance, _checkInterval);
        Self.Tell(CheckFirewall.Instance);
    }

    private async Task Check()
    {
        var pruned = PortalDecisions.Prune(_state, Now);
        if (!ReferenceEquals(pruned, _state)) { await Change(new Decision(pruned), "expiry"); return; }
        if (_installed && await _backend.IsInstalledAsync(CancellationToken.None)) return;
        if (_installed) _log.Warning("Firewall table vanished; re-applying {0} clients", _state.Clients.Count);
        await Apply(_state);
    }

    /// <returns>false when the firewall could not be changed (the state then stays as it was).</returns>
    private async Task<bool> Change(Decision d, string what)
    {
        if (d.Ignored is not null) _log.Warning("Ignored {0}", d.Ignored);
        if (!d.Changed(_state)) return true;
        var next = PortalDecisions.Prune(d.State, Now);
        if (!await Apply(next)) return false;
        var modesChanged = !next.AuthModes.SequenceEqual(_state.AuthModes);
        _state = next;
        try { _store.Save(_state); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.Error(ex, "Cannot save the client table to {0}; it is enforced but would be lost on restart", _store.FilePath);
        }
        if (modesChanged) Context.System.EventStream.Publish(new AuthModesChanged(_state.AuthModes));
        _log.Info("Applied {0}: {1} clients, {2} passes", what, _state.Clients.Count, _state.TmpPasses.Count);
        return true;
    }

    private async Task<bool> Apply(PortalState state)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _backend.ApplyAsync(FirewallSpec.From(_gateways, state, Now), cts.Token);
            _installed = true;
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Left to the next check to retry: crashing here would only restart into the same failure.
            _installed = false;
            _log.Error(ex, "Firewall update failed");
            return false;
        }
    }

    public static Props Props(string deviceId, IReadOnlyList<(string GwId, string Interface, int AuthMode)> gateways,
        IFirewallBackend backend, StateStore store, TimeProvider time, TimeSpan checkInterval) =>
        Actors.Of(() => new FirewallActor(deviceId, gateways, backend, store, time, checkInterval));
}
