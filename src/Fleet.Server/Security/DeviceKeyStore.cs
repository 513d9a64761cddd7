using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;

namespace Fleet.Server.Security;

/// <summary>A device key a router presented: whose it is, and whether this is the first time it was presented.</summary>
public sealed record DeviceKeyMatch(string DeviceId, bool FirstUse, byte[] Sha256);

/// <summary>One key of a device as GET …/key shows it (never the key).</summary>
public sealed record DeviceKeyInfo(string Fingerprint, DateTimeOffset CreatedAt, string CreatedBy, DateTimeOffset? UsedAt);

/// <summary>A device's keys and whether it must present one of them (a fleet key no longer admits it).</summary>
public sealed record DeviceKeyStatus(string DeviceId, IReadOnlyList<DeviceKeyInfo> Keys, DateTimeOffset? KeyRequiredSince, string? KeyRequiredBecause);

/// <summary>
/// The routers' own keys (device-key admission), in the shared database so every node of a cluster checks the
/// same ones. Only SHA-256 hashes are kept. A device may hold several keys for a while: a new key (approval,
/// rotation) is handed over or configured while the router still connects with the one it has; the first
/// time a key is presented, the device's older keys are dropped. From the first use of any of its keys (or a
/// revocation) on, a device must present a key of its own: a fleet enrolment key no longer admits it
/// (<c>device_keys_required</c>). Lookups are cached for <see cref="CacheFor"/>, so a revocation reaches every
/// node within that time.
/// </summary>
public sealed class DeviceKeyStore(DirectoryStore store, TimeProvider clock) : IStoreTables
{
    /// <summary>How long a node trusts what it read (a key revoked on another node works here at most this much longer).</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(2);
    private const int CacheLimit = 8192;

    private readonly ConcurrentDictionary<string, (DeviceKeyMatch? Match, long At)> _byHash = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (bool Required, long At)> _required = new(StringComparer.Ordinal);

    public async Task CreateAsync(DbConnection c, DbTransaction tx, PersistenceProvider provider, CancellationToken ct)
    {
        await DirectoryStore.Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS device_keys (
              sha256 TEXT PRIMARY KEY, device_id TEXT NOT NULL,
              created_at TEXT NOT NULL, created_by TEXT NOT NULL, used_at TEXT);
            """);
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS device_keys_device ON device_keys (device_id, created_at);");
        await DirectoryStore.Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS device_keys_required (
              device_id TEXT PRIMARY KEY, since TEXT NOT NULL, because TEXT NOT NULL);
            """);
    }

    /// <summary>A new device key: 32 random bytes, base64url (safe in a URL query as it is), with a recognisable prefix.</summary>
    public static string NewKey() => "fdk_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The first 12 hex digits of a key's SHA-256: names a key in logs, audit rows and views without revealing it.</summary>
    public static string Fingerprint(byte[] sha256) => Convert.ToHexStringLower(sha256)[..12];

    public static string Fingerprint(string key) => Fingerprint(ApiKeyStore.Hash(key));

    /// <summary>Creates a key for the device (its other keys stay valid until this one is first presented) and returns it: the only time it is shown.</summary>
    public async Task<string> IssueAsync(string deviceId, string createdBy, CancellationToken ct)
    {
        var key = NewKey();
        await using var c = await store.OpenAsync(ct);
        await DirectoryStore.Exec(c, null,
            "INSERT INTO device_keys (sha256, device_id, created_at, created_by) VALUES (@h, @d, @at, @by)",
            ("h", Convert.ToHexStringLower(ApiKeyStore.Hash(key))), ("d", deviceId), ("at", AuditLog.Stamp(clock.GetUtcNow())), ("by", createdBy));
        return key;
    }

    /// <summary>Whose key this is, or null. Looked up by hash (what the lookup's timing could reveal is a hash prefix, useless without a preimage), then compared in constant time.</summary>
    public async ValueTask<DeviceKeyMatch?> FindAsync(string presented, CancellationToken ct)
    {
        var hash = ApiKeyStore.Hash(presented);
        var hex = Convert.ToHexStringLower(hash);
        if (_byHash.TryGetValue(hex, out var cached) && Fresh(cached.At)) return cached.Match;
        DeviceKeyMatch? match = null;
        await using (var c = await store.OpenAsync(ct))
        await using (var cmd = DirectoryStore.Command(c, null, "SELECT device_id, sha256, used_at FROM device_keys WHERE sha256 = @h", ("h", hex)))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            if (await r.ReadAsync(ct) && CryptographicOperations.FixedTimeEquals(Convert.FromHexString(r.GetString(1)), hash))
                match = new DeviceKeyMatch(r.GetString(0), r.IsDBNull(2), hash);
        Remember(_byHash, hex, (match, clock.GetTimestamp()));
        return match;
    }

    /// <summary>Whether the device must present a key of its own (it used one before, or its keys were revoked).</summary>
    public async ValueTask<bool> KeyRequiredAsync(string deviceId, CancellationToken ct)
    {
        if (_required.TryGetValue(deviceId, out var cached) && Fresh(cached.At)) return cached.Required;
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "SELECT COUNT(*) FROM device_keys_required WHERE device_id = @d", ("d", deviceId));
        var required = Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture) > 0;
        Remember(_required, deviceId, (required, clock.GetTimestamp()));
        return required;
    }

    /// <summary>Whether the device has any key now (used or not).</summary>
    public async Task<bool> HasKeyAsync(string deviceId, CancellationToken ct)
    {
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "SELECT COUNT(*) FROM device_keys WHERE device_id = @d", ("d", deviceId));
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>
    /// A key presented for the first time: it is used, the device's older keys go, and from now on the device
    /// must present a key of its own. Returns how many older keys were dropped. One transaction.
    /// </summary>
    public async Task<int> MarkUsedAsync(DeviceKeyMatch key, CancellationToken ct)
    {
        var hex = Convert.ToHexStringLower(key.Sha256);
        var now = AuditLog.Stamp(clock.GetUtcNow());
        int dropped;
        await using (var c = await store.OpenAsync(ct))
        await using (var tx = await c.BeginTransactionAsync(ct))
        {
            await using (var used = DirectoryStore.Command(c, tx,
                             "UPDATE device_keys SET used_at = @now WHERE sha256 = @h AND used_at IS NULL", ("now", now), ("h", hex)))
                if (await used.ExecuteNonQueryAsync(ct) == 0) return 0; // another node marked it first
            await using (var older = DirectoryStore.Command(c, tx,
                             "DELETE FROM device_keys WHERE device_id = @d AND created_at < (SELECT created_at FROM device_keys WHERE sha256 = @h)",
                             ("d", key.DeviceId), ("h", hex)))
                dropped = await older.ExecuteNonQueryAsync(ct);
            await DirectoryStore.Exec(c, tx,
                "INSERT INTO device_keys_required (device_id, since, because) VALUES (@d, @now, 'key used') ON CONFLICT (device_id) DO NOTHING",
                ("d", key.DeviceId), ("now", now));
            await tx.CommitAsync(ct);
        }
        Forget(key.DeviceId);
        return dropped;
    }

    /// <summary>Deletes every key of the device; from now on it must present a new one. Returns how many there were.</summary>
    public async Task<int> RevokeAsync(string deviceId, CancellationToken ct)
    {
        int revoked;
        await using (var c = await store.OpenAsync(ct))
        await using (var tx = await c.BeginTransactionAsync(ct))
        {
            await using (var delete = DirectoryStore.Command(c, tx, "DELETE FROM device_keys WHERE device_id = @d", ("d", deviceId)))
                revoked = await delete.ExecuteNonQueryAsync(ct);
            if (revoked > 0)
                await DirectoryStore.Exec(c, tx,
                    "INSERT INTO device_keys_required (device_id, since, because) VALUES (@d, @now, 'keys revoked') " +
                    "ON CONFLICT (device_id) DO UPDATE SET because = excluded.because",
                    ("d", deviceId), ("now", AuditLog.Stamp(clock.GetUtcNow())));
            await tx.CommitAsync(ct);
        }
        Forget(deviceId);
        return revoked;
    }

    public async Task<DeviceKeyStatus> StatusAsync(string deviceId, CancellationToken ct)
    {
        var keys = new List<DeviceKeyInfo>();
        DateTimeOffset? since = null;
        string? because = null;
        await using var c = await store.OpenAsync(ct);
        await using (var cmd = DirectoryStore.Command(c, null,
                         "SELECT sha256, created_at, created_by, used_at FROM device_keys WHERE device_id = @d ORDER BY created_at", ("d", deviceId)))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                keys.Add(new DeviceKeyInfo(r.GetString(0)[..12], Time(r.GetString(1)), r.GetString(2), r.IsDBNull(3) ? null : Time(r.GetString(3))));
        await using (var cmd = DirectoryStore.Command(c, null, "SELECT since, because FROM device_keys_required WHERE device_id = @d", ("d", deviceId)))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            if (await r.ReadAsync(ct))
            {
                since = Time(r.GetString(0));
                because = r.GetString(1);
            }
        return new DeviceKeyStatus(deviceId, keys, since, because);
    }

    /// <summary>This node forgets what it cached about a device's keys (after a change made here).</summary>
    public void Forget(string deviceId)
    {
        _required.TryRemove(deviceId, out _);
        foreach (var (hash, entry) in _byHash)
            if (entry.Match?.DeviceId == deviceId) _byHash.TryRemove(hash, out _);
    }

    private bool Fresh(long at) => clock.GetElapsedTime(at) < CacheFor;

    private static void Remember<T>(ConcurrentDictionary<string, T> cache, string key, T value)
    {
        // A flood of unknown keys must not grow the cache without bound: past the limit it starts over.
        if (cache.Count >= CacheLimit) cache.Clear();
        cache[key] = value;
    }

    private static DateTimeOffset Time(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
