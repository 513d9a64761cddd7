using System.Text;
using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Hosting;
using Akka.TestKit;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Microsoft.Extensions.Configuration;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>The entity as an actor (in-memory journal here; the integration tests use SQLite).</summary>
public class DeviceEntitySpecs : Akka.Hosting.TestKit.TestKit
{
    public DeviceEntitySpecs() : base(nameof(DeviceEntitySpecs)) { }

    // The node's own Akka settings (appsettings.json "akka": the entity's mailbox among them), with an
    // in-memory journal instead of SQLite.
    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider) =>
        builder.AddHocon(new ConfigurationBuilder()
                .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json")).Build().GetSection("akka"), HoconAddMode.Prepend)
            .WithFleetSerialization().WithInMemoryJournal().WithInMemorySnapshotStore();

    private readonly FleetSettings _settings = new() { Devices = { SnapshotEvery = 3 } };

    private IActorRef Entity(string id) => Sys.ActorOf(DeviceEntity.Props(id, _settings, TimeProvider.System));

    private static ConnectMessage Connect(string id) => new()
    {
        DeviceId = id, Gateway = [new GatewayReport { GwId = "gw-1", AuthMode = 1 }],
    };

    private static SubmitCommand GetFirmwareInfo(string device) =>
        new(device, "c" + Guid.NewGuid().ToString("N"), new SimpleRequest { Type = "get_firmware_info" }, null, 60, 30);

    [Fact]
    public async Task Connect_is_answered_with_a_heartbeat_reply_to_the_connection()
    {
        var conn = CreateTestProbe();
        var entity = Entity("e1");
        entity.Tell(new DeviceConnect("e1", Connect("e1"), conn.Ref, "n"));
        var f = await conn.ExpectMsgAsync<ReplyToReport>(cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal("""{"type":"heartbeat","gateway":[{"gw_id":"gw-1","auth_mode":1}]}""", ProtocolCodec.EncodeToString(f.Reply));
    }

    [Fact]
    public async Task A_newer_connection_closes_the_older_one()
    {
        var old = CreateTestProbe();
        var newer = CreateTestProbe();
        var entity = Entity("e2");
        entity.Tell(new DeviceConnect("e2", Connect("e2"), old.Ref, "n"));
        await old.ExpectMsgAsync<ReplyToReport>(cancellationToken: TestContext.Current.CancellationToken);
        entity.Tell(new DeviceConnect("e2", Connect("e2"), newer.Ref, "n"));
        var close = await old.ExpectMsgAsync<CloseConnection>(cancellationToken: TestContext.Current.CancellationToken);
        Assert.Contains("newer connection", close.Reason);
        await newer.ExpectMsgAsync<ReplyToReport>(cancellationToken: TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_command_the_old_connection_never_confirmed_writing_is_sent_again_on_the_next_one()
    {
        // The old connection's node died: no FrameWritten, no FrameNotWritten, just a newer connection.
        var ct = TestContext.Current.CancellationToken;
        var old = CreateTestProbe();
        var newer = CreateTestProbe();
        var entity = Entity("e2b");
        entity.Tell(new DeviceConnect("e2b", Connect("e2b"), old.Ref, "n"));
        await old.ExpectMsgAsync<ReplyToReport>(cancellationToken: ct);
        var accepted = await entity.Ask<IAdminReply>(GetFirmwareInfo("e2b"), ct);
        var id = Assert.IsType<CommandFound>(accepted).View.CommandId;
        Assert.Equal(id, (await old.ExpectMsgAsync<DeliverRequest>(cancellationToken: ct)).CommandId);

        entity.Tell(new DeviceConnect("e2b", Connect("e2b"), newer.Ref, "n"));
        await newer.ExpectMsgAsync<ReplyToReport>(cancellationToken: ct);
        // Once the old connection's time to say whether it wrote the frame is up.
        Assert.Equal(id, (await newer.ExpectMsgAsync<DeliverRequest>(DeviceDecider.OldWritesGrace * 3, cancellationToken: ct)).CommandId);
        var view = Assert.IsType<CommandFound>(await entity.Ask<IAdminReply>(new GetCommand("e2b", id), ct)).View;
        Assert.Equal("sent", view.Status);
    }

    [Fact]
    public async Task A_command_whose_write_was_confirmed_is_not_sent_again_on_the_next_connection()
    {
        var ct = TestContext.Current.CancellationToken;
        var old = CreateTestProbe();
        var newer = CreateTestProbe();
        var entity = Entity("e2c");
        entity.Tell(new DeviceConnect("e2c", Connect("e2c"), old.Ref, "n"));
        await old.ExpectMsgAsync<ReplyToReport>(cancellationToken: ct);
        var accepted = await entity.Ask<IAdminReply>(GetFirmwareInfo("e2c"), ct);
        var id = Assert.IsType<CommandFound>(accepted).View.CommandId;
        await old.ExpectMsgAsync<DeliverRequest>(cancellationToken: ct);
        entity.Tell(new FrameWritten("e2c", id, AnswerExpected: true, old.Ref));

        entity.Tell(new DeviceConnect("e2c", Connect("e2c"), newer.Ref, "n"));
        await newer.ExpectMsgAsync<ReplyToReport>(cancellationToken: ct);
        await newer.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300), ct);
    }

    [Fact]
    public async Task Command_is_sent_answered_and_awaited()
    {
        var conn = CreateTestProbe();
        var entity = Entity("e3");
        entity.Tell(new DeviceConnect("e3", Connect("e3"), conn.Ref, "n"));
        await conn.ExpectMsgAsync<ReplyToReport>(cancellationToken: TestContext.Current.CancellationToken);
        var accepted = await entity.Ask<IAdminReply>(GetFirmwareInfo("e3"), TestContext.Current.CancellationToken);
        var id = Assert.IsType<CommandFound>(accepted).View.CommandId;
        var frame = await conn.ExpectMsgAsync<DeliverRequest>(cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(id, frame.CommandId);
        var waiter = entity.Ask<IAdminReply>(new AwaitCommand("e3", id), TestContext.Current.CancellationToken);
        var answer = TypeDialect.Seed.Decode(Encoding.UTF8.GetBytes(
            $$$"""{"type":"firmware_info_response","req_id":"{{{id}}}","data":{"DISTRIB_RELEASE":"1"}}""")).Answer!;
        entity.Tell(new AnswerReceived("e3", answer, conn.Ref));
        var done = Assert.IsType<CommandFound>(await waiter).View;
        Assert.Equal("succeeded", done.Status);
        Assert.Equal("1", done.Response!.Value.GetProperty("data").GetProperty("DISTRIB_RELEASE").GetString());
    }

    [Fact]
    public async Task Unknown_device_is_not_found_and_invalid_commands_are_refused_without_state()
    {
        var entity = Entity("e4");
        Assert.IsType<DeviceNotFound>(await entity.Ask<IAdminReply>(new GetDevice("e4"), TestContext.Current.CancellationToken));
        Assert.IsType<DeviceNotFound>(await entity.Ask<IAdminReply>(GetFirmwareInfo("e4"), TestContext.Current.CancellationToken));
        var conn = CreateTestProbe();
        entity.Tell(new DeviceConnect("e4", Connect("e4"), conn.Ref, "n"));
        var invalid = await entity.Ask<IAdminReply>(new SubmitCommand("e4", "c1", null, "client_mac 'zz' is not a MAC address", 1, 1),
            TestContext.Current.CancellationToken);
        Assert.Equal("client_mac 'zz' is not a MAC address", Assert.IsType<CommandInvalid>(invalid).Problem);
        Assert.Empty(Assert.IsType<CommandList>(await entity.Ask<IAdminReply>(new GetCommands("e4"), TestContext.Current.CancellationToken)).Items);
    }

    [Fact]
    public async Task After_a_restart_the_device_is_offline_and_everything_else_is_kept()
    {
        var conn = CreateTestProbe();
        var entity = Entity("e5");
        entity.Tell(new DeviceConnect("e5", Connect("e5"), conn.Ref, "n"));
        await conn.ExpectMsgAsync<ReplyToReport>(cancellationToken: TestContext.Current.CancellationToken);
        // Enough changes to cross the snapshot threshold (3), so recovery uses a snapshot plus events.
        for (var mode = 0; mode < 4; mode++)
            Assert.IsType<GatewayUpdated>(await entity.Ask<IAdminReply>(new SetDesiredAuthMode("e5", "gw-1", mode), TestContext.Current.CancellationToken));
        await WatchAsync(entity);
        entity.Tell(PoisonPill.Instance);
        await ExpectTerminatedAsync(entity, cancellationToken: TestContext.Current.CancellationToken);

        var again = Entity("e5");
        var view = Assert.IsType<DeviceFound>(await again.Ask<IAdminReply>(new GetDevice("e5"), TestContext.Current.CancellationToken)).View;
        Assert.False(view.Online);
        Assert.Equal(3, view.Gateways.Single().DesiredAuthMode);
    }

    [Fact]
    public async Task Heartbeats_the_connection_answered_itself_get_no_reply_and_changes_are_pushed()
    {
        var ct = TestContext.Current.CancellationToken;
        var conn = CreateTestProbe();
        var entity = Entity("e6");
        entity.Tell(new DeviceConnect("e6", Connect("e6"), conn.Ref, "n"));
        await conn.ExpectMsgAsync<ReplyToReport>(cancellationToken: ct);
        var hb = new HeartbeatMessage { DeviceId = "e6", Gateway = [new GatewayReport { GwId = "gw-1", AuthMode = 1 }] };
        entity.Tell(new DeviceHeartbeat("e6", hb, conn.Ref, "n", ReplyWanted: false));
        await conn.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300), ct);
        entity.Tell(new DeviceHeartbeat("e6", hb, conn.Ref, "n", ReplyWanted: true));
        Assert.Equal(1, (await conn.ExpectMsgAsync<ReplyToReport>(cancellationToken: ct)).Reply.Gateway!.Single().AuthMode);
        // An operator's change reaches the connection without waiting for a heartbeat.
        await entity.Ask<IAdminReply>(new SetDesiredAuthMode("e6", "gw-1", 0), ct);
        var pushed = await conn.ExpectMsgAsync<AuthModesChanged>(cancellationToken: ct);
        Assert.Equal(0, pushed.Reply.Gateway!.Single().AuthMode);
    }
}
