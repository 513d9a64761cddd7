using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>The client view through a real node and a seed-era router: a pass beside an auth, a reboot.</summary>
public sealed class ClientViewTests : IAsyncLifetime
{
    private Node _node = null!;

    public async ValueTask InitializeAsync() => _node = await Node.StartAsync();
    public async ValueTask DisposeAsync() => await _node.DisposeAsync();

    private async Task<JsonNode> Deliver(PretendRouter router, string body)
    {
        var post = _node.Post($"/api/v1/devices/{router.DeviceId}/commands?wait=10", body);
        await router.ReceiveType((string)JsonNode.Parse(body)!["type"]!);
        var (status, answer, _) = await post;
        Assert.Equal(200, status);
        Assert.Equal("delivered", (string?)answer!["status"]);
        return answer;
    }

    private async Task<JsonArray> Clients(PretendRouter router) =>
        (await _node.GetJson($"/api/v1/devices/{router.DeviceId}"))["clients"]!.AsArray();

    [Fact]
    public async Task A_pass_ending_leaves_an_authorised_client_and_a_reboot_clears_the_view()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), "r-" + Guid.NewGuid().ToString("N")[..10]);
        await Deliver(router, """{"type":"auth","token":"t","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1"}""");
        await Deliver(router, """{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:01","timeout":1}""");
        await Deliver(router, """{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:02","timeout":1}""");

        // The positive signal that the passes' deadline ran: the client on a pass alone is gone.
        await Eventually.True(async () => (await Clients(router)).All(c => (string?)c!["client_mac"] != "aa:bb:cc:dd:ee:02"), "the pass alone ended");
        var client = Assert.Single(await Clients(router))!;
        Assert.Equal("aa:bb:cc:dd:ee:01", (string?)client["client_mac"]);
        Assert.Null(client["expires_at"]);
        Assert.NotNull(client["pass_until"]);

        await Deliver(router, """{"type":"reboot_device"}""");
        Assert.Empty(await Clients(router));
    }
}
