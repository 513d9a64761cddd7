using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>One node for the class's tests: each test has routers of its own.</summary>
public sealed class PretendFirmwareNode : IAsyncLifetime
{
    public Node Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await Node.StartAsync();

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>
/// The pretend router's firmware model (tests/Shared/PretendRouter.cs, <see cref="PretendFirmware"/>) against a real
/// node: an accepted firmware_upgrade is answered first, then the router drops, reboots and reconnects running the
/// image's release (good) or its old one (bad); a refusal flashes nothing; a bricked one stays away; a router kept
/// offline by the test takes its queued command when it comes back.
/// </summary>
public sealed class PretendFirmwareTests(PretendFirmwareNode fixture) : IClassFixture<PretendFirmwareNode>
{
    private readonly Node _node = fixture.Node;

    private static string Id() => "fw-" + Guid.NewGuid().ToString("N")[..10];

    private ReconnectingRouter Router(string id, PretendFirmware firmware) =>
        new ReconnectingRouter(_node.WebSocketUri(), id) { Firmware = firmware, HeartbeatEvery = TimeSpan.FromSeconds(5) }.Start();

    private Task<JsonNode> Online(string id) =>
        Eventually.Value(async () => await _node.GetJson($"/api/v1/devices/{id}"), d => (bool?)d["online"] == true, $"{id} online");

    /// <summary>Sends a command and waits up to 10 s for its final status.</summary>
    private async Task<JsonNode> Command(string id, string json)
    {
        var (status, body, _) = await _node.Post($"/api/v1/devices/{id}/commands?wait=10", json);
        Assert.True(status == 200, $"submit: {status} {body?.ToJsonString()}");
        return body!;
    }

    private async Task<string?> ReportedRelease(string id)
    {
        var info = await Command(id, """{"type":"get_firmware_info"}""");
        Assert.Equal("succeeded", (string?)info["status"]);
        return (string?)info["response"]!["data"]!["DISTRIB_RELEASE"];
    }

    [Theory]
    [InlineData(PretendUpgrade.Good, "24.10.1")]
    [InlineData(PretendUpgrade.Bad, "24.10.0")]
    public async Task An_accepted_upgrade_is_answered_then_the_router_reboots_and_reports_the_release_it_runs(PretendUpgrade outcome,
        string after)
    {
        var id = Id();
        var firmware = new PretendFirmware("24.10.0", outcome);
        await using var router = Router(id, firmware);
        var before = await Online(id);
        Assert.Equal("24.10.0", await ReportedRelease(id));
        await using var events = await SseStream.OpenAsync(_node.Http, $"/api/v1/events?device_id={id}&types=device.online,device.offline");

        var upgrade = await Command(id, """{"type":"firmware_upgrade","url":"https://fw.example/24.10.1.bin"}""");
        // The firmware answers before it flashes: the command succeeded while the router still runs the old image.
        Assert.Equal("succeeded", (string?)upgrade["status"]);
        Assert.Equal("success", (string?)upgrade["response"]!["status"]);
        Assert.Equal(1, router.UpgradesReceived);

        await events.Next("device.offline", id);
        await events.Next("device.online", id);
        var back = await Online(id);
        Assert.NotEqual((string?)before["connected_at"], (string?)back["connected_at"]);
        Assert.Equal(2, router.Connections);

        Assert.Equal(after, await ReportedRelease(id));
        var view = await Eventually.Value(async () => await _node.GetJson($"/api/v1/devices/{id}"),
            d => (string?)d["firmware"]?["DISTRIB_RELEASE"] == after, "the view holds the reported release");
        Assert.Equal(PretendFirmware.DefaultRevision(after), (string?)view["firmware"]!["DISTRIB_REVISION"]);
        Assert.Equal(1, firmware.Flashes);
        Assert.Equal(1, router.UpgradesReceived);
        Assert.Equal(PretendFirmwareState.Running, firmware.State);
    }

    [Fact]
    public async Task A_refused_upgrade_fails_and_flashes_nothing()
    {
        var id = Id();
        var firmware = new PretendFirmware("24.10.0", PretendUpgrade.Refuse);
        await using var router = Router(id, firmware);
        await Online(id);

        var upgrade = await Command(id, """{"type":"firmware_upgrade","url":"https://fw.example/24.10.1.bin"}""");
        Assert.Equal("failed", (string?)upgrade["status"]);
        Assert.Contains(PretendFirmware.UpgradeFailed, upgrade["error"]?.ToJsonString() ?? "");
        Assert.Equal("24.10.0", await ReportedRelease(id));
        Assert.Equal(0, firmware.Flashes);
        Assert.Equal(PretendFirmwareState.Running, firmware.State);
        Assert.Equal(1, router.UpgradesReceived);
        Assert.Equal(1, router.Connections);
    }

    [Fact]
    public async Task A_bricked_router_goes_away_and_stays_away()
    {
        var id = Id();
        var firmware = new PretendFirmware("24.10.0", PretendUpgrade.Never) { RebootDelay = TimeSpan.FromMilliseconds(500) };
        await using var router = Router(id, firmware);
        await Online(id);
        await using var events = await SseStream.OpenAsync(_node.Http, $"/api/v1/events?device_id={id}&types=device.online,device.offline");

        var upgrade = await Command(id, """{"type":"firmware_upgrade","url":"https://fw.example/openwrt-24.10.1-ramips-mt7621-sysupgrade.bin"}""");
        Assert.Equal("succeeded", (string?)upgrade["status"]);
        await events.Next("device.offline", id);
        // Past the time a good image would have been back: dead, and it never opened another socket.
        await Eventually.True(() => firmware.State == PretendFirmwareState.Dead, "the router is dead");
        Assert.True(router.Offline);
        Assert.Equal(1, router.Connections);
        Assert.False((bool?)(await _node.GetJson($"/api/v1/devices/{id}"))["online"]);
        Assert.Equal(["https://fw.example/openwrt-24.10.1-ramips-mt7621-sysupgrade.bin"], firmware.FlashedUrls);
    }

    [Fact]
    public async Task A_router_kept_offline_takes_its_queued_upgrade_when_it_comes_back()
    {
        var id = Id();
        var firmware = new PretendFirmware("24.10.0") { ImageRelease = "24.10.2", RebootDelay = TimeSpan.FromMilliseconds(500) };
        await using var router = Router(id, firmware);
        await Online(id);
        router.GoOffline();
        await Eventually.Value(async () => await _node.GetJson($"/api/v1/devices/{id}"), d => (bool?)d["online"] == false, $"{id} offline");

        var (status, queued, _) = await _node.Post($"/api/v1/devices/{id}/commands",
            """{"type":"firmware_upgrade","url":"https://fw.example/latest.bin"}""");
        Assert.Equal(202, status);
        Assert.Equal("queued", (string?)queued!["status"]);
        Assert.Equal(0, router.UpgradesReceived);

        router.ComeBack();
        var commandId = (string)queued["command_id"]!;
        await Eventually.Value(async () => await _node.GetJson($"/api/v1/devices/{id}/commands/{commandId}"),
            c => (string?)c["status"] == "succeeded", "the queued upgrade succeeded");
        // Back, then down for the flash and the reboot, then back on the release the test gave the image.
        await Eventually.True(() => router.Connections == 3 && router.Connected, "rebooted and reconnected");
        await Online(id);
        Assert.Equal("24.10.2", await ReportedRelease(id));
        Assert.Equal(1, router.UpgradesReceived);
    }

    [Theory]
    [InlineData("https://fw.example/24.10.1.bin", "24.10.1")]
    [InlineData("https://fw.example/images/openwrt-24.10.1-ramips-mt7621-xiaomi-sysupgrade.bin?sig=1", "24.10.1")]
    [InlineData("http://fw.example/chawrt-25.12.0-rc2.img.gz", "25.12.0-rc2")]
    [InlineData("https://fw.example/nightly.bin", "nightly")]
    public void The_image_release_is_read_from_the_url_file_name(string url, string release) =>
        Assert.Equal(release, PretendFirmware.ReleaseFromUrl(url));
}
