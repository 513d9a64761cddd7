using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// Device keys in the shared database, the same on SQLite and PostgreSQL (every node of a cluster checks the
/// same keys): hashes only; a new key leaves the device's current one valid until it is first presented;
/// first use drops the older keys and makes a key required; revocation deletes them all and keeps it required.
/// </summary>
public sealed class DeviceKeyStoreTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<PersistenceProvider> Providers => new() { PersistenceProvider.Sqlite, PersistenceProvider.PostgreSql };

    private static async Task<(DeviceKeyStore Keys, DirectoryStore Store, IAsyncDisposable? Db)> StoreAsync(PersistenceProvider provider)
    {
        TestDatabase? db = null;
        string cs;
        if (provider == PersistenceProvider.PostgreSql)
        {
            db = await TestDatabase.CreateAsync();
            cs = db.ConnectionString;
        }
        else cs = $"Data Source={Node.NewDbPath()}";
        if (provider == PersistenceProvider.Sqlite) System.IO.Directory.CreateDirectory(Path.GetDirectoryName(cs["Data Source=".Length..])!);
        var store = new DirectoryStore(provider, cs);
        var keys = new DeviceKeyStore(store, TimeProvider.System);
        await store.InitializeAsync([keys], Ct);
        await store.InitializeAsync([keys], Ct); // a second node starting: nothing to create
        return (keys, store, db);
    }

    [Theory, MemberData(nameof(Providers))]
    public async Task A_key_lives_until_a_newer_one_is_used_or_it_is_revoked(PersistenceProvider provider)
    {
        var (keys, _, db) = await StoreAsync(provider);
        await using var cleanup = db;

        var first = await keys.IssueAsync("r1", "test-admin", Ct);
        Assert.StartsWith("fdk_", first);
        Assert.Null(await keys.FindAsync("fdk_nobody", Ct));
        var found = (await keys.FindAsync(first, Ct))!;
        Assert.Equal(("r1", true), (found.DeviceId, found.FirstUse));
        Assert.False(await keys.KeyRequiredAsync("r1", Ct)); // issued, never presented: an enrolment key still admits it

        Assert.Equal(0, await keys.MarkUsedAsync(found, Ct));
        Assert.Equal(0, await keys.MarkUsedAsync(found, Ct)); // another node got there first: nothing more happens
        Assert.True(await keys.KeyRequiredAsync("r1", Ct));
        Assert.False((await keys.FindAsync(first, Ct))!.FirstUse);

        // Rotation: the old key stays valid until the new one is presented, then goes.
        var second = await keys.IssueAsync("r1", "test-admin", Ct);
        Assert.NotNull(await keys.FindAsync(first, Ct));
        Assert.Equal(1, await keys.MarkUsedAsync((await keys.FindAsync(second, Ct))!, Ct));
        Assert.Null(await keys.FindAsync(first, Ct));
        var status = await keys.StatusAsync("r1", Ct);
        Assert.Equal(DeviceKeyStore.Fingerprint(second), Assert.Single(status.Keys).Fingerprint);
        Assert.Equal("key used", status.KeyRequiredBecause);

        Assert.Equal(1, await keys.RevokeAsync("r1", Ct));
        Assert.Null(await keys.FindAsync(second, Ct));
        Assert.True(await keys.KeyRequiredAsync("r1", Ct));
        Assert.Equal("keys revoked", (await keys.StatusAsync("r1", Ct)).KeyRequiredBecause);
        Assert.Equal(0, await keys.RevokeAsync("r1", Ct));
    }

    [Theory, MemberData(nameof(Providers))]
    public async Task A_revocation_on_another_node_takes_effect_here_within_the_cache_time(PersistenceProvider provider)
    {
        var (here, store, db) = await StoreAsync(provider);
        await using var cleanup = db;
        var key = await here.IssueAsync("r2", "test-admin", Ct);
        Assert.NotNull(await here.FindAsync(key, Ct)); // cached here
        // Another node (its own store object on the same database) revokes it.
        var there = new DeviceKeyStore(store, TimeProvider.System);
        Assert.Equal(1, await there.RevokeAsync("r2", Ct));
        await Eventually.True(async () => await here.FindAsync(key, Ct) is null, "revoked here too",
            within: DeviceKeyStore.CacheFor + TimeSpan.FromSeconds(3));
    }
}
