using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Fleet.Server.Hosting;

namespace Fleet.Server.Devices;

/// <summary>The "device" shard region: every node hosts one; entities are <see cref="DeviceEntity"/>, keyed by device_id.</summary>
public static class DeviceSharding
{
    public static AkkaConfigurationBuilder WithDeviceSharding(this AkkaConfigurationBuilder builder, FleetSettings settings,
        TimeProvider clock, Security.AdmissionMetrics? metrics = null, Metrics.FleetMetrics? fleetMetrics = null) =>
        builder.WithShardRegion<DeviceEntity>(FleetNames.DeviceRegion,
            deviceId => DeviceEntity.Props(deviceId, settings, clock, metrics, fleetMetrics),
            new DeviceMessageExtractor(FleetNames.ShardCount),
            new ShardOptions
            {
                StateStoreMode = StateStoreMode.DData,
                RememberEntities = false,
                // Entities passivate themselves when offline and idle; an online device stays resident.
                PassivateIdleEntityAfter = TimeSpan.Zero,
                // Not a PoisonPill: an entity stopped mid-write would drop what it had stashed (an accepted command
                // never answered, a device's answer lost). Ours is handled after pending writes.
                HandOffStopMessage = StopDevice.Instance,
            });
}

/// <summary>Routes every <see cref="IToDeviceEntity"/> by its device id.</summary>
public sealed class DeviceMessageExtractor(int shards) : HashCodeMessageExtractor(shards)
{
    public override string? EntityId(object message) => message switch
    {
        IToDeviceEntity m => m.DeviceId,
        _ => null,
    };
}
