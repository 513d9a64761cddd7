using System.Data.Common;
using System.Globalization;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Fleet.Server.Directory;

/// <summary>One row of the device directory.</summary>
public sealed record DeviceSummary(string DeviceId, bool Online, string? Node, DateTimeOffset? ConnectedAt,
    DateTimeOffset? LastSeen, string? LocationId, string? ApMacAddress, IReadOnlyList<string> Gateways, string? Firmware,
    string? Protocol, string? Admission = null, IReadOnlyDictionary<string, string>? Tags = null, string? Release = null);

/// <summary>The fleet at a glance (GET /api/v1/stats).</summary>
public sealed record FleetCounts(long Known, long Online, long Offline, long Pending, IReadOnlyDictionary<string, long> ByProtocol);

public sealed record DirectoryQuery(bool? Online, string? GwId, string? Q, int Limit, string? After, string? Protocol = null,
    string? Admission = null, IReadOnlyList<KeyValuePair<string, string>>? Tags = null, string? Release = null,
    IReadOnlyList<string>? DeviceIds = null);

/// <summary>
/// An event as the projection sees it: whose, what, its global position in the journal, and its sequence number in
/// its device's own history (the row's version: a row is never set back to an older one).
/// </summary>
public sealed record DirectoryEvent(string DeviceId, IDeviceEvent Event, long Ordering, long SequenceNr = 0);

/// <summary>
/// The directory's writes were refused: another projection incarnation (a newer epoch) writes the directory now,
/// or the stored offset is not the one this incarnation last wrote. The writer that gets this is stale and stops.
/// </summary>
public sealed class DirectoryFencedException(string message) : Exception(message);

/// <summary>
/// The device_summary table beside the journal (same database), written only by the projection.
/// The SQL is the subset SQLite and PostgreSQL share (ON CONFLICT upserts, TEXT timestamps in ISO 8601).
/// </summary>
/// <summary>Tables another store keeps in the directory's database, created with the directory's at start.</summary>
public interface IStoreTables
{
    Task CreateAsync(DbConnection c, DbTransaction tx, PersistenceProvider provider, CancellationToken ct);
}

public sealed class DirectoryStore(PersistenceProvider provider, string connectionString)
{
    public PersistenceProvider Provider => provider;

    public DbConnection Create() => provider == PersistenceProvider.Sqlite
        ? new SqliteConnection(connectionString)
        : new NpgsqlConnection(connectionString);

    public async Task<DbConnection> OpenAsync(CancellationToken ct = default)
    {
        var c = Create();
        await c.OpenAsync(ct);
        // SQLite has one writer. Without a busy timeout a write that meets the journal's is handed back SQLITE_BUSY
        // and Microsoft.Data.Sqlite retries it after 150 ms sleeps; with one, SQLite waits in its own short steps.
        if (provider == PersistenceProvider.Sqlite) await Exec(c, null, "PRAGMA busy_timeout = 30000;");
        return c;
    }

    /// <summary>Any 64-bit constant of our own: the advisory lock that serialises schema creation on PostgreSQL.</summary>
    private const long SchemaLock = 0x466C656574_5363; // "FleetSc"

    public async Task InitializeAsync(CancellationToken ct = default) => await InitializeAsync([], ct);

    /// <summary>Creates the directory's tables and those of the other stores sharing this database, in one locked transaction.</summary>
    public async Task InitializeAsync(IEnumerable<IStoreTables> others, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        if (provider == PersistenceProvider.Sqlite)
            await Exec(c, null, "PRAGMA journal_mode=WAL;"); // persistent on the file; the journal benefits too
        // Nodes of a cluster start together against one database, and concurrent CREATE TABLE IF NOT EXISTS
        // on PostgreSQL can fail (23505 on pg_type). DDL is transactional there: take a transaction-scoped
        // advisory lock first so the creations run one after another and the later ones are no-ops.
        await using var tx = await c.BeginTransactionAsync(ct);
        if (provider == PersistenceProvider.PostgreSql)
            await Exec(c, tx, "SELECT pg_advisory_xact_lock(@k)", ("k", SchemaLock));
        await Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS device_summary (
              device_id TEXT PRIMARY KEY,
              online INTEGER NOT NULL DEFAULT 0,
              node TEXT, connected_at TEXT, last_seen TEXT,
              location_id TEXT, ap_mac_address TEXT,
              gateways TEXT NOT NULL DEFAULT ',',
              firmware TEXT);
            """);
        await Exec(c, tx, "CREATE TABLE IF NOT EXISTS device_summary_offset (id INTEGER PRIMARY KEY, ordering BIGINT NOT NULL);");
        // The reconciliation's figures (one row), beside the offset so that every node can show them.
        await Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS device_summary_reconcile (
              id INTEGER PRIMARY KEY,
              passes BIGINT NOT NULL DEFAULT 0,
              started_at TEXT, finished_at TEXT,
              checked BIGINT NOT NULL DEFAULT 0,
              repaired BIGINT NOT NULL DEFAULT 0,
              missing BIGINT NOT NULL DEFAULT 0,
              total_repaired BIGINT NOT NULL DEFAULT 0);
            """);
        // Columns added after the first release (SQLite has no ADD COLUMN IF NOT EXISTS: ask first).
        if (!await HasColumnAsync(c, tx, "device_summary", "protocol"))
            await Exec(c, tx, "ALTER TABLE device_summary ADD COLUMN protocol TEXT;");
        if (!await HasColumnAsync(c, tx, "device_summary", "admission"))
            await Exec(c, tx, "ALTER TABLE device_summary ADD COLUMN admission TEXT;");
        // The row's version: the device's sequence number of the last event it shows (NULL: written before versions).
        if (!await HasColumnAsync(c, tx, "device_summary", "seq_nr"))
            await Exec(c, tx, "ALTER TABLE device_summary ADD COLUMN seq_nr BIGINT;");
        // Issue 14: effective tags (",k=v,") and the firmware's DISTRIB_RELEASE, for selections.
        if (!await HasColumnAsync(c, tx, "device_summary", "tags"))
            await Exec(c, tx, "ALTER TABLE device_summary ADD COLUMN tags TEXT NOT NULL DEFAULT ',';");
        if (!await HasColumnAsync(c, tx, "device_summary", "release"))
            await Exec(c, tx, "ALTER TABLE device_summary ADD COLUMN release TEXT;");
        // The fencing token: each projection incarnation claims the next epoch; writes check it in their transaction.
        if (!await HasColumnAsync(c, tx, "device_summary_offset", "epoch"))
            await Exec(c, tx, "ALTER TABLE device_summary_offset ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;");
        foreach (var tables in others) await tables.CreateAsync(c, tx, provider, ct);
        await tx.CommitAsync(ct);
    }

    internal async Task<bool> HasColumnAsync(DbConnection c, DbTransaction tx, string table, string column)
    {
        await using var cmd = Command(c, tx, provider == PersistenceProvider.Sqlite
            ? "SELECT COUNT(*) FROM pragma_table_info(@t) WHERE name = @c"
            : "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = @t AND column_name = @c",
            ("t", table), ("c", column));
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture) > 0;
    }

    public async Task<bool> PingAsync(CancellationToken ct)
    {
        try
        {
            await using var c = await OpenAsync(ct);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT 1";
            await cmd.ExecuteScalarAsync(ct);
            return true;
        }
        catch (DbException)
        {
            return false;
        }
    }

    public async Task<long> ReadOffsetAsync(CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT ordering FROM device_summary_offset WHERE id = 1";
        var v = await cmd.ExecuteScalarAsync(ct);
        return v is null or DBNull ? 0 : Convert.ToInt64(v, CultureInfo.InvariantCulture);
    }

    /// <summary>Whether an event changes a summary row (most command events do not).</summary>
    public static bool Affects(IDeviceEvent e) => Columns(e).Columns.Length > 0;

    /// <summary>
    /// Makes the caller the directory's only writer: takes the next epoch (the fencing token) and reads the offset,
    /// in one transaction. Every write of an older epoch is refused from then on (<see cref="DirectoryFencedException"/>).
    /// </summary>
    public async Task<DirectoryFence> ClaimAsync(CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await Exec(c, tx,
            "INSERT INTO device_summary_offset (id, ordering, epoch) VALUES (1, 0, 1) ON CONFLICT (id) DO UPDATE SET epoch = device_summary_offset.epoch + 1");
        await using var cmd = Command(c, tx, "SELECT epoch, ordering FROM device_summary_offset WHERE id = 1");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var fence = new DirectoryFence(Long(r.GetValue(0)), Long(r.GetValue(1)));
        await r.DisposeAsync();
        await tx.CommitAsync(ct);
        return fence;
    }

    /// <summary>
    /// Applies a batch and moves the offset in one transaction, if the directory is still the caller's: its epoch is
    /// the stored one and the stored offset is the one it expects (<paramref name="expectedOffset"/>, what it last
    /// read or wrote). The check is the transaction's first statement and holds the offset row (PostgreSQL row lock,
    /// SQLite's single writer) until commit, so a claim by a newer incarnation either sees this batch or refuses it.
    /// Upserts set columns to values and never set a row back to an older version, so a batch applied again after a
    /// crash (offset not yet stored) yields the same rows.
    /// </summary>
    /// <exception cref="DirectoryFencedException">the directory is another incarnation's now; nothing was written</exception>
    public async Task ApplyAsync(IReadOnlyList<DirectoryEvent> batch, long epoch, long expectedOffset, CancellationToken ct = default)
    {
        if (batch.Count == 0) return;
        await using var c = await OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        var owned = await ExecCount(c, tx,
            "UPDATE device_summary_offset SET ordering = @o WHERE id = 1 AND epoch = @epoch AND ordering = @expected",
            ("o", batch[^1].Ordering), ("epoch", epoch), ("expected", expectedOffset));
        if (owned != 1)
        {
            await tx.RollbackAsync(ct);
            throw await FencedAsync(epoch, expectedOffset, ct);
        }
        foreach (var e in batch)
        {
            // The client plane's rows (src/Fleet.Server/Clients), in this same transaction.
            if (Fleet.Server.Clients.ClientStore.Affects(e.Event)) await Fleet.Server.Clients.ClientStore.ApplyAsync(c, tx, e);
            var (columns, values) = Columns(e.Event);
            if (columns.Length == 0) continue;
            var names = string.Join(", ", columns);
            var parameters = string.Join(", ", columns.Select(n => "@" + n));
            var updates = string.Join(", ", columns.Select(n => $"{n} = excluded.{n}"));
            var args = new List<(string, object?)> { ("device_id", e.DeviceId), ("seq_nr", e.SequenceNr) };
            args.AddRange(columns.Zip(values, (n, v) => (n, v)));
            await Exec(c, tx,
                $"INSERT INTO device_summary (device_id, {names}, seq_nr) VALUES (@device_id, {parameters}, @seq_nr) " +
                $"ON CONFLICT (device_id) DO UPDATE SET {updates}, seq_nr = excluded.seq_nr " +
                "WHERE device_summary.seq_nr IS NULL OR device_summary.seq_nr < excluded.seq_nr",
                args.ToArray());
        }
        await tx.CommitAsync(ct);
    }

    private async Task<DirectoryFencedException> FencedAsync(long epoch, long expectedOffset, CancellationToken ct)
    {
        var now = await ReadFenceAsync(ct);
        return new DirectoryFencedException(now.Epoch != epoch
            ? $"the directory belongs to projection epoch {now.Epoch} now, not {epoch}"
            : $"the directory's offset is {now.Offset}, not {expectedOffset} as this projection last wrote");
    }

    /// <summary>The stored epoch and offset.</summary>
    public async Task<DirectoryFence> ReadFenceAsync(CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null, "SELECT epoch, ordering FROM device_summary_offset WHERE id = 1");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new DirectoryFence(Long(r.GetValue(0)), Long(r.GetValue(1))) : new DirectoryFence(0, 0);
    }

    // ------------------------------------------------------------------ reconciliation

    /// <summary>Rows of these devices as stored (devices without one are left out).</summary>
    public async Task<Dictionary<string, DirectoryRow>> ReadRowsAsync(IReadOnlyCollection<string> deviceIds, CancellationToken ct = default)
    {
        var rows = new Dictionary<string, DirectoryRow>(StringComparer.Ordinal);
        if (deviceIds.Count == 0) return rows;
        var args = deviceIds.Select((id, i) => ($"d{i}", (object?)id)).ToArray();
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null,
            $"SELECT {RowColumns} FROM device_summary WHERE device_id IN ({string.Join(", ", args.Select(a => "@" + a.Item1))})", args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var row = ReadRow(r);
            rows[row.DeviceId] = row;
        }
        return rows;
    }

    /// <summary>One page of the directory's rows in device_id order (keyset: after <paramref name="after"/>).</summary>
    public async Task<IReadOnlyList<DirectoryRow>> ReadRowPageAsync(string? after, int limit, CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = after is null
            ? Command(c, null, $"SELECT {RowColumns} FROM device_summary ORDER BY device_id LIMIT @limit", ("limit", limit))
            : Command(c, null, $"SELECT {RowColumns} FROM device_summary WHERE device_id > @after ORDER BY device_id LIMIT @limit",
                ("after", after), ("limit", limit));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var rows = new List<DirectoryRow>();
        while (await r.ReadAsync(ct)) rows.Add(ReadRow(r));
        return rows;
    }

    private const string RowColumns =
        "device_id, online, node, connected_at, last_seen, location_id, ap_mac_address, gateways, firmware, protocol, admission, seq_nr, tags, release";

    private static DirectoryRow ReadRow(DbDataReader r) => new(
        r.GetString(0), Long(r.GetValue(1)) == 1, Str(r, 2), Str(r, 3), Str(r, 4), Str(r, 5), Str(r, 6), Str(r, 7) ?? ",",
        Str(r, 8), Str(r, 9), Str(r, 10), r.IsDBNull(11) ? null : Long(r.GetValue(11)), Str(r, 12) ?? ",", Str(r, 13));

    /// <summary>
    /// Writes the reconciliation's repairs and its figures in one transaction, if the directory is still the caller's
    /// (epoch). A repair sets the whole row to what the journal says at version <see cref="DirectoryRow.SeqNr"/>; a row the
    /// projection has meanwhile moved to a newer version is left alone. Returns how many rows were changed.
    /// </summary>
    /// <exception cref="DirectoryFencedException">the directory is another incarnation's now; nothing was written</exception>
    /// <param name="missing">The repairs add missing rows: they count in <see cref="ReconciliationFigures.Missing"/> too.</param>
    public async Task<int> RepairAsync(long epoch, IReadOnlyList<DirectoryRepair> repairs, ReconciliationFigures figures,
        CancellationToken ct = default, bool missing = false)
    {
        await using var c = await OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        if (await ExecCount(c, tx, "UPDATE device_summary_offset SET epoch = epoch WHERE id = 1 AND epoch = @epoch", ("epoch", epoch)) != 1)
        {
            await tx.RollbackAsync(ct);
            throw await FencedAsync(epoch, -1, ct);
        }
        var changed = 0;
        foreach (var repair in repairs)
        {
            if (repair.Row is not { } w)
            {
                // Only the row as it was read: one the projection wrote since (a device that appeared) stays.
                changed += repair.Stored?.SeqNr is { } v
                    ? await ExecCount(c, tx, "DELETE FROM device_summary WHERE device_id = @d AND seq_nr = @v", ("d", repair.DeviceId), ("v", v))
                    : await ExecCount(c, tx, "DELETE FROM device_summary WHERE device_id = @d AND seq_nr IS NULL", ("d", repair.DeviceId));
                continue;
            }
            changed += await ExecCount(c, tx, $"""
                INSERT INTO device_summary ({RowColumns})
                VALUES (@device_id, @online, @node, @connected_at, @last_seen, @location_id, @ap_mac_address, @gateways, @firmware, @protocol, @admission, @seq_nr, @tags, @release)
                ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, node = excluded.node, connected_at = excluded.connected_at,
                  last_seen = excluded.last_seen, location_id = excluded.location_id, ap_mac_address = excluded.ap_mac_address,
                  gateways = excluded.gateways, firmware = excluded.firmware, protocol = excluded.protocol, admission = excluded.admission,
                  seq_nr = excluded.seq_nr, tags = excluded.tags, release = excluded.release
                WHERE device_summary.seq_nr IS NULL OR device_summary.seq_nr <= excluded.seq_nr
                """,
                ("device_id", w.DeviceId), ("online", w.Online ? 1 : 0), ("node", w.Node), ("connected_at", w.ConnectedAt),
                ("last_seen", w.LastSeen), ("location_id", w.LocationId), ("ap_mac_address", w.ApMacAddress), ("gateways", w.Gateways),
                ("firmware", w.Firmware), ("protocol", w.Protocol), ("admission", w.Admission), ("seq_nr", w.SeqNr),
                ("tags", w.Tags), ("release", w.Release));
        }
        var f = figures with { Repaired = figures.Repaired + changed, Missing = figures.Missing + (missing ? changed : 0) };
        await Exec(c, tx, """
            INSERT INTO device_summary_reconcile (id, passes, started_at, finished_at, checked, repaired, missing, total_repaired)
            VALUES (1, @passes, @started, @finished, @checked, @repaired, @missing, @changed)
            ON CONFLICT (id) DO UPDATE SET passes = excluded.passes, started_at = excluded.started_at, finished_at = excluded.finished_at,
              checked = excluded.checked, repaired = excluded.repaired, missing = excluded.missing,
              total_repaired = device_summary_reconcile.total_repaired + @changed
            """,
            ("passes", f.Passes), ("started", f.StartedAt is { } s ? Ts(s) : null), ("finished", f.FinishedAt is { } e ? Ts(e) : null),
            ("checked", f.Checked), ("repaired", f.Repaired), ("missing", f.Missing), ("changed", (long)changed));
        await tx.CommitAsync(ct);
        return changed;
    }

    /// <summary>The stored reconciliation figures (all zero before the first pass).</summary>
    public async Task<ReconciliationFigures> ReadReconciliationAsync(CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null,
            "SELECT passes, started_at, finished_at, checked, repaired, missing, total_repaired FROM device_summary_reconcile WHERE id = 1");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return ReconciliationFigures.None;
        return new ReconciliationFigures(Long(r.GetValue(0)), Time(r, 1), Time(r, 2), Long(r.GetValue(3)), Long(r.GetValue(4)),
            Long(r.GetValue(5)), Long(r.GetValue(6)));
    }

    /// <summary>Text as both stores keep it: PostgreSQL's text holds no NUL (see <see cref="Command"/>).</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(s))]
    internal static string? Stored(string? s) => s is not null && s.Contains('\0') ? s.Replace('\0', '\uFFFD') : s;

    private static long Long(object v) => Convert.ToInt64(v, CultureInfo.InvariantCulture);

    internal static string Ts(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Which summary columns an event sets. Events that don't touch the summary set none.</summary>
    internal static (string[] Columns, object?[] Values) Columns(IDeviceEvent e) => e switch
    {
        DeviceConnected c => (["online", "node", "connected_at", "last_seen"], [1, c.Node, Ts(c.At), Ts(c.At)]),
        DeviceDisconnected d => (["online", "last_seen"], [0, Ts(d.At)]),
        DeviceInfoReported i => (["location_id", "ap_mac_address"], [i.Info.LocationId, i.Info.ApMacAddress]),
        GatewaysReported g => (["gateways"], ["," + string.Concat(g.Gateways.Select(x => x.GwId + ","))]),
        ProtocolReported p => (["protocol"], [p.Protocol]),
        AdmissionChanged a => (["admission"], [a.Admission]),
        FirmwareReported f => (["firmware", "release"], [f.Firmware.GetValueOrDefault("DISTRIB_DESCRIPTION") ?? f.Firmware.GetValueOrDefault("DISTRIB_RELEASE"),
            f.Firmware.GetValueOrDefault("DISTRIB_RELEASE")]),
        TagsChanged t => (["tags"], [Devices.DeviceTags.Column(t.Tags)]),
        _ => ([], []),
    };

    /// <summary>
    /// Keyset paging by device_id. "online" means: marked online by a node that is a live cluster
    /// member now — a node that died (or restarted: new uid) leaves no device online behind it.
    /// </summary>
    public async Task<(IReadOnlyList<DeviceSummary> Items, string? Next)> QueryAsync(DirectoryQuery q,
        IReadOnlyCollection<string> liveNodes, CancellationToken ct)
    {
        var (onlineSql, where, args) = Where(q, liveNodes, withAfter: true);
        args.Add(("limit", q.Limit + 1));
        var sql = $"SELECT device_id, {onlineSql} AS live, node, connected_at, last_seen, location_id, ap_mac_address, gateways, firmware, protocol, admission, tags, release FROM device_summary"
                  + where + " ORDER BY device_id LIMIT @limit";

        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null, sql, args.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var items = new List<DeviceSummary>();
        while (await r.ReadAsync(ct))
        {
            items.Add(new DeviceSummary(
                r.GetString(0), Convert.ToInt64(r.GetValue(1), CultureInfo.InvariantCulture) == 1 || r.GetValue(1) is true,
                Str(r, 2), Time(r, 3), Time(r, 4), Str(r, 5), Str(r, 6),
                (Str(r, 7) ?? ",").Split(',', StringSplitOptions.RemoveEmptyEntries), Str(r, 8), Str(r, 9), Str(r, 10),
                Devices.DeviceTags.FromColumn(Str(r, 11)), Str(r, 12)));
        }
        string? next = null;
        if (items.Count > q.Limit)
        {
            items.RemoveAt(items.Count - 1);
            next = items[^1].DeviceId;
        }
        return (items, next);
    }

    /// <summary>How many devices match the query in all (its cursor and limit aside).</summary>
    public async Task<long> CountMatchingAsync(DirectoryQuery q, IReadOnlyCollection<string> liveNodes, CancellationToken ct)
    {
        var (_, where, args) = Where(q, liveNodes, withAfter: false);
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null, "SELECT COUNT(*) FROM device_summary" + where, args.ToArray());
        return Long((await cmd.ExecuteScalarAsync(ct))!);
    }

    /// <summary>The ids (and tags) of every device the query matches, in device_id order, read a page at a time.</summary>
    public async Task<IReadOnlyList<(string DeviceId, IReadOnlyDictionary<string, string> Tags)>> SelectAllAsync(DirectoryQuery q,
        IReadOnlyCollection<string> liveNodes, int max, CancellationToken ct)
    {
        var all = new List<(string, IReadOnlyDictionary<string, string>)>();
        string? after = null;
        while (all.Count < max)
        {
            var (onlineSql, where, args) = Where(q with { After = after }, liveNodes, withAfter: true);
            args.Add(("limit", Math.Min(1000, max - all.Count)));
            await using var c = await OpenAsync(ct);
            await using var cmd = Command(c, null, "SELECT device_id, tags FROM device_summary" + where + " ORDER BY device_id LIMIT @limit", args.ToArray());
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var page = 0;
            while (await r.ReadAsync(ct))
            {
                all.Add((r.GetString(0), Devices.DeviceTags.FromColumn(Str(r, 1))));
                after = r.GetString(0);
                page++;
            }
            if (page < 1000) break;
        }
        return all;
    }

    private static (string OnlineSql, string Where, List<(string, object?)> Args) Where(DirectoryQuery q, IReadOnlyCollection<string> liveNodes,
        bool withAfter)
    {
        var (onlineSql, nodeArgs) = OnlineSql(liveNodes);
        var where = new List<string>();
        var args = new List<(string, object?)>(nodeArgs);
        if (withAfter && q.After is not null) { where.Add("device_id > @after"); args.Add(("after", q.After)); }
        if (q.Online == true) where.Add(onlineSql);
        if (q.Online == false) where.Add($"NOT {onlineSql}");
        if (q.Protocol is not null) { where.Add("protocol = @protocol"); args.Add(("protocol", q.Protocol)); }
        if (q.Admission is not null) { where.Add("admission = @admission"); args.Add(("admission", q.Admission)); }
        if (q.Release is not null) { where.Add("release = @release"); args.Add(("release", q.Release)); }
        if (q.GwId is not null) { where.Add("gateways LIKE @gw ESCAPE '\\'"); args.Add(("gw", "%," + Escape(q.GwId) + ",%")); }
        for (var i = 0; i < (q.Tags?.Count ?? 0); i++)
        {
            where.Add($"tags LIKE @tag{i} ESCAPE '\\'");
            args.Add(($"tag{i}", "%," + Escape(q.Tags![i].Key + "=" + q.Tags[i].Value) + ",%"));
        }
        if (q.DeviceIds is { } ids)
        {
            where.Add(ids.Count == 0 ? "0 = 1" : $"device_id IN ({string.Join(", ", ids.Select((_, i) => "@id" + i))})");
            args.AddRange(ids.Select((id, i) => ("id" + i, (object?)id)));
        }
        if (!string.IsNullOrEmpty(q.Q))
        {
            where.Add("(LOWER(device_id) LIKE @q ESCAPE '\\' OR LOWER(COALESCE(location_id, '')) LIKE @q ESCAPE '\\' OR LOWER(COALESCE(ap_mac_address, '')) LIKE @q ESCAPE '\\')");
            args.Add(("q", "%" + Escape(q.Q.ToLowerInvariant()) + "%"));
        }
        return (onlineSql, where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "", args);
    }

    /// <summary>Whole-fleet counts for GET /api/v1/stats: online counts only devices whose socket's node is a live member.</summary>
    public async Task<FleetCounts> CountAsync(IReadOnlyCollection<string> liveNodes, CancellationToken ct)
    {
        var (onlineSql, args) = OnlineSql(liveNodes);
        var sql = $"SELECT protocol, admission, {onlineSql} AS live, COUNT(*) FROM device_summary GROUP BY protocol, admission, {onlineSql}";
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null, sql, args);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        long known = 0, online = 0, pending = 0;
        var byProtocol = new SortedDictionary<string, long>(StringComparer.Ordinal);
        while (await r.ReadAsync(ct))
        {
            var n = Convert.ToInt64(r.GetValue(3), CultureInfo.InvariantCulture);
            known += n;
            if (Convert.ToInt64(r.GetValue(2), CultureInfo.InvariantCulture) == 1 || r.GetValue(2) is true) online += n;
            if (Str(r, 1) == Devices.DeviceState.Pending) pending += n;
            if (Str(r, 0) is { } protocol) byProtocol[protocol] = byProtocol.GetValueOrDefault(protocol) + n;
        }
        return new FleetCounts(known, online, known - online, pending, byProtocol);
    }

    /// <summary>
    /// Devices whose last event was a disconnect before <paramref name="before"/> (their last_seen is that moment), after
    /// the keyset <paramref name="after"/> (last_seen, device_id), in that order: a reader that moves its keyset on reads
    /// each disconnect once, however many devices stay offline for good.
    /// </summary>
    public async Task<IReadOnlyList<(string DeviceId, DateTimeOffset LastSeen)>> DisconnectedAsync(DateTimeOffset before,
        (DateTimeOffset LastSeen, string DeviceId)? after, int limit, CancellationToken ct)
    {
        var sql = "SELECT device_id, last_seen FROM device_summary WHERE online = 0 AND last_seen IS NOT NULL AND last_seen < @before"
                  + (after is null ? "" : " AND (last_seen > @a OR (last_seen = @a AND device_id > @aid))")
                  + " ORDER BY last_seen, device_id LIMIT @limit";
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null, sql, ("before", Ts(before)), ("a", after is { } a ? Ts(a.LastSeen) : null),
            ("aid", after?.DeviceId), ("limit", limit));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<(string, DateTimeOffset)>();
        while (await r.ReadAsync(ct)) list.Add((r.GetString(0), Time(r, 1)!.Value));
        return list;
    }

    /// <summary>
    /// Devices recorded online on a node that is no longer a live member: their socket went with the node, and no event
    /// says when (their last_seen is when they connected).
    /// </summary>
    public async Task<IReadOnlyList<string>> StrandedAsync(IReadOnlyCollection<string> liveNodes, int limit, CancellationToken ct)
    {
        var (onlineSql, args) = OnlineSql(liveNodes);
        var sql = $"SELECT device_id FROM device_summary WHERE online = 1 AND NOT {onlineSql} ORDER BY device_id LIMIT @limit";
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null, sql, [.. args, ("limit", limit)]);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<string>();
        while (await r.ReadAsync(ct)) list.Add(r.GetString(0));
        return list;
    }

    /// <summary>Which of these devices are online now.</summary>
    public async Task<IReadOnlySet<string>> OnlineAmongAsync(IReadOnlyCollection<string> deviceIds, IReadOnlyCollection<string> liveNodes,
        CancellationToken ct)
    {
        var online = new HashSet<string>(StringComparer.Ordinal);
        if (deviceIds.Count == 0) return online;
        var (onlineSql, args) = OnlineSql(liveNodes);
        await using var c = await OpenAsync(ct);
        foreach (var chunk in deviceIds.Chunk(200))
        {
            var ids = chunk.Select((id, i) => ($"d{i}", (object?)id)).ToArray();
            var sql = $"SELECT device_id FROM device_summary WHERE {onlineSql} AND device_id IN ({string.Join(", ", ids.Select(p => "@" + p.Item1))})";
            await using var cmd = Command(c, null, sql, [.. args, .. ids]);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) online.Add(r.GetString(0));
        }
        return online;
    }

    private static (string Sql, (string, object?)[] Args) OnlineSql(IReadOnlyCollection<string> liveNodes)
    {
        var args = liveNodes.Select((n, i) => ($"n{i}", (object?)n)).ToArray();
        return (args.Length == 0 ? "0 = 1" : $"(online = 1 AND node IN ({string.Join(", ", args.Select(a => "@" + a.Item1))}))", args);
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_");
    private static string? Str(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    private static DateTimeOffset? Time(DbDataReader r, int i) =>
        r.IsDBNull(i) ? null : DateTimeOffset.Parse(r.GetString(i), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    internal static DbCommand Command(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = name;
            // PostgreSQL's text holds no NUL (22021): one router whose location_id carried a \u0000 stopped the directory's
            // projection for every device (bench/Fuzz connection, DB=postgres). Both stores keep the same text.
            p.Value = value is string s ? Stored(s) : value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    internal static async Task Exec(DbConnection c, DbTransaction? tx, string sql, params (string, object?)[] args)
    {
        await using var cmd = Command(c, tx, sql, args);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<int> ExecCount(DbConnection c, DbTransaction? tx, string sql, params (string, object?)[] args)
    {
        await using var cmd = Command(c, tx, sql, args);
        return await cmd.ExecuteNonQueryAsync();
    }
}
