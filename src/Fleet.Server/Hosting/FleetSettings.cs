namespace Fleet.Server.Hosting;

/// <summary>
/// Everything a node reads from configuration (section "Fleet"). The defaults make one node work
/// with no configuration at all: SQLite in data/fleet.db, a cluster of itself.
/// </summary>
public sealed class FleetSettings
{
    public PersistenceSettings Persistence { get; set; } = new();
    public ClusterSettings Cluster { get; set; } = new();
    public WebSocketSettings WebSocket { get; set; } = new();
    public DeviceSettings Devices { get; set; } = new();
    public CommandSettings Commands { get; set; } = new();
    public Security.SecuritySettings Security { get; set; } = new();
    public AdminSettings Admin { get; set; } = new();
    public DirectorySettings Directory { get; set; } = new();
    public Alerts.AlertSettings Alerts { get; set; } = new();
    public Devices.TagSettings Tags { get; set; } = new();
    public Jobs.JobSettings Jobs { get; set; } = new();
}

public enum PersistenceProvider { Sqlite, PostgreSql }

public sealed class PersistenceSettings
{
    public PersistenceProvider Provider { get; set; } = PersistenceProvider.Sqlite;
    /// <summary>Default: Data Source=data/fleet.db (made absolute against the working directory).</summary>
    public string? ConnectionString { get; set; }
}

public sealed class ClusterSettings
{
    public string SystemName { get; set; } = "fleet";
    /// <summary>The host name other nodes reach this one by (in its Akka address).</summary>
    public string Hostname { get; set; } = "127.0.0.1";
    /// <summary>
    /// Where remoting listens, when that differs from <see cref="Hostname"/>: "0.0.0.0" in a container or
    /// pod whose advertised name (Hostname) only resolves once it is up. Empty: listen on Hostname.
    /// </summary>
    public string? BindHostname { get; set; }
    /// <summary>Akka remoting port; 0 picks a free one (a lone node joins itself either way).</summary>
    public int Port { get; set; } = 4053;
    /// <summary>Seed node addresses (akka.tcp://fleet@host:port). Empty: this node joins itself.</summary>
    public string[] SeedNodes { get; set; } = [];
    /// <summary>Roles are not used for placement yet; kept so cluster configs can name them.</summary>
    public string[] Roles { get; set; } = [];
}

public sealed class WebSocketSettings
{
    /// <summary>Largest text frame (after reassembly) a device may send.</summary>
    public int MaxMessageBytes { get; set; } = 64 * 1024;
    /// <summary>
    /// Most device sockets this node holds (counted from the upgrade until the socket is closed); an upgrade past it
    /// gets 503. 0 = derive from the process's open-file limit L: L − <see cref="ReservedFileDescriptors"/> − 2 ×
    /// <see cref="AdminSettings.ReservedConnections"/>. A larger value is lowered to that. See Connections/SocketBudget.cs.
    /// </summary>
    public int MaxConnections { get; set; }
    /// <summary>
    /// Open files no listener may take: the runtime's own (≈350 at start), the journal, database and cluster
    /// connections. The listeners together hold at most the open-file limit minus this many sockets, and stop
    /// accepting (the kernel's backlog holds the rest) rather than run the process out of file descriptors.
    /// </summary>
    public int? ReservedFileDescriptors { get; set; }
    /// <summary>
    /// WebSocket keep-alive frames from the server (seconds); 0 = none. Keep it 0 for real firmware: a ping
    /// can share a read with a request and swallow it, seed-era firmware never answers pings, and the
    /// heartbeat already shows the socket alive (<see cref="SilenceCloseSeconds"/>).
    /// </summary>
    public int KeepAliveSeconds { get; set; }
    /// <summary>
    /// A socket that sends nothing for this long is closed and its device offline (0 = never): three of the
    /// firmware's 60 s heartbeats missed.
    /// </summary>
    public int SilenceCloseSeconds { get; set; } = 180;
    /// <summary>
    /// After a frame the device does not answer (a reply to its report, a one-way request), the next frame
    /// waits this long, so that the two cannot arrive in one read of the real client, which handles only
    /// the first frame of a read. Frames the device answers wait for the answer instead. See docs/FIRMWARE.md.
    /// </summary>
    public int FramePauseMs { get; set; } = 250;
    /// <summary>
    /// A socket that has not sent a valid connect this long after its upgrade is dropped (0 = never). Every
    /// firmware sends connect as its first frame, right after the 101 (docs/FIRMWARE.md).
    /// </summary>
    public int ConnectWithinSeconds { get; set; } = 10;
    /// <summary>
    /// Frames a device may send per second, on average (0 = no limit). A real router sends a heartbeat a
    /// minute; its answers to our requests do not count (each request it answers earns it one frame).
    /// </summary>
    public double MaxFramesPerSecond { get; set; } = 20;
    /// <summary>Frames a device may send at once above <see cref="MaxFramesPerSecond"/> (the bucket's size).</summary>
    public int MaxFrameBurst { get; set; } = 50;
    /// <summary>
    /// A socket whose frames are refused for this long without a second free of refusals is dropped (0 = never:
    /// frames over the limit are only refused).
    /// </summary>
    public int CloseAfterExcessSeconds { get; set; } = 10;
}

/// <summary>Where the admin API listens, when not with the devices (section "Fleet:Admin").</summary>
public sealed class AdminSettings
{
    /// <summary>
    /// URLs (";"-separated, as --urls) where the admin API (/api/v1, /openapi) listens. Set, those paths answer
    /// only there and /ws/… only on the device-facing URLs (--urls, or Kestrel:Endpoints); /healthz and
    /// /readyz on both. Empty: everything on one address.
    /// </summary>
    public string? Urls { get; set; }
    /// <summary>
    /// Sockets kept for the admin API below the open-file limit: its own listeners (<see cref="Urls"/>) take them
    /// when the device-facing ones are full, so it answers during a reconnect wave. The same number again lies
    /// between the device cap and the device-facing listeners' ceiling, to answer the excess with 503 (and, on a
    /// shared address, the admin calls).
    /// </summary>
    public int? ReservedConnections { get; set; }
}

public sealed class DeviceSettings
{
    /// <summary>An offline device's entity passivates after this long without messages.</summary>
    public int PassivateAfterSeconds { get; set; } = 120;
    /// <summary>Snapshot every N persisted events.</summary>
    public int SnapshotEvery { get; set; } = 100;
    /// <summary>How many finished commands a device keeps in its history.</summary>
    public int CommandHistory { get; set; } = 200;
    /// <summary>Most unfinished commands (queued or sent) a device holds; a submit beyond it gets 429.</summary>
    public int MaxQueuedCommands { get; set; } = 100;
}

public sealed class CommandSettings
{
    public int DefaultTtlSeconds { get; set; } = 86400;
    public int DefaultTimeoutSeconds { get; set; } = 30;
    /// <summary>Upper bound for ?wait= (seconds).</summary>
    public int MaxWaitSeconds { get; set; } = 120;
}

/// <summary>The device directory's reconciliation with the journal (section "Fleet:Directory").</summary>
public sealed class DirectorySettings
{
    /// <summary>
    /// A reconciliation pass starts this long after the previous one ended (0 = never): every directory row is compared
    /// with its device's state in the journal and repaired where it drifted; devices missing from the directory are added.
    /// </summary>
    public int ReconcileEverySeconds { get; set; } = 3600;
    /// <summary>Devices read per step of a pass (one directory page, one transaction of repairs).</summary>
    public int ReconcileBatchSize { get; set; } = 100;
    /// <summary>Most devices a pass reads per second (0 = no pause): each is a snapshot and the events after it.</summary>
    public double ReconcileDevicesPerSecond { get; set; } = 200;

    public void Validate()
    {
        if (ReconcileEverySeconds < 0)
            throw new InvalidOperationException($"Fleet:Directory:ReconcileEverySeconds must be 0 (never) or more, not {ReconcileEverySeconds}");
        if (ReconcileBatchSize is < 1 or > 1000)
            throw new InvalidOperationException($"Fleet:Directory:ReconcileBatchSize must be 1 to 1000, not {ReconcileBatchSize}");
        if (ReconcileDevicesPerSecond < 0 || double.IsNaN(ReconcileDevicesPerSecond))
            throw new InvalidOperationException($"Fleet:Directory:ReconcileDevicesPerSecond must be 0 (no pause) or more, not {ReconcileDevicesPerSecond}");
    }
}
