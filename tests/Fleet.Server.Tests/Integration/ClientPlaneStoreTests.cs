using Fleet.Server.Clients;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// client_location as the directory's projection writes it: the same clients as the device entities hold
/// (<see cref="DeviceState.Apply"/>), MACs and IPv6 addresses in one form, and a batch applied twice changes nothing.
/// </summary>
public sealed class ClientPlaneStoreTests
{
    public static TheoryData<string> Stores => ["sqlite", "postgres"];

    private static readonly DateTimeOffset T = DateTimeOffset.Parse("2026-01-01T10:00:00Z");
    private const string Mac = "aa:bb:cc:dd:ee:01";

    private static ClientAuthorized Auth(string mac, string? ip, DateTimeOffset? expires = null, DateTimeOffset? passUntil = null) =>
        new(new ClientState(mac, ip, "phone", ip is null ? null : "gw-1", T, expires, passUntil));

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Client_rows_follow_the_entities_clients_and_a_batch_applied_again_changes_nothing(string storeKind)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var db = storeKind == "postgres" ? await TestDatabase.CreateAsync() : null;
        var store = db is null
            ? new DirectoryStore(PersistenceProvider.Sqlite, FleetNode.ResolveConnectionString(new PersistenceSettings
                { ConnectionString = $"Data Source={Node.NewDbPath()}" }))
            : new DirectoryStore(PersistenceProvider.PostgreSql, db.ConnectionString);
        var clients = new ClientStore(store, TimeProvider.System);
        await store.InitializeAsync([clients], ct);
        await store.InitializeAsync([clients], ct); // a second node starting: nothing to create
        var fence = await store.ClaimAsync(ct);
        var pass = T.AddMinutes(5);

        (string Device, IDeviceEvent Event)[] first =
        [
            ("r1", Auth(Mac, "10.0.0.1")),
            ("r2", Auth("AA:BB:CC:DD:EE:01", "FE80:0:0:0:0:0:0:0001")), // an earlier release's spelling
            ("r3", Auth("aa:bb:cc:dd:ee:03", null, pass, pass)),        // a client on a pass alone
            ("r1", Auth(Mac, null, pass)),                               // a legacy pass beside r1's authorisation
            ("r2", new ClientRemoved(Mac, ClientRemoved.PassExpired)),   // r2's client is authorised: it stays
            ("r3", new ClientRemoved("aa:bb:cc:dd:ee:03", ClientRemoved.PassExpired)),
            ("r3", new DeviceConnected(T, "node-a")),                    // not a client event: no row of its own
        ];
        (string Device, IDeviceEvent Event)[] second =
        [
            ("r1", Auth("aa:bb:cc:dd:ee:04", null, pass, pass)),
            ("r1", new ClientsCleared("reboot", KeepAuthorized: true, T)), // r1 keeps Mac, loses the pass-only client
            ("r2", new ClientsCleared("firmware upgrade", KeepAuthorized: false, T)),
            ("r3", Auth(Mac, "10.0.0.3")),
            ("r4", Auth(Mac, "10.0.0.4")),
            ("r3", new ClientRemoved(Mac, ClientRemoved.KickedOff)),
        ];
        var firstBatch = Batch(first, 1);
        var secondBatch = Batch(second, firstBatch[^1].Ordering + 1);

        await store.ApplyAsync(firstBatch, fence.Epoch, fence.Offset, ct);
        var afterFirst = await clients.FindAsync(Mac, null, ct);
        Assert.Equal(["r1", "r2"], afterFirst.Select(r => r.DeviceId));
        Assert.All(afterFirst, r => Assert.Null(r.ExpiresAt));
        Assert.Equal(Mac, afterFirst[1].ClientMac);
        Assert.Equal("r2", Assert.Single(await clients.FindAsync(null, "fe80::1", ct)).DeviceId);
        Assert.Equal("r1", Assert.Single(await clients.FindAsync("AA-BB-CC-DD-EE-01", "10.0.0.1", ct)).DeviceId);
        Assert.Empty(await clients.FindAsync("aa:bb:cc:dd:ee:03", null, ct));

        // A crash before the offset was stored: the same batch again, then the next one, then that one again.
        await store.ApplyAsync(firstBatch, fence.Epoch, firstBatch[^1].Ordering, ct);
        Assert.Equal(afterFirst, await clients.FindAsync(Mac, null, ct));
        await store.ApplyAsync(secondBatch, fence.Epoch, firstBatch[^1].Ordering, ct);
        var afterSecond = await Rows(clients);
        await store.ApplyAsync(secondBatch, fence.Epoch, secondBatch[^1].Ordering, ct);
        Assert.Equal(afterSecond, await Rows(clients));

        // The rows are the entities' clients, device by device.
        var expected = first.Concat(second).GroupBy(e => e.Device)
            .SelectMany(g => DeviceState.Empty.ApplyAll(g.Select(e => e.Event)).Clients.Values.Select(c =>
                (g.Key, ClientStore.NormalizeMac(c.ClientMac), ClientStore.NormalizeIp(c.ClientIp), c.ExpiresAt)))
            .OrderBy(x => x.Key).ThenBy(x => x.Item2).ToList();
        Assert.Equal(expected, afterSecond.Select(r => (r.DeviceId, r.ClientMac, r.ClientIp, r.ExpiresAt)).ToList());
        Assert.Equal(["r1", "r4"], (await clients.FindAsync(Mac, null, ct)).Select(r => r.DeviceId));

        // A kickoff under an Idempotency-Key: the routers it addressed first are the ones a retry addresses.
        IReadOnlyList<KickoffTarget> firstTargets = [new("r1", "10.0.0.1", "gw-1"), new("r4", null, null)];
        Assert.Equal(firstTargets, await clients.KickoffTargetsAsync("key-1", Mac, () => Task.FromResult(firstTargets), ct));
        Assert.Equal(firstTargets, await clients.KickoffTargetsAsync("key-1", Mac,
            () => throw new InvalidOperationException("a remembered kickoff does not look again"), ct));
        Assert.Empty(await clients.KickoffTargetsAsync("key-2", Mac, () => Task.FromResult<IReadOnlyList<KickoffTarget>>([]), ct));
    }

    private static List<DirectoryEvent> Batch((string Device, IDeviceEvent Event)[] events, long from) =>
        events.Select((e, i) => new DirectoryEvent(e.Device, e.Event, from + i, from + i)).ToList();

    /// <summary>Every row (the MACs the tests use).</summary>
    private static async Task<List<ClientLocation>> Rows(ClientStore clients)
    {
        var ct = TestContext.Current.CancellationToken;
        var rows = new List<ClientLocation>();
        foreach (var mac in new[] { Mac, "aa:bb:cc:dd:ee:03", "aa:bb:cc:dd:ee:04" }) rows.AddRange(await clients.FindAsync(mac, null, ct));
        return rows.OrderBy(r => r.DeviceId).ThenBy(r => r.ClientMac).ToList();
    }
}
