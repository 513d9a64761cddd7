using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Fleet.Dashboard.Tests;

/// <summary>The tests that share one node, its routers and one browser.</summary>
[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFixture>
{
    public const string Name = "dashboard";
}

/// <summary>
/// One real node in this process (Kestrel on a loopback port, SQLite in a temp file, the test keys), simulated routers
/// connected to it, and Debian's chromium driven by Playwright. Shared by the tests of the collection; each test opens its own
/// browser context (no cookie carries over).
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>Routers that stay connected and answer every request (kickoff with success).</summary>
    public static readonly string[] Answering = ["dash-kiosk-1", "dash-cafe-2", "dash-lobby-3"];
    /// <summary>A router the offline test disconnects.</summary>
    public const string Leaving = "dash-leaving-4";
    /// <summary>A device that connected once and is offline: its commands stay queued.</summary>
    public const string Parked = "dash-parked-5";
    /// <summary>A router of 2025-era firmware whose heartbeat carries system figures.</summary>
    public const string Reporting = "dash-figures-6";
    /// <summary>More devices than a page holds (100): page-000 … page-104, offline.</summary>
    public const int PagingDevices = 105;

    public WebApplication App { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    private IPlaywright _playwright = null!;
    private readonly List<ReconnectingRouter> _routers = [];
    private ReconnectingRouter _leaving = null!;
    private PretendRouter? _reporting;

    public async ValueTask InitializeAsync()
    {
        (App, BaseAddress) = await InProcessNode.StartAsync();
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) }.Authorize(TestKeys.Operator);

        var ws = new Uri($"ws://{BaseAddress.Authority}/ws/wifidogx");
        foreach (var id in Answering) _routers.Add(new ReconnectingRouter(ws, id) { HeartbeatEvery = TimeSpan.FromSeconds(5) }.Start());
        _leaving = new ReconnectingRouter(ws, Leaving) { HeartbeatEvery = TimeSpan.FromSeconds(5) }.Start();
        _routers.Add(_leaving);
        await using (await PretendRouter.ConnectAsync(ws, Parked)) { }
        _reporting = await PretendRouter.ConnectAsync(ws, Reporting);
        var heartbeat = JsonNode.Parse(_reporting.HeartbeatJson())!.AsObject();
        heartbeat["sys_info"] = new JsonObject
        {
            ["sys_uptime"] = 93784, ["sys_memfree"] = 61440, ["sys_load"] = 0.42, ["cpu_usage"] = 7.5, ["cpu_temp"] = 48,
            ["nf_conntrack_count"] = 312, ["wifidog_uptime"] = 7200, ["online_clients"] = 12, ["offline_clients"] = 3,
        };
        await _reporting.Send(heartbeat.ToJsonString());
        await _reporting.ReceiveType("heartbeat");
        for (var batch = 0; batch < PagingDevices; batch += 15)
            await Task.WhenAll(Enumerable.Range(batch, Math.Min(15, PagingDevices - batch)).Select(async i =>
            {
                await using var r = await PretendRouter.ConnectAsync(ws, $"page-{i:000}");
            }));
        // The directory follows the journal about a second behind.
        await Eventually.True(async () => await Count("dash-", online: true) == Answering.Length + 2
                                          && await Count("dash-parked", online: false) == 1
                                          && await Count("page-", online: false) == PagingDevices,
            "the routers in the directory", TimeSpan.FromSeconds(60));

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });
        Assertions.SetDefaultExpectTimeout(20_000);
    }

    private async Task<int> Count(string q, bool online)
    {
        var page = await Http.GetFromJsonAsync<JsonObject>($"/api/v1/devices?q={q}&online={(online ? "true" : "false")}&limit=1000");
        return page!["items"]!.AsArray().Count;
    }

    /// <summary>The leaving router stops and drops its socket, as a router that loses power.</summary>
    public async Task DisconnectLeavingRouter()
    {
        _routers.Remove(_leaving);
        await _leaving.DisposeAsync();
    }

    /// <summary>A fresh browser context (no cookies) and page at the dashboard, optionally phone-sized.</summary>
    public async Task<IPage> NewPage(int width = 1280, int height = 900)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = BaseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            Locale = "en-GB",
            TimezoneId = "UTC",
        });
        var page = await context.NewPageAsync();
        await page.GotoAsync("/");
        return page;
    }

    /// <summary>Logs in through the form and waits for the device list.</summary>
    public async Task<IPage> LoggedIn(string key = TestKeys.Operator, int width = 1280, int height = 900)
    {
        var page = await NewPage(width, height);
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Devices", Level = 1 })).ToBeVisibleAsync();
        return page;
    }

    /// <summary>Waits until the page's event stream is open: what happens from then on reaches the page live.</summary>
    public static Task Live(IPage page) => Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "on");

    /// <summary>Where screenshots go: $FLEET_TEST_RESULTS/screenshots (tests/run.sh), else beside the test binaries.</summary>
    public static string ScreenshotPath(string name)
    {
        var root = Environment.GetEnvironmentVariable("FLEET_TEST_RESULTS") is { Length: > 0 } results
            ? results : AppContext.BaseDirectory;
        var dir = Path.Combine(root, "screenshots");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    /// <param name="fullPage">The whole page; else what the window shows (a list of 100 rows is too long to read).</param>
    public static Task Screenshot(IPage page, string name, bool fullPage = true) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath(name), FullPage = fullPage });

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
        foreach (var r in _routers) await r.DisposeAsync();
        if (_reporting is not null) await _reporting.DisposeAsync();
        Http?.Dispose();
        if (App is not null)
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }
}
