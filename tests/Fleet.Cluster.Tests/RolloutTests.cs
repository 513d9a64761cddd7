using System.Text.Json.Nodes;
using Fleet.Cluster.Tests.Support;

namespace Fleet.Cluster.Tests;

/// <summary>
/// A staged firmware rollout over 300 routers on a 3-node cluster (PostgreSQL, nginx): a canary of 3, then waves ×4. Some
/// routers' images are bad (they come back on the old release: failed, not upgraded), some are offline until the rollout is
/// well under way (upgraded when they return), and the oldest node — home of the job keeper, maybe of the rollout itself —
/// is SIGKILLed mid-rollout. No router is sent the image twice.
/// </summary>
public sealed class RolloutTests(ITestOutputHelper output) : ClusterTestBase(output)
{
    private const int RouterCount = 300;

    private static bool Bad(int i) => i % 25 == 13;
    private static bool Late(int i) => i % 50 == 20;

    [Fact(Timeout = 420_000)]
    public async Task A_rollout_over_300_routers_survives_a_node_kill_verifies_every_release_and_upgrades_nobody_twice()
    {
        var nodes = Cluster.Nodes;
        var firmware = Enumerable.Range(0, RouterCount).Select(i => new PretendFirmware("24.10.0", Bad(i) ? PretendUpgrade.Bad : PretendUpgrade.Good)
        {
            RebootDelay = TimeSpan.FromSeconds(1),
        }).ToList();
        Routers.AddRange(Enumerable.Range(0, RouterCount).Select(i => new ReconnectingRouter(Cluster.Nginx.WebSocketUri, Scenario.DeviceId(i))
        {
            Firmware = firmware[i], HeartbeatEvery = TimeSpan.FromSeconds(10),
        }.Start()));
        await Eventually.True(() => Routers.All(r => r.Replies > 0), $"{RouterCount} routers connected", TimeSpan.FromSeconds(90));
        await Eventually.True(async () => (long?)(await nodes[1].GetJson("/api/v1/devices?online=true&count=true&limit=1"))["count"] == RouterCount,
            "the directory lists every router online", TimeSpan.FromSeconds(60));
        var late = Enumerable.Range(0, RouterCount).Where(Late).Select(i => Routers[i]).ToList();
        foreach (var r in late) r.GoOffline();
        await Eventually.True(async () => (long?)(await nodes[1].GetJson("/api/v1/devices?online=false&count=true&limit=1"))["count"] == late.Count,
            "the late ones offline", TimeSpan.FromSeconds(30));

        var dry = await nodes[2].Send(HttpMethod.Post, "/api/v1/rollouts",
            """{"selection":{"all":true},"url":"https://fw.example/24.10.1.bin","release":"24.10.1","dry_run":true}""");
        Assert.Equal(RouterCount, (long?)dry.Body!["count"]);
        Assert.All(Routers, r => Assert.Equal(0, r.UpgradesReceived));

        var (status, body) = await nodes[1].Send(HttpMethod.Post, "/api/v1/rollouts", """
            {"name":"24.10.1 everywhere","selection":{"all":true},"url":"https://fw.example/24.10.1.bin","release":"24.10.1",
             "canary":3,"wave_factor":4,"rate_per_minute":6000,"device_timeout_seconds":300,
             "abort":{"failure_percent":25,"min_finished":3}}
            """);
        Assert.True(status == 201, $"create: {status} {body?.ToJsonString()}");
        var id = (string)body!["job_id"]!;
        Assert.Equal([3, 12, 48, 192, 45], body["rollout"]!["stages"]!.AsArray().Select(s => (int)s!["size"]!));
        Log($"rollout {id} created: stages 3, 12, 48, 192, 45");

        // Mid-rollout: once the third stage runs, the oldest node is killed.
        await Eventually.True(async () => (int?)(await nodes[1].GetJson($"/api/v1/rollouts/{id}"))["rollout"]!["current_stage"] >= 2,
            "stage 2 started", TimeSpan.FromSeconds(120));
        var victim = nodes[0];
        var survivors = nodes.Skip(1).ToList();
        var before = await survivors[0].GetJson($"/api/v1/rollouts/{id}");
        Log($"killing {victim.Name} (SIGKILL) at {before["counts"]!.ToJsonString()}");
        await victim.Kill();

        // The late routers come back once the fourth stage runs: upgraded then.
        await Eventually.True(async () =>
        {
            try { return (int?)(await survivors[0].GetJson($"/api/v1/rollouts/{id}"))["rollout"]!["current_stage"] >= 3; }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException) { return false; }
        }, "stage 3 started after the kill", TimeSpan.FromSeconds(180));
        foreach (var r in late) r.ComeBack();
        Log("late routers back");

        var done = await Eventually.Value(async () =>
        {
            try { return await survivors[1].GetJson($"/api/v1/rollouts/{id}"); }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException) { return null; }
        }, j => (string?)j["status"] is "completed" or "aborted", "the rollout finished", TimeSpan.FromSeconds(200));
        Log($"finished: {done["status"]} {done["counts"]!.ToJsonString()}");
        Assert.Equal("completed", (string?)done["status"]);
        var bad = Enumerable.Range(0, RouterCount).Count(Bad);
        Assert.Equal(RouterCount - bad, (int?)done["counts"]!["upgraded"]);
        Assert.Equal(bad, (int?)done["counts"]!["failed"]);

        var failed = await survivors[0].GetJson($"/api/v1/rollouts/{id}/devices?status=failed&limit=500");
        Assert.Equal(Enumerable.Range(0, RouterCount).Where(Bad).Select(Scenario.DeviceId),
            failed["items"]!.AsArray().Select(d => (string)d!["device_id"]!).Order(StringComparer.Ordinal));
        Assert.All(failed["items"]!.AsArray(), d => Assert.Contains("came back on release 24.10.0", (string?)d!["error"]));
        foreach (var r in late)
            Assert.Equal("24.10.1", (string?)(await survivors[0].GetJson($"/api/v1/devices/{r.DeviceId}"))["firmware"]!["DISTRIB_RELEASE"]);
        // The invariant: through the kill, the re-homed shards and the rollout's own recovery, each router got the image once.
        var twice = Routers.Where(r => r.UpgradesReceived != 1).Select(r => $"{r.DeviceId}: {r.UpgradesReceived}").ToList();
        Assert.True(twice.Count == 0, "routers not sent the image exactly once: " + string.Join(", ", twice));
        NoSerializationWarnings();
    }
}
