using Fleet.Server.Hosting;

namespace Fleet.Server.Connections;

/// <summary>The node's limits on what one device socket may send, read once from the settings.</summary>
/// <param name="PerSecond">Frames per second on average; 0 or less: no limit.</param>
/// <param name="Burst">The bucket's size: frames a device may send at once.</param>
/// <param name="CloseAfterMs">Refusals with no second free of them for this long drop the socket; 0: never.</param>
public sealed record FrameRate(double PerSecond, int Burst, long CloseAfterMs)
{
    public static readonly FrameRate Unlimited = new(0, 0, 0);

    public bool Limited => PerSecond > 0;

    public static FrameRate From(WebSocketSettings ws)
    {
        if (ws.MaxFramesPerSecond < 0 || double.IsNaN(ws.MaxFramesPerSecond))
            throw new InvalidOperationException($"Fleet:WebSocket:MaxFramesPerSecond must be 0 (no limit) or more, not {ws.MaxFramesPerSecond}");
        if (ws.MaxFramesPerSecond > 0 && ws.MaxFrameBurst < 1)
            throw new InvalidOperationException($"Fleet:WebSocket:MaxFrameBurst must be at least 1, not {ws.MaxFrameBurst}");
        if (ws.CloseAfterExcessSeconds < 0)
            throw new InvalidOperationException($"Fleet:WebSocket:CloseAfterExcessSeconds must be 0 (never) or more, not {ws.CloseAfterExcessSeconds}");
        return ws.MaxFramesPerSecond == 0 ? Unlimited : new(ws.MaxFramesPerSecond, ws.MaxFrameBurst, ws.CloseAfterExcessSeconds * 1000L);
    }
}

/// <summary>What the budget says about one frame.</summary>
public enum FrameVerdict : byte
{
    Take,
    /// <summary>Over the limit: drop it undecoded.</summary>
    Refuse,
    /// <summary>Over the limit for longer than the rate allows: drop the socket.</summary>
    Close,
}

/// <summary>
/// One socket's frame budget: a token bucket (<see cref="FrameRate.PerSecond"/> refilled continuously, at most
/// <see cref="FrameRate.Burst"/> kept) and how long refusals have gone on. A struct inside the connection
/// (under 50 bytes, no allocation, no timer): only the socket's read loop touches it, with the time of each frame.
/// System.Threading.RateLimiting's TokenBucketRateLimiter would be an object of a few hundred bytes per socket
/// with a lock, a wait queue and either a timer of its own or a node-wide replenishing sweep.
/// </summary>
public struct FrameBudget
{
    /// <summary>Refusals further apart than this end a stretch of excess.</summary>
    public const long QuietGapMs = 1000;

    private double _tokens;
    private long _updatedAt;      // Environment.TickCount64 of the last frame; 0 before the first
    private long _excessSince;    // first refusal of the current stretch; 0: none
    private long _lastRefusal;
    private long _loggedAt;       // last log line about this socket's refusals; 0: none yet

    /// <summary>Frames refused since the last log line about them.</summary>
    public int RefusedSinceLog { get; private set; }

    public FrameVerdict Take(long now, FrameRate rate)
    {
        if (!rate.Limited) return FrameVerdict.Take;
        _tokens = _updatedAt == 0
            ? rate.Burst
            : Math.Min(rate.Burst, _tokens + (now - _updatedAt) * rate.PerSecond / 1000.0);
        _updatedAt = now;
        if (_tokens >= 1)
        {
            _tokens -= 1;
            return FrameVerdict.Take;
        }
        if (_excessSince == 0 || now - _lastRefusal > QuietGapMs) _excessSince = now;
        _lastRefusal = now;
        RefusedSinceLog++;
        return rate.CloseAfterMs > 0 && now - _excessSince >= rate.CloseAfterMs ? FrameVerdict.Close : FrameVerdict.Refuse;
    }

    /// <summary>True at most once a minute (the first refusal included): time to log, and the count restarts.</summary>
    public bool ShouldLog(long now)
    {
        if (_loggedAt != 0 && now - _loggedAt < 60_000) return false;
        _loggedAt = now;
        return true;
    }

    public void Logged() => RefusedSinceLog = 0;

    /// <summary>How long the current stretch of refusals has lasted.</summary>
    public readonly long ExcessFor(long now) => _excessSince == 0 ? 0 : now - _excessSince;
}
