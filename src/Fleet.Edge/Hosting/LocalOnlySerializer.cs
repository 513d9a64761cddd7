using Akka.Actor;
using Akka.Serialization;

namespace Fleet.Edge.Hosting;

/// <summary>
/// Stands in for Akka's default serializer of objects ("json", Newtonsoft.Json) in the agent, which is one process
/// with no remoting and no persistence: nothing is ever serialized. Akka creates its configured serializers at start-up,
/// and Newtonsoft.Json's serializer would keep Newtonsoft.Json, System.Private.Xml, System.Data.Common and more in the
/// trimmed package: 2.8 MB of a router's flash for code that never runs (docs/EDGE.md, "Footprint"). Bound in agent.conf.
/// </summary>
public sealed class LocalOnlySerializer : Serializer
{
    public LocalOnlySerializer(ExtendedActorSystem system) : base(system) { }

    /// <summary>What Akka calls when the reference configuration has serialization-settings for "json" (it has).</summary>
    public LocalOnlySerializer(ExtendedActorSystem system, Akka.Configuration.Config settings) : base(system) { }

    /// <summary>Ours, outside Akka's reserved 0–40.</summary>
    public override int Identifier => 101;

    public override bool IncludeManifest => false;

    public override byte[] ToBinary(object obj) =>
        throw new NotSupportedException($"Fleet.Edge serializes nothing (no remoting, no persistence): {obj.GetType()}");

    public override object FromBinary(byte[] bytes, Type type) =>
        throw new NotSupportedException($"Fleet.Edge deserializes nothing (no remoting, no persistence): {type}");
}
