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

/// <summary>What our serializer does beyond the formats StoredFormatTests pins: actor references, no CLR names, the alarm, manifests, masking.</summary>
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
    private static readonly DeviceAnswer Answer = new()
    {
        Type = "firmware_info_response", ReqId = new ReqId("7", true), RequestType = "get_firmware_info",
        Firmware = new Dictionary<string, string> { ["DISTRIB_RELEASE"] = "24.10" }, Body = Json,
    };

    // Every type with a canonical instance, written exactly as its checked-in sample and read back: StoredFormatTests.

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
