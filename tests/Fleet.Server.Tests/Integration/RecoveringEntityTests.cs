using Fleet.Server.Tests.Support;
using Fleet.Testing;
using Npgsql;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// A restarted node recovers its device entities one after another while thousands of routers reconnect at once;
/// a router's connect must not wait for its entity's turn. Recovery is held here for real: another session locks
/// PostgreSQL's journal table so that the entity cannot read its events.
/// </summary>
public sealed class RecoveringEntityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_router_is_answered_with_its_own_modes_while_its_entity_recovers_and_then_gets_the_operators()
    {
        const string id = "recovering-1";
        await using var db = await TestDatabase.CreateAsync();
        string[] pg = ["--Fleet:Persistence:Provider", "PostgreSql", "--Fleet:Persistence:ConnectionString", db.ConnectionString];
        await using (var node = await Node.StartAsync(null, testKeys: true, configure: null, pg))
        {
            await (await PretendRouter.ConnectAsync(node.WebSocketUri(), id)).DisposeAsync();
            // The operator wants portal off on gw-1 while the router is away (it reports auth_mode 1).
            await Eventually.True(async () => (bool?)(await node.GetJson($"/api/v1/devices/{id}"))["online"] == false, "offline");
            Assert.Equal(200, (await node.Send(HttpMethod.Put, $"/api/v1/devices/{id}/gateways/gw-1/auth-mode", """{"auth_mode":0}""")).Status);
        }

        await using var restarted = await Node.StartAsync(null, testKeys: true, configure: null, pg);
        await using var holder = new NpgsqlConnection(db.ConnectionString);
        await holder.OpenAsync(Ct);
        await using var tx = await holder.BeginTransactionAsync(Ct);
        await using (var lockCmd = new NpgsqlCommand("LOCK TABLE journal IN ACCESS EXCLUSIVE MODE", holder, tx))
            await lockCmd.ExecuteNonQueryAsync(Ct);

        // ConnectAsync waits for the reply to its connect: with the journal locked, only the connection can give it.
        await using var router = await PretendRouter.ConnectAsync(restarted.WebSocketUri(), id)
            .WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(await RecoveryWaiting(db.ConnectionString), "the entity's recovery was still waiting on the lock when the router was answered");

        await tx.CommitAsync(Ct); // recovery goes on
        // The entity's own reply follows, with the operator's mode (it differs from the echo, so it is written).
        var reply = await router.ReceiveType("heartbeat", TimeSpan.FromSeconds(30));
        Assert.Equal(0, (int?)reply["gateway"]![0]!["auth_mode"]);
        var figures = await restarted.GetJson("/api/v1/node");
        Assert.True((long)figures["connections"]!["replies_echoed"]! >= 1);
    }

    [Fact]
    public async Task A_router_whose_entity_answers_in_time_gets_one_reply_and_no_echo()
    {
        await using var node = await Node.StartAsync();
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "live-1");
        await Eventually.True(async () => (await node.GetJson("/api/v1/devices/live-1"))["online"]?.GetValue<bool>() == true, "online");
        // "No echo" is a check that nothing happens, so it must look past the moment it would happen: the connect's echo
        // timer fires EchoAfter after the connect (a fixed delay of the node, the behaviour under test). An echo would
        // then be the next frame, ahead of the reply to the heartbeat sent after that moment.
        await Task.Delay(DeviceConnection_EchoAfter * 2, Ct);
        await router.Send(router.HeartbeatJson());
        var next = await router.Receive(TimeSpan.FromSeconds(10));
        Assert.Equal("heartbeat", (string?)next["type"]);
        Assert.Equal(0L, (long)(await node.GetJson("/api/v1/node"))["connections"]!["replies_echoed"]!);
    }

    /// <summary>
    /// On SQLite a recovery only reads, and must not wait for the write lock: a restart storm's journal writes (every
    /// reconnect is an event) would otherwise queue each recovery behind them, every collision costing the driver's
    /// 150 ms busy sleep. Akka.Persistence.Sql runs reads in a transaction of its read isolation level; "unspecified"
    /// opened BEGIN IMMEDIATE (the write lock).
    /// </summary>
    [Fact]
    public async Task On_SQLite_an_entity_recovers_while_another_connection_holds_the_write_lock()
    {
        const string id = "reader-1";
        var db = Node.NewDbPath();
        await using (var node = await Node.StartAsync(db))
            await (await PretendRouter.ConnectAsync(node.WebSocketUri(), id)).DisposeAsync();
        await using var restarted = await Node.StartAsync(db);
        await using var writer = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=false");
        await writer.OpenAsync(Ct);
        await using var tx = writer.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: the one write lock, held
        var (status, body, _) = await restarted.Send(HttpMethod.Get, $"/api/v1/devices/{id}");
        Assert.True(status == 200, $"GET while the write lock is held → {status} {body?.ToJsonString()}");
        Assert.Equal(id, (string?)body!["device_id"]);
        tx.Rollback();
    }

    private static readonly TimeSpan DeviceConnection_EchoAfter = Fleet.Server.Connections.DeviceConnection.EchoAfter;

    private static async Task<bool> RecoveryWaiting(string cs)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%journal%'", c);
        return (long)(await cmd.ExecuteScalarAsync(Ct))! > 0;
    }
}
