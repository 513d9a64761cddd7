using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;

namespace Fleet.Server.Jobs;

/// <summary>
/// The jobs table beside the directory: one row per job with its latest view, written by the job entity itself. It is
/// what lists read (newest first) and what the <see cref="JobKeeper"/> reads to wake the unfinished ones. One job's own
/// GET asks its entity.
/// </summary>
public sealed class JobStore(DirectoryStore store) : IStoreTables
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public async Task CreateAsync(DbConnection c, DbTransaction tx, PersistenceProvider provider, CancellationToken ct)
    {
        await DirectoryStore.Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS jobs (
              job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
              finished INTEGER NOT NULL DEFAULT 0, view TEXT NOT NULL, updated_at TEXT NOT NULL);
            """);
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at, job_id);");
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS jobs_open ON jobs (finished);");
    }

    public async Task UpsertAsync(JobView view, CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync(ct);
        await DirectoryStore.Exec(c, null, """
            INSERT INTO jobs (job_id, kind, status, created_at, finished, view, updated_at)
            VALUES (@id, @kind, @status, @created, @finished, @view, @updated)
            ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, finished = excluded.finished, view = excluded.view,
              updated_at = excluded.updated_at
            """,
            ("id", view.JobId), ("kind", view.Kind), ("status", view.Status), ("created", DirectoryStore.Ts(view.CreatedAt)),
            ("finished", Finished(view) ? 1 : 0), ("view", JsonSerializer.Serialize(view.Brief(), Json)),
            ("updated", DirectoryStore.Ts(DateTimeOffset.UtcNow)));
    }

    /// <summary>Newest first; the cursor is the last row's (created_at, job_id).</summary>
    public async Task<(IReadOnlyList<JsonElement> Items, string? Next)> ListAsync(string? kind, string? status, int limit, string? after,
        CancellationToken ct)
    {
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (kind is not null) { where.Add("kind = @kind"); args.Add(("kind", kind)); }
        if (status is not null) { where.Add("status = @status"); args.Add(("status", status)); }
        if (after is not null && after.Split('|') is [var at, var id])
        {
            where.Add("(created_at < @at OR (created_at = @at AND job_id < @aid))");
            args.Add(("at", at));
            args.Add(("aid", id));
        }
        args.Add(("limit", limit + 1));
        var sql = "SELECT view, created_at, job_id FROM jobs" + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "")
                  + " ORDER BY created_at DESC, job_id DESC LIMIT @limit";
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, sql, args.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var items = new List<(JsonElement View, string Key)>();
        while (await r.ReadAsync(ct))
            items.Add((JsonDocument.Parse(r.GetString(0)).RootElement.Clone(), r.GetString(1) + "|" + r.GetString(2)));
        string? next = null;
        if (items.Count > limit)
        {
            items.RemoveAt(items.Count - 1);
            next = items[^1].Key;
        }
        return (items.Select(i => i.View).ToList(), next);
    }

    /// <summary>
    /// Over: completed, cancelled or aborted, and no device still on a step (a cancelled job's sent commands, a rollout's
    /// rebooting devices): until then the keeper keeps waking it, so their results are still recorded after a node's loss.
    /// </summary>
    public static bool Finished(JobView view) =>
        JobStatus.IsFinal(view.Status) && !view.Counts.Keys.Any(s => !JobStatus.DeviceFinal(s));

    /// <summary>Jobs not over (see <see cref="Finished"/>).</summary>
    public async Task<IReadOnlyList<string>> UnfinishedAsync(CancellationToken ct)
    {
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null, "SELECT job_id FROM jobs WHERE finished = 0 ORDER BY created_at LIMIT 10000");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var ids = new List<string>();
        while (await r.ReadAsync(ct)) ids.Add(r.GetString(0));
        return ids;
    }
}
