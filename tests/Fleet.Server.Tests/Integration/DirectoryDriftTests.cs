using System.Collections.Immutable;
using System.Data.Common;
using Akka.Actor;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// The directory must not drift from the entities (issue 11, item 5): a projection that outlived its handover must not
/// write after its successor, and rows that drifted anyway (events skipped for good at a journal gap, rows changed behind
/// the node's back) are repaired by the reconciliation. On SQLite and on PostgreSQL.
/// </summary>
public sealed class DirectoryDriftTests
{
    public static TheoryData<string> Stores => ["sqlite", "postgres"];

    private static async Task<(Node Node, TestDatabase? Db)> StartAsync(string storeKind, params string[] args)
    {
        if (storeKind == "sqlite") return (await Node.StartAsync(null, args), null);
        var db = await TestDatabase.CreateAsync();
        return (await Node.StartAsync(null, [
            "--Fleet:Persistence:Provider", "PostgreSql", "--Fleet:Persistence:ConnectionString", db.ConnectionString, .. args]), db);
    }

    private static async Task<JsonNodeList> Listed(Node node, string q) =>
        new((await node.GetJson("/api/v1/devices?limit=1000&q=" + q))["items"]!.AsArray()
            .Select(d => d!).ToList());

    private sealed record JsonNodeList(List<System.Text.Json.Nodes.JsonNode> Items)
    {
        public System.Text.Json.Nodes.JsonNode? this[string id] => Items.SingleOrDefault(d => (string?)d["device_id"] == id);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_projection_that_outlived_its_successor_is_fenced_and_stops(string storeKind)
    {
        var (node, db) = await StartAsync(storeKind);
        await using var _ = db;
        await using var __ = node;
        var system = node.App.Services.GetRequiredService<ActorSystem>();
        var store = node.App.Services.GetRequiredService<DirectoryStore>();

        await using var first = await PretendRouter.ConnectAsync(node.WebSocketUri(), "fence-a");
        await Eventually.True(async () => (await Listed(node, "fence-"))["fence-a"] is not null, "fence-a in the directory");
        // The singleton itself (Akka.Hosting names it as its manager), not any other child of the manager.
        var old = await system.ActorSelection($"/user/{FleetNames.DirectoryProjection}/{FleetNames.DirectoryProjection}")
            .ResolveOne(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        var watcher = Inbox.Create(system);
        watcher.Watch(old);

        // The successor starts while the old singleton still runs (a handover that overlaps, a node downed while alive).
        var successor = system.ActorOf(DirectoryProjection.Props(store), "successor-projection");
        await using var second = await PretendRouter.ConnectAsync(node.WebSocketUri(), "fence-b");
        // The successor is running once it has read fence-b's events; from then on it alone may write.
        await Eventually.True(async () => (await successor.Ask<ProjectionStatus>(GetProjectionStatus.Instance,
            TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken)).Offset > 0, "the successor read the journal", TimeSpan.FromSeconds(30));

        // New events: both projections read them; the old one's batch is refused and it stops.
        await using var third = await PretendRouter.ConnectAsync(node.WebSocketUri(), "fence-c");
        object stopped;
        try
        {
            stopped = await watcher.ReceiveAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the old projection did not stop within 60 s; stored {await store.ReadFenceAsync(TestContext.Current.CancellationToken)}, " +
                        $"fence-c listed: {(await Listed(node, "fence-"))["fence-c"]?.ToJsonString() ?? "no"}");
            throw;
        }
        Assert.Equal(old, Assert.IsType<Terminated>(stopped).ActorRef);
        await first.DisposeAsync();
        await Eventually.True(async () =>
        {
            var listed = await Listed(node, "fence-");
            return listed["fence-b"]?["online"]?.GetValue<bool>() == true && listed["fence-c"]?["online"]?.GetValue<bool>() == true
                   && listed["fence-a"]?["online"]?.GetValue<bool>() == false;
        }, "the successor alone keeps the directory: fence-b and fence-c online, fence-a offline", TimeSpan.FromSeconds(30));
        // The successor still answers (a stopped actor would not): it kept the directory.
        Assert.True((await successor.Ask<ProjectionStatus>(GetProjectionStatus.Instance, TimeSpan.FromSeconds(5),
            TestContext.Current.CancellationToken)).Offset > 0);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task A_stale_projections_batch_is_refused_and_leaves_rows_and_offset_alone(string storeKind)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var db = storeKind == "postgres" ? await TestDatabase.CreateAsync() : null;
        var store = db is null
            ? new DirectoryStore(PersistenceProvider.Sqlite, FleetNode.ResolveConnectionString(new PersistenceSettings
                { ConnectionString = $"Data Source={Node.NewDbPath()}" }))
            : new DirectoryStore(PersistenceProvider.PostgreSql, db.ConnectionString);
        await store.InitializeAsync(ct);
        var at = DateTimeOffset.Parse("2026-01-01T10:00:00Z");

        var old = await store.ClaimAsync(ct);
        var successor = await store.ClaimAsync(ct);
        Assert.True(successor.Epoch > old.Epoch);
        await store.ApplyAsync([
            new DirectoryEvent("d1", new DeviceConnected(at, "node-b"), 1, 1),
            new DirectoryEvent("d1", new DeviceDisconnected(at.AddMinutes(1)), 2, 2),
        ], successor.Epoch, successor.Offset, ct);

        // The old incarnation's batch, late: refused whole, in its own transaction.
        await Assert.ThrowsAsync<DirectoryFencedException>(() => store.ApplyAsync([
            new DirectoryEvent("d1", new DeviceConnected(at, "node-a"), 1, 1),
            new DirectoryEvent("d2", new DeviceConnected(at, "node-a"), 3, 1),
        ], old.Epoch, old.Offset, ct));
        // The right epoch with an offset it did not write: refused as well (someone else moved it).
        await Assert.ThrowsAsync<DirectoryFencedException>(() => store.ApplyAsync([
            new DirectoryEvent("d2", new DeviceConnected(at, "node-b"), 3, 1),
        ], successor.Epoch, 1, ct));

        Assert.Equal(new DirectoryFence(successor.Epoch, 2), await store.ReadFenceAsync(ct));
        var rows = await store.ReadRowsAsync(["d1", "d2"], ct);
        Assert.Equal(["d1"], rows.Keys);
        Assert.False(rows["d1"].Online);
        Assert.Equal("node-b", rows["d1"].Node);
        Assert.Equal(2, rows["d1"].SeqNr);

        // A batch applied again (a crash before the offset was stored) never sets a row back to an older version.
        await store.ApplyAsync([new DirectoryEvent("d1", new DeviceConnected(at, "node-b"), 3, 1)], successor.Epoch, 2, ct);
        Assert.False((await store.ReadRowsAsync(["d1"], ct))["d1"].Online);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Reconciliation_repairs_rows_that_drifted_and_counts_them(string storeKind)
    {
        var ct = TestContext.Current.CancellationToken;
        var (node, db) = await StartAsync(storeKind,
            "--Fleet:Directory:ReconcileEverySeconds", "1", "--Fleet:Directory:ReconcileBatchSize", "2",
            "--Fleet:Devices:SnapshotEvery", "2");
        await using var _ = db;
        await using var __ = node;
        var store = node.App.Services.GetRequiredService<DirectoryStore>();

        var routers = new List<PretendRouter>();
        for (var i = 0; i < 5; i++) routers.Add(await PretendRouter.ConnectAsync(node.WebSocketUri(), $"drift-{i}"));
        // Text the stores keep otherwise (a NUL) and a device that is offline: neither is drift.
        await using (var odd = await PretendRouter.ConnectAsync(node.WebSocketUri(), "drift-nul", sendConnect: false))
        {
            await odd.Send("""{"type":"connect","device_id":"drift-nul","device_info":{"location_id":"hall\u0000b"},"gateway":[{"gw_id":"gw-1","auth_mode":1}]}""");
            await odd.Receive();
        }
        // Snapshots in play (every 2 events): the reconciliation starts from them as the entity does.
        await routers[4].HeartbeatAndReply("""[{"gw_id":"gw-2","auth_mode":0}]""");
        await routers[4].HeartbeatAndReply("""[{"gw_id":"gw-3","auth_mode":0}]""");
        await Eventually.True(async () =>
        {
            var listed = await Listed(node, "drift-");
            return listed.Items.Count == 6 && listed["drift-nul"]?["online"]?.GetValue<bool>() == false
                   && listed["drift-4"]?["gateways"]?.AsArray().Count == 1 && (string?)listed["drift-4"]!["gateways"]![0] == "gw-3";
        }, "every router in the directory");
        // A clean pass first (one that started now that every router is listed): nothing to repair, and nothing counted.
        var before = (long)(await Reconciliation(node))["passes"]!;
        var clean = await Eventually.Value(async () => await Reconciliation(node),
            r => (long)r["passes"]! > before && r["last_finished_at"] is not null, "a whole pass", TimeSpan.FromSeconds(30));
        Assert.Equal(0, (long)clean["total_rows_repaired"]!);
        Assert.True((long)clean["devices_checked"]! >= 6, clean.ToJsonString());

        // Drift behind the node's back: a row lost (events skipped for good), a row wrong, a row of no device.
        await Sql(store, "DELETE FROM device_summary WHERE device_id = 'drift-1'");
        await Sql(store, "UPDATE device_summary SET online = 0, location_id = 'nowhere', gateways = ',' WHERE device_id = 'drift-2'");
        await Sql(store, "UPDATE device_summary SET firmware = 'stale' WHERE device_id = 'drift-4'");
        await Sql(store, "INSERT INTO device_summary (device_id, online, gateways) VALUES ('drift-ghost', 0, ',')");

        await Eventually.True(async () =>
        {
            var listed = await Listed(node, "drift-");
            return listed["drift-1"]?["online"]?.GetValue<bool>() == true
                   && listed["drift-2"] is { } d2 && d2["online"]!.GetValue<bool>() && (string?)d2["location_id"] == "lobby-drift-2"
                   && (string?)d2["gateways"]![0] == "gw-1"
                   && listed["drift-4"]?["firmware"] is null
                   && listed["drift-ghost"] is null;
        }, "the reconciliation repaired every drifted row", TimeSpan.FromSeconds(30));
        var figures = await Eventually.Value(async () => await Reconciliation(node), r => (long)r["total_rows_repaired"]! >= 4,
            "the repairs counted");
        // One more whole pass: the repaired rows stay repaired and nothing else is ever counted.
        var passes = (long)figures["passes"]!;
        figures = await Eventually.Value(async () => await Reconciliation(node),
            r => (long)r["passes"]! > passes + 1 && r["last_finished_at"] is not null, "two more passes", TimeSpan.FromSeconds(30));
        Assert.Equal(4, (long)figures["total_rows_repaired"]!);
        Assert.Equal(0, (long)figures["rows_repaired"]!);
        Assert.Equal(1, (long)figures["every_seconds"]!);

        foreach (var r in routers) await r.DisposeAsync();
    }

    [Fact]
    public async Task Reconciliation_counts_a_missing_row_as_missing_and_off_means_off()
    {
        await using var node = await Node.StartAsync(null, "--Fleet:Directory:ReconcileEverySeconds", "1");
        var store = node.App.Services.GetRequiredService<DirectoryStore>();
        await using (var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "lost-row")) { }
        await Eventually.True(async () => (await Listed(node, "lost-row"))["lost-row"]?["online"]?.GetValue<bool>() == false,
            "lost-row offline in the directory");
        await Sql(store, "DELETE FROM device_summary WHERE device_id = 'lost-row'");
        var figures = await Eventually.Value(async () => await Reconciliation(node), r => (long)r["rows_missing"]! == 1,
            "the missing row added and counted");
        Assert.Equal(1, (long)figures["rows_repaired"]!);
        Assert.False((await Listed(node, "lost-row"))["lost-row"]!["online"]!.GetValue<bool>());

        await using var off = await Node.StartAsync(null, "--Fleet:Directory:ReconcileEverySeconds", "0");
        var none = await Reconciliation(off);
        Assert.Equal(0, (long)none["passes"]!);
        Assert.Equal(0, (long)none["every_seconds"]!);
    }

    [Theory]
    [InlineData("--Fleet:Directory:ReconcileEverySeconds", "-1", "ReconcileEverySeconds")]
    [InlineData("--Fleet:Directory:ReconcileBatchSize", "0", "ReconcileBatchSize")]
    [InlineData("--Fleet:Directory:ReconcileDevicesPerSecond", "-2", "ReconcileDevicesPerSecond")]
    public async Task A_bad_reconciliation_setting_stops_the_start_with_its_name(string key, string value, string named)
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Node.StartAsync(null, key, value));
        Assert.Contains(named, e.Message);
    }

    private static async Task<System.Text.Json.Nodes.JsonNode> Reconciliation(Node node) =>
        (await node.GetJson("/api/v1/node"))["directory"]!["reconciliation"]!;

    private static async Task Sql(DirectoryStore store, string sql)
    {
        await using var c = await store.OpenAsync(TestContext.Current.CancellationToken);
        await using DbCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        Assert.Equal(1, await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken));
    }
}

/// <summary>The reconciliation's idea of a row is the projection's: the same columns from the same events, or from a snapshot.</summary>
public sealed class DirectoryRowTests
{
    [Fact]
    public void A_row_from_events_equals_the_row_from_the_state_they_make()
    {
        var at = DateTimeOffset.Parse("2026-02-03T04:05:06.789Z");
        IDeviceEvent[] events =
        [
            new DeviceConnected(at, "n1"),
            new ProtocolReported("2025"),
            new DeviceInfoReported(new DeviceInfoState("ap", "aa:bb:cc:dd:ee:ff", null, null, "hall\0x")),
            new GatewaysReported([new GatewayState("gw-1", null, null, null, null, 1), new GatewayState("gw-2", null, null, null, null, null)]),
            new FirmwareReported(ImmutableSortedDictionary<string, string>.Empty.Add("DISTRIB_RELEASE", "23.05")),
            new AdmissionChanged("approved", "auto-approve", at),
            new DeviceDisconnected(at.AddSeconds(5)),
            new DeviceConnected(at.AddSeconds(9), "n2"),
        ];
        for (var n = 1; n <= events.Length; n++)
        {
            var fromEvents = events.Take(n).Aggregate(DirectoryRow.Empty("d"), (r, e) => r.Apply(e));
            var fromState = DirectoryRow.FromState("d", DeviceState.Empty.ApplyAll(events.Take(n)), n);
            Assert.True(fromEvents.SameAs(fromState), $"after {n} events: {fromEvents} vs {fromState}");
        }
    }
}
