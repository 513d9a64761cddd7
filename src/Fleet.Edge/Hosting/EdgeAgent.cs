using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Akka.Configuration;
using Fleet.Edge.Config;
using Fleet.Edge.Firewall;
using Fleet.Edge.Link;
using Fleet.Edge.Portal;
using Fleet.Edge.Router;
using Fleet.Protocol;

namespace Fleet.Edge.Hosting;

/// <summary>What tests (and only tests) change about an agent: clocks, delays, where nft runs, /proc.</summary>
public sealed record EdgeOverrides
{
    public IFirewallBackend? Backend { get; init; }
    public LinkTimings? Timings { get; init; }
    public TimeProvider? Time { get; init; }
    /// <summary>Put before the nft command, e.g. ["ip", "netns", "exec", "ns1"].</summary>
    public IReadOnlyList<string> NftPrefix { get; init; } = [];
    public string ProcRoot { get; init; } = "/proc";
    public TimeSpan? FirewallCheckInterval { get; init; }
}

/// <summary>
/// The agent: one local ActorSystem (no remoting, no cluster) with three actors —
/// firewall (portal state + nftables), router (firmware, reboot, /proc) and link (the WebSocket).
/// </summary>
public sealed class EdgeAgent : IAsyncDisposable
{
    public ActorSystem System { get; }
    public IActorRef Firewall { get; }
    public IActorRef Router { get; }
    public IActorRef Link { get; }

    private EdgeAgent(ActorSystem system, IActorRef firewall, IActorRef router, IActorRef link)
    {
        System = system;
        Firewall = firewall;
        Router = router;
        Link = link;
    }

    /// <param name="config">A config <see cref="ConfigLoader"/> accepted.</param>
    // Akka creates the scheduler and the serializer from their names in agent.conf: trimming must keep their constructors.
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicConstructors, typeof(TimerScheduler))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicConstructors, typeof(LocalOnlySerializer))]
    public static EdgeAgent Start(EdgeConfig config, EdgeOverrides? overrides = null)
    {
        overrides ??= new EdgeOverrides();
        // With a Config, not a BootstrapSetup: Akka then does not read the app.config too (System.Configuration and
        // System.Xml loaded for nothing: 1.5 MB of RSS).
        var system = ActorSystem.Create("fleet-edge", AkkaSettings());
        var gateways = config.GatewayList.Select(g => (g.GwId!, g.GwInterface!, g.AuthMode)).ToList();
        IFirewallBackend backend = overrides.Backend ?? (config.Firewall.Backend == "memory"
            ? new MemoryFirewallBackend()
            : new NftablesBackend(config.Firewall.Table, [.. overrides.NftPrefix, config.Firewall.NftCommand]));

        var firewall = system.ActorOf(FirewallActor.Props(config.Id, gateways, backend, new StateStore(config.StateDirectory),
            overrides.Time ?? TimeProvider.System,
            overrides.FirewallCheckInterval ?? TimeSpan.FromSeconds(config.Firewall.CheckIntervalSeconds)), "firewall");
        var router = system.ActorOf(RouterActor.Props(new RouterOptions(config.SysupgradeCommand, config.RebootCommand,
            config.ReleaseFile, overrides.ProcRoot), firewall), "router");

        var identity = new DeviceIdentity(config.Id, config.DeviceInfo, config.GatewayList.Select(g => new GatewayReport
        {
            GwId = g.GwId, GwChannel = g.GwChannel, GwAddressV4 = g.GwAddressV4, GwAddressV6 = g.GwAddressV6,
            AuthMode = g.AuthMode, GwInterface = g.GwInterface,
        }).ToList());
        var timings = overrides.Timings ?? LinkTimings.Default(TimeSpan.FromSeconds(config.HeartbeatIntervalSeconds),
            TimeSpan.FromSeconds(config.ReconnectMaxBackoffSeconds));
        var link = system.ActorOf(LinkActor.Props(new Uri(config.ControllerUrl!), identity, timings, firewall, router), "link");
        return new EdgeAgent(system, firewall, router, link);
    }

    /// <summary>agent.conf, embedded in the assembly: the few Akka settings that differ from Akka's defaults.</summary>
    internal static Akka.Configuration.Config AkkaSettings() =>
        ConfigurationFactory.FromResource("Fleet.Edge.agent.conf", typeof(EdgeAgent).Assembly);

    public async ValueTask DisposeAsync() => await CoordinatedShutdown.Get(System).Run(CoordinatedShutdown.ClrExitReason.Instance);
}
