using System.Collections.Immutable;

namespace Fleet.Server.Devices;

/// <summary>
/// Connections of one device_id replacing each other, in a sliding window: more than <see cref="Threshold"/>
/// within <see cref="Window"/> means two routers (a cloned configuration, or a router and an impostor) claim the
/// same device_id, and the device is flagged cloned until its connections have stayed put for a whole window.
/// A router that reconnects normally does not replace anything: its old socket is gone (EOF, silence) before
/// the new one connects. Kept in memory only (<see cref="DeviceLive"/>): it describes what the sockets do now,
/// and two clones set it again within minutes after a restart. A value; null until the first replacement.
/// </summary>
public sealed record CloneWatch(ImmutableArray<DateTimeOffset> Replacements, DateTimeOffset? Since)
{
    public const int Threshold = 5;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    /// <summary>A connection replaced another at <paramref name="now"/>: the watch after it, and whether that began an episode.</summary>
    public static (CloneWatch Watch, bool EpisodeStarted) Replaced(CloneWatch? watch, DateTimeOffset now)
    {
        var recent = ImmutableArray.CreateBuilder<DateTimeOffset>(Threshold + 1);
        foreach (var t in watch?.Replacements ?? [])
            if (now - t < Window) recent.Add(t);
        recent.Add(now);
        // Only the last Threshold + 1 matter for the rule.
        while (recent.Count > Threshold + 1) recent.RemoveAt(0);
        var since = watch is not null && watch.ActiveAt(now) ? watch.Since : null;
        var started = since is null && recent.Count > Threshold;
        if (started) since = now;
        return (new CloneWatch(recent.ToImmutable(), since), started);
    }

    /// <summary>Flagged: an episode began and the last replacement is less than a window old.</summary>
    public bool ActiveAt(DateTimeOffset now) => Since is not null && !Replacements.IsEmpty && now - Replacements[^1] < Window;
}
