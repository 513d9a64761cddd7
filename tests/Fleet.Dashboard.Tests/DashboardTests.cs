using System.Text.Json.Nodes;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Fleet.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's chromium through Playwright) against a real node with simulated routers:
/// what an operator does, what a viewer may not, and what changes on the open pages without a reload.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class DashboardTests(DashboardFixture fleet)
{
    [Fact]
    public async Task A_wrong_key_shows_the_APIs_refusal_and_the_right_key_opens_the_device_list_with_counts()
    {
        var page = await fleet.NewPage();
        await Expect(page.Locator("#who")).ToBeHiddenAsync();
        await page.GetByLabel("API key").FillAsync("not-a-key-of-this-fleet");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page.Locator("#login-error")).ToHaveTextAsync("the bearer key is not one of this fleet's API keys");
        await DashboardFixture.Screenshot(page, "01-login-refused.png");

        await page.GetByLabel("API key").FillAsync(TestKeys.Operator);
        await page.GetByLabel("API key").PressAsync("Enter"); // the keyboard alone logs in
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Devices", Level = 1 })).ToBeVisibleAsync();
        await Expect(page.Locator("#who")).ToContainTextAsync("test-operator (operator)");
        await Expect(page.Locator("#devices tbody tr")).ToHaveCountAsync(100); // the first page of 111 devices (more after the rollout test)
        // Online: 5 routers, or 4 once the offline test has run; the page shows what the API says.
        var stats = JsonNode.Parse(await fleet.Http.GetStringAsync("/api/v1/stats", TestContext.Current.CancellationToken))!;
        Assert.True((int)stats["devices"]!["known"]! >= 111, stats.ToJsonString());
        await Expect(page.Locator("#count-known dd")).ToHaveTextAsync(stats["devices"]!["known"]!.ToString());
        await Expect(page.Locator("#count-online dd")).ToHaveTextAsync(stats["devices"]!["online"]!.ToString());
        await Expect(page.Locator("#count-seed dd")).ToHaveTextAsync(stats["devices"]!["by_protocol"]!["seed"]!.ToString());
        await Expect(page.Locator("#count-2025 dd")).ToHaveTextAsync(stats["devices"]!["by_protocol"]!["2025"]!.ToString());
        await LabelledControls(page);
        await DashboardFixture.Screenshot(page, "02-device-list.png", fullPage: false);
    }

    [Fact]
    public async Task Paging_walks_the_directory_100_devices_at_a_time()
    {
        var page = await fleet.LoggedIn();
        await page.GetByLabel("Search").FillAsync("page-");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        await Expect(page.Locator("#page-note")).ToHaveTextAsync("Page 1: devices 1–100");
        await Expect(page.Locator("#devices tbody tr")).ToHaveCountAsync(100);
        await Expect(page.Locator("#devices tbody tr").First.Locator("th")).ToHaveTextAsync("page-000");
        await Expect(page.Locator("#previous")).ToBeDisabledAsync();

        await page.Locator("#next").ClickAsync();
        await Expect(page.Locator("#page-note")).ToHaveTextAsync("Page 2: devices 101–105");
        await Expect(page.Locator("#devices tbody tr")).ToHaveCountAsync(5);
        await Expect(page.Locator("#next")).ToBeDisabledAsync();

        await page.Locator("#previous").ClickAsync();
        await Expect(page.Locator("#page-note")).ToHaveTextAsync("Page 1: devices 1–100");

        // The filters: offline devices of the seed dialect only (the pretend routers speak it), none online.
        await page.GetByLabel("Connection").SelectOptionAsync("true");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        await Expect(page.Locator("#devices tbody")).ToHaveTextAsync("No device matches.");
        await page.GetByLabel("Connection").SelectOptionAsync("false");
        await page.GetByLabel("Firmware dialect").SelectOptionAsync("seed");
        await page.GetByLabel("Gateway id").FillAsync("gw-1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        await Expect(page.Locator("#page-note")).ToHaveTextAsync("Page 1: devices 1–100");
        await Expect(page.Locator("#next")).ToBeEnabledAsync();
    }

    [Fact]
    public async Task Search_finds_a_device_whose_page_shows_its_gateways_and_changes_the_desired_auth_mode()
    {
        var page = await fleet.LoggedIn();
        await page.GetByLabel("Search").FillAsync("cafe");
        await page.GetByLabel("Search").PressAsync("Enter");
        await Expect(page.Locator("#devices tbody tr")).ToHaveCountAsync(1);
        await page.GetByRole(AriaRole.Link, new() { Name = "dash-cafe-2" }).ClickAsync();

        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("dash-cafe-2");
        await Expect(page.Locator("#device-online")).ToHaveTextAsync("online");
        var gateway = page.Locator("#gateways tr[data-gateway='gw-1']");
        await Expect(gateway.Locator(".auth-mode")).ToHaveTextAsync("1");
        await Expect(gateway.Locator(".desired-auth-mode")).ToHaveTextAsync("none");
        await Expect(page.Locator(".facts")).ToContainTextAsync("lobby-dash-cafe-2");

        await page.GetByLabel("Desired auth_mode for gw-1").FillAsync("x");
        await gateway.GetByRole(AriaRole.Button, new() { Name = "Set" }).ClickAsync();
        await Expect(page.Locator("#gateway-message")).ToHaveTextAsync("auth_mode must be an integer, got \"x\"");
        await page.GetByLabel("Desired auth_mode for gw-1").FillAsync("0");
        await gateway.GetByRole(AriaRole.Button, new() { Name = "Set" }).ClickAsync();
        await Expect(gateway.Locator(".desired-auth-mode")).ToHaveTextAsync("0");
        await LabelledControls(page);
    }

    [Fact]
    public async Task The_device_page_shows_the_system_figures_of_the_latest_heartbeat()
    {
        var page = await fleet.LoggedIn();
        await page.GotoAsync($"/#/devices/{DashboardFixture.Reporting}");
        var figures = page.Locator("section[aria-labelledby='h-system'] .facts");
        await Expect(figures).ToContainTextAsync("Uptime1 d 2 h");
        await Expect(figures).ToContainTextAsync("Free memory61440 kB");
        await Expect(figures).ToContainTextAsync("CPU temperature48 °C");
        await Expect(figures).ToContainTextAsync("Clients online12");
        await DashboardFixture.Screenshot(page, "03b-device-page-figures.png");
    }

    [Fact]
    public async Task A_kickoff_sent_from_the_form_reaches_succeeded_on_the_page_without_a_reload()
    {
        var page = await fleet.LoggedIn();
        await page.GotoAsync("/#/devices/dash-kiosk-1");
        await Expect(page.Locator("#device-online")).ToHaveTextAsync("online");
        await DashboardFixture.Live(page);
        await page.EvaluateAsync("() => { window.notReloaded = true; }");

        await page.GetByLabel("Type").SelectOptionAsync("kickoff");
        await page.GetByLabel("Client IP").FillAsync("192.168.1.23");
        await page.GetByLabel("Client MAC").FillAsync("aa:bb:cc:dd:ee:01");
        await page.GetByLabel("Gateway (required)").SelectOptionAsync("gw-1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator("#command-message")).ToContainTextAsync("kickoff c");

        var row = page.Locator("#commands tbody tr").First;
        await Expect(row.Locator("td").Nth(1)).ToHaveTextAsync("kickoff");
        await Expect(row.Locator(".cmd-status")).ToHaveTextAsync("succeeded");
        await Expect(row.Locator(".answer")).ToContainTextAsync("Client kicked off successfully");
        Assert.True(await page.EvaluateAsync<bool>("() => window.notReloaded === true"), "the page was reloaded");
        await DashboardFixture.Screenshot(page, "03-device-page.png");
    }

    [Fact]
    public async Task A_bad_MAC_shows_the_APIs_own_message_next_to_the_form()
    {
        var page = await fleet.LoggedIn();
        await page.GotoAsync("/#/devices/dash-lobby-3");
        await page.GetByLabel("Type").SelectOptionAsync("kickoff");
        await page.GetByLabel("Client IP").FillAsync("192.168.1.23");
        await page.GetByLabel("Client MAC").FillAsync("zz");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();

        var api = await fleet.Http.PostAsync("/api/v1/devices/dash-lobby-3/commands", new StringContent(
            """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"zz","gw_id":"gw-1"}""", System.Text.Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        Assert.Equal(400, (int)api.StatusCode);
        var detail = (string)JsonNode.Parse(await api.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["detail"]!;
        Assert.Contains("client_mac 'zz' is not a MAC address", detail);
        await Expect(page.Locator("#command-message")).ToHaveTextAsync(detail);

        // A required field left out: the API names it, the page says so.
        await page.GetByLabel("Type").SelectOptionAsync("tmp_pass");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Expect(page.Locator("#command-message")).ToHaveTextAsync("client_mac is required for tmp_pass");
    }

    [Fact]
    public async Task A_queued_command_of_an_offline_device_is_cancelled_from_the_history()
    {
        var page = await fleet.LoggedIn();
        await page.GotoAsync($"/#/devices/{DashboardFixture.Parked}");
        await Expect(page.Locator("#device-online")).ToHaveTextAsync("offline");
        await page.GetByLabel("Type").SelectOptionAsync("get_firmware_info");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        var row = page.Locator("#commands tbody tr").First;
        await Expect(row.Locator(".cmd-status")).ToHaveTextAsync("queued");

        await row.GetByRole(AriaRole.Button, new() { NameRegex = new System.Text.RegularExpressions.Regex("^Cancel get_firmware_info") }).ClickAsync();
        await Expect(row.Locator(".cmd-status")).ToHaveTextAsync("cancelled");
        await Expect(page.Locator("#history-message")).ToContainTextAsync("cancelled");
        await Expect(row.Locator("button.cancel")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_router_that_goes_away_turns_offline_on_the_open_list_and_device_page()
    {
        var list = await fleet.LoggedIn();
        await list.GetByLabel("Search").FillAsync(DashboardFixture.Leaving);
        await list.GetByLabel("Search").PressAsync("Enter");
        var cell = list.Locator($"#devices tr[data-device='{DashboardFixture.Leaving}'] .online");
        await Expect(cell).ToHaveTextAsync("online");
        await DashboardFixture.Live(list);

        var device = await list.Context.NewPageAsync();
        await device.GotoAsync($"/#/devices/{DashboardFixture.Leaving}");
        await Expect(device.Locator("#device-online")).ToHaveTextAsync("online");
        await DashboardFixture.Live(device);
        await list.EvaluateAsync("() => { window.notReloaded = true; }");

        await fleet.DisconnectLeavingRouter();
        await Expect(device.Locator("#device-online")).ToHaveTextAsync("offline");
        await Expect(cell).ToHaveTextAsync("offline");
        Assert.True(await list.EvaluateAsync<bool>("() => window.notReloaded === true"), "the list was reloaded");
    }

    [Fact]
    public async Task A_command_that_times_out_shows_on_the_open_page_and_opens_an_alert_in_its_banner()
    {
        var page = await fleet.LoggedIn();
        await page.GotoAsync($"/#/devices/{DashboardFixture.Reporting}");
        await Expect(page.Locator("#device-online")).ToHaveTextAsync("online");
        await DashboardFixture.Live(page);

        // Sent by another client (a script, fleetctl): the page learns of it from the event stream. This router
        // never answers get_status, so it times out after 1 s, and the command_failed rule opens an alert.
        var sent = await fleet.Http.PostAsync($"/api/v1/devices/{DashboardFixture.Reporting}/commands?timeout=1",
            new StringContent("""{"type":"get_status"}""", System.Text.Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.Accepted, sent.StatusCode);
        var row = page.Locator("#commands tbody tr").First;
        await Expect(row.Locator("td").Nth(1)).ToHaveTextAsync("get_status");
        await Expect(row.Locator(".cmd-status")).ToHaveTextAsync("timed_out");
        var banner = page.GetByRole(AriaRole.Region, new() { Name = "Open alerts" });
        await Expect(banner).ToContainTextAsync("command_failed");
        await Expect(banner.GetByRole(AriaRole.Link, new() { Name = DashboardFixture.Reporting })).ToBeVisibleAsync();
        await DashboardFixture.Screenshot(page, "06-alert-banner.png", fullPage: false);
    }

    [Fact]
    public async Task A_viewer_sees_no_send_cancel_or_auth_mode_controls_and_the_API_refuses_it_anyway()
    {
        var page = await fleet.LoggedIn(TestKeys.Viewer);
        await page.GotoAsync($"/#/devices/{DashboardFixture.Parked}");
        await Expect(page.Locator("#read-only")).ToBeVisibleAsync();
        await Expect(page.Locator("#command-form")).ToHaveCountAsync(0);
        await Expect(page.Locator("#gateways form")).ToHaveCountAsync(0);
        await Expect(page.Locator("button.cancel")).ToHaveCountAsync(0);

        // What a hand-made request from the viewer's session gets: the API's 403.
        var status = await page.EvaluateAsync<int>("""
            async () => (await fetch('/api/v1/devices/dash-parked-5/commands', { method: 'POST', credentials: 'same-origin',
              headers: { 'Content-Type': 'application/json', 'X-Fleet-Dashboard': '1' }, body: '{"type":"get_firmware_info"}' })).status
            """);
        Assert.Equal(403, status);
    }

    [Fact]
    public async Task The_pages_read_on_a_phone_375_pixels_wide()
    {
        var page = await fleet.LoggedIn(width: 375, height: 812);
        await Expect(page.Locator("#devices tbody tr")).ToHaveCountAsync(100);
        // Only the tables scroll sideways (inside their own region); the page itself does not.
        Assert.True(await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth") <= 375, "the list is wider than the phone");
        await DashboardFixture.Screenshot(page, "04-phone-device-list.png", fullPage: false);

        await page.GotoAsync("/#/devices/dash-kiosk-1");
        await Expect(page.Locator("#device-online")).ToHaveTextAsync("online");
        await DashboardFixture.Screenshot(page, "05-phone-device-page.png");
        Assert.True(await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth") <= 375, "the device page is wider than the phone");
        await DashboardFixture.Screenshot(page, "05-phone-device-page.png");
    }

    [Fact]
    public async Task The_keyboard_alone_finds_a_device_opens_it_and_sends_a_command_with_a_visible_focus()
    {
        var page = await fleet.LoggedIn();
        await page.Keyboard.PressAsync("Tab"); // from the page's heading into the filters
        await TabTo(page, "document.activeElement.id === 'q'");
        await page.Keyboard.TypeAsync("lobby-3");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#devices tbody tr")).ToHaveCountAsync(1);
        await TabTo(page, "document.activeElement.textContent === 'dash-lobby-3'");
        Assert.NotEqual("none", await page.EvaluateAsync<string>("() => getComputedStyle(document.activeElement).outlineStyle"));
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("dash-lobby-3");
        await DashboardFixture.Live(page);

        await TabTo(page, "document.activeElement.id === 'cmd-client_ip'"); // kickoff is the first type
        await page.Keyboard.TypeAsync("192.168.1.30");
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.TypeAsync("aa:bb:cc:dd:ee:30");
        await TabTo(page, "document.activeElement.id === 'send'");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#commands tbody tr").First.Locator(".cmd-status")).ToHaveTextAsync("succeeded");
    }

    /// <summary>Presses Tab until the condition holds (at most 40 times: the page's whole tab order).</summary>
    private static async Task TabTo(IPage page, string condition)
    {
        for (var i = 0; i < 40; i++)
        {
            if (await page.EvaluateAsync<bool>($"() => {condition}")) return;
            await page.Keyboard.PressAsync("Tab");
        }
        Assert.Fail($"Tab never reached: {condition}");
    }

    /// <summary>Every form control on the page has a label (or an aria-label) a screen reader reads out.</summary>
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
