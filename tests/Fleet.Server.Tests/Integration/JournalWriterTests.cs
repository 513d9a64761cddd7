using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// Akka.Persistence.Sql stamps every event with its JOURNAL's writer id (one per node process), not the writing
/// entity's. A device entity that moves node A → node B → back to node A (A still up: a rolling restart's rebalance,
/// then B leaving) leaves a journal whose writers go A, B, A — and Akka's replay filter, in its default mode
/// (repair-by-discard-old), took A's later events for a stale writer's and DISCARDED them on the next recovery:
/// accepted commands vanished from the history (the chaos run's CommandLost and ExecutedUnknown). The journal's unique
/// (persistence_id, sequence_number) already makes a second live writer fail its write, so the filter is off
/// (appsettings.json, akka.persistence.journal.sql.replay-filter).
/// </summary>
public sealed class JournalWriterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<List<string>> Writers(string db, string pid)
    {
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=false");
        await c.OpenAsync(Ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT writer_uuid FROM journal WHERE persistence_id = $p ORDER BY sequence_number";
        cmd.Parameters.AddWithValue("$p", pid);
        var writers = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        while (await r.ReadAsync(Ct)) writers.Add(r.GetString(0));
        return writers;
    }

    private static async Task Rewrite(string db, string pid, string from, string to)
    {
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=false");
        await c.OpenAsync(Ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "UPDATE journal SET writer_uuid = $to WHERE persistence_id = $p AND writer_uuid = $from";
        cmd.Parameters.AddWithValue("$p", pid);
        cmd.Parameters.AddWithValue("$from", from);
        cmd.Parameters.AddWithValue("$to", to);
        Assert.True(await cmd.ExecuteNonQueryAsync(Ct) > 0, "rows rewritten");
    }

    private static async Task<string> Queue(Node node, string id, string body)
    {
        var (status, cmd, _) = await node.Post($"/api/v1/devices/{id}/commands", body);
        Assert.True(status is 202, $"{body} → {status} {cmd?.ToJsonString()}");
        Assert.Equal("queued", (string?)cmd!["status"]);
        return (string)cmd["command_id"]!;
    }

    [Fact]
    public async Task Events_a_node_wrote_again_after_another_node_wrote_are_all_recovered()
    {
        const string id = "writer-aba", pid = "device-" + id;
        var db = Node.NewDbPath();
        await using (var node = await Node.StartAsync(db))
        {
            await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), id);
            await Eventually.True(async () => (bool?)(await node.GetJson($"/api/v1/devices/{id}"))["online"] == true, "online");
        }
        // Each run of a node is one journal writer; the router is gone, so commands queue.
        var ids = new List<string>();
        await using (var node = await Node.StartAsync(db))
            ids.Add(await Queue(node, id, """{"type":"get_sys_info"}"""));
        await using (var node = await Node.StartAsync(db))
        {
            ids.Add(await Queue(node, id, """{"type":"get_status"}"""));
            ids.Add(await Queue(node, id, """{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:05","timeout":600}"""));
        }
        var writers = await Writers(db, pid);
        var runs = writers.Distinct().ToList();
        Assert.Equal(3, runs.Count);
        // The third run's events as the first run's process would have stamped them, had the entity come back to it:
        // writers A, B, A — what a cluster writes when an entity returns to a node that stayed up.
        await Rewrite(db, pid, runs[2], runs[0]);
        var after = await Writers(db, pid);
        Assert.Equal([runs[0], runs[1], runs[0]], after.Where((w, i) => i == 0 || after[i - 1] != w).ToList());

        await using (var node = await Node.StartAsync(db))
        {
            var listed = (await node.GetJson($"/api/v1/devices/{id}/commands"))["items"]!.AsArray()
                .Select(c => (string)c!["command_id"]!).ToHashSet();
            foreach (var c in ids) Assert.True(listed.Contains(c), $"command {c} is in the history after recovery (listed: {string.Join(", ", listed)})");
        }
    }
}
