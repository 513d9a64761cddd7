using System.Collections.Immutable;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Serialization;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>Every persisted event, the snapshot, and every cross-node message survive our serializer.</summary>
public class SerializerTests : Akka.Hosting.TestKit.TestKit
{
    public SerializerTests() : base(nameof(SerializerTests)) { }

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider) =>
        builder.WithFleetSerialization();

    private static readonly DateTimeOffset T = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private static readonly JsonElement Json = JsonDocument.Parse("{\"type\":\"get_status\"}").RootElement;
    private static readonly KickoffRequest Kickoff = new()
    {
        ReqId = ReqId.Of("c1"), ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1",
    };
    private static readonly ReportReply Reply = new() { Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 0 }] };
    private static readonly DeviceAnswer Answer = new()
    {
        Type = "firmware_info_response", ReqId = new ReqId("7", true), RequestType = "get_firmware_info",
        Firmware = new Dictionary<string, string> { ["DISTRIB_RELEASE"] = "24.10" }, Body = Json,
    };

    private IEnumerable<object> Samples()
    {
        var gw = new GatewayState("gw-1", "apfree", "192.168.1.1", null, "br-lan", 1);
        var client = new ClientState("aa:bb:cc:dd:ee:ff", "1.2.3.4", "phone", "gw-1", T, T.AddMinutes(5), T.AddMinutes(5));
        var cmd = new CommandView("c1", "r1", "get_status", "queued", Json, Json, null, T, T, null, T.AddDays(1));
        var gwView = new GatewayView("gw-1", "apfree", "192.168.1.1", null, "br-lan", 1, 0);
        yield return new DeviceConnected(T, "node#1");
        yield return new DeviceDisconnected(T);
        yield return new DeviceInfoReported(new DeviceInfoState("r1", "8c:de:f9:5e:f7:06", "116.39", "39.90", "lobby"));
        yield return new GatewaysReported([gw]);
        yield return new DesiredAuthModeSet("gw-1", 0);
        yield return new ClientAuthorized(client);
        yield return new ClientRemoved("aa:bb:cc:dd:ee:ff", "kicked off");
        yield return new ClientsCleared("reboot", true, T);
        yield return new ProtocolReported("2025");
        yield return new FirmwareReported(ImmutableSortedDictionary<string, string>.Empty.Add("DISTRIB_RELEASE", "24.10"));
        yield return new CommandQueued("c1", Kickoff, T, T.AddDays(1), 30);
        yield return new CommandSent("c1", T);
        yield return new CommandRequeued("c1");
        yield return new CommandCompleted("c1", CommandStatus.TimedOut, Json, "no answer", T);
        yield return new AdmissionChanged("pending", "fleet key", T);
        yield return DeviceState.Empty with
        {
            Exists = true, Online = true, Node = "n", Info = new DeviceInfoState("r1", null, null, null, null), Gateways = [gw],
            DesiredAuthModes = ImmutableSortedDictionary<string, int>.Empty.Add("gw-1", 0),
            Clients = ImmutableSortedDictionary<string, ClientState>.Empty.Add(client.ClientMac, client),
            Commands = [new CommandRecord("c1", Kickoff, CommandStatus.Sent, T, T.AddDays(1), 30, T, Response: Json)],
        };
        var connect = new ConnectMessage { DeviceId = "r1", Mode = 0, Gateway = [new GatewayReport { GwId = "gw-1", AuthMode = 1 }] };
        yield return new DeviceConnect("r1", connect, TestActor, "node#1", "9", new AdmissionGrant("fleet-key", AdmissionEffect.Enrol, "fleet key", "/ws/wifidogx"));
        yield return new DeviceHeartbeat("r1", new HeartbeatMessage { DeviceId = "r1", SysInfo = new SystemFigures { SysLoad = 0.5 }, ReqId = new ReqId("0123456789abcdef", false) }, TestActor, "node#1");
        yield return new AnswerReceived("r1", Answer, TestActor);
        yield return new ConnectionClosed("r1", TestActor);
        yield return new FrameWritten("r1", "c1", AnswerExpected: true, TestActor);
        yield return new FrameNotWritten("r1", "c1", TestActor);
        yield return new FrameTooLarge("r1", "c1", 1400, TestActor);
        yield return new FrameExpired("r1", "c1", TestActor);
        yield return new ReplyToReport("r1", Reply, "heartbeat", ReqId.Of("0123456789abcdef"));
        yield return new AuthModesChanged("r1", Reply);
        yield return new DeliverRequest("r1", Kickoff, T.AddSeconds(30));
        yield return new CloseConnection("replaced");
        yield return new GetDevice("r1");
        yield return new SetDesiredAuthMode("r1", "gw-1", 0);
        yield return new SubmitCommand("r1", "c1", Kickoff, null, 10, 20);
        yield return new GetCommands("r1");
        yield return new GetCommand("r1", "c1");
        yield return new CancelCommand("r1", "c1");
        yield return new AwaitCommand("r1", "c1");
        var handOver = new HandOverKey("r1", "fdk_k", "a1", "test-admin", 3600, 30, "/ws/wifidogx");
        yield return handOver;
        yield return new ApproveDevice("r1", "test-admin", handOver);
        yield return new RevokeDeviceKeys("r1");
        yield return new DevicePending("r1");
        yield return new KeyHandedOver("approved", "9", new HandOverView("a1", "sent"), null);
        yield return new KeysRevoked(true);
        yield return new DeviceNotFound("r1");
        yield return new DeviceFound(new DeviceView("r1", true, T, T, "n", new DeviceInfoView("r1", null, null, null, "l"), [gwView],
            [new ClientView("aa:bb:cc:dd:ee:ff", null, null, null, T, null)], new Dictionary<string, string> { ["A"] = "b" }, 1,
            new SystemFigures { SysUptime = 5 }, "9"));
        yield return new GatewayNotFound("r1", "gw-9");
        yield return new GatewayUpdated(gwView);
        yield return new CommandInvalid("bad");
        yield return new CommandNotFound("c1");
        yield return new CommandConflict("no", cmd);
        yield return new CommandFound(cmd, Replayed: true);
        yield return new CommandRefused(429, "Too many queued commands", "the device already has 100 unfinished commands");
        yield return new CommandList([cmd]);
        yield return GetProjectionStatus.Instance;
        yield return new ProjectionStatus(42);
    }

    [Fact]
    public void Every_manifest_has_a_sample_and_every_sample_round_trips()
    {
        var serialization = Sys.Serialization;
        var samples = Samples().ToList();
        Assert.Equal(FleetSerializer.Manifests.Values.OrderBy(t => t.Name), samples.Select(s => s.GetType()).OrderBy(t => t.Name));
        foreach (var sample in samples)
        {
            var serializer = serialization.FindSerializerFor(sample);
            Assert.IsType<FleetSerializer>(serializer);
            var manifest = ((FleetSerializer)serializer).Manifest(sample);
            var bytes = serializer.ToBinary(sample);
            var back = ((FleetSerializer)serializer).FromBinary(bytes, manifest);
            // Collections and JSON elements have no value equality: compare what the serializer writes.
            Assert.Equal(sample.GetType(), back.GetType());
            Assert.Equal(bytes, serializer.ToBinary(back));
            if (sample is not (DeviceState or GatewaysReported or FirmwareReported or DeviceFound or CommandList or CommandFound
                or CommandConflict or DeviceConnect or DeviceHeartbeat or CommandCompleted or AnswerReceived or ReplyToReport
                or AuthModesChanged))
                Assert.Equal(sample, back);
        }
    }

    [Fact]
    public void Actor_references_travel_as_paths_and_resolve_back()
    {
        var msg = new AnswerReceived("r1", Answer, TestActor);
        var s = (FleetSerializer)Sys.Serialization.FindSerializerFor(msg);
        var back = (AnswerReceived)s.FromBinary(s.ToBinary(msg), s.Manifest(msg));
        Assert.Equal(TestActor, back.Connection);
    }

    [Fact]
    public void Events_carry_no_clr_type_names()
    {
        var e = new CommandQueued("c1", Kickoff, T, T, 30);
        var s = (FleetSerializer)Sys.Serialization.FindSerializerFor(e);
        var text = System.Text.Encoding.UTF8.GetString(s.ToBinary(e));
        Assert.DoesNotContain("Fleet.Server", text);
        Assert.DoesNotContain("Fleet.Protocol", text);
        Assert.Equal("cq2", s.Manifest(e));
        // The request is stored as the protocol's own JSON, not a string inside JSON.
        Assert.Contains("\"Request\":{\"type\":\"kickoff\",\"req_id\":\"c1\"", text);
    }

    [Fact]
    public void Commands_written_by_the_previous_release_still_recover()
    {
        // Exactly what the previous release wrote (manifests cq, cc, ds: request and answer as JSON strings).
        var s = (FleetSerializer)Sys.Serialization.FindSerializerFor(new CommandSent("c1", T));
        var queued = (CommandQueued)s.FromBinary(System.Text.Encoding.UTF8.GetBytes(
            """{"CommandId":"c1","Type":"kickoff","RequestJson":"{\"type\":\"kickoff\",\"req_id\":\"c1\",\"client_ip\":\"192.168.1.23\",\"client_mac\":\"aa:bb:cc:dd:ee:ff\",\"device_id\":\"r1\",\"gw_id\":\"gw-1\"}","At":"2026-11-25T12:00:00+00:00","ExpiresAt":"2026-11-26T12:00:00+00:00","TimeoutSeconds":30}"""), "cq");
        Assert.Equal(Kickoff, queued.Request);
        Assert.Equal(T.AddDays(1), queued.ExpiresAt);
        var completed = (CommandCompleted)s.FromBinary(System.Text.Encoding.UTF8.GetBytes(
            """{"CommandId":"c1","Status":"Failed","ResponseJson":"{\"type\":\"kickoff_error\",\"error\":\"Client not found\"}","Error":"Client not found","At":"2026-11-25T12:00:00+00:00"}"""), "cc");
        Assert.Equal(CommandStatus.Failed, completed.Status);
        Assert.Equal("kickoff_error", completed.Response!.Value.GetProperty("type").GetString());
        var snapshot = (DeviceState)s.FromBinary(System.Text.Encoding.UTF8.GetBytes(
            """{"Exists":true,"Online":false,"Gateways":[{"GwId":"gw-1","AuthMode":1}],"Commands":[{"CommandId":"c1","Type":"get_status","RequestJson":"{\"type\":\"get_status\",\"req_id\":\"c1\"}","Status":"Succeeded","CreatedAt":"2026-11-25T12:00:00+00:00","ExpiresAt":"2026-11-26T12:00:00+00:00","TimeoutSeconds":30,"ResponseJson":"{\"type\":\"get_status_response\",\"data\":{}}"}],"HistoryLimit":200}"""), "ds");
        var c = Assert.Single(snapshot.Commands);
        Assert.Equal("get_status", c.Type);
        Assert.Equal(ReqId.Of("c1"), c.Request.ReqId);
        Assert.Equal("get_status_response", c.Response!.Value.GetProperty("type").GetString());
        Assert.Equal("gw-1", snapshot.Gateways.Single().GwId);
    }

    private sealed record NotOurs(string Text);

    [Fact]
    public void A_message_that_is_not_ours_is_still_serialized_but_by_the_alarm()
    {
        var msg = new NotOurs("x");
        var s = Sys.Serialization.FindSerializerFor(msg);
        Assert.IsType<DefaultSerializerAlarm>(s);
        Assert.Equal(msg, s.FromBinary(s.ToBinary(msg), typeof(NotOurs)));
        // Ours keep going to FleetSerializer (the more specific binding wins). Akka's own cross-node
        // messages have their own bindings once remoting is loaded; the cluster tests check the logs.
        Assert.IsType<FleetSerializer>(Sys.Serialization.FindSerializerFor(new ProjectionStatus(1)));
    }

    [Fact]
    public void Manifests_are_unique_and_short() =>
        Assert.All(FleetSerializer.Manifests.Keys, m => Assert.True(m.Length <= 12, m));
}

public class SecretsTests
{
    [Fact]
    public void Tokens_keys_and_keys_in_paths_are_masked_and_nothing_else_changes()
    {
        var e = System.Text.Json.JsonElement.Parse("""{"op":"set_websocket_serv","path":"/ws/wifidogx?key=abc123&x=1","token":"t0k","n":[{"password":"p"},"/a?token=zz"],"client_mac":"aa:bb:cc:dd:ee:ff"}""");
        var masked = System.Text.Json.Nodes.JsonNode.Parse(Fleet.Server.Security.Secrets.Redact(e).GetRawText());
        var expected = System.Text.Json.Nodes.JsonNode.Parse("""{"op":"set_websocket_serv","path":"/ws/wifidogx?key=(redacted)&x=1","token":"(redacted)","n":[{"password":"(redacted)"},"/a?token=(redacted)"],"client_mac":"aa:bb:cc:dd:ee:ff"}""");
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(expected, masked), masked!.ToJsonString());
        var clean = System.Text.Json.JsonElement.Parse("""{"type":"kickoff","client_mac":"aa:bb:cc:dd:ee:ff"}""");
        Assert.Equal(clean.GetRawText(), Fleet.Server.Security.Secrets.Redact(clean).GetRawText());
    }
}
