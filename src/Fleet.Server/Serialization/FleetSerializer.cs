using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Fleet.Server.Devices;
using Fleet.Server.Directory;

namespace Fleet.Server.Serialization;

/// <summary>Marker for everything persisted or sent between nodes: bound to <see cref="FleetSerializer"/>.</summary>
public interface IFleetSerializable;

/// <summary>
/// System.Text.Json with short, fixed manifests: renaming a CLR type never breaks recovery, and no
/// type names are written into the journal. Actor references travel as their serialized paths.
/// </summary>
public sealed class FleetSerializer : SerializerWithStringManifest
{
    public const int SerializerId = 5150;

    /// <summary>Manifest ↔ type. Manifests are stored in the journal: never change or reuse one.</summary>
    public static readonly IReadOnlyDictionary<string, Type> Manifests = new Dictionary<string, Type>
    {
        // persisted events and snapshot
        ["dc"] = typeof(DeviceConnected),
        ["dd"] = typeof(DeviceDisconnected),
        ["di"] = typeof(DeviceInfoReported),
        ["dg"] = typeof(GatewaysReported),
        ["da"] = typeof(DesiredAuthModeSet),
        ["ca"] = typeof(ClientAuthorized),
        ["cr"] = typeof(ClientRemoved),
        ["fw"] = typeof(FirmwareReported),
        ["cq"] = typeof(CommandQueued),
        ["cs"] = typeof(CommandSent),
        ["crq"] = typeof(CommandRequeued),
        ["cc"] = typeof(CommandCompleted),
        ["ds"] = typeof(DeviceState),
        // messages between nodes
        ["m.connect"] = typeof(DeviceConnect),
        ["m.hb"] = typeof(DeviceHeartbeat),
        ["m.answer"] = typeof(AnswerReceived),
        ["m.closed"] = typeof(ConnectionClosed),
        ["m.written"] = typeof(FrameWritten),
        ["m.notwritten"] = typeof(FrameNotWritten),
        ["m.send"] = typeof(SendFrame),
        ["m.close"] = typeof(CloseConnection),
        ["q.device"] = typeof(GetDevice),
        ["q.authmode"] = typeof(SetDesiredAuthMode),
        ["q.submit"] = typeof(SubmitCommand),
        ["q.commands"] = typeof(GetCommands),
        ["q.command"] = typeof(GetCommand),
        ["q.cancel"] = typeof(CancelCommand),
        ["q.await"] = typeof(AwaitCommand),
        ["r.nodevice"] = typeof(DeviceNotFound),
        ["r.device"] = typeof(DeviceFound),
        ["r.nogw"] = typeof(GatewayNotFound),
        ["r.gw"] = typeof(GatewayUpdated),
        ["r.invalid"] = typeof(CommandInvalid),
        ["r.nocommand"] = typeof(CommandNotFound),
        ["r.conflict"] = typeof(CommandConflict),
        ["r.command"] = typeof(CommandFound),
        ["r.commands"] = typeof(CommandList),
        ["p.status"] = typeof(GetProjectionStatus),
        ["p.statusr"] = typeof(ProjectionStatus),
    };

    private static readonly FrozenDictionary<Type, string> ByType = Manifests.ToFrozenDictionary(kv => kv.Value, kv => kv.Key);
    private static readonly FrozenDictionary<string, Type> ByManifest = Manifests.ToFrozenDictionary();

    private readonly JsonSerializerOptions _options;

    public FleetSerializer(ExtendedActorSystem system) : base(system)
    {
        _options = new JsonSerializerOptions
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            Converters = { new ActorRefConverter(system), new JsonStringEnumConverter() },
        };
    }

    public override int Identifier => SerializerId;

    public override string Manifest(object o) =>
        ByType.TryGetValue(o.GetType(), out var m) ? m
            : throw new ArgumentException($"{o.GetType().FullName} has no manifest in {nameof(FleetSerializer)}");

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), _options);

    public override object FromBinary(byte[] bytes, string manifest) =>
        ByManifest.TryGetValue(manifest, out var type)
            ? JsonSerializer.Deserialize(bytes, type, _options)!
            : throw new System.Runtime.Serialization.SerializationException($"unknown manifest '{manifest}'");

    private sealed class ActorRefConverter(ExtendedActorSystem system) : JsonConverter<IActorRef>
    {
        public override IActorRef Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            system.Provider.ResolveActorRef(reader.GetString()!);

        public override void Write(Utf8JsonWriter writer, IActorRef value, JsonSerializerOptions options) =>
            writer.WriteStringValue(Akka.Serialization.Serialization.SerializedActorPath(value));
    }
}
