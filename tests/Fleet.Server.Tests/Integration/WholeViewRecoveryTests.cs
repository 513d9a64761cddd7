using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// Recovery compared on the WHOLE device: its view, its command history and its directory row, before and
/// after a restart — from today's journal with a snapshot every few events, and from a journal and snapshot
/// written by the previous release (checked in under Samples/legacy).
/// </summary>
public sealed class WholeViewRecoveryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What the view holds in memory only (README: "After a restart a device is offline until it
    /// reconnects; everything else … is kept"): when last seen, and the figures of its last heartbeat.</summary>
    private static readonly string[] MemoryOnly = ["last_seen", "mode", "system"];

    private static JsonNode Without(JsonNode view, params string[] fields)
    {
        var copy = view.DeepClone().AsObject();
        foreach (var f in fields) copy.Remove(f);
        return copy;
    }

    private static void SameJson(JsonNode expected, JsonNode actual, string what) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{what} differs after the restart:\n  before {expected.ToJsonString()}\n  after  {actual.ToJsonString()}");

    /// <summary>The device's directory row, or null while the projection has not listed it yet.</summary>
    private static async Task<JsonNode?> DirectoryRow(Node node, string id) =>
        (await node.GetJson($"/api/v1/devices?q={id}"))["items"]!.AsArray().SingleOrDefault(i => (string?)i!["device_id"] == id);

    private static async Task<long> Rows(string db, string sql, string id)
    {
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db}");
        await c.OpenAsync(Ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Parameters.AddWithValue("$p", "device-" + id);
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task A_restart_with_a_snapshot_every_three_events_recovers_the_whole_device_view()
    {
        const string id = "whole-view";
        var db = Node.NewDbPath();
        string[] args = ["--Fleet:Devices:SnapshotEvery", "3"];
        JsonNode device, commands, row;
        await using (var node = await Node.StartAsync(db, args))
        {
            const string gateways = """[{"gw_id":"gw-1","gw_channel":"apfree","gw_address_v4":"192.168.1.1","gw_address_v6":"fd00::1","auth_mode":1,"gw_interface":"br-lan"},{"gw_id":"gw-2","gw_channel":"guest","gw_address_v4":"192.168.2.1","auth_mode":1,"gw_interface":"wlan1"}]""";
            await using (var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), id, gateways: gateways))
            {
                async Task<JsonNode> Run(string body, string query = "?wait=10", Func<JsonNode, Task>? answer = null)
                {
                    var post = node.Post($"/api/v1/devices/{id}/commands{query}", body);
                    var frame = await router.ReceiveType((string)JsonNode.Parse(body)!["type"]!);
                    if (answer is not null) await answer(frame);
                    var (status, result, _) = await post;
                    Assert.True(status is 200, $"{body} → {status} {result?.ToJsonString()}");
                    return result!;
                }
                await Run("""{"type":"auth","token":"t1","client_ip":"192.168.1.21","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1"}""");
                await Run("""{"type":"auth","token":"t2","client_ip":"192.168.1.22","client_mac":"aa:bb:cc:dd:ee:02","gw_id":"gw-1"}""");
                await Run("""{"type":"auth","token":"t3","client_ip":"192.168.2.23","client_mac":"aa:bb:cc:dd:ee:03","gw_id":"gw-2"}""");
                await Run("""{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:04","timeout":3600}""");
                Assert.Equal(200, (await node.Send(HttpMethod.Put, $"/api/v1/devices/{id}/gateways/gw-2/auth-mode", """{"auth_mode":0}""")).Status);
                Assert.Equal("succeeded", (string?)(await Run("""{"type":"get_firmware_info"}""", answer: router.Answer))["status"]);
                Assert.Equal("succeeded", (string?)(await Run("""{"type":"kickoff","client_ip":"192.168.1.22","client_mac":"aa:bb:cc:dd:ee:02","gw_id":"gw-1"}""", answer: router.Answer))["status"]);
                Assert.Equal("failed", (string?)(await Run("""{"type":"kickoff","client_ip":"192.168.1.99","client_mac":"aa:bb:cc:dd:ee:99","gw_id":"gw-1"}""",
                    answer: f => router.Send($$$"""{"type":"kickoff_error","req_id":"{{{f["req_id"]}}}","error":"Client not found","client_ip":"192.168.1.99","client_mac":"aa:bb:cc:dd:ee:99"}""")))["status"]);
                Assert.Equal("timed_out", (string?)(await Run("""{"type":"get_status"}""", "?wait=10&timeout=1"))["status"]);
                await router.HeartbeatAndReply(gateways); // seen after the last command
            }
            await Eventually.True(async () => (bool?)(await node.GetJson($"/api/v1/devices/{id}"))["online"] == false, "offline");
            var (_, queued, _) = await node.Post($"/api/v1/devices/{id}/commands", """{"type":"get_sys_info"}""");
            Assert.Equal("queued", (string?)queued!["status"]);
            var (_, reboot, _) = await node.Post($"/api/v1/devices/{id}/commands", """{"type":"reboot_device"}""");
            Assert.Equal(200, (await node.Send(HttpMethod.Delete, $"/api/v1/devices/{id}/commands/{reboot!["command_id"]}")).Status);

            device = await node.GetJson($"/api/v1/devices/{id}");
            commands = await node.GetJson($"/api/v1/devices/{id}/commands");
            JsonNode? seen = null;
            await Eventually.True(async () => (bool?)(seen = await DirectoryRow(node, id))?["online"] == false, "the directory row offline",
                TimeSpan.FromSeconds(20), () => $"row: {seen?.ToJsonString() ?? "none"}; directory: {node.GetJson("/api/v1/devices").Result.ToJsonString()}");
            row = seen!;
        }
        // The restart recovers from a snapshot and the events after it, not from the journal alone.
        Assert.True(await Rows(db, "SELECT COUNT(*) FROM snapshot WHERE persistence_id = $p", id) >= 1, "a snapshot was saved");
        Assert.True(await Rows(db, "SELECT COUNT(*) FROM journal WHERE persistence_id = $p", id) >= 12, "a dozen events or more");

        // What the test drove is all in the view it compares (so the comparison is not of two empty views).
        Assert.Equal(["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:03", "aa:bb:cc:dd:ee:04"], device["clients"]!.AsArray().Select(c => (string)c!["client_mac"]!));
        Assert.NotNull(device["clients"]![2]!["expires_at"]);
        Assert.Equal("fd00::1", (string?)device["gateways"]![0]!["gw_address_v6"]);
        Assert.Equal(0, (int?)device["gateways"]![1]!["desired_auth_mode"]);
        Assert.StartsWith("r-", (string?)device["firmware"]!["DISTRIB_RELEASE"]);
        Assert.Equal(["cancelled", "queued", "timed_out", "failed", "succeeded", "succeeded", "delivered", "delivered", "delivered", "delivered"],
            commands["items"]!.AsArray().Select(c => (string)c!["status"]!));

        await using (var node = await Node.StartAsync(db, args))
        {
            var after = await node.GetJson($"/api/v1/devices/{id}");
            SameJson(Without(device, MemoryOnly), Without(after, MemoryOnly), "the device view");
            SameJson(commands, await node.GetJson($"/api/v1/devices/{id}/commands"), "the command history");
            SameJson(row, (await DirectoryRow(node, id))!, "the directory row");
        }
    }

    /// <summary>
    /// Whether <paramref name="today"/> shows everything <paramref name="before"/> showed, the same: every field of an
    /// object (fields added since may be there too), arrays element by element, values equal.
    /// </summary>
    private static bool Shows(JsonNode? before, JsonNode? today) => (before, today) switch
    {
        (JsonObject b, JsonObject t) => b.All(p => t.ContainsKey(p.Key) && Shows(p.Value, t[p.Key])),
        (JsonArray b, JsonArray t) => b.Count == t.Count && b.Select((x, i) => Shows(x, t[i])).All(ok => ok),
        _ => JsonNode.DeepEquals(before, today),
    };

    /// <summary>
    /// The journal (35 events: connect, three auths, an auth-mode change, firmware, two kickoffs, get_status,
    /// disconnect) and the snapshot at event 31 exactly as release dca23f3 wrote them (old manifests cq, cc, ds:
    /// requests and answers as JSON strings), with that release's own view of the device and its commands.
    /// Today's node must show the same device.
    /// </summary>
    [Fact]
    public async Task A_journal_and_snapshot_written_by_the_previous_release_recover_the_same_device()
    {
        const string release = "dca23f3", id = "legacy-000000";
        var samples = Path.Combine(Unit.StoredFormatTests.SamplesDir, "legacy");
        var db = Node.NewDbPath();
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(db)!);
        File.Copy(Path.Combine(samples, $"journal-{release}.db"), db);
        var oldDevice = JsonNode.Parse(File.ReadAllText(Path.Combine(samples, $"device-{release}.json")))!;
        var oldCommands = JsonNode.Parse(File.ReadAllText(Path.Combine(samples, $"commands-{release}.json")))!;
        Assert.Equal(1, await Rows(db, "SELECT COUNT(*) FROM snapshot WHERE persistence_id = $p AND manifest = 'ds'", id));

        await using var node = await Node.StartAsync(db);
        var device = await node.GetJson($"/api/v1/devices/{id}");
        // Every field the previous release showed, except what is memory-only, is shown the same today.
        foreach (var (field, value) in oldDevice.AsObject())
        {
            if (MemoryOnly.Contains(field)) continue;
            Assert.True(Shows(value, device[field]), $"{field}: the previous release showed {value?.ToJsonString()}, today {device[field]?.ToJsonString()}");
        }
        var commands = await node.GetJson($"/api/v1/devices/{id}/commands");
        Assert.True(Shows(oldCommands, commands), $"the command history: the previous release showed {oldCommands.ToJsonString()}, today {commands.ToJsonString()}");
        var row = await Eventually.Value(() => DirectoryRow(node, id), _ => true, "the directory lists the device");
        Assert.False((bool)row["online"]!);
    }
}
