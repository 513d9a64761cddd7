using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Fleet.Testing;

/// <summary>
/// A pretend router: one ClientWebSocket speaking the device side of the WiFiDogX protocol in plain
/// JSON (not through Fleet.Protocol, so the tests check the wire, not the codec against itself). A
/// test drives it frame by frame (<see cref="Send"/>, <see cref="Receive"/>, <see cref="HeartbeatAndReply"/>)
/// or lets it answer requests (<see cref="AnswerFor"/>); <see cref="ReconnectingRouter"/> runs one
/// on its own like the real client, reconnecting after every drop. Linked into the test projects
/// that talk to a node (see their .csproj files).
/// </summary>
public sealed class PretendRouter : IAsyncDisposable
{
    /// <summary>One gateway, as a WiFiDogX router with a single LAN reports it.</summary>
    public const string DefaultGateways = """[{"gw_id":"gw-1","gw_channel":"apfree","gw_address_v4":"192.168.1.1","auth_mode":1,"gw_interface":"br-lan"}]""";

    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly byte[] _buffer = new byte[64 * 1024];

    public ClientWebSocket Socket { get; } = new();
    public string DeviceId { get; }
    /// <summary>The gateways this router reports (a JSON array).</summary>
    public string Gateways { get; }

    private PretendRouter(string deviceId, string gateways)
    {
        DeviceId = deviceId;
        Gateways = gateways;
    }

    /// <summary>
    /// Opens the socket and, unless <paramref name="sendConnect"/> is false, sends connect and waits
    /// for the controller's heartbeat reply to it.
    /// </summary>
    public static async Task<PretendRouter> ConnectAsync(Uri uri, string deviceId, bool sendConnect = true,
        string gateways = DefaultGateways)
    {
        var r = await OpenAsync(uri, deviceId, gateways, Xunit.TestContext.Current.CancellationToken);
        try
        {
            if (sendConnect)
            {
                await r.Send(ConnectJson(deviceId, gateways));
                var reply = await r.Receive();
                if ((string?)reply["type"] != "heartbeat")
                    throw new InvalidOperationException($"expected a heartbeat reply after connect, got {reply.ToJsonString()}");
            }
            return r;
        }
        catch
        {
            await r.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens the socket only.</summary>
    internal static async Task<PretendRouter> OpenAsync(Uri uri, string deviceId, string gateways, CancellationToken ct)
    {
        var r = new PretendRouter(deviceId, gateways);
        try
        {
            await r.Socket.ConnectAsync(uri, ct);
            return r;
        }
        catch
        {
            await r.DisposeAsync();
            throw;
        }
    }

    /// <summary>A connect (or, with <paramref name="type"/> "heartbeat", a heartbeat) frame as the seed firmware sends it.</summary>
    public static string ConnectJson(string deviceId, string gateways = DefaultGateways, string type = "connect") =>
        new JsonObject
        {
            ["type"] = type,
            ["device_id"] = deviceId,
            ["device_info"] = new JsonObject
            {
                ["ap_device_id"] = deviceId, ["ap_mac_address"] = "8c:de:f9:5e:f7:06", ["ap_longitude"] = "116.39",
                ["ap_latitude"] = "39.90", ["location_id"] = $"lobby-{deviceId}",
            },
            ["gateway"] = JsonNode.Parse(gateways),
        }.ToJsonString();

    public string ConnectJson() => ConnectJson(DeviceId, Gateways);

    public string HeartbeatJson(string? gateways = null) => ConnectJson(DeviceId, gateways ?? Gateways, "heartbeat");

    public Task Send(string json) => SendAsync(json, CancellationToken.None);

    internal async Task SendAsync(string json, CancellationToken ct)
    {
        await _send.WaitAsync(ct);
        try { await Socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, ct); }
        finally { _send.Release(); }
    }

    public async Task SendBinary(byte[] data)
    {
        await _send.WaitAsync();
        try { await Socket.SendAsync(data, WebSocketMessageType.Binary, true, CancellationToken.None); }
        finally { _send.Release(); }
    }

    /// <summary>The next text frame as JSON; throws <see cref="ClosedException"/> on a close frame, or after the deadline.</summary>
    public async Task<JsonNode> Receive(TimeSpan? within = null)
    {
        using var cts = new CancellationTokenSource(within ?? TimeSpan.FromSeconds(15));
        return await ReceiveAsync(cts.Token);
    }

    /// <summary>The next text frame as JSON, for as long as <paramref name="ct"/> allows.</summary>
    internal async Task<JsonNode> ReceiveAsync(CancellationToken ct)
    {
        using var ms = new MemoryStream();
        while (true)
        {
            var r = await Socket.ReceiveAsync(_buffer, ct);
            if (r.MessageType == WebSocketMessageType.Close)
                throw new ClosedException(Socket.CloseStatus, Socket.CloseStatusDescription);
            ms.Write(_buffer, 0, r.Count);
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

    /// <summary>Sends a heartbeat and returns the controller's reply to it.</summary>
    public async Task<JsonNode> HeartbeatAndReply(string? gateways = null)
    {
        await Send(HeartbeatJson(gateways));
        return await ReceiveType("heartbeat");
    }

    /// <summary>
    /// Answers a request as firmware that echoes req_id does, with success; one-way requests (auth,
    /// tmp_pass, reboot_device) get nothing. A firmware answer carries the request id (DISTRIB_RELEASE
    /// "r-&lt;req_id&gt;") so a test can tell which request it answered.
    /// </summary>
    public static string? AnswerFor(JsonNode request)
    {
        var reqId = request["req_id"]?.DeepClone();
        var type = (string?)request["type"];
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
                ["client_ip"] = request["client_ip"]?.DeepClone(), ["client_mac"] = request["client_mac"]?.DeepClone(),
                ["message"] = "Client kicked off successfully",
            },
            _ => null,
        };
        return answer?.ToJsonString();
    }

    /// <summary>Sends <see cref="AnswerFor"/>'s answer to <paramref name="request"/>, if it has one.</summary>
    public Task Answer(JsonNode request) => AnswerAsync(request, CancellationToken.None);

    internal async Task AnswerAsync(JsonNode request, CancellationToken ct)
    {
        if (AnswerFor(request) is { } answer) await SendAsync(answer, ct);
    }

    /// <summary>Drops the connection without a close frame (a receive in progress ends too).</summary>
    public void Abort() => Socket.Abort();

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
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        Socket.Dispose();
        _send.Dispose();
    }
}

/// <summary>
/// A <see cref="PretendRouter"/> that behaves like the real client: it connects, sends connect, then a
/// heartbeat every <see cref="HeartbeatEvery"/>, answers requests (echoing req_id), and when the socket
/// closes or fails it opens a new one after <see cref="ReconnectDelay"/> (the client's 2 s).
/// While <see cref="Hold"/> is set it receives requests but keeps its answers, so commands stay
/// "sent" and those behind them "queued"; <see cref="Release"/> answers them on the current socket.
/// A request received but not yet answered when a socket dies is answered on the next one (firmware
/// that echoes req_id may answer late).
/// </summary>
public sealed class ReconnectingRouter : IAsyncDisposable
{
    private readonly Uri _uri;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, JsonNode> _unanswered = new();
    private volatile PretendRouter? _current;
    private volatile bool _hold;
    private Task _loop = Task.CompletedTask;
    private int _connections;
    private long _replies;

    public string DeviceId { get; }
    public TimeSpan HeartbeatEvery { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(2);
    public string Gateways { get; init; } = PretendRouter.DefaultGateways;
    /// <summary>Where it connects after its first socket ends (the first node is going away); null: the same address.</summary>
    public Uri? ReconnectTo { get; init; }

    /// <summary>Every request frame received, by req_id, with how many times it came.</summary>
    public ConcurrentDictionary<string, int> Received { get; } = new();
    public ConcurrentDictionary<string, string> ReceivedTypes { get; } = new();
    public ConcurrentDictionary<string, byte> Answered { get; } = new();
    public int Connections => Volatile.Read(ref _connections);
    /// <summary>Heartbeat replies received (to connect, heartbeats, and pushed ones).</summary>
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
        if (_current is { } router) _ = AnswerPending(router);
    }

    private async Task Loop()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            PretendRouter? router = null;
            using var session = CancellationTokenSource.CreateLinkedTokenSource(stop);
            try
            {
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    connect.CancelAfter(TimeSpan.FromSeconds(5));
                    router = await PretendRouter.OpenAsync(Volatile.Read(ref _connections) > 0 ? ReconnectTo ?? _uri : _uri,
                        DeviceId, Gateways, connect.Token);
                }
                Interlocked.Increment(ref _connections);
                _current = router;
                await router.SendAsync(router.ConnectJson(), session.Token);
                var heartbeats = Heartbeats(router, session.Token);
                if (!_hold) _ = AnswerPending(router);
                await ReceiveLoop(router, session.Token);
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
                if (router is not null)
                {
                    router.Abort();
                    await router.DisposeAsync();
                }
            }
            try { await Task.Delay(ReconnectDelay, stop); } // the client's reconnect delay: the behaviour under test
            catch (OperationCanceledException) { }
        }
    }

    private async Task Heartbeats(PretendRouter router, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(HeartbeatEvery, ct); // the client's heartbeat interval
                await router.SendAsync(router.HeartbeatJson(), ct);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            router.Abort(); // ends the receive loop too
        }
    }

    private async Task ReceiveLoop(PretendRouter router, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            JsonNode frame;
            try { frame = await router.ReceiveAsync(ct); }
            catch (PretendRouter.ClosedException closed)
            {
                LastError = $"closed: {closed.Status} {closed.Description}";
                return;
            }
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
            if (!_hold) _ = Answer(router, reqId);
        }
    }

    private async Task AnswerPending(PretendRouter router)
    {
        foreach (var id in _unanswered.Keys.ToList()) await Answer(router, id);
    }

    private async Task Answer(PretendRouter router, string reqId)
    {
        if (!_unanswered.TryRemove(reqId, out var request)) return;
        try
        {
            await router.AnswerAsync(request, _stop.Token);
            Answered[reqId] = 1;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _unanswered[reqId] = request; // the next socket answers it
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _current?.Abort();
        try { await _loop; }
        catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
