namespace Fleet.Edge.Link;

/// <summary>How a connection ended; each has its own first delay, as in the real firmware.</summary>
public enum DropReason
{
    /// <summary>Could not connect, or the socket failed.</summary>
    Error,
    /// <summary>The TCP stream ended without a close frame.</summary>
    Eof,
    /// <summary>The controller sent a close frame.</summary>
    ServerClose,
}

/// <summary>The link's clock: every delay is here so tests can shrink them.</summary>
public sealed record LinkTimings(
    TimeSpan HeartbeatInterval,
    TimeSpan ErrorDelay,
    TimeSpan EofDelay,
    TimeSpan CloseDelay,
    int QuickTries,
    TimeSpan MaxBackoff,
    TimeSpan ConnectTimeout)
{
    /// <summary>The firmware's figures: 2 s after errors, 5 s after EOF, 3 s after a close frame, 5 quick tries.</summary>
    public static LinkTimings Default(TimeSpan heartbeat, TimeSpan maxBackoff) =>
        new(heartbeat, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(3), 5, maxBackoff, TimeSpan.FromSeconds(15));
}

public static class ReconnectPolicy
{
    /// <summary>
    /// The wait before the next attempt after <paramref name="failures"/> consecutive failures
    /// (1 for the first). The first QuickTries waits are the firmware's fixed delays; after that the
    /// firmware gives up, but a router must never stay orphaned, so it keeps trying with exponential
    /// backoff capped at MaxBackoff and "equal jitter" (half fixed, half random) so that a fleet
    /// that lost its controller at once does not come back in lockstep.
    /// </summary>
    public static TimeSpan Delay(LinkTimings t, DropReason reason, int failures, double random01)
    {
        var first = reason switch
        {
            DropReason.Eof => t.EofDelay,
            DropReason.ServerClose => t.CloseDelay,
            _ => t.ErrorDelay,
        };
        if (failures <= t.QuickTries) return first;
        var exponent = Math.Min(failures - t.QuickTries, 30);
        var grown = Math.Min(first.TotalMilliseconds * Math.Pow(2, exponent), t.MaxBackoff.TotalMilliseconds);
        var jittered = grown / 2 + grown / 2 * Math.Clamp(random01, 0, 1);
        return TimeSpan.FromMilliseconds(Math.Max(jittered, Math.Min(first.TotalMilliseconds, t.MaxBackoff.TotalMilliseconds)));
    }
}
