namespace Fleet.Server.Jobs;

/// <summary>Fleet:Jobs — bulk commands and rollouts.</summary>
public sealed class JobSettings
{
    /// <summary>Most devices one job or rollout may select.</summary>
    public int MaxDevices { get; set; } = 50_000;
    /// <summary>How often a job looks at what it has to do (sends at its rate, checks reconnects and deadlines), in milliseconds.</summary>
    public int TickMilliseconds { get; set; } = 1000;
    /// <summary>A command job asks again after a device's command every this many seconds (a lost answer is not waited for forever).</summary>
    public int RecheckSeconds { get; set; } = 60;
    /// <summary>How often the keeper wakes every unfinished job (after a restart, or a node that held one died).</summary>
    public int WakeEverySeconds { get; set; } = 10;
    /// <summary>Snapshot a job every N persisted events.</summary>
    public int SnapshotEvery { get; set; } = 500;
    /// <summary>A rollout's requests (get_firmware_info, firmware_upgrade) wait this long for an answer.</summary>
    public int RolloutCommandTimeoutSeconds { get; set; } = 60;

    public void Validate()
    {
        if (MaxDevices < 1) throw new InvalidOperationException("Fleet:Jobs:MaxDevices must be at least 1");
        if (TickMilliseconds is < 10 or > 60_000) throw new InvalidOperationException("Fleet:Jobs:TickMilliseconds must be from 10 to 60000");
        if (RecheckSeconds < 1 || WakeEverySeconds < 1 || SnapshotEvery < 1 || RolloutCommandTimeoutSeconds < 1)
            throw new InvalidOperationException("Fleet:Jobs: RecheckSeconds, WakeEverySeconds, SnapshotEvery and RolloutCommandTimeoutSeconds must be at least 1");
    }
}
