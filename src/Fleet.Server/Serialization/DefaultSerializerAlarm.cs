using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;
using Akka.Serialization;

namespace Fleet.Server.Serialization;

/// <summary>
/// Bound to <see cref="object"/>: catches whatever would otherwise fall through to Akka's default
/// (Newtonsoft JSON) serializer, i.e. a message crossing nodes or persisted without being
/// <see cref="IFleetSerializable"/>. It still serializes it (Newtonsoft, as before), but logs a warning
/// once per type saying "default serializer", so the cluster tests' log check finds it. Akka's own
/// messages have more specific bindings and never come here.
/// </summary>
public sealed class DefaultSerializerAlarm(ExtendedActorSystem system) : Serializer(system)
{
    public const int SerializerId = 5151;

    private readonly NewtonSoftJsonSerializer _inner = new(system);
    private readonly ConcurrentDictionary<Type, bool> _warned = new();
    // Created on first use: serializers are built while the actor system is still starting.
    private ILoggingAdapter? _log;

    public override int Identifier => SerializerId;
    public override bool IncludeManifest => true;

    public override byte[] ToBinary(object obj)
    {
        if (_warned.TryAdd(obj.GetType(), true))
            (_log ??= Logging.GetLogger(system, typeof(DefaultSerializerAlarm))).Warning("default serializer (Newtonsoft JSON) used for {0}: make it IFleetSerializable and give it a manifest in FleetSerializer",
                obj.GetType().FullName);
        return _inner.ToBinary(obj);
    }

    public override object FromBinary(byte[] bytes, Type? type) => _inner.FromBinary(bytes, type!);
}
