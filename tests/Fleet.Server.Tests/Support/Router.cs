using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Fleet.Server.Tests.Support;

/// <summary>A pretend router: a ClientWebSocket that speaks the device side of the protocol.</summary>
public sealed class Router : IAsyncDisposable
{
    public ClientWebSocket Socket { get; } = new();
    public string DeviceId { get; }

    private Router(string deviceId) => DeviceId = deviceId;

    public static async Task<Router> ConnectAsync(Node node, string deviceId, bool sendConnect = true, string gateways = DefaultGateways)
    {
        var r = new Router(deviceId);
        await r.Socket.ConnectAsync(node.WebSocketUri(), CancellationToken.None);
        if (sendConnect)
        {
            await r.Send(ConnectJson(deviceId, gateways));
            var reply = await r.Receive();
            if ((string?)reply["type"] != "heartbeat") throw new InvalidOperationException($"expected a heartbeat reply after connect, got {reply.ToJsonString()}");
        }
        return r;
    }

    public const string DefaultGateways = """[{"gw_id":"gw-1","gw_channel":"apfree","gw_address_v4":"192.168.1.1","auth_mode":1,"gw_interface":"br-lan"}]""";

    public static string ConnectJson(string deviceId, string gateways = DefaultGateways, string type = "connect") =>
        $$"""{"type":"{{type}}","device_id":"{{deviceId}}","device_info":{"ap_device_id":"{{deviceId}}","ap_mac_address":"8c:de:f9:5e:f7:06","ap_longitude":"116.39","ap_latitude":"39.90","location_id":"lobby-{{deviceId}}"},"gateway":{{gateways}}}""";

    public string HeartbeatJson(string gateways = DefaultGateways) => ConnectJson(DeviceId, gateways, "heartbeat");

    public Task Send(string json) =>
        Socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SendBinary(byte[] data) => Socket.SendAsync(data, WebSocketMessageType.Binary, true, CancellationToken.None);

    /// <summary>The next text frame as JSON, or throws after the deadline.</summary>
    public async Task<JsonNode> Receive(TimeSpan? within = null)
    {
        using var cts = new CancellationTokenSource(within ?? TimeSpan.FromSeconds(15));
        var buffer = new byte[64 * 1024];
        var ms = new MemoryStream();
        while (true)
        {
            var r = await Socket.ReceiveAsync(buffer, cts.Token);
            if (r.MessageType == WebSocketMessageType.Close)
                throw new ClosedException(Socket.CloseStatus, Socket.CloseStatusDescription);
            ms.Write(buffer, 0, r.Count);
            if (r.EndOfMessage) return JsonNode.Parse(ms.ToArray())!;
        }
    }

    /// <summary>Skips frames until one of the given type arrives.</summary>
    public async Task<JsonNode> ReceiveType(string type, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"no '{type}' frame");
            var f = await Receive(left);
            if ((string?)f["type"] == type) return f;
        }
    }

    public async Task<JsonNode> HeartbeatAndReply(string gateways = DefaultGateways)
    {
        await Send(HeartbeatJson(gateways));
        return await ReceiveType("heartbeat");
    }

    public sealed class ClosedException(WebSocketCloseStatus? status, string? description)
        : Exception($"socket closed: {status} {description}")
    {
        public WebSocketCloseStatus? Status { get; } = status;
        public string? Description { get; } = description;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Socket.State == WebSocketState.Open)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
        }
        Socket.Dispose();
    }
}
