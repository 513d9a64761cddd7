using System.Diagnostics.Metrics;

namespace Fleet.Server.Connections;

/// <summary>
/// How many sockets the node's listeners may hold at once, from the process's open-file limit, and the count of
/// those they hold: every socket from accept until its file descriptor is closed — waiting for its request,
/// upgrading, answered with a refusal, a device's WebSocket, an admin call, one being closed. Kestrel's own
/// connection limit does not count upgraded connections (WebSockets), so it cannot keep a node under its limit.
/// <para>
/// Of the open-file limit L, <c>Fleet:WebSocket:ReservedFileDescriptors</c> (R) is never taken by a listener (the
/// runtime's own files, the journal, database and cluster connections); the listeners hold at most L − R sockets.
/// When the admin API listens apart (Fleet:Admin:Urls), the device-facing listeners stop at L − R − A, so the last
/// <c>Fleet:Admin:ReservedConnections</c> (A) are for the admin API alone. Device sockets (the cap, <see cref="ConnectionGate"/>)
/// stop at L − R − 2A: the A between the cap and the device listeners' ceiling answer the excess with 503 (and,
/// sharing one address, the admin calls). A listener at its ceiling stops accepting until one of its sockets is
/// closed: the connection waits in the kernel's backlog instead of the process failing accept() with EMFILE.
/// </para>
/// </summary>
public sealed class SocketBudget : IDisposable
{
    /// <summary>Device cap when the open-file limit is unknown and no cap is configured.</summary>
    public const int UnknownLimitCap = 10_000;

    /// <summary>
    /// R unless configured: a quarter of the limit, at least the ≈350 files a node opens by itself, at most 1,000
    /// (1,000 from a limit of 4,000 up). A node under the common soft limit of 1,024 still starts (350 reserved).
    /// </summary>
    public static int DefaultReservedFiles(long? openFileLimit) =>
        openFileLimit is { } l ? (int)Math.Clamp(l / 4, 350, 1000) : 1000;

    /// <summary>A unless configured: 1/32 of the limit, between 8 and 100 (100 from a limit of 3,200 up).</summary>
    public static int DefaultAdminReserve(long? openFileLimit) =>
        openFileLimit is { } l ? (int)Math.Clamp(l / 32, 8, 100) : 100;

    private readonly SemaphoreSlim? _all;
    private readonly SemaphoreSlim? _deviceSide;
    private readonly Meter _meter = new(ConnectionMetrics.MeterName);
    private int _held, _adminHeld;
    private long _paused;
    private long _lastPauseLog;

    /// <summary>The process's soft RLIMIT_NOFILE, or null when unknown (then nothing but the cap is enforced).</summary>
    public long? OpenFileLimit { get; }
    public int ReservedFiles { get; }
    /// <summary>Sockets only the admin API's own listeners may take (and, sharing an address, its share of the headroom).</summary>
    public int AdminReserve { get; }
    /// <summary>The most sockets all listeners hold together (null: unbounded, the limit being unknown).</summary>
    public int? MaxSockets { get; }
    /// <summary>The most sockets the device-facing listeners hold (null: unbounded).</summary>
    public int? DeviceSideMax { get; }
    /// <summary>The most device WebSockets (the connection cap).</summary>
    public int DeviceCap { get; }
    public bool AdminApart { get; }

    public SocketBudget(long? openFileLimit, int reservedFiles, int adminReserve, int configuredCap, bool adminApart)
    {
        if (reservedFiles < 0) throw new InvalidOperationException($"Fleet:WebSocket:ReservedFileDescriptors must be 0 or more, not {reservedFiles}");
        if (adminReserve < 0) throw new InvalidOperationException($"Fleet:Admin:ReservedConnections must be 0 or more, not {adminReserve}");
        if (configuredCap < 0) throw new InvalidOperationException($"Fleet:WebSocket:MaxConnections must be 0 (from the open-file limit) or more, not {configuredCap}");
        OpenFileLimit = openFileLimit;
        ReservedFiles = reservedFiles;
        AdminReserve = adminReserve;
        AdminApart = adminApart;
        if (openFileLimit is { } limit)
        {
            var sockets = Math.Min(limit - reservedFiles, int.MaxValue);
            var fromLimit = sockets - 2L * adminReserve;
            if (fromLimit < 1)
                throw new InvalidOperationException(
                    $"the open-file limit ({limit}) leaves no room for device sockets: Fleet:WebSocket:ReservedFileDescriptors ({reservedFiles}) " +
                    $"+ 2 × Fleet:Admin:ReservedConnections ({adminReserve}) must stay below it; raise the limit (ulimit -n, LimitNOFILE=) or lower those settings");
            MaxSockets = (int)sockets;
            DeviceSideMax = adminApart ? (int)sockets - adminReserve : (int)sockets;
            DeviceCap = configuredCap > 0 ? (int)Math.Min(configuredCap, fromLimit) : (int)fromLimit;
            _all = new SemaphoreSlim(MaxSockets.Value, MaxSockets.Value);
            if (adminApart) _deviceSide = new SemaphoreSlim(DeviceSideMax.Value, DeviceSideMax.Value);
        }
        else DeviceCap = configuredCap > 0 ? configuredCap : UnknownLimitCap;

        _meter.CreateObservableUpDownCounter("fleet.sockets.held", () => Held);
        _meter.CreateObservableUpDownCounter("fleet.sockets.admin_held", () => AdminHeld);
        _meter.CreateObservableCounter("fleet.sockets.accept_paused", () => AcceptPaused);
    }

    /// <summary>Sockets the listeners hold now (all sides).</summary>
    public int Held => Volatile.Read(ref _held);
    /// <summary>Of <see cref="Held"/>, those accepted by the admin API's own listeners.</summary>
    public int AdminHeld => Volatile.Read(ref _adminHeld);
    /// <summary>How many times a listener found no room and waited for a socket to close before accepting.</summary>
    public long AcceptPaused => Interlocked.Read(ref _paused);

    /// <summary>
    /// Takes room for one socket on a listener of this side, waiting while there is none. False when
    /// <paramref name="ct"/> ends the wait (the listener is being unbound).
    /// </summary>
    public async ValueTask<bool> TakeAsync(bool admin, Action<string>? onPause, CancellationToken ct)
    {
        var side = admin ? null : _deviceSide;
        try
        {
            if (side is not null && !side.Wait(0)) { Paused(onPause, admin); await side.WaitAsync(ct); }
            if (_all is not null && !_all.Wait(0))
            {
                Paused(onPause, admin);
                try { await _all.WaitAsync(ct); }
                catch (OperationCanceledException) { side?.Release(); throw; }
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        Interlocked.Increment(ref _held);
        if (admin) Interlocked.Increment(ref _adminHeld);
        return true;
    }

    /// <summary>Gives back the room of a socket whose file descriptor is closed (or that was never accepted).</summary>
    public void Give(bool admin)
    {
        Interlocked.Decrement(ref _held);
        if (admin) Interlocked.Decrement(ref _adminHeld);
        _all?.Release();
        if (!admin) _deviceSide?.Release();
    }

    private void Paused(Action<string>? onPause, bool admin)
    {
        Interlocked.Increment(ref _paused);
        // One line per 10 s at most: a wave would otherwise write one per refused connection.
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastPauseLog);
        if (onPause is not null && now - last >= 10_000 && Interlocked.CompareExchange(ref _lastPauseLog, now, last) == last)
            onPause($"{(admin ? "admin" : "device-facing")} listener full: {Held} sockets held of at most {(admin ? MaxSockets : DeviceSideMax)} " +
                    $"(open-file limit {OpenFileLimit}); not accepting until one closes");
    }

    /// <summary>For GET /api/v1/node.</summary>
    public object Snapshot(ConnectionGate gate) => new
    {
        OpenFileLimit,
        ReservedFileDescriptors = ReservedFiles,
        AdminReserved = AdminReserve,
        Max = MaxSockets,
        DeviceSideMax,
        Held,
        AdminHeld,
        DeviceHeld = gate.Held,
        AcceptPaused,
    };

    /// <summary>The soft RLIMIT_NOFILE of this process (from /proc/self/limits), or null when unknown or unlimited.</summary>
    public static long? ReadOpenFileLimit()
    {
        try
        {
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts is { Length: >= 5 } && long.TryParse(parts[3], out var soft) ? soft : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _meter.Dispose();
        _all?.Dispose();
        _deviceSide?.Dispose();
    }
}
