using System.Collections.Concurrent;
using Fleet.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Connections;

/// <summary>
/// The node's one timer over device sockets, for two limits:
/// <list type="bullet">
/// <item>Silence: sockets that sent nothing for <see cref="WebSocketSettings.SilenceCloseSeconds"/> are closed.
/// Real firmware never sends a WebSocket ping and must not get one (a ping can share a read with a request
/// and swallow it), so its heartbeat (every 60 s) is the only sign of life; a socket that stays silent for
/// several heartbeats is dead, and its device offline.</item>
/// <item>Connect: a socket that has not sent a valid connect within <see cref="WebSocketSettings.ConnectWithinSeconds"/>
/// of its upgrade is closed. Every firmware sends connect right after the 101, so this only ever closes
/// sockets that are not routers (or routers the node refuses: no DeviceID configured).</item>
/// </list>
/// One sweep for the whole node, not a timer per socket. The connect sweep runs often (every tenth of the
/// limit, at most every second) but only over sockets not bound yet — a handful, except while routers
/// reconnect together — so it costs nothing at 20,000 sockets; the silence sweep walks every socket, rarely.
/// <para>
/// A node that is behind on its work closes nobody for a late connect: a router's connect may be waiting,
/// read but not yet handled, behind the work of a connect storm (measured: 10,000 routers at once on a
/// loaded 2-core node, most binds took over 2 s). The sweep sees that as its own lateness — its tick waits in
/// the same thread-pool queue as the sockets' reads — and closes overdue sockets only from a punctual sweep,
/// when everything that arrived earlier has been handled. An idle socket costs no work, so sockets that
/// really say nothing are still closed at the deadline; under sustained overload the silence limit still
/// closes them.
/// </para>
/// </summary>
public sealed class SilenceWatch(IOptions<FleetSettings> options, ILogger<SilenceWatch> log) : BackgroundService
{
    private readonly ConcurrentDictionary<DeviceConnection, byte> _connections = new(ReferenceEqualityComparer.Instance);
    // Sockets not bound to a device yet, with when they were opened (Environment.TickCount64).
    private readonly ConcurrentDictionary<DeviceConnection, long> _unbound = new(ReferenceEqualityComparer.Instance);
    private readonly long _connectWithinMs = Math.Max(0, options.Value.WebSocket.ConnectWithinSeconds) * 1000L;

    /// <summary>
    /// What one device may send (frames per second, burst, how long excess may last): enforced by each socket's
    /// read loop (<see cref="FrameBudget"/>), kept here with the node's other limits on sockets.
    /// </summary>
    public FrameRate Rate { get; } = FrameRate.From(options.Value.WebSocket);

    public void Add(DeviceConnection c)
    {
        _connections.TryAdd(c, 0);
        if (_connectWithinMs > 0) _unbound.TryAdd(c, Environment.TickCount64);
    }

    public void Remove(DeviceConnection c)
    {
        _connections.TryRemove(c, out _);
        _unbound.TryRemove(c, out _);
    }

    /// <summary>
    /// The node is stopping: every socket hands back its queued requests, lets the one in flight be answered (up to
    /// <paramref name="answerWithin"/>) and closes. Completes when all have closed.
    /// </summary>
    public Task CloseAllForStop(TimeSpan answerWithin)
    {
        var closed = new List<Task>(_connections.Count);
        foreach (var (c, _) in _connections) closed.Add(c.TellNodeStopping(answerWithin));
        return Task.WhenAll(closed);
    }

    /// <summary>Sockets still waiting for their first valid connect.</summary>
    public int Unbound => _unbound.Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var silenceMs = Math.Max(0, options.Value.WebSocket.SilenceCloseSeconds) * 1000L;
        if (silenceMs <= 0 && _connectWithinMs <= 0) return;
        var silenceEvery = silenceMs > 0 ? Math.Clamp(silenceMs / 6, 1000, 30_000) : long.MaxValue;
        var connectEvery = _connectWithinMs > 0 ? Math.Clamp(_connectWithinMs / 10, 100, 1000) : long.MaxValue;
        var every = Math.Min(silenceEvery, connectEvery);
        // Later than this, a tick says the node is behind (work waits in its queue that long).
        var behindAfter = Math.Max(500, _connectWithinMs / 10);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(every));
        var last = Environment.TickCount64;
        var nextSilence = last + silenceEvery;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = Environment.TickCount64;
            var late = now - last - every;
            last = now;
            if (_connectWithinMs > 0 && !_unbound.IsEmpty) SweepUnbound(now, punctual: late < behindAfter, late);
            if (silenceMs > 0 && now >= nextSilence)
            {
                nextSilence = now + silenceEvery;
                // Enumerating the dictionary itself takes no snapshot (.Keys would copy 20,000 references).
                foreach (var (c, _) in _connections)
                {
                    var silent = now - c.LastFrameAt;
                    if (silent > silenceMs) c.TellSilent(TimeSpan.FromMilliseconds(silent));
                }
            }
        }
    }

    private void SweepUnbound(long now, bool punctual, long late)
    {
        var closed = 0;
        var kept = 0;
        string? example = null;
        foreach (var (c, openedAt) in _unbound)
        {
            if (c.Bound)
            {
                _unbound.TryRemove(c, out _);
                continue;
            }
            if (now - openedAt < _connectWithinMs) continue;
            if (!punctual)
            {
                kept++;
                continue;
            }
            _unbound.TryRemove(c, out _);
            c.TellConnectOverdue(TimeSpan.FromMilliseconds(now - openedAt));
            closed++;
            example ??= c.Remote;
        }
        // One line per sweep, not per socket: a scan of the port opens sockets faster than anyone reads logs.
        if (closed > 0)
            log.LogInformation("Closing {Count} device socket(s) that sent no valid connect within {Seconds} s of the upgrade (e.g. {Remote})",
                closed, _connectWithinMs / 1000, example);
        if (kept > 0 && now - _keptLoggedAt >= 60_000)
        {
            _keptLoggedAt = now;
            log.LogInformation("Keeping {Count} device socket(s) past the connect deadline for now: the node runs {Late} ms behind (a connect storm?), their connect may be waiting to be handled",
                kept, late);
        }
    }

    private long _keptLoggedAt = -60_000;
}
