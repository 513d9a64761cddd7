using System.Data.Common;
using System.Globalization;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Serialization;

namespace Fleet.Server.Alerts;

/// <summary>An alert as the API, the event stream and webhooks show it.</summary>
public sealed record AlertView(string AlertId, string Rule, string? DeviceId, string? Node, string State, string Summary,
    DateTimeOffset OpenedAt, DateTimeOffset? ResolvedAt) : IFleetSerializable
{
    public const string Open = "open";
    public const string Resolved = "resolved";
}

/// <summary>The alert rules' names.</summary>
public static class AlertRules
{
    public const string DeviceOffline = "device_offline";
    public const string CommandFailed = "command_failed";
    public const string DeviceCloned = "device_cloned";
    public const string NodeLeft = "node_left";
}

/// <summary>
/// The alerts table beside the directory (same database: every node reads it). Written only by the alert manager
/// (a cluster singleton); a new incarnation of it reads the open ones back, and the members it last saw.
/// </summary>
public sealed class AlertStore(DirectoryStore store) : IStoreTables
{
    public async Task CreateAsync(DbConnection c, DbTransaction tx, PersistenceProvider provider, CancellationToken ct)
    {
        await DirectoryStore.Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS alerts (
              alert_id TEXT PRIMARY KEY, rule TEXT NOT NULL, device_id TEXT, node TEXT,
              state TEXT NOT NULL, summary TEXT NOT NULL, opened_at TEXT NOT NULL, resolved_at TEXT);
            """);
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, opened_at);");
        await DirectoryStore.Exec(c, tx, "CREATE TABLE IF NOT EXISTS alert_members (address TEXT PRIMARY KEY);");
    }

    public async Task InsertAsync(AlertView a, CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync(ct);
        await DirectoryStore.Exec(c, null,
            "INSERT INTO alerts (alert_id, rule, device_id, node, state, summary, opened_at, resolved_at) VALUES (@id, @rule, @device, @node, @state, @summary, @opened, NULL)",
            ("id", a.AlertId), ("rule", a.Rule), ("device", a.DeviceId), ("node", a.Node), ("state", a.State), ("summary", a.Summary),
            ("opened", Stamp(a.OpenedAt)));
    }

    public async Task ResolveAsync(string alertId, DateTimeOffset at, CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync(ct);
        await DirectoryStore.Exec(c, null, "UPDATE alerts SET state = @state, resolved_at = @at WHERE alert_id = @id",
            ("state", AlertView.Resolved), ("at", Stamp(at)), ("id", alertId));
    }

    /// <summary>Newest first. <paramref name="state"/>: open, resolved, or null for all.</summary>
    public async Task<IReadOnlyList<AlertView>> QueryAsync(string? state, string? deviceId, int limit, CancellationToken ct = default)
    {
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (state is not null) { where.Add("state = @state"); args.Add(("state", state)); }
        if (deviceId is not null) { where.Add("device_id = @device"); args.Add(("device", deviceId)); }
        args.Add(("limit", limit));
        var sql = "SELECT alert_id, rule, device_id, node, state, summary, opened_at, resolved_at FROM alerts"
                  + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + " ORDER BY opened_at DESC, alert_id DESC LIMIT @limit";
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, sql, args.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var items = new List<AlertView>();
        while (await r.ReadAsync(ct))
            items.Add(new AlertView(r.GetString(0), r.GetString(1), Str(r, 2), Str(r, 3), r.GetString(4), r.GetString(5),
                Time(r, 6)!.Value, Time(r, 7)));
        return items;
    }

    public async Task<long> CountOpenAsync(CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "SELECT COUNT(*) FROM alerts WHERE state = @state", ("state", AlertView.Open));
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    /// <summary>The cluster members (host:port) the alert manager last saw Up.</summary>
    public async Task<IReadOnlyList<string>> ReadMembersAsync(CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "SELECT address FROM alert_members");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<string>();
        while (await r.ReadAsync(ct)) list.Add(r.GetString(0));
        return list;
    }

    public async Task WriteMembersAsync(IReadOnlyCollection<string> members, CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await DirectoryStore.Exec(c, tx, "DELETE FROM alert_members");
        foreach (var m in members) await DirectoryStore.Exec(c, tx, "INSERT INTO alert_members (address) VALUES (@a)", ("a", m));
        await tx.CommitAsync(ct);
    }

    private static string Stamp(DateTimeOffset t) => Security.AuditLog.Stamp(t);
    private static string? Str(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    private static DateTimeOffset? Time(DbDataReader r, int i) =>
        r.IsDBNull(i) ? null : DateTimeOffset.Parse(r.GetString(i), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
