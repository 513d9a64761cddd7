namespace Fleet.Server.Hosting;

/// <summary>Names of shard regions, singletons, tags and tables: one place, because nodes must agree.</summary>
public static class FleetNames
{
    public const string DeviceRegion = "device";
    public const string PersistenceIdPrefix = "device-";
    public const string DirectoryProjection = "device-directory";
    public const string QueryJournal = "akka.persistence.query.journal.sql";
    public const int ShardCount = 100;
}
