using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// The jobs and rollouts pages and a device's tags (docs/ADMIN_API.md "Fleet operations") in a real browser against a real
/// node. Command jobs here name only the fixture's offline page-NNN devices (each test its own), so that their commands,
/// queued until the job ends, never show in another test's command history; the rollout has routers of its own. Every
/// job a test starts is ended with it.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class JobsPagesTests(DashboardFixture fleet)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonArray Devices(int from, int count) =>
        new(Enumerable.Range(from, count).Select(i => (JsonNode?)JsonValue.Create($"page-{i:000}")).ToArray());

    private async Task<JsonNode> Post(string path, JsonObject body)
    {
        var response = await fleet.Http.PostAsync(path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private async Task<JsonNode> Get(string path) => JsonNode.Parse(await fleet.Http.GetStringAsync(path, Ct))!;

    /// <summary>A command job on offline devices: their commands wait in their queues, so it stays running.</summary>
    private Task<JsonNode> RunningJob(string name, int from, int count) => Post("/api/v1/jobs", new JsonObject
    {
        ["name"] = name, ["selection"] = new JsonObject { ["device_ids"] = Devices(from, count) },
        ["command"] = new JsonObject { ["type"] = "get_sys_info" }, ["rate_per_minute"] = 600,
    });

    /// <summary>Cancels a job or aborts a rollout the test left going (a 409 says it already ended).</summary>
    private async Task End(string path)
    {
        foreach (var action in new[] { "cancel", "abort" })
        {
            using var response = await fleet.Http.PostAsync($"{path}/{action}", null, Ct);
            if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict) return;
        }
    }

    [Fact]
    public async Task The_jobs_list_shows_a_job_created_through_the_API_and_its_page_lists_each_device()
    {
        var name = "list test " + Guid.NewGuid().ToString("N")[..6];
        var job = await RunningJob(name, 0, 2);
        var id = (string)job["job_id"]!;
        try
        {
            var page = await fleet.LoggedIn();
            await page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Jobs" }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Jobs", Level = 1 })).ToBeVisibleAsync();
            var row = page.Locator($"#jobs tr[data-job='{id}']");
            await Expect(row.GetByRole(AriaRole.Link)).ToHaveTextAsync(name);
            await Expect(row.Locator(".job-kind")).ToHaveTextAsync("command");
            await Expect(row.Locator(".job-status")).ToHaveTextAsync("running");
            await Expect(row.Locator(".progress-text")).ToHaveTextAsync("0/2");
            await Expect(row.GetByRole(AriaRole.Progressbar)).ToHaveAttributeAsync("max", "2");
            await DashboardFixture.Screenshot(page, "07-jobs-list.png", fullPage: false);

            await page.GetByLabel("Kind", new() { Exact = true }).SelectOptionAsync("rollout");
            await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
            await Expect(page.Locator($"#jobs tr[data-job='{id}']")).ToHaveCountAsync(0);
            await page.GetByLabel("Kind", new() { Exact = true }).SelectOptionAsync("command");
            await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();

            await page.Locator($"#jobs tr[data-job='{id}']").GetByRole(AriaRole.Link).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync(name);
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("running");
            await Expect(page.Locator("#job-devices tbody tr")).ToHaveCountAsync(2);
            await Expect(page.Locator("#job-devices tbody")).ToContainTextAsync("page-000");
            // The status filter: the devices' own status keeps as many rows as the API has in it, another none.
            var status = (string)(await Get($"/api/v1/jobs/{id}/devices"))["items"]![0]!["status"]!;
            var inStatus = (await Get($"/api/v1/jobs/{id}/devices?status={status}"))["items"]!.AsArray().Count;
            await page.GetByLabel("Status", new() { Exact = true }).SelectOptionAsync(status);
            await Expect(page.Locator("#job-devices tbody tr[data-device]")).ToHaveCountAsync(inStatus);
            await page.GetByLabel("Status", new() { Exact = true }).SelectOptionAsync("succeeded");
            await Expect(page.Locator("#job-devices tbody")).ToHaveTextAsync("No device in this status.");
            await LabelledControls(page);
        }
        finally
        {
            await End($"/api/v1/jobs/{id}");
        }
    }

    [Fact]
    public async Task An_operator_pauses_resumes_and_cancels_a_job_from_its_page()
    {
        var job = await RunningJob("pause test", 10, 3);
        var id = (string)job["job_id"]!;
        try
        {
            var page = await fleet.LoggedIn();
            await page.GotoAsync($"/#/jobs/{id}");
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("running");
            await Expect(page.Locator("#resume")).ToHaveCountAsync(0);

            await page.GetByRole(AriaRole.Button, new() { Name = "Pause" }).ClickAsync();
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("paused");
            await Expect(page.Locator("#job-message")).ToHaveTextAsync("Job paused.");
            await Expect(page.Locator("#pause")).ToHaveCountAsync(0);
            Assert.Equal("paused", (string?)(await Get($"/api/v1/jobs/{id}"))["status"]);
            // The focus stays in the controls, on the button that undoes it: the keyboard goes on from there.
            Assert.Equal("resume", await page.EvaluateAsync<string>("() => document.activeElement.id"));

            await page.Keyboard.PressAsync("Enter");
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("running");
            Assert.Equal("running", (string?)(await Get($"/api/v1/jobs/{id}"))["status"]);

            await page.GetByRole(AriaRole.Button, new() { Name = "Cancel job" }).ClickAsync();
            await Expect(page.Locator("#confirm-text")).ToContainTextAsync("Cancel this job?");
            await page.GetByRole(AriaRole.Button, new() { Name = "No" }).ClickAsync();
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("running");
            await page.GetByRole(AriaRole.Button, new() { Name = "Cancel job" }).ClickAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Yes, cancel job" }).ClickAsync();
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("cancelled");
            await Expect(page.Locator("#job-controls")).ToHaveTextAsync("This job has ended: nothing to change.");
            Assert.Equal("cancelled", (string?)(await Get($"/api/v1/jobs/{id}"))["status"]);
            await DashboardFixture.Screenshot(page, "08-job-cancelled.png");
        }
        finally
        {
            await End($"/api/v1/jobs/{id}");
        }
    }

    [Fact]
    public async Task A_rollout_page_shows_a_bar_per_stage_and_approve_only_while_it_awaits_approval()
    {
        // Four routers of this test's own whose pretend firmware really upgrades (flash, reboot, reconnect on the image's
        // release): a stage is done only once its devices finished, which offline devices never do.
        var prefix = "ro-" + Guid.NewGuid().ToString("N")[..6];
        var ws = new Uri($"ws://{fleet.BaseAddress.Authority}/ws/wifidogx");
        var routers = Enumerable.Range(0, 4).Select(i => new ReconnectingRouter(ws, $"{prefix}-{i}")
        {
            HeartbeatEvery = TimeSpan.FromSeconds(5),
            Firmware = new PretendFirmware("24.10.0") { FlashDelay = TimeSpan.FromMilliseconds(200), RebootDelay = TimeSpan.FromSeconds(1) },
        }.Start()).ToList();
        string? id = null;
        try
        {
            await Eventually.True(async () => (await Get($"/api/v1/devices?q={prefix}&online=true"))["items"]!.AsArray().Count == 4,
                "the routers online in the directory");
            var rollout = await Post("/api/v1/rollouts", new JsonObject
            {
                ["name"] = "rollout test", ["selection"] = new JsonObject { ["q"] = prefix },
                ["url"] = "https://fw.example.com/openwrt-24.10.1-sysupgrade.bin", ["release"] = "24.10.1", ["canary"] = 1,
                ["wave_factor"] = 2, ["abort"] = new JsonObject { ["failure_percent"] = 50, ["min_finished"] = 2 }, ["approval"] = true,
                ["windows"] = new JsonArray(new JsonObject { ["start"] = "00:00", ["end"] = "23:59" }, new JsonObject { ["start"] = "23:59", ["end"] = "00:00" }),
            });
            id = (string)rollout["job_id"]!;
            var stages = rollout["rollout"]!["stages"]!.AsArray();
            Assert.Equal([1, 2, 1], stages.Select(st => (int)st!["size"]!));

            var page = await fleet.LoggedIn();
            await page.GotoAsync("/#/jobs");
            await Expect(page.Locator($"#jobs tr[data-job='{id}'] .job-kind")).ToHaveTextAsync("rollout");
            await page.Locator($"#jobs tr[data-job='{id}']").GetByRole(AriaRole.Link).ClickAsync();
            await Expect(page).ToHaveURLAsync(new Regex($"#/rollouts/{id}$"));

            await Expect(page.Locator("#stages > li")).ToHaveCountAsync(3);
            foreach (var stage in stages)
            {
                var li = page.Locator($"#stages > li[data-stage='{(int)stage!["index"]!}']");
                await Expect(li.GetByRole(AriaRole.Progressbar)).ToHaveAttributeAsync("max", ((int)stage["size"]!).ToString());
                await Expect(li.Locator(".stage-count.upgraded dt")).ToHaveTextAsync("upgraded");
            }
            await Expect(page.Locator("#stages > li[data-stage='0'] h3")).ToContainTextAsync("Canary");
            await Expect(page.Locator("#stages > li[data-stage='1'] h3")).ToContainTextAsync("Wave 1");
            await Expect(page.Locator("#rollout-plan")).ToContainTextAsync("abort when more than 50 % of a stage's finished devices failed, once 2 of it finished");
            await Expect(page.Locator("#rollout-plan")).ToContainTextAsync("00:00–23:59, 23:59–00:00");

            // The canary upgrades and verifies (the page reads it again every few seconds); then the rollout awaits approval.
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("awaiting approval", new() { Timeout = 60_000 });
            await Expect(page.Locator("#stages > li[data-stage='0'] .stage-count.upgraded dd")).ToHaveTextAsync("1");
            await Expect(page.Locator("#stages > li[data-stage='0'] .progress-text")).ToHaveTextAsync("1/1");
            await Expect(page.Locator("#approve")).ToBeVisibleAsync();
            await Expect(page.Locator("#pause")).ToHaveCountAsync(0);
            await DashboardFixture.Screenshot(page, "09-rollout-awaiting-approval.png");

            await page.GetByRole(AriaRole.Button, new() { Name = "Approve the next stage" }).ClickAsync();
            await Expect(page.Locator("#job-status")).Not.ToHaveTextAsync("awaiting approval");
            await Expect(page.Locator("#stages > li[data-stage='1']")).ToHaveAttributeAsync("aria-current", "step");
            // Wave 1 upgrades too; before the last stage it awaits approval again, and the operator aborts instead.
            await Expect(page.Locator("#stages > li[data-stage='1'] .progress-text")).ToHaveTextAsync("2/2", new() { Timeout = 60_000 });
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("awaiting approval", new() { Timeout = 30_000 });

            await page.GetByLabel("Stage", new() { Exact = true }).SelectOptionAsync("1");
            await Expect(page.Locator("#job-devices tbody tr[data-device]")).ToHaveCountAsync(2);
            await page.GetByLabel("Status", new() { Exact = true }).SelectOptionAsync("upgraded");
            await Expect(page.Locator("#job-devices tbody tr[data-device]")).ToHaveCountAsync(2);

            await page.GetByRole(AriaRole.Button, new() { Name = "Abort rollout" }).ClickAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Yes, abort rollout" }).ClickAsync();
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("aborted");
            await Expect(page.Locator("#job-controls")).ToHaveTextAsync("This rollout has ended: nothing to change.");
            Assert.Equal("aborted", (string?)(await Get($"/api/v1/rollouts/{id}"))["status"]);
            Assert.Equal(3, routers.Count(r => r.Firmware!.Release == "24.10.1")); // the last stage never started
        }
        finally
        {
            if (id is not null) await End($"/api/v1/rollouts/{id}");
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_viewer_sees_no_job_buttons_nor_the_tags_form_and_the_API_refuses_it_anyway()
    {
        var job = await RunningJob("viewer test", 40, 1);
        var id = (string)job["job_id"]!;
        try
        {
            var page = await fleet.LoggedIn(TestKeys.Viewer);
            await page.GotoAsync($"/#/jobs/{id}");
            await Expect(page.Locator("#job-status")).ToHaveTextAsync("running");
            await Expect(page.Locator("#read-only")).ToBeVisibleAsync();
            await Expect(page.Locator("#job-controls")).ToHaveCountAsync(0);
            await Expect(page.Locator("main button:is(#pause, #resume, #cancel, #abort, #approve)")).ToHaveCountAsync(0);

            await page.GotoAsync("/#/devices/page-041");
            await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 2, Name = "Tags" })).ToBeVisibleAsync();
            await Expect(page.Locator("#tags-form")).ToHaveCountAsync(0);

            var status = await page.EvaluateAsync<int>($$"""
                async () => (await fetch('/api/v1/jobs/{{id}}/pause', { method: 'POST', credentials: 'same-origin',
                  headers: { 'X-Fleet-Dashboard': '1' } })).status
                """);
            Assert.Equal(403, status);
        }
        finally
        {
            await End($"/api/v1/jobs/{id}");
        }
    }

    [Fact]
    public async Task An_operator_sets_a_devices_tags_from_its_page()
    {
        const string device = "page-050";
        var page = await fleet.LoggedIn();
        await page.GotoAsync($"/#/devices/{device}");
        var tags = page.Locator("#device-tags");
        // The tag derived from its device_info (location ← location_id) is there from the start.
        await Expect(tags).ToContainTextAsync($"location=lobby-{device}");

        await page.GetByLabel("Operator tags").FillAsync("site=paris\ntz=Europe/Paris");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save tags" }).ClickAsync();
        await Expect(page.Locator("#tags-message")).ToHaveTextAsync("Tags saved.");
        await Expect(tags.Locator("li[data-tag='site']")).ToHaveTextAsync("site=paris");
        await Expect(tags.Locator("li[data-tag='tz']")).ToHaveTextAsync("tz=Europe/Paris");
        var view = await Get($"/api/v1/devices/{device}");
        Assert.Equal("paris", (string?)view["tags"]!["site"]);

        await page.GetByLabel("Operator tags").FillAsync("Not A Key=x");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save tags" }).ClickAsync();
        await Expect(page.Locator("#tags-message")).ToContainTextAsync("Not A Key");
        await page.GetByLabel("Operator tags").FillAsync("no equals sign");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save tags" }).ClickAsync();
        await Expect(page.Locator("#tags-message")).ToHaveTextAsync("'no equals sign' is not key=value");

        await page.GetByLabel("Operator tags").FillAsync("");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save tags" }).ClickAsync();
        await Expect(page.Locator("#tags-message")).ToHaveTextAsync("Operator tags cleared.");
        await Expect(tags.Locator("li[data-tag='site']")).ToHaveCountAsync(0);
        await LabelledControls(page);
    }

    [Fact]
    public async Task The_jobs_pages_read_on_a_phone_375_pixels_wide()
    {
        var job = await RunningJob("phone test", 60, 2);
        var id = (string)job["job_id"]!;
        try
        {
            var page = await fleet.LoggedIn(width: 375, height: 812);
            await page.GotoAsync("/#/jobs");
            await Expect(page.Locator($"#jobs tr[data-job='{id}']")).ToBeVisibleAsync();
            Assert.True(await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth") <= 375, "the jobs list is wider than the phone");
            await page.GotoAsync($"/#/jobs/{id}");
            await Expect(page.Locator("#job-devices tbody tr[data-device]")).ToHaveCountAsync(2);
            Assert.True(await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth") <= 375, "the job page is wider than the phone");
            await DashboardFixture.Screenshot(page, "10-phone-job-page.png");
        }
        finally
        {
            await End($"/api/v1/jobs/{id}");
        }
    }

    private static async Task LabelledControls(IPage page)
    {
        var unlabelled = await page.EvaluateAsync<string[]>("""
            () => [...document.querySelectorAll('input, select, textarea')]
              .filter(c => c.labels.length === 0 && !c.getAttribute('aria-label'))
              .map(c => c.id || c.name || c.outerHTML)
            """);
        Assert.Empty(unlabelled);
    }
}
