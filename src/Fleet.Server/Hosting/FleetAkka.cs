using Akka;
using Akka.Actor;
using Akka.Event;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Akka.Remote.Hosting;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Jobs;
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
                .WithDeviceSharding(settings, clock, sp.GetRequiredService<Security.AdmissionMetrics>(), sp.GetRequiredService<Metrics.FleetMetrics>())
                .WithFleetEvents(sp, settings, clock)
                .WithJobs(sp, settings, clock)
                .WithDirectoryProjection(sp.GetRequiredService<DirectoryStore>(), settings.Directory)
                .AddStartup((system, _) => CloseDeviceSocketsOnStop(system, sp.GetService<Connections.SilenceWatch>()))
                .AddStartup((system, _) => EndAdminWaitsOnStop(system, sp.GetService<NodeStopping>()))
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

    /// <summary>
    /// The event topic (Akka distributed pub-sub): a relay per node to its SSE subscribers, and the alert manager as a
    /// cluster singleton (with a proxy on every node for the API).
    /// </summary>
    public static AkkaConfigurationBuilder WithFleetEvents(this AkkaConfigurationBuilder builder, IServiceProvider sp,
        FleetSettings settings, TimeProvider clock) =>
        builder
            .WithDistributedPubSub(null!)
            .WithActors((system, _) => system.ActorOf(Events.EventRelay.Props(sp.GetRequiredService<Events.EventHub>()), "event-relay"))
            .WithSingleton<Alerts.AlertManager>("alert-manager",
                Alerts.AlertManager.Props(settings.Alerts, sp.GetRequiredService<Alerts.AlertStore>(), sp.GetRequiredService<DirectoryStore>(),
                    sp.GetRequiredService<Alerts.WebhookSender>(), clock),
                new ClusterSingletonOptions(), createProxyToo: true)
            .AddStartup((system, _) =>
            {
                var cluster = Cluster.Get(system);
                sp.GetRequiredService<Metrics.FleetMetrics>().MembersFrom(() => cluster.State.Members
                    .GroupBy(m => cluster.State.Unreachable.Contains(m) ? "unreachable" : m.Status.ToString().ToLowerInvariant())
                    .Select(g => new System.Diagnostics.Metrics.Measurement<int>(g.Count(), new KeyValuePair<string, object?>("status", g.Key))));
            });

    /// <summary>How long a stopping node's sockets wait for the answer to the request each wrote last.</summary>
    public static readonly TimeSpan StopAnswerWithin = TimeSpan.FromSeconds(3);

    /// <summary>
    /// On a graceful stop (SIGTERM), the device sockets close first — before the shard region hands its shards off and
    /// stops (a later phase). What a socket tells its entity on the way out (written, answered, closed, and the requests
    /// it hands back unwritten) then still reaches it. Closed last, as before, those words went to dead letters, and a
    /// request the router had run was sent to it again from its next socket.
    /// </summary>
    private static void CloseDeviceSocketsOnStop(ActorSystem system, Connections.SilenceWatch? sockets)
    {
        if (sockets is null) return;
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseServiceRequestsDone, "close-device-sockets", async () =>
        {
            var closing = sockets.CloseAllForStop(StopAnswerWithin);
            // Within the phase's own timeout (5 s): a socket that has not closed by then is closed by the actor system's end.
            await Task.WhenAny(closing, Task.Delay(StopAnswerWithin + TimeSpan.FromSeconds(1)));
            system.Log.Info("Node stopping: device sockets closed{0}", closing.IsCompleted ? "" : " (some still closing)");
            return Done.Instance;
        });
    }

    /// <summary>Just before the actor system ends, admin requests still waiting on it end (see <see cref="NodeStopping"/>).</summary>
    private static void EndAdminWaitsOnStop(ActorSystem system, NodeStopping? stopping)
    {
        if (stopping is null) return;
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "end-admin-waits", () =>
        {
            stopping.Begin();
            return Task.FromResult(Done.Instance);
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
