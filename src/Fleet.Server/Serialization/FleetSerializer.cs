using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;
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
        ["ccl"] = typeof(ClientsCleared),
        ["fw"] = typeof(FirmwareReported),
        ["dp"] = typeof(ProtocolReported),
        ["cq2"] = typeof(CommandQueued),
        ["cs"] = typeof(CommandSent),
        ["crq"] = typeof(CommandRequeued),
        ["cc2"] = typeof(CommandCompleted),
        ["ds2"] = typeof(DeviceState),
        ["adm"] = typeof(AdmissionChanged),
        ["dt"] = typeof(TagsChanged),
        // messages between nodes
        ["m.connect2"] = typeof(DeviceConnect),
        ["m.hb2"] = typeof(DeviceHeartbeat),
        ["m.answer2"] = typeof(AnswerReceived),
        ["m.closed"] = typeof(ConnectionClosed),
        ["m.written2"] = typeof(FrameWritten),
        ["m.notwritten"] = typeof(FrameNotWritten),
        ["m.draining"] = typeof(ConnectionDraining),
        ["m.toolarge"] = typeof(FrameTooLarge),
        ["m.expired"] = typeof(FrameExpired),
        ["m.reply"] = typeof(ReplyToReport),
        ["m.modes"] = typeof(AuthModesChanged),
        ["m.deliver"] = typeof(DeliverRequest),
        ["m.close"] = typeof(CloseConnection),
        ["q.device"] = typeof(GetDevice),
        ["q.authmode"] = typeof(SetDesiredAuthMode),
        ["q.submit"] = typeof(SubmitCommand),
        ["q.commands"] = typeof(GetCommands),
        ["q.command"] = typeof(GetCommand),
        ["q.cancel"] = typeof(CancelCommand),
        ["q.await"] = typeof(AwaitCommand),
        ["q.approve"] = typeof(ApproveDevice),
        ["q.handover"] = typeof(HandOverKey),
        ["q.revokekeys"] = typeof(RevokeDeviceKeys),
        ["q.tags"] = typeof(SetTags),
        ["r.tags"] = typeof(TagsUpdated),
        ["r.nodevice"] = typeof(DeviceNotFound),
        ["r.device"] = typeof(DeviceFound),
        ["r.nogw"] = typeof(GatewayNotFound),
        ["r.gw"] = typeof(GatewayUpdated),
        ["r.invalid"] = typeof(CommandInvalid),
        ["r.nocommand"] = typeof(CommandNotFound),
        ["r.conflict"] = typeof(CommandConflict),
        ["r.command"] = typeof(CommandFound),
        ["r.refused"] = typeof(CommandRefused),
        ["r.commands"] = typeof(CommandList),
        ["r.pending"] = typeof(DevicePending),
        ["r.handover"] = typeof(KeyHandedOver),
        ["r.revoked"] = typeof(KeysRevoked),
        ["p.status"] = typeof(GetProjectionStatus),
        ["p.statusr"] = typeof(ProjectionStatus),
        // the event topic and the alert manager (issue 13)
        ["e.fleet"] = typeof(Events.FleetEvent),
        ["a.view"] = typeof(Alerts.AlertView),
        ["a.resolve"] = typeof(Alerts.ResolveAlert),
        ["a.resolved"] = typeof(Alerts.AlertResolvedByHand),
        ["a.notopen"] = typeof(Alerts.AlertNotOpen),
        // jobs and rollouts (issue 14): persisted events and snapshot, messages and replies
        ["jc"] = typeof(Jobs.JobCreated),
        ["jd"] = typeof(Jobs.JobDeviceChanged),
        ["js"] = typeof(Jobs.JobStatusChanged),
        ["jst"] = typeof(Jobs.JobStageStarted),
        ["jstate"] = typeof(Jobs.JobState),
        ["j.create"] = typeof(Jobs.CreateJob),
        ["j.get"] = typeof(Jobs.GetJob),
        ["j.devices"] = typeof(Jobs.GetJobDevices),
        ["j.control"] = typeof(Jobs.ControlJob),
        ["j.wake"] = typeof(Jobs.WakeJob),
        ["j.found"] = typeof(Jobs.JobFound),
        ["j.notfound"] = typeof(Jobs.JobNotFound),
        ["j.conflict"] = typeof(Jobs.JobConflict),
        ["j.page"] = typeof(Jobs.JobDevicesPage),
    };

    /// <summary>
    /// Manifests of earlier releases still found in journals: each is read and upcast to today's type
    /// (see <see cref="LegacyFormats"/>). Never written.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, (Type Type, Func<JsonNode, JsonNode> Upcast)> Legacy =
        new Dictionary<string, (Type, Func<JsonNode, JsonNode>)>
        {
            ["cq"] = (typeof(CommandQueued), LegacyFormats.CommandQueuedV1),
            ["cc"] = (typeof(CommandCompleted), LegacyFormats.CommandCompletedV1),
            ["ds"] = (typeof(DeviceState), LegacyFormats.DeviceStateV1),
        };

    private static readonly FrozenDictionary<Type, string> ByType = Manifests.ToFrozenDictionary(kv => kv.Value, kv => kv.Key);
    private static readonly FrozenDictionary<string, Type> ByManifest = Manifests.ToFrozenDictionary();

    private readonly JsonSerializerOptions _options;

    public FleetSerializer(ExtendedActorSystem system) : base(system)
    {
        _options = new JsonSerializerOptions
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            Converters = { new ActorRefConverter(system), new JsonStringEnumConverter(), new ControllerRequestConverter() },
        };
    }

    public override int Identifier => SerializerId;

    public override string Manifest(object o) =>
        ByType.TryGetValue(o.GetType(), out var m) ? m
            : throw new ArgumentException($"{o.GetType().FullName} has no manifest in {nameof(FleetSerializer)}");

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), _options);

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (ByManifest.TryGetValue(manifest, out var type)) return JsonSerializer.Deserialize(bytes, type, _options)!;
        if (Legacy.TryGetValue(manifest, out var legacy))
            return legacy.Upcast(JsonNode.Parse(bytes)!).Deserialize(legacy.Type, _options)!;
        throw new System.Runtime.Serialization.SerializationException($"unknown manifest '{manifest}'");
    }

    /// <summary>
    /// Protocol requests are stored and sent in their canonical wire JSON (the seed's "type" framing) and
    /// read back through the protocol codec, so a stored request is exactly a request the codec accepts.
    /// </summary>
    private sealed class ControllerRequestConverter : JsonConverter<IControllerRequest>
    {
        public override IControllerRequest Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var raw = JsonElement.ParseValue(ref reader);
            var decoded = ProtocolCodec.DecodeFromController(JsonSerializer.SerializeToUtf8Bytes(raw));
            if (decoded.Message is IControllerRequest request) return request;
            // A job's kickoff template leaves out what each router's own client record fills in (device_id, client_ip,
            // gw_id): read as it was stored. (Anything unreadable here would stop every reader of the journal.)
            if (decoded.Error is { Kind: DecodeErrorKind.MissingField, Type: KickoffRequest.TypeName })
                return raw.Deserialize<KickoffRequest>()!;
            throw new JsonException($"not a stored request: {decoded.Error?.Message ?? decoded.Message?.Type}");
        }

        public override void Write(Utf8JsonWriter writer, IControllerRequest value, JsonSerializerOptions options) =>
            writer.WriteRawValue(ProtocolCodec.Encode(value), skipInputValidation: true);
    }

    private sealed class ActorRefConverter(ExtendedActorSystem system) : JsonConverter<IActorRef>
    {
        public override IActorRef Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            system.Provider.ResolveActorRef(reader.GetString()!);

        public override void Write(Utf8JsonWriter writer, IActorRef value, JsonSerializerOptions options) =>
            writer.WriteStringValue(Akka.Serialization.Serialization.SerializedActorPath(value));
    }
}
