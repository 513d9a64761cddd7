using Akka.Actor;
using Akka.Event;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Akka.Remote.Hosting;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Serialization;

namespace Fleet.Server.Hosting;

/// <summary>The Akka side of a node, one extension method per concern, composed in <see cref="AddFleetAkka"/>.</summary>
public static class FleetAkka
{
    public static IServiceCollection AddFleetAkka(this IServiceCollection services, FleetSettings settings,
        IConfiguration configuration, string connectionString)
    {
        return services.AddAkka(settings.Cluster.SystemName, (builder, sp) =>
        {
            var clock = sp.GetRequiredService<TimeProvider>();
            builder
                .ConfigureLoggers(l => l.AddLoggerFactory())
                // Akka settings come from configuration (appsettings.json "akka" section), never from code.
                .AddHocon(configuration.GetSection("akka"), HoconAddMode.Prepend)
                .WithFleetSerialization()
                .WithFleetCluster(settings)
                .WithFleetPersistence(settings, connectionString)
                .WithDeviceSharding(settings, clock, sp.GetRequiredService<Security.AdmissionMetrics>())
                .WithDirectoryProjection(sp.GetRequiredService<DirectoryStore>(), settings.Directory)
                .AddStartup((system, _) =>
                {
                    var config = system.Settings.Config;
                    var cluster = config.GetConfig("akka.cluster");
                    system.Log.Info(
                        "Fleet node {0}: persistence {1}, seed nodes [{2}], max-concurrent-recoveries {3}, cluster timing [{4}]",
                        Cluster.Get(system).SelfAddress, settings.Persistence.Provider, string.Join(", ", settings.Cluster.SeedNodes),
                        config.GetInt("akka.persistence.max-concurrent-recoveries"),
                        $"split-brain resolver {cluster.GetString("split-brain-resolver.active-strategy")} " +
                        $"stable-after {cluster.GetTimeSpan("split-brain-resolver.stable-after").TotalSeconds} s, " +
                        $"acceptable-heartbeat-pause {cluster.GetTimeSpan("failure-detector.acceptable-heartbeat-pause").TotalSeconds} s, " +
                        $"sharding retry-interval {cluster.GetTimeSpan("sharding.retry-interval").TotalSeconds} s");
                });
        });
    }

    public static AkkaConfigurationBuilder WithFleetSerialization(this AkkaConfigurationBuilder builder) =>
        builder
            .WithCustomSerializer("fleet", [typeof(IFleetSerializable)], system => new FleetSerializer(system))
            // Anything else that would reach the default serializer is logged (see DefaultSerializerAlarm).
            .WithCustomSerializer("fleet-default-alarm", [typeof(object)], system => new DefaultSerializerAlarm(system));

    public static AkkaConfigurationBuilder WithFleetCluster(this AkkaConfigurationBuilder builder, FleetSettings settings)
    {
        builder
            .WithRemoting(string.IsNullOrEmpty(settings.Cluster.BindHostname)
                ? new RemoteOptions { HostName = settings.Cluster.Hostname, Port = settings.Cluster.Port }
                : new RemoteOptions
                {
                    HostName = settings.Cluster.BindHostname, PublicHostName = settings.Cluster.Hostname,
                    Port = settings.Cluster.Port,
                })
            .WithClustering(new ClusterOptions
            {
                SeedNodes = settings.Cluster.SeedNodes,
                Roles = settings.Cluster.Roles,
            });
        if (settings.Cluster.SeedNodes.Length == 0)
        {
            // A lone node is a complete system: it forms a cluster of itself.
            builder.AddStartup((system, _) => Cluster.Get(system).Join(Cluster.Get(system).SelfAddress));
        }
        return builder;
    }

    public static string ProviderName(PersistenceProvider p) => p switch
    {
        PersistenceProvider.Sqlite => "SQLite.MS",
        _ => "PostgreSQL.15",
    };

    public static AkkaConfigurationBuilder WithFleetPersistence(this AkkaConfigurationBuilder builder, FleetSettings settings,
        string connectionString) =>
        builder.WithSqlPersistence(connectionString, ProviderName(settings.Persistence.Provider));
}
