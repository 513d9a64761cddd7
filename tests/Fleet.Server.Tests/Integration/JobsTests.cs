using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>One node for the class's tests (jobs look at their work every 100 ms); each test has routers of its own.</summary>
public sealed class JobsNode : IAsyncLifetime
{
    public Node Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await Node.StartAsync(null, "--Fleet:Jobs:TickMilliseconds=100");

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>
/// Tags, selections, bulk commands and staged firmware rollouts against a real node and pretend routers (docs/ADMIN_API.md,
/// "Fleet operations"). A rollout's routers really "upgrade": they answer before they flash, drop, reboot and come back on
/// the image's release or, for a bad image, on the old one (<see cref="PretendFirmware"/>).
/// </summary>
public sealed class JobsTests(JobsNode fixture) : IClassFixture<JobsNode>
{
    private readonly Node _node = fixture.Node;
    private readonly string _run = Guid.NewGuid().ToString("N")[..6];

    private string Id(string name) => $"jt-{_run}-{name}";

    private ReconnectingRouter Router(string id, PretendFirmware? firmware = null) =>
        new ReconnectingRouter(_node.WebSocketUri(), id) { Firmware = firmware, HeartbeatEvery = TimeSpan.FromSeconds(5) }.Start();

    private async Task Online(params string[] ids)
    {
        foreach (var id in ids)
            await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{id}"))["online"] == true, $"{id} online");
    }

    private async Task Tag(string id, string json)
    {
        var (status, body, _) = await _node.Send(HttpMethod.Put, $"/api/v1/devices/{id}/tags", json);
        Assert.True(status == 200, $"tags: {status} {body?.ToJsonString()}");
    }

    /// <summary>Waits until the directory shows the tag on every one of the devices (the projection is a moment behind).</summary>
    private async Task Listed(string tag, int count) =>
        await Eventually.True(async () => (long?)(await _node.GetJson($"/api/v1/devices?tag={tag}&count=true"))["count"] == count,
            $"{count} devices tagged {tag} in the directory");

    private async Task<JsonNode> Final(string path) =>
        await Eventually.Value(async () => await _node.GetJson(path),
            j => (string?)j["status"] is "completed" or "cancelled" or "aborted", $"{path} finished", TimeSpan.FromSeconds(90));

    [Fact]
    public async Task Tags_are_set_derived_from_device_info_and_select_devices_in_the_directory()
    {
        var a = Id("tag-a");
        var b = Id("tag-b");
        await using var ra = Router(a);
        await using var rb = Router(b);
        await Online(a, b);
        var view = await _node.GetJson($"/api/v1/devices/{a}");
        // Derived by the default rule: location ← device_info.location_id.
        Assert.Equal($"lobby-{a}", (string?)view["tags"]!["location"]);

        await Tag(a, $$"""{"tags":{"site":"s-{{_run}}","tier":"gold"} }""");
        await Tag(b, $$"""{"tags":{"site":"s-{{_run}}"} }""");
        view = await _node.GetJson($"/api/v1/devices/{a}");
        Assert.Equal("gold", (string?)view["tags"]!["tier"]);
        Assert.Equal($"lobby-{a}", (string?)view["tags"]!["location"]);
        await Listed($"site=s-{_run}", 2);
        var gold = await _node.GetJson($"/api/v1/devices?tag=site=s-{_run}&tag=tier=gold&count=true");
        Assert.Equal(1, (long?)gold["count"]);
        Assert.Equal(a, (string?)gold["items"]![0]!["device_id"]);
        Assert.Equal("gold", (string?)gold["items"]![0]!["tags"]!["tier"]);

        // An operator's tag of the same key wins over the derived one; {} gives the derived one back.
        await Tag(b, """{"tags":{"location":"hq"}}""");
        Assert.Equal("hq", (string?)(await _node.GetJson($"/api/v1/devices/{b}"))["tags"]!["location"]);
        await Tag(b, """{"tags":{}}""");
        Assert.Equal($"lobby-{b}", (string?)(await _node.GetJson($"/api/v1/devices/{b}"))["tags"]!["location"]);

        var (status, body, type) = await _node.Send(HttpMethod.Put, $"/api/v1/devices/{a}/tags", """{"tags":{"Bad Key":"x"}}""");
        Assert.Equal(400, status);
        Assert.Equal("application/problem+json", type);
        Assert.Contains("Bad Key", (string?)body!["detail"]);
        (status, body, _) = await _node.Send(HttpMethod.Put, $"/api/v1/devices/{a}/tags", """{"tags":{"k":"a,b"}}""");
        Assert.Equal(400, status);
        (status, _, _) = await _node.Send(HttpMethod.Put, "/api/v1/devices/never-seen-xyz/tags", """{"tags":{}}""");
        Assert.Equal(404, status);
        (status, _, _) = await _node.Send(HttpMethod.Put, $"/api/v1/devices/{a}/tags", """{"tags":{}}""", TestKeys.Viewer);
        Assert.Equal(403, status);
        (status, body, _) = await _node.Send(HttpMethod.Get, "/api/v1/devices?tag=nokey");
        Assert.Equal(400, status);
    }

    [Fact]
    public async Task A_bulk_command_reaches_every_selected_device_once_and_records_each_result()
    {
        var site = "bulk-" + _run;
        var ids = Enumerable.Range(0, 5).Select(i => Id($"bulk-{i}")).ToArray();
        var other = Id("bulk-other");
        var routers = ids.Select(id => Router(id)).ToList();
        await using var outsider = Router(other);
        try
        {
            await Online([.. ids, other]);
            foreach (var id in ids) await Tag(id, $$"""{"tags":{"site":"{{site}}"} }""");
            await Listed($"site={site}", 5);

            var dry = $$"""{"selection":{"tags":{"site":"{{site}}"} },"command":{"type":"get_firmware_info"},"dry_run":true}""";
            var (status, body, _) = await _node.Post("/api/v1/jobs", dry);
            Assert.True(status == 200, $"dry run: {status} {body?.ToJsonString()}");
            Assert.Equal(5, (long?)body!["count"]);
            Assert.Equal(ids.Order(StringComparer.Ordinal), body["device_ids"]!.AsArray().Select(n => (string)n!));
            Assert.All(routers, r => Assert.Empty(r.Received));

            (status, body, _) = await _node.Post("/api/v1/jobs",
                $$"""{"name":"firmware of {{site}}","selection":{"tags":{"site":"{{site}}"} },"command":{"type":"get_firmware_info"},"rate_per_minute":6000}""");
            Assert.True(status == 201, $"create: {status} {body?.ToJsonString()}");
            var jobId = (string)body!["job_id"]!;
            Assert.Equal(5, (int?)body["total"]);
            var job = await Final($"/api/v1/jobs/{jobId}");
            Assert.Equal("completed", (string?)job["status"]);
            Assert.Equal(5, (int?)job["counts"]!["succeeded"]);

            var devices = await _node.GetJson($"/api/v1/jobs/{jobId}/devices?status=succeeded");
            Assert.Equal(5, devices["items"]!.AsArray().Count);
            foreach (var d in devices["items"]!.AsArray())
            {
                var router = routers.Single(r => r.DeviceId == (string?)d!["device_id"]);
                // One request each, the one the job names.
                Assert.Single(router.Received);
                Assert.Equal(1, router.Received[(string)d!["command_id"]!]);
            }
            Assert.Empty(outsider.Received);

            // Listed, newest first; finished jobs refuse controls.
            var list = await _node.GetJson("/api/v1/jobs?kind=command");
            Assert.Contains(list["items"]!.AsArray(), j => (string?)j!["job_id"] == jobId);
            (status, body, _) = await _node.Post($"/api/v1/jobs/{jobId}/pause", "");
            Assert.Equal(409, status);
            (status, _, _) = await _node.Send(HttpMethod.Get, "/api/v1/jobs/jnosuchjob");
            Assert.Equal(404, status);
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task Offline_devices_are_skipped_or_waited_for_as_the_job_says()
    {
        var up = Id("wo-up");
        var down = Id("wo-down");
        await using var rUp = Router(up);
        await using var rDown = Router(down);
        await Online(up, down);
        rDown.GoOffline();
        await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{down}"))["online"] == false, $"{down} offline");
        // wait_offline=false goes by the directory's word on who is online: wait until it has both.
        await Eventually.True(async () => (await _node.GetJson($"/api/v1/devices?q={up}&online=true"))["items"]!.AsArray().Count == 1
            && (await _node.GetJson($"/api/v1/devices?q={down}&online=false"))["items"]!.AsArray().Count == 1, "the directory up to date");
        var selection = $$"""{"device_ids":["{{up}}","{{down}}"]}""";

        var (status, body, _) = await _node.Post("/api/v1/jobs",
            $$"""{"selection":{{selection}},"command":{"type":"get_sys_info"},"wait_offline":false}""");
        Assert.True(status == 201, $"{status} {body?.ToJsonString()}");
        var skip = await Final($"/api/v1/jobs/{(string)body!["job_id"]!}");
        Assert.Equal(1, (int?)skip["counts"]!["succeeded"]);
        Assert.Equal(1, (int?)skip["counts"]!["offline"]);

        (status, body, _) = await _node.Post("/api/v1/jobs", $$"""{"selection":{{selection}},"command":{"type":"get_sys_info"} }""");
        var waiting = (string)body!["job_id"]!;
        await Eventually.True(async () => (int?)(await _node.GetJson($"/api/v1/jobs/{waiting}"))["counts"]!["queued"] == 1, "queued for the offline one");
        rDown.ComeBack();
        var done = await Final($"/api/v1/jobs/{waiting}");
        Assert.Equal(2, (int?)done["counts"]!["succeeded"]);
    }

    [Fact]
    public async Task A_paused_job_sends_nothing_until_resumed_and_a_cancelled_one_cancels_what_waits()
    {
        var a = Id("pc-a");
        await using var ra = Router(a);
        await Online(a);
        ra.GoOffline();
        await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{a}"))["online"] == false, $"{a} offline");
        var (status, body, _) = await _node.Post("/api/v1/jobs", $$"""{"selection":{"device_ids":["{{a}}"]},"command":{"type":"get_sys_info"},"rate_per_minute":1}""");
        var job = (string)body!["job_id"]!;
        (status, body, _) = await _node.Post($"/api/v1/jobs/{job}/pause", "");
        Assert.True(status == 200, $"{status} {body?.ToJsonString()}");
        Assert.Equal("paused", (string?)body!["status"]);
        (status, _, _) = await _node.Post($"/api/v1/jobs/{job}/pause", "");
        Assert.Equal(409, status);
        (status, body, _) = await _node.Post($"/api/v1/jobs/{job}/resume", "");
        Assert.Equal("running", (string?)body!["status"]);
        await Eventually.True(async () => (int?)(await _node.GetJson($"/api/v1/jobs/{job}"))["counts"]!["queued"] == 1, "queued on the device");
        (status, body, _) = await _node.Post($"/api/v1/jobs/{job}/cancel", "");
        Assert.Equal("cancelled", (string?)body!["status"]);
        await Eventually.True(async () => (int?)(await _node.GetJson($"/api/v1/jobs/{job}"))["counts"]!["cancelled"] == 1,
            "the queued command cancelled on the device");
        ra.ComeBack();
        await Online(a);
        Assert.Empty(ra.Received);
        (status, _, _) = await _node.Post($"/api/v1/jobs/{job}/abort", "");
        Assert.Equal(404, status); // abort is a rollout's
    }

    [Theory]
    [InlineData("""{"command":{"type":"get_sys_info"}}""", "selection is required")]
    [InlineData("""{"selection":{},"command":{"type":"get_sys_info"}}""", "the selection is empty")]
    [InlineData("""{"selection":{"all":true}}""", "command is required")]
    [InlineData("""{"selection":{"all":true},"command":{"type":"kickoff","client_mac":"zz"}}""", "client_")]
    [InlineData("""{"selection":{"all":true},"command":{"type":"get_sys_info"},"rate_per_minute":0}""", "rate_per_minute")]
    [InlineData("""{"selection":{"all":true},"command":{"type":"get_sys_info"},"colour":"red"}""", "'colour' is not a field")]
    [InlineData("""{"selection":{"tags":{"a":"b"},"sel":1},"command":{"type":"get_sys_info"}}""", "selection has no field 'sel'")]
    [InlineData("""{"selection":{"all":true},"command":{"type":"shell","command":"id"}}""", "privileged")]
    public async Task A_bad_job_gets_a_400_that_says_what_is_wrong(string json, string detail)
    {
        var (status, body, type) = await _node.Send(HttpMethod.Post, "/api/v1/jobs", json, TestKeys.Operator);
        Assert.True(status is 400 or 403, $"{status} {body?.ToJsonString()}");
        Assert.Equal("application/problem+json", type);
        Assert.Contains(detail, (string?)body!["detail"]);
    }

    [Theory]
    [InlineData("""{"selection":{"all":true},"release":"1"}""", "url is required")]
    [InlineData("""{"selection":{"all":true},"url":"ftp://x/y.bin","release":"1"}""", "url is required")]
    [InlineData("""{"selection":{"all":true},"url":"https://x/y.bin"}""", "release is required")]
    [InlineData("""{"selection":{"all":true},"url":"https://x/y.bin","release":"1","zone":"Mars/Olympus"}""", "zone 'Mars/Olympus'")]
    [InlineData("""{"selection":{"all":true},"url":"https://x/y.bin","release":"1","windows":[{"start":"25:00","end":"01:00"}]}""", "window")]
    [InlineData("""{"selection":{"all":true},"url":"https://x/y.bin","release":"1","canary":2,"canary_percent":5}""", "not both")]
    public async Task A_bad_rollout_gets_a_400_that_says_what_is_wrong(string json, string detail)
    {
        var (status, body, _) = await _node.Post("/api/v1/rollouts", json);
        Assert.True(status == 400, $"{status} {body?.ToJsonString()}");
        Assert.Contains(detail, (string?)body!["detail"]);
    }

    [Fact]
    public async Task A_rollout_or_job_whose_request_a_router_could_not_use_is_refused_at_creation()
    {
        var url = "https://fw.example/" + new string('a', 1100) + ".bin"; // a valid URL, too long for the firmware
        var (status, body, _) = await _node.Post("/api/v1/rollouts", $$"""{"selection":{"all":true},"url":"{{url}}","release":"1"}""");
        Assert.True(status == 400, $"{status} {body?.ToJsonString()}");
        Assert.Contains("url is 1123 characters", (string?)body!["detail"]);
        (status, body, _) = await _node.Post("/api/v1/jobs", $$"""{"selection":{"all":true},"command":{"type":"firmware_upgrade","url":"{{url}}"} }""");
        Assert.True(status == 400, $"{status} {body?.ToJsonString()}");
        Assert.Contains("url is 1123 characters", (string?)body!["detail"]);
    }

    [Fact]
    public async Task A_rollout_upgrades_in_stages_verifies_the_release_fails_a_bad_image_and_upgrades_an_offline_device_when_it_returns()
    {
        var site = "ro-" + _run;
        // device_id order is stage order: 0 the canary, then waves of 2, 4, …
        var good = Enumerable.Range(0, 6).Select(i => Id($"ro-{i}")).ToList();
        var bad = Id("ro-6-bad");
        var late = Id("ro-7-late");
        var already = Id("ro-8-already");
        var firmware = good.ToDictionary(id => id, _ => new PretendFirmware("24.10.0") { RebootDelay = TimeSpan.FromMilliseconds(500) });
        firmware[bad] = new PretendFirmware("24.10.0", PretendUpgrade.Bad) { RebootDelay = TimeSpan.FromMilliseconds(500) };
        firmware[late] = new PretendFirmware("24.10.0") { RebootDelay = TimeSpan.FromMilliseconds(500) };
        firmware[already] = new PretendFirmware("24.10.1");
        var routers = firmware.Select(kv => Router(kv.Key, kv.Value)).ToList();
        try
        {
            await Online([.. firmware.Keys]);
            foreach (var dev in firmware.Keys) await Tag(dev, $$"""{"tags":{"site":"{{site}}"} }""");
            await Listed($"site={site}", firmware.Count);
            var lateRouter = routers.Single(r => r.DeviceId == late);
            lateRouter.GoOffline();
            await Eventually.True(async () => (bool?)(await _node.GetJson($"/api/v1/devices/{late}"))["online"] == false, $"{late} offline");

            var (status, body, _) = await _node.Post("/api/v1/rollouts", $$"""
                {"name":"24.10.1 for {{site}}","selection":{"tags":{"site":"{{site}}"} },"url":"https://fw.example/24.10.1.bin",
                 "release":"24.10.1","canary":1,"wave_factor":2,"rate_per_minute":6000,"device_timeout_seconds":60,
                 "abort":{"failure_percent":60,"min_finished":2} }
                """);
            Assert.True(status == 201, $"create: {status} {body?.ToJsonString()}");
            var id = (string)body!["job_id"]!;
            Assert.Equal([1, 2, 4, 2], body["rollout"]!["stages"]!.AsArray().Select(s => (int)s!["size"]!));

            // The offline one waits; once the last stage is reached it comes back and is upgraded then.
            await Eventually.True(async () => (int?)(await _node.GetJson($"/api/v1/rollouts/{id}"))["rollout"]!["current_stage"] == 3,
                "the last stage started", TimeSpan.FromSeconds(60));
            await Eventually.True(async () => (await _node.GetJson($"/api/v1/rollouts/{id}/devices?status=waiting"))["items"]!.AsArray()
                .Any(d => (string?)d!["device_id"] == late && (string?)d["error"] == "offline"), "the offline device waits");
            lateRouter.ComeBack();

            var done = await Final($"/api/v1/rollouts/{id}");
            Assert.Equal("completed", (string?)done["status"]);
            var counts = done["counts"]!;
            Assert.Equal(7, (int?)counts["upgraded"]);
            Assert.Equal(1, (int?)counts["failed"]);
            Assert.Equal(1, (int?)counts["already"]);
            var failed = await _node.GetJson($"/api/v1/rollouts/{id}/devices?status=failed");
            var f = failed["items"]!.AsArray().Single()!;
            Assert.Equal(bad, (string?)f["device_id"]);
            Assert.Contains("came back on release 24.10.0", (string?)f["error"]);
            foreach (var r in routers)
            {
                // Nobody was sent the image twice; the one already on the release not at all.
                Assert.Equal(r.DeviceId == already ? 0 : 1, r.UpgradesReceived);
            }
            Assert.Equal("24.10.1", (string?)(await _node.GetJson($"/api/v1/devices/{late}"))["firmware"]!["DISTRIB_RELEASE"]);
            var list = await _node.GetJson("/api/v1/rollouts");
            Assert.Contains(list["items"]!.AsArray(), j => (string?)j!["job_id"] == id && (string?)j["kind"] == "rollout");
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_bad_image_aborts_the_rollout_after_its_canary_and_nobody_else_gets_it()
    {
        var ids = Enumerable.Range(0, 5).Select(i => Id($"ab-{i}")).ToList();
        var routers = ids.Select(id => Router(id, new PretendFirmware("24.10.0", PretendUpgrade.Bad) { RebootDelay = TimeSpan.FromMilliseconds(300) })).ToList();
        try
        {
            await Online([.. ids]);
            var selection = "[" + string.Join(",", ids.Select(i => $"\"{i}\"")) + "]";
            var (status, body, _) = await _node.Post("/api/v1/rollouts", $$"""
                {"selection":{"device_ids":{{selection}}},"url":"https://fw.example/24.10.1.bin","release":"24.10.1",
                 "canary":1,"wave_factor":4,"rate_per_minute":6000,"device_timeout_seconds":60,"abort":{"failure_percent":0,"min_finished":1} }
                """);
            Assert.True(status == 201, $"{status} {body?.ToJsonString()}");
            var id = (string)body!["job_id"]!;
            var done = await Final($"/api/v1/rollouts/{id}");
            Assert.Equal("aborted", (string?)done["status"]);
            Assert.Contains("stage 0", (string?)done["reason"]);
            Assert.Equal(1, (int?)done["counts"]!["failed"]);
            Assert.Equal(4, (int?)done["counts"]!["skipped"]);
            Assert.Equal(1, routers.Sum(r => r.UpgradesReceived));
            Assert.Equal(1, routers[0].UpgradesReceived);
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_rollout_with_approval_waits_between_stages_until_approved()
    {
        var ids = Enumerable.Range(0, 3).Select(i => Id($"ap-{i}")).ToList();
        var routers = ids.Select(id => Router(id, new PretendFirmware("24.10.0") { RebootDelay = TimeSpan.FromMilliseconds(300) })).ToList();
        try
        {
            await Online([.. ids]);
            await using var events = await SseStream.OpenAsync(_node.Http, "/api/v1/events?types=job.status");
            var selection = "[" + string.Join(",", ids.Select(i => $"\"{i}\"")) + "]";
            var (status, body, _) = await _node.Post("/api/v1/rollouts", $$"""
                {"selection":{"device_ids":{{selection}}},"url":"https://fw.example/24.10.1.bin","release":"24.10.1",
                 "canary":1,"wave_factor":2,"rate_per_minute":6000,"approval":true}
                """);
            var id = (string)body!["job_id"]!;
            (status, body, _) = await _node.Post($"/api/v1/rollouts/{id}/approve", "");
            Assert.Equal(409, status);
            // The stream says when it waits for an operator.
            var waits = await events.Next("job.status", also: d => (string?)d["job_id"] == id && (string?)d["status"] == "awaiting_approval",
                within: TimeSpan.FromSeconds(60));
            Assert.Contains("stage 0 is done", (string?)waits["reason"]);
            await Eventually.True(async () => (string?)(await _node.GetJson($"/api/v1/rollouts/{id}"))["status"] == "awaiting_approval",
                "awaiting approval after the canary", TimeSpan.FromSeconds(60));
            Assert.Equal(1, routers.Sum(r => r.UpgradesReceived));
            (status, body, _) = await _node.Send(HttpMethod.Post, $"/api/v1/rollouts/{id}/approve", "", TestKeys.Viewer);
            Assert.Equal(403, status);
            (status, body, _) = await _node.Post($"/api/v1/rollouts/{id}/approve", "");
            Assert.True(status == 200, $"{status} {body?.ToJsonString()}");
            var done = await Final($"/api/v1/rollouts/{id}");
            Assert.Equal("completed", (string?)done["status"]);
            Assert.Equal(3, (int?)done["counts"]!["upgraded"]);
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_bulk_kickoff_of_one_client_reaches_every_router_that_holds_it_with_that_routers_address()
    {
        var mac = $"02:00:{_run[..2]}:{_run[2..4]}:{_run[4..6]}:77";
        var ids = Enumerable.Range(0, 3).Select(i => Id($"kick-{i}")).ToList();
        var other = Id("kick-other");
        var routers = ids.Append(other).Select(id => Router(id)).ToList();
        try
        {
            await Online([.. ids, other]);
            for (var i = 0; i < ids.Count; i++)
            {
                var (st, b, _) = await _node.Post($"/api/v1/devices/{ids[i]}/commands?wait=10",
                    $$"""{"type":"auth","token":"t-{{i}}","client_ip":"192.168.1.{{50 + i}}","client_mac":"{{mac}}","gw_id":"gw-1"}""");
                Assert.True(st == 200, $"auth: {st} {b?.ToJsonString()}");
            }
            await Eventually.True(async () => (await _node.GetJson($"/api/v1/clients?mac={mac}"))["items"]!.AsArray().Count == 3,
                "the client plane knows the client on three routers");

            var (status, body, _) = await _node.Post("/api/v1/jobs",
                $$"""{"selection":{"client_mac":"{{mac}}"},"command":{"type":"kickoff","client_mac":"{{mac}}"},"dry_run":true}""");
            Assert.Equal(3, (long?)body!["count"]);
            (status, body, _) = await _node.Post("/api/v1/jobs",
                $$"""{"name":"end {{mac}}","selection":{"client_mac":"{{mac}}"},"command":{"type":"kickoff","client_mac":"{{mac}}"} }""");
            Assert.True(status == 201, $"{status} {body?.ToJsonString()}");
            var job = await Final($"/api/v1/jobs/{(string)body!["job_id"]!}");
            Assert.Equal(3, (int?)job["counts"]!["succeeded"]);
            for (var i = 0; i < ids.Count; i++)
            {
                var r = routers[i];
                var kick = Assert.Single(r.ReceivedTypes, t => t.Value == "kickoff");
                var command = await _node.GetJson($"/api/v1/devices/{ids[i]}/commands/{kick.Key}");
                Assert.Equal($"192.168.1.{50 + i}", (string?)command["request"]!["client_ip"]);
                Assert.Equal("gw-1", (string?)command["request"]!["gw_id"]);
                Assert.Equal(ids[i], (string?)command["request"]!["device_id"]);
            }
            Assert.Empty(routers[^1].Received);
            // The job's kickoff template (no client_ip, gw_id, device_id of its own) is in the journal every reader goes
            // through: the directory's projection still moves on past it.
            await Tag(ids[0], $$"""{"tags":{"after":"kick-{{_run}}"} }""");
            await Listed($"after=kick-{_run}", 1);
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }
}
