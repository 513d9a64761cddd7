using System.Data.Common;
using System.Globalization;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Security;

/// <summary>One recorded change (or refused attempt): who, from where, what, on which device, how it ended.</summary>
public sealed record AuditEntry(long Id, DateTimeOffset At, string Actor, string Role, string? Remote, string Action,
    string? DeviceId, string Outcome, string? Detail);

public sealed record AuditQuery(string? DeviceId, string? Actor, DateTimeOffset? Since, int Limit, long? Before);

/// <summary>
/// The audit log: a table in the directory's database (SQLite or PostgreSQL, so every node of a cluster
/// writes to and reads from the same one). A row is written before the call that it records answers.
/// Details never carry secrets: client tokens and keys are left out by the callers (see <see cref="Redact"/>).
/// </summary>
public sealed class AuditLog(DirectoryStore store, TimeProvider clock, ILogger<AuditLog> log) : IStoreTables
{
    public async Task CreateAsync(DbConnection c, DbTransaction tx, PersistenceProvider provider, CancellationToken ct)
    {
        var id = provider == PersistenceProvider.Sqlite ? "id INTEGER PRIMARY KEY AUTOINCREMENT" : "id BIGSERIAL PRIMARY KEY";
        await DirectoryStore.Exec(c, tx, $"""
            CREATE TABLE IF NOT EXISTS audit_log (
              {id},
              at TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, remote TEXT,
              action TEXT NOT NULL, device_id TEXT, outcome TEXT NOT NULL, detail TEXT);
            """);
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS audit_log_device ON audit_log (device_id, id);");
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);");
    }

    /// <summary>Records what <paramref name="caller"/> did. A failure to write is logged and rethrown: no change goes unrecorded.</summary>
    public async Task RecordAsync(Caller caller, string action, string? deviceId, string outcome, string? detail = null,
        CancellationToken ct = default)
    {
        try
        {
            await using var c = await store.OpenAsync(ct);
            await DirectoryStore.Exec(c, null,
                "INSERT INTO audit_log (at, actor, role, remote, action, device_id, outcome, detail) VALUES (@at, @actor, @role, @remote, @action, @device, @outcome, @detail)",
                ("at", Stamp(clock.GetUtcNow())), ("actor", caller.KeyName), ("role", Caller.Name(caller.Role)),
                ("remote", caller.Remote), ("action", action), ("device", deviceId), ("outcome", outcome), ("detail", detail));
        }
        catch (DbException e)
        {
            log.LogError(e, "Audit row not written: {Action} by {Actor} on {Device} ({Outcome})", action, caller.KeyName, deviceId, outcome);
            throw;
        }
    }

    public Task RecordAsync(HttpContext ctx, string action, string? deviceId, string outcome, string? detail = null) =>
        RecordAsync(ctx.Caller(), action, deviceId, outcome, detail, CancellationToken.None);

    /// <summary>Newest first; <see cref="AuditQuery.Before"/> is the cursor (the last id of the previous page).</summary>
    public async Task<(IReadOnlyList<AuditEntry> Items, long? Next)> QueryAsync(AuditQuery q, CancellationToken ct)
    {
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (q.DeviceId is not null) { where.Add("device_id = @device"); args.Add(("device", q.DeviceId)); }
        if (q.Actor is not null) { where.Add("actor = @actor"); args.Add(("actor", q.Actor)); }
        if (q.Since is { } since) { where.Add("at >= @since"); args.Add(("since", Stamp(since))); }
        if (q.Before is { } before) { where.Add("id < @before"); args.Add(("before", before)); }
        args.Add(("limit", q.Limit + 1));
        var sql = "SELECT id, at, actor, role, remote, action, device_id, outcome, detail FROM audit_log"
                  + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + " ORDER BY id DESC LIMIT @limit";
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, sql, args.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var items = new List<AuditEntry>();
        while (await r.ReadAsync(ct))
            items.Add(new AuditEntry(Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture),
                DateTimeOffset.Parse(r.GetString(1), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                r.GetString(2), r.GetString(3), Str(r, 4), r.GetString(5), Str(r, 6), r.GetString(7), Str(r, 8)));
        long? next = null;
        if (items.Count > q.Limit)
        {
            items.RemoveAt(items.Count - 1);
            next = items[^1].Id;
        }
        return (items, next);
    }

    /// <summary>Deletes rows older than the retention; returns how many went.</summary>
    public async Task<int> PurgeAsync(TimeSpan keep, CancellationToken ct)
    {
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "DELETE FROM audit_log WHERE at < @cut", ("cut", Stamp(clock.GetUtcNow() - keep)));
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Fixed-width UTC text, so that text order is time order in both databases.</summary>
    internal static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static string? Str(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
}

/// <summary>Deletes audit rows past Fleet:Security:AuditRetentionDays, hourly (every node; the delete is idempotent).</summary>
public sealed class AuditRetention(AuditLog audit, IOptions<FleetSettings> settings, TimeProvider clock, ILogger<AuditRetention> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var keep = TimeSpan.FromDays(Math.Max(1, settings.Value.Security.AuditRetentionDays));
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), clock);
        do
        {
            try
            {
                var n = await audit.PurgeAsync(keep, stoppingToken);
                if (n > 0) log.LogInformation("Audit log: {Count} rows older than {Days} days deleted", n, keep.TotalDays);
            }
            catch (DbException e)
            {
                log.LogWarning("Audit retention did not run: {Error}", e.Message);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
