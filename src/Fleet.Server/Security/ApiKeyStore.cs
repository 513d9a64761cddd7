using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Security;

/// <summary>A known admin API key: its name, role, SHA-256 and where it comes from (configuration or the database).</summary>
public sealed record ApiKey(string Name, Role Role, byte[] Sha256, bool Configured);

/// <summary>A key as listed by GET /api/v1/keys (never the key itself).</summary>
public sealed record ApiKeyView(string Name, string Role, string Source, DateTimeOffset? CreatedAt);

/// <summary>
/// The admin API keys every node accepts: those in configuration (Fleet:Security:ApiKeys, the same file or
/// environment on every node) and those kept in the shared database (created through the API, or generated
/// on the first start of a fleet with none configured). Only SHA-256 hashes are kept; a presented key is
/// hashed and compared with every known hash in constant time.
/// </summary>
public sealed class ApiKeyStore : IStoreTables
{
    public const string GeneratedName = "generated-admin";
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MissRefresh = TimeSpan.FromSeconds(1);

    private readonly DirectoryStore _store;
    private readonly TimeProvider _clock;
    private readonly ILogger<ApiKeyStore> _log;
    private readonly IReadOnlyList<ApiKey> _configured;
    private readonly SemaphoreSlim _reload = new(1, 1);
    private volatile IReadOnlyList<ApiKey> _stored = [];
    private long _loadedAt = long.MinValue;

    public ApiKeyStore(DirectoryStore store, IOptions<FleetSettings> settings, TimeProvider clock, ILogger<ApiKeyStore> log)
    {
        _store = store;
        _clock = clock;
        _log = log;
        _configured = FromSettings(settings.Value.Security.ApiKeys);
    }

    /// <summary>Checks Fleet:Security:ApiKeys; throws with what to fix.</summary>
    public static IReadOnlyList<ApiKey> FromSettings(IReadOnlyList<ApiKeySettings> keys)
    {
        var list = new List<ApiKey>();
        for (var i = 0; i < keys.Count; i++)
        {
            var k = keys[i];
            var where = $"Fleet:Security:ApiKeys:{i}";
            if (string.IsNullOrWhiteSpace(k.Name)) throw new InvalidOperationException($"{where}:Name is required");
            if (list.Any(x => x.Name == k.Name)) throw new InvalidOperationException($"{where}:Name '{k.Name}' is used twice");
            var role = Caller.ParseRole(k.Role)
                       ?? throw new InvalidOperationException($"{where}:Role '{k.Role}' must be viewer, operator or admin");
            byte[] hash;
            if (!string.IsNullOrEmpty(k.Key) == !string.IsNullOrEmpty(k.KeySha256))
                throw new InvalidOperationException($"{where}: set exactly one of Key and KeySha256");
            if (!string.IsNullOrEmpty(k.Key))
            {
                if (k.Key.Length < 16) throw new InvalidOperationException($"{where}:Key is shorter than 16 characters");
                hash = Hash(k.Key);
            }
            else
            {
                try { hash = Convert.FromHexString(k.KeySha256!); }
                catch (FormatException) { hash = []; }
                if (hash.Length != 32)
                    throw new InvalidOperationException($"{where}:KeySha256 must be 64 hex digits (sha256sum of the key)");
            }
            list.Add(new ApiKey(k.Name, role, hash, Configured: true));
        }
        return list;
    }

    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>A new random key: 32 bytes, base64url, with a prefix that makes it recognisable in a leak scan.</summary>
    public static string NewKey() => "fleet_" + Base64Url(RandomNumberGenerator.GetBytes(32));

    private static string Base64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public async Task CreateAsync(DbConnection c, DbTransaction tx, PersistenceProvider provider, CancellationToken ct) =>
        await DirectoryStore.Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS api_keys (
              name TEXT PRIMARY KEY, role TEXT NOT NULL, sha256 TEXT NOT NULL,
              created_at TEXT NOT NULL, created_by TEXT);
            """);

    /// <summary>The key a presented secret belongs to, or null. Every known hash is compared, each in constant time.</summary>
    public async ValueTask<ApiKey?> FindAsync(string presented, CancellationToken ct)
    {
        var hash = Hash(presented);
        var found = Match(hash, _configured) ?? Match(hash, await StoredAsync(ct, false));
        // A key created or revoked on another node is seen within the refresh; an unknown key triggers an early reload, at most once a second.
        if (found is null && Elapsed() > MissRefresh) found = Match(hash, await StoredAsync(ct, true));
        return found;
    }

    private static ApiKey? Match(byte[] hash, IReadOnlyList<ApiKey> keys)
    {
        ApiKey? found = null;
        foreach (var k in keys)
            if (CryptographicOperations.FixedTimeEquals(hash, k.Sha256)) found ??= k;
        return found;
    }

    private TimeSpan Elapsed() => _clock.GetElapsedTime(Interlocked.Read(ref _loadedAt) == long.MinValue ? 0 : Interlocked.Read(ref _loadedAt));

    private async ValueTask<IReadOnlyList<ApiKey>> StoredAsync(CancellationToken ct, bool force)
    {
        if (Interlocked.Read(ref _loadedAt) != long.MinValue && !force && Elapsed() < Refresh) return _stored;
        await _reload.WaitAsync(ct);
        try
        {
            if (Interlocked.Read(ref _loadedAt) != long.MinValue && Elapsed() < (force ? MissRefresh : Refresh)) return _stored;
            var list = new List<ApiKey>();
            foreach (var (name, role, sha, _) in await ReadAsync(ct))
                if (Caller.ParseRole(role) is { } r) list.Add(new ApiKey(name, r, Convert.FromHexString(sha), Configured: false));
            _stored = list;
            Interlocked.Exchange(ref _loadedAt, _clock.GetTimestamp());
            return list;
        }
        finally
        {
            _reload.Release();
        }
    }

    private async Task<List<(string Name, string Role, string Sha, DateTimeOffset CreatedAt)>> ReadAsync(CancellationToken ct)
    {
        await using var c = await _store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "SELECT name, role, sha256, created_at FROM api_keys ORDER BY name");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var rows = new List<(string, string, string, DateTimeOffset)>();
        while (await r.ReadAsync(ct))
            rows.Add((r.GetString(0), r.GetString(1), r.GetString(2),
                DateTimeOffset.Parse(r.GetString(3), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal)));
        return rows;
    }

    public async Task<IReadOnlyList<ApiKeyView>> ListAsync(CancellationToken ct)
    {
        var views = _configured.Select(k => new ApiKeyView(k.Name, Caller.Name(k.Role), "configuration", null)).ToList();
        views.AddRange((await ReadAsync(ct)).Select(r => new ApiKeyView(r.Name, r.Role, "database", r.CreatedAt)));
        return views;
    }

    /// <summary>Creates a key in the database; returns it (the only time it is ever shown), or null if the name is taken.</summary>
    public async Task<string?> CreateKeyAsync(string name, Role role, string createdBy, CancellationToken ct)
    {
        if (_configured.Any(k => k.Name == name)) return null;
        var key = NewKey();
        await using var c = await _store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null,
            "INSERT INTO api_keys (name, role, sha256, created_at, created_by) VALUES (@n, @r, @h, @at, @by) ON CONFLICT (name) DO NOTHING",
            ("n", name), ("r", Caller.Name(role)), ("h", Convert.ToHexStringLower(Hash(key))), ("at", AuditLog.Stamp(_clock.GetUtcNow())), ("by", createdBy));
        var inserted = await cmd.ExecuteNonQueryAsync(ct) == 1;
        Interlocked.Exchange(ref _loadedAt, long.MinValue);
        return inserted ? key : null;
    }

    /// <summary>Deletes a database key; false if there is none by that name.</summary>
    public async Task<bool> DeleteKeyAsync(string name, CancellationToken ct)
    {
        await using var c = await _store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "DELETE FROM api_keys WHERE name = @n", ("n", name));
        var deleted = await cmd.ExecuteNonQueryAsync(ct) == 1;
        Interlocked.Exchange(ref _loadedAt, long.MinValue);
        return deleted;
    }

    public bool IsConfigured(string name) => _configured.Any(k => k.Name == name);

    /// <summary>
    /// With no key configured and none in the database, generates the fleet's first admin key, writes it to
    /// <paramref name="file"/> (owner-only) and logs the file's path, never the key. Nodes of a cluster race
    /// on one row: the node whose insert wins writes the file; the others log where it is.
    /// </summary>
    public async Task EnsureAdminKeyAsync(string file, CancellationToken ct)
    {
        if (_configured.Count > 0) return;
        var stored = await StoredAsync(ct, true);
        if (stored.Count > 0) return;
        var key = await CreateKeyAsync(GeneratedName, Role.Admin, "first start", ct);
        if (key is null)
        {
            _log.LogWarning("No admin API key is configured; another node generated the fleet's first admin key (see its log for the file)");
            return;
        }
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using (var fs = new FileStream(file, options))
        await using (var w = new StreamWriter(fs))
            await w.WriteLineAsync(key);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _log.LogWarning("No admin API key was configured: generated one, written to {File} (readable by this user only). " +
                        "Send it as 'Authorization: Bearer <key>'; configure Fleet:Security:ApiKeys to replace it", Path.GetFullPath(file));
    }
}
