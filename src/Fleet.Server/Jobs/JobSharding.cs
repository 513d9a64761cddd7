using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;

namespace Fleet.Server.Jobs;

/// <summary>The "job" shard region (every node) and the keeper singleton that wakes unfinished jobs.</summary>
public static class JobSharding
{
    public const string Region = "job";

    public static AkkaConfigurationBuilder WithJobs(this AkkaConfigurationBuilder builder, IServiceProvider sp, FleetSettings settings,
        TimeProvider clock) =>
        builder
            .WithShardRegion<JobEntity>(Region,
                jobId => JobEntity.Props(jobId, settings, sp.GetRequiredService<DirectoryStore>(), sp.GetRequiredService<SelectionResolver>(),
                    sp.GetRequiredService<JobStore>(), clock),
                new JobMessageExtractor(FleetNames.ShardCount),
                new ShardOptions { StateStoreMode = StateStoreMode.DData, RememberEntities = false, PassivateIdleEntityAfter = TimeSpan.Zero })
            .WithSingleton<JobKeeper>("job-keeper", JobKeeper.Props(sp.GetRequiredService<JobStore>(), settings.Jobs),
                new ClusterSingletonOptions(), createProxyToo: false);
}

public sealed class JobMessageExtractor(int shards) : HashCodeMessageExtractor(shards)
{
    public override string? EntityId(object message) => message switch
    {
        IToJob m => m.JobId,
        _ => null,
    };
}
