using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Fleet.Cluster.Tests.Support;

/// <summary>
/// A pretend router that behaves like the real client: it connects through the load balancer, sends
/// connect, then a heartbeat every <see cref="HeartbeatEvery"/>, answers requests (echoing req_id), and
/// when the socket closes or fails it reconnects after <see cref="ReconnectDelay"/> (the client's 2 s).
/// While <see cref="Hold"/> is set it receives requests but keeps its answers, so commands stay
/// "sent" and those behind them "queued"; <see cref="Release"/> answers them on the current socket.
/// A request received but not yet answered when a socket dies is answered on the next one (firmware
/// that echoes req_id may answer late).
/// </summary>
public sealed class ReconnectingRouter : IAsyncDisposable
{
    public const string Gateways = """[{"gw_id":"gw-1","gw_channel":"apfree","gw_address_v4":"192.168.1.1","auth_mode":1,"gw_interface":"br-lan"}]""";

    private readonly Uri _uri;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly ConcurrentDictionary<string, JsonNode> _unanswered = new();
    private volatile ClientWebSocket? _current;
    private volatile bool _hold;
    private Task _loop = Task.CompletedTask;
    private int _connections;
    private long _replies;

    public string DeviceId { get; }
    public TimeSpan HeartbeatEvery { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Every request frame received, by req_id, with how many times it came.</summary>
    public ConcurrentDictionary<string, int> Received { get; } = new();
    public ConcurrentDictionary<string, string> ReceivedTypes { get; } = new();
    public ConcurrentDictionary<string, byte> Answered { get; } = new();
    public int Connections => Volatile.Read(ref _connections);
    public long Replies => Interlocked.Read(ref _replies);
    public string? LastError { get; private set; }
    public bool Hold { get => _hold; set => _hold = value; }

    public ReconnectingRouter(Uri uri, string deviceId)
    {
        _uri = uri;
        DeviceId = deviceId;
    }

    public ReconnectingRouter Start()
    {
        _loop = Task.Run(Loop);
        return this;
    }

    /// <summary>Answer everything held, now and from now on.</summary>
    public void Release()
    {
        _hold = false;
        if (_current is { } ws) _ = AnswerPending(ws);
    }

    private async Task Loop()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            using var ws = new ClientWebSocket();
            ws.Options.KeepAliveInterval = TimeSpan.FromSeconds(30);
            using var session = CancellationTokenSource.CreateLinkedTokenSource(stop);
            try
            {
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    connect.CancelAfter(TimeSpan.FromSeconds(5));
                    await ws.ConnectAsync(_uri, connect.Token);
                }
                Interlocked.Increment(ref _connections);
                _current = ws;
                await SendAsync(ws, ConnectJson(DeviceId), session.Token);
                var heartbeats = Heartbeats(ws, session.Token);
                if (!_hold) _ = AnswerPending(ws);
                await ReceiveLoop(ws, session.Token);
                await session.CancelAsync();
                await heartbeats;
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or System.Text.Json.JsonException)
            {
                LastError = ex.Message;
            }
            finally
            {
                _current = null;
                await session.CancelAsync();
                ws.Abort();
            }
            try { await Task.Delay(ReconnectDelay, stop); }
            catch (OperationCanceledException) { }
        }
    }

    private async Task Heartbeats(ClientWebSocket ws, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(HeartbeatEvery, ct);
                await SendAsync(ws, ConnectJson(DeviceId, "heartbeat"), ct);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            ws.Abort(); // ends the receive loop too
        }
    }

    private async Task ReceiveLoop(ClientWebSocket ws, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var ms = new MemoryStream();
        while (!ct.IsCancellationRequested)
        {
            var r = await ws.ReceiveAsync(buffer, ct);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                LastError = $"closed: {ws.CloseStatus} {ws.CloseStatusDescription}";
                return;
            }
            ms.Write(buffer, 0, r.Count);
            if (!r.EndOfMessage) continue;
            var frame = JsonNode.Parse(ms.ToArray())!;
            ms.SetLength(0);
            var type = (string?)frame["type"];
            if (type == "heartbeat")
            {
                Interlocked.Increment(ref _replies);
                continue;
            }
            var reqId = frame["req_id"]?.ToString();
            if (reqId is null || type is null) continue;
            Received.AddOrUpdate(reqId, 1, (_, n) => n + 1);
            ReceivedTypes[reqId] = type;
            _unanswered[reqId] = frame;
            if (!_hold) _ = Answer(ws, reqId);
        }
    }

    private async Task AnswerPending(ClientWebSocket ws)
    {
        foreach (var id in _unanswered.Keys.ToList()) await Answer(ws, id);
    }

    private async Task Answer(ClientWebSocket ws, string reqId)
    {
        if (!_unanswered.TryRemove(reqId, out var request)) return;
        var answer = AnswerFor(request);
        try
        {
            if (answer is not null) await SendAsync(ws, answer, _stop.Token);
            Answered[reqId] = 1;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _unanswered[reqId] = request; // the next socket answers it
        }
    }

    /// <summary>Success answers with req_id echoed; firmware answers carry the request id so the test can tell which one stuck.</summary>
    public static string? AnswerFor(JsonNode request)
    {
        var reqId = request["req_id"]!.DeepClone();
        var type = (string)request["type"]!;
        JsonObject? answer = type switch
        {
            "get_firmware_info" => new JsonObject
            {
                ["type"] = "firmware_info_response", ["req_id"] = reqId,
                ["data"] = new JsonObject { ["DISTRIB_ID"] = "ChaWrt", ["DISTRIB_RELEASE"] = "r-" + reqId },
            },
            "get_sys_info" => new JsonObject
            {
                ["type"] = "get_sys_info_response", ["req_id"] = reqId, ["data"] = new JsonObject { ["sys_uptime"] = 10 },
            },
            "kickoff" => new JsonObject
            {
                ["type"] = "kickoff_response", ["req_id"] = reqId, ["status"] = "success",
                ["client_ip"] = request["client_ip"]!.DeepClone(), ["client_mac"] = request["client_mac"]!.DeepClone(),
                ["message"] = "Client kicked off successfully",
            },
            _ => null, // one-way requests (auth, tmp_pass, reboot_device) have no answer
        };
        return answer?.ToJsonString();
    }

    private async Task SendAsync(ClientWebSocket ws, string json, CancellationToken ct)
    {
        await _send.WaitAsync(ct);
        try
        {
            await ws.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, ct);
        }
        finally
        {
            _send.Release();
        }
    }

    public static string ConnectJson(string deviceId, string type = "connect") =>
        $$"""{"type":"{{type}}","device_id":"{{deviceId}}","device_info":{"ap_device_id":"{{deviceId}}","ap_mac_address":"8c:de:f9:5e:f7:06","ap_longitude":"116.39","ap_latitude":"39.90","location_id":"lobby-{{deviceId}}"},"gateway":{{Gateways}}}""";

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _current?.Abort();
        try { await _loop; }
        catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
