using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Fleet.Protocol;
using Fleet.Simulator;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// TLS with Kestrel's standard settings and a self-signed certificate made by the test, and the admin API on an
/// address of its own (Fleet:Admin:Urls), each on a real node with real clients: a wss:// WebSocket pinned to the
/// certificate, a router that reads like the firmware (and, like it, checks no certificate), HTTPS admin calls.
/// The device side listens on 127.0.0.1 and the admin side on 127.0.0.2, both on ports Kestrel picks.
/// </summary>
public sealed class TransportTests
{
    private const string Devices = "127.0.0.1";
    private const string Admin = "127.0.0.2";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Kestrel_https_endpoint_serves_wss_routers_and_the_https_admin_api()
    {
        var (cert, pfx, password) = ListeningNode.SelfSigned();
        await using var node = await ListeningNode.StartAsync(cert,
            "--Kestrel:Endpoints:Https:Url", $"https://{Devices}:0",
            "--Kestrel:Endpoints:Https:Certificate:Path", pfx,
            "--Kestrel:Endpoints:Https:Certificate:Password", password);

        // Kestrel:Endpoints is the whole story: our default URL is neither added nor does Kestrel override anything.
        var only = Assert.Single(node.Addresses);
        Assert.Equal("https", only.Scheme);
        NothingOverridden(node);

        var http = node.Client(only);
        using var ws = node.Socket();
        await ws.ConnectAsync(ListeningNode.SocketUri(only), Ct);
        var router = new Wire(ws, "tls-router");
        await router.ConnectAndReply();
        Assert.Equal("gw-1", (string?)(await router.HeartbeatAndReply())["gateway"]![0]!["gw_id"]);

        var command = http.PostAsync($"/api/v1/devices/{router.DeviceId}/commands?wait=20",
            new StringContent("""{"type":"get_firmware_info"}""", Encoding.UTF8, "application/json"), Ct);
        var request = await router.ReceiveType("get_firmware_info");
        await router.Send(PretendRouter.AnswerFor(request)!);
        var done = await (await command).Content.ReadFromJsonAsync<JsonNode>(Ct);
        Assert.Equal("succeeded", (string?)done!["status"]);
        Assert.Equal((string?)done["command_id"], (string?)request["req_id"]);

        // A router as the firmware is (9.x, reads one frame per read, accepts any certificate) over the same wss.
        await using var real = new RealReaderRouter(ListeningNode.SocketUri(only), "tls-real-9", FirmwareEra.V9).Start();
        await real.WaitConnectedAsync();
        await Known(http, real.DeviceId);
        var r = await http.PostAsync($"/api/v1/devices/{real.DeviceId}/commands?wait=20",
            new StringContent("""{"type":"get_firmware_info"}""", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal("succeeded", (string?)(await r.Content.ReadFromJsonAsync<JsonNode>(Ct))!["status"]);
        real.AssertNoLoss();
    }

    [Fact]
    public async Task Admin_api_on_its_own_address_answers_only_there_and_sockets_only_on_the_device_side()
    {
        await using var node = await ListeningNode.StartAsync(null,
            "--urls", $"http://{Devices}:0", "--Fleet:Admin:Urls", $"http://{Admin}:0");
        Assert.Equal(2, node.Addresses.Count);
        NothingOverridden(node);
        var devices = node.Client(node.On(Devices));
        var admin = node.Client(node.On(Admin));

        foreach (var path in new[] { "/api/v1/node", "/api/v1/devices", "/openapi/v1.json" })
        {
            Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(path, Ct)).StatusCode);
            var refused = await devices.GetAsync(path, Ct); // with a valid admin key: the address, not the key, decides
            Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        }
        foreach (var path in new[] { "/healthz", "/readyz" })
        {
            Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(path, Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await devices.GetAsync(path, Ct)).StatusCode);
        }
        // A write on the device side is refused before authentication (no 401 either: nothing is there).
        using (var anonymous = new HttpClient { BaseAddress = node.On(Devices) })
            Assert.Equal(HttpStatusCode.NotFound, (await anonymous.PostAsync("/api/v1/devices/x/commands",
                new StringContent("{}", Encoding.UTF8, "application/json"), Ct)).StatusCode);

        // No device socket on the admin side: the upgrade gets a 404 problem that says where sockets are.
        using (var wrongSide = new ClientWebSocket())
        {
            var ex = await Assert.ThrowsAsync<WebSocketException>(() => wrongSide.ConnectAsync(ListeningNode.SocketUri(node.On(Admin)), Ct));
            Assert.Contains("404", ex.Message);
        }
        var plain = await admin.GetAsync("/ws/wifidogx", Ct);
        Assert.Equal(HttpStatusCode.NotFound, plain.StatusCode);
        Assert.Contains("device-facing address", await plain.Content.ReadAsStringAsync(Ct));

        // A router on the device side, commanded from the admin side.
        await using var router = await PretendRouter.ConnectAsync(ListeningNode.SocketUri(node.On(Devices)), "split-router");
        var command = admin.PostAsync($"/api/v1/devices/{router.DeviceId}/commands?wait=20",
            new StringContent("""{"type":"get_firmware_info"}""", Encoding.UTF8, "application/json"), Ct);
        await router.Answer(await router.ReceiveType("get_firmware_info"));
        Assert.Equal("succeeded", (string?)(await (await command).Content.ReadFromJsonAsync<JsonNode>(Ct))!["status"]);
    }

    [Fact]
    public async Task Urls_with_the_default_certificate_serve_wss_devices_and_an_https_admin_address()
    {
        var (cert, pfx, password) = ListeningNode.SelfSigned();
        await using var node = await ListeningNode.StartAsync(cert,
            "--urls", $"https://{Devices}:0", "--Fleet:Admin:Urls", $"https://{Admin}:0",
            "--Kestrel:Certificates:Default:Path", pfx, "--Kestrel:Certificates:Default:Password", password);
        Assert.All(node.Addresses, a => Assert.Equal("https", a.Scheme));
        var admin = node.Client(node.On(Admin));
        Assert.Equal(HttpStatusCode.NotFound, (await node.Client(node.On(Devices)).GetAsync("/api/v1/node", Ct)).StatusCode);

        await using var real = new RealReaderRouter(ListeningNode.SocketUri(node.On(Devices)), "tls-split-seed", FirmwareEra.Seed).Start();
        await real.WaitConnectedAsync();
        await Known(admin, real.DeviceId);
        var r = await admin.PostAsync($"/api/v1/devices/{real.DeviceId}/commands?wait=20",
            new StringContent("""{"type":"get_firmware_info"}""", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal("succeeded", (string?)(await r.Content.ReadFromJsonAsync<JsonNode>(Ct))!["status"]);
        real.AssertNoLoss();
    }

    [Fact]
    public async Task Kestrel_endpoints_for_devices_and_an_admin_address_are_both_bound()
    {
        await using var node = await ListeningNode.StartAsync(null,
            "--Kestrel:Endpoints:Routers:Url", $"http://{Devices}:0", "--Fleet:Admin:Urls", $"http://{Admin}:0");
        Assert.Equal(2, node.Addresses.Count);
        Assert.Equal(HttpStatusCode.OK, (await node.Client(node.On(Admin)).GetAsync("/api/v1/node", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Client(node.On(Devices)).GetAsync("/api/v1/node", Ct)).StatusCode);
        await using var router = await PretendRouter.ConnectAsync(ListeningNode.SocketUri(node.On(Devices)), "endpoint-router");
        await router.HeartbeatAndReply();
    }

    /// <summary>The router's connect has reached its entity (a command for an unknown device is a 404).</summary>
    private static Task Known(HttpClient http, string deviceId) =>
        Eventually.True(async () => (await http.GetAsync($"/api/v1/devices/{deviceId}", Ct)).IsSuccessStatusCode, $"{deviceId} known");

    /// <summary>Kestrel says when it ignores --urls for endpoints: configuration that does not mean what it says.</summary>
    private static void NothingOverridden(ListeningNode node)
    {
        var overriding = node.Warnings.Where(w => w.Contains("Overriding", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.True(overriding.Count == 0, string.Join("\n", overriding));
    }

    [Theory]
    [InlineData("127.0.0.1:9090", "is not a listen URL")]
    [InlineData("ftp://127.0.0.1:9090", "is not a listen URL")]
    [InlineData("http://127.0.0.1:9090;http://127.0.0.1:9090", "names the same URL twice")]
    [InlineData("http://127.0.0.1:8080", "is also where the devices connect")]
    public async Task Bad_admin_urls_stop_the_start_with_what_to_fix(string urls, string message)
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => Fleet.Server.Hosting.FleetNode.CreateAsync(
            ["--urls", "http://127.0.0.1:8080", "--Fleet:Admin:Urls", urls,
             "--Fleet:Persistence:ConnectionString", $"Data Source={Node.NewDbPath()}"]));
        Assert.Contains("Fleet:Admin:Urls", ex.Message);
        Assert.Contains(message, ex.Message);
    }

    /// <summary>The device side in plain JSON over any ClientWebSocket (here: one pinned to the test's certificate).</summary>
    private sealed class Wire(ClientWebSocket ws, string deviceId)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        public string DeviceId { get; } = deviceId;

        public Task Send(string json) => ws.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, Ct);

        public async Task<JsonNode> Receive()
        {
            using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            within.CancelAfter(TimeSpan.FromSeconds(15));
            using var ms = new MemoryStream();
            while (true)
            {
                var r = await ws.ReceiveAsync(_buffer, within.Token);
                ms.Write(_buffer, 0, r.Count);
                if (r.EndOfMessage) return JsonNode.Parse(ms.ToArray())!;
            }
        }

        public async Task<JsonNode> ReceiveType(string type)
        {
            while (true)
            {
                var f = await Receive();
                if ((string?)f["type"] == type) return f;
            }
        }

        public async Task ConnectAndReply()
        {
            await Send(PretendRouter.ConnectJson(DeviceId));
            Assert.Equal("heartbeat", (string?)(await Receive())["type"]);
        }

        public async Task<JsonNode> HeartbeatAndReply()
        {
            await Send(PretendRouter.ConnectJson(DeviceId, type: "heartbeat"));
            return await ReceiveType("heartbeat");
        }
    }
}
