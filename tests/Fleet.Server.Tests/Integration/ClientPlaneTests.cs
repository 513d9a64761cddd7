using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>The client plane on a real node: where a client is, fleet-wide, and one call that kicks it off everywhere.</summary>
public sealed class ClientPlaneTests : IAsyncLifetime
{
    private Node _node = null!;

    public async ValueTask InitializeAsync() => _node = await Node.StartAsync(null, "--Fleet:Directory:ReconcileEverySeconds", "0");
    public async ValueTask DisposeAsync() => await _node.DisposeAsync();

    private static string Id() => "cp-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>A fresh MAC per test: 02: is a locally administered prefix.</summary>
    private static string NewMac()
    {
        var b = Guid.NewGuid().ToByteArray();
        return $"02:{b[0]:x2}:{b[1]:x2}:{b[2]:x2}:{b[3]:x2}:{b[4]:x2}";
    }

    /// <summary>Three routers, each holding the client with an address of its own (10.0.0.11, .12, .13).</summary>
    private async Task<PretendRouter[]> AuthorisedOnThree(string mac)
    {
        var routers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => PretendRouter.ConnectAsync(_node.WebSocketUri(), Id())));
        for (var i = 0; i < routers.Length; i++) await Authorise(routers[i], mac, $"10.0.0.{11 + i}");
        await Eventually.True(async () => (await Find($"mac={mac}")).Count == 3, "the client plane lists the client on three routers");
        return routers;
    }

    /// <summary>An auth through the API, as a portal backend sends it; the seed dialect does not answer it (delivered).</summary>
    private async Task Authorise(PretendRouter router, string mac, string ip)
    {
        var post = _node.Post($"/api/v1/devices/{router.DeviceId}/commands?wait=10",
            $$"""{"type":"auth","token":"t","client_ip":"{{ip}}","client_mac":"{{mac}}","gw_id":"gw-1"}""");
        await router.ReceiveType("auth");
        var (status, body, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal("delivered", (string?)body!["status"]);
    }

    private async Task<List<JsonNode>> Find(string query) =>
        (await _node.GetJson("/api/v1/clients?" + query))["items"]!.AsArray().Select(n => n!).ToList();

    private async Task<(int Status, JsonNode? Body)> Kickoff(string mac, string? idempotencyKey = null, string key = TestKeys.Operator)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/clients/{mac}/kickoff?wait=10");
        req.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        if (idempotencyKey is not null) req.Headers.Add("Idempotency-Key", idempotencyKey);
        var r = await _node.Http.SendAsync(req, TestContext.Current.CancellationToken);
        var text = await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return ((int)r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    /// <summary>Each router takes its kickoff (checking it carries the router's own client_ip and gw_id) and answers success.</summary>
    private static Task AnswerKickoffs(PretendRouter[] routers, string mac) => Task.WhenAll(routers.Select(async (r, i) =>
    {
        var k = await r.ReceiveType("kickoff");
        Assert.Equal(mac, (string?)k["client_mac"]);
        Assert.Equal($"10.0.0.{11 + i}", (string?)k["client_ip"]);
        Assert.Equal("gw-1", (string?)k["gw_id"]);
        Assert.Equal(r.DeviceId, (string?)k["device_id"]);
        await r.Answer(k);
    }));

    [Fact]
    public async Task A_client_on_three_routers_is_found_by_mac_and_ip_and_one_kickoff_reaches_all_three()
    {
        var mac = NewMac();
        var routers = await AuthorisedOnThree(mac);
        try
        {
            var items = await Find($"mac={mac.ToUpperInvariant()}");
            Assert.Equal(routers.Select(r => r.DeviceId).Order(StringComparer.Ordinal), items.Select(i => (string)i["device_id"]!));
            Assert.All(items, i =>
            {
                Assert.Equal(mac, (string?)i["client_mac"]);
                Assert.Equal("gw-1", (string?)i["gw_id"]);
                Assert.NotNull((string?)i["authorized_at"]);
                Assert.Null(i["expires_at"]);
            });
            var byIp = Assert.Single(await Find($"ip=10.0.0.12&mac={mac}"));
            Assert.Equal(routers[1].DeviceId, (string?)byIp["device_id"]);
            Assert.Equal("10.0.0.12", (string?)byIp["client_ip"]);

            var kick = Kickoff(mac);
            await AnswerKickoffs(routers, mac);
            var (status, body) = await kick;
            Assert.Equal(200, status);
            Assert.Equal(mac, (string?)body!["client_mac"]);
            var results = body["results"]!.AsArray().Select(n => n!).ToList();
            Assert.Equal(routers.Select(r => r.DeviceId).Order(StringComparer.Ordinal), results.Select(r => (string)r["device_id"]!).Order(StringComparer.Ordinal));
            Assert.All(results, r =>
            {
                Assert.Equal("succeeded", (string?)r["status"]);
                Assert.Null(r["error"]);
                Assert.Equal("gw-1", (string?)r["gw_id"]);
                Assert.StartsWith("10.0.0.1", (string?)r["client_ip"]);
                Assert.False(string.IsNullOrEmpty((string?)r["command_id"]));
            });

            await Eventually.True(async () => (await Find($"mac={mac}")).Count == 0, "the kicked client leaves the client plane");
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_retry_with_the_same_idempotency_key_names_the_same_commands_and_kicks_no_router_twice()
    {
        var mac = NewMac();
        var key = "kick-" + Guid.NewGuid().ToString("N");
        var routers = await AuthorisedOnThree(mac);
        try
        {
            var kick = Kickoff(mac, key);
            await AnswerKickoffs(routers, mac);
            var (status, first) = await kick;
            Assert.Equal(200, status);
            var ids = Ids(first!);
            Assert.All(first!["results"]!.AsArray(), r => Assert.Equal("succeeded", (string?)r!["status"]));
            // The retry comes once the kickoff has taken the client off every router's list: it still names them all.
            await Eventually.True(async () => (await Find($"mac={mac}")).Count == 0, "the kicked client leaves the client plane");

            var (again, second) = await Kickoff(mac, key);
            Assert.Equal(200, again);
            Assert.Equal(ids, Ids(second!));
            Assert.All(second!["results"]!.AsArray(), r => Assert.Equal("succeeded", (string?)r!["status"]));
            foreach (var router in routers)
            {
                var history = (await _node.GetJson($"/api/v1/devices/{router.DeviceId}/commands"))["items"]!.AsArray();
                Assert.Single(history, c => (string?)c!["type"] == "kickoff");
                // Nor on the wire: of what the node wrote to the router up to its heartbeat's reply, nothing is a kickoff.
                await router.Send(router.HeartbeatJson());
                for (var frame = await router.Receive(); (string?)frame["type"] != "heartbeat"; frame = await router.Receive())
                    Assert.NotEqual("kickoff", (string?)frame["type"]);
            }

            // Without a key, the client gone: no router knows it.
            Assert.Equal(404, (await Kickoff(mac)).Status);
        }
        finally
        {
            foreach (var r in routers) await r.DisposeAsync();
        }

        static Dictionary<string, string> Ids(JsonNode body) => body["results"]!.AsArray()
            .ToDictionary(r => (string)r!["device_id"]!, r => (string)r!["command_id"]!);
    }

    [Fact]
    public async Task A_router_that_has_the_client_only_on_a_pass_is_reported_not_sent()
    {
        var mac = NewMac();
        await using var authorised = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        await using var passOnly = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        await Authorise(authorised, mac, "10.0.0.11");
        var pass = _node.Post($"/api/v1/devices/{passOnly.DeviceId}/commands?wait=10", $$"""{"type":"tmp_pass","client_mac":"{{mac}}","timeout":300}""");
        await passOnly.ReceiveType("tmp_pass");
        Assert.Equal(200, (await pass).Status);
        await Eventually.True(async () => (await Find($"mac={mac}")).Count == 2, "both routers in the client plane");
        var onPass = (await Find($"mac={mac}")).Single(i => (string?)i["device_id"] == passOnly.DeviceId);
        Assert.Null((string?)onPass["client_ip"]);
        Assert.NotNull((string?)onPass["expires_at"]);

        var kick = Kickoff(mac);
        await AnswerKickoffs([authorised], mac);
        var (status, body) = await kick;
        Assert.Equal(200, status);
        var results = body!["results"]!.AsArray().ToDictionary(r => (string)r!["device_id"]!, r => r!);
        Assert.Equal("succeeded", (string?)results[authorised.DeviceId]["status"]);
        Assert.Equal("not_sent", (string?)results[passOnly.DeviceId]["status"]);
        Assert.Null((string?)results[passOnly.DeviceId]["command_id"]);
        Assert.Contains("needs the client's IP", (string?)results[passOnly.DeviceId]["error"]);
    }

    [Theory]
    [InlineData("GET", "/api/v1/clients?mac=zz", "mac 'zz' is not a MAC address")]
    [InlineData("GET", "/api/v1/clients?ip=10.0.0.256", "ip '10.0.0.256' is not an IPv4 or IPv6 address")]
    [InlineData("GET", "/api/v1/clients", "mac or ip is required")]
    [InlineData("POST", "/api/v1/clients/zz/kickoff", "mac 'zz' is not a MAC address")]
    [InlineData("POST", "/api/v1/clients/02:00:00:00:00:01/kickoff?wait=-1", "wait '-1' must be a whole number of seconds")]
    public async Task Bad_input_gets_a_problem_that_names_it(string method, string path, string detail)
    {
        var (status, body, type) = await _node.Send(new HttpMethod(method), path);
        Assert.Equal(400, status);
        Assert.Equal("application/problem+json", type);
        Assert.Contains(detail, (string?)body!["detail"]);
    }

    [Fact]
    public async Task A_client_no_router_knows_is_not_found_and_a_viewer_may_look_but_not_kick()
    {
        var mac = NewMac();
        var (status, body) = await Kickoff(mac);
        Assert.Equal(404, status);
        Assert.Contains($"no router knows client {mac}", (string?)body!["detail"]);

        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        await Authorise(router, mac, "10.0.0.11");
        var (viewed, list, _) = await _node.Send(HttpMethod.Get, $"/api/v1/clients?mac={mac}", key: TestKeys.Viewer);
        Assert.Equal(200, viewed);
        Assert.NotNull(list!["items"]);
        Assert.Equal(403, (await Kickoff(mac, key: TestKeys.Viewer)).Status);
        Assert.DoesNotContain((await _node.GetJson($"/api/v1/devices/{router.DeviceId}/commands"))["items"]!.AsArray(),
            c => (string?)c!["type"] == "kickoff");
    }
}
