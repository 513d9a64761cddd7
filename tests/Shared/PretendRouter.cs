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
/// <para>
/// With a <see cref="Firmware"/> it also runs an image: get_firmware_info reports the firmware's release, and a
/// firmware_upgrade it accepts is answered success first, then, as the real firmware's background sysupgrade does,
/// the socket is dropped without a close frame, the router stays away while it "reboots" and comes back running
/// the release the outcome says (<see cref="PretendFirmware"/>). Without one it answers as it always did
/// (DISTRIB_RELEASE "r-&lt;req_id&gt;", nothing to firmware_upgrade).
/// </para>
/// <para>
/// <see cref="GoOffline"/> drops the socket and keeps the router away (or, before <see cref="Start"/>, never lets it
/// connect) until <see cref="ComeBack"/>; then it connects at once.
/// </para>
/// </summary>
public sealed class ReconnectingRouter : IAsyncDisposable
{
    private readonly Uri _uri;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, JsonNode> _unanswered = new();
    private readonly Lock _gate = new();
    private TaskCompletionSource _mayConnect = Opened();
    private bool _heldOffline;
    private bool _down;
    private volatile PretendRouter? _current;
    private volatile bool _hold;
    private Task _loop = Task.CompletedTask;
    private int _connections;
    private int _upgradesReceived;
    private long _replies;

    public string DeviceId { get; }
    public TimeSpan HeartbeatEvery { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(2);
    public string Gateways { get; init; } = PretendRouter.DefaultGateways;
    /// <summary>Where it connects after its first socket ends (the first node is going away); null: the same address.</summary>
    public Uri? ReconnectTo { get; init; }
    /// <summary>The image it runs and how it takes an upgrade; null: the answers of <see cref="PretendRouter.AnswerFor"/>.</summary>
    public PretendFirmware? Firmware { get; init; }

    /// <summary>Every request frame received, by req_id, with how many times it came.</summary>
    public ConcurrentDictionary<string, int> Received { get; } = new();
    public ConcurrentDictionary<string, string> ReceivedTypes { get; } = new();
    public ConcurrentDictionary<string, byte> Answered { get; } = new();
    public int Connections => Volatile.Read(ref _connections);
    /// <summary>firmware_upgrade frames received, each one (the same req_id twice counts twice), with a firmware or without.</summary>
    public int UpgradesReceived => Volatile.Read(ref _upgradesReceived);
    /// <summary>Heartbeat replies received (to connect, heartbeats, and pushed ones).</summary>
    public long Replies => Interlocked.Read(ref _replies);
    public string? LastError { get; private set; }
    public bool Hold { get => _hold; set => _hold = value; }
    /// <summary>Kept away from the controller: by <see cref="GoOffline"/>, or rebooting, or dead after an upgrade.</summary>
    public bool Offline
    {
        get { lock (_gate) return _heldOffline || _down; }
    }
    /// <summary>Whether a socket of it is open now (connected and not yet dropped).</summary>
    public bool Connected => _current is { Socket.State: WebSocketState.Open };

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

    /// <summary>
    /// Drops the socket without a close frame and stays away until <see cref="ComeBack"/> (a router unplugged). Called
    /// before <see cref="Start"/>, the router does not connect at all until then.
    /// </summary>
    public ReconnectingRouter GoOffline()
    {
        lock (_gate)
        {
            _heldOffline = true;
            UpdateGate();
        }
        _current?.Abort();
        return this;
    }

    /// <summary>Ends <see cref="GoOffline"/>: it connects at once (unless it is rebooting, or dead after an upgrade).</summary>
    public void ComeBack()
    {
        lock (_gate)
        {
            _heldOffline = false;
            UpdateGate();
        }
    }

    private static TaskCompletionSource Opened()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    /// <summary>Under <see cref="_gate"/>: opens the gate when nothing keeps the router away, else closes it.</summary>
    private void UpdateGate()
    {
        if (!_heldOffline && !_down) _mayConnect.TrySetResult();
        else if (_mayConnect.Task.IsCompleted) _mayConnect = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private Task MayConnect()
    {
        lock (_gate) return _mayConnect.Task;
    }

    private async Task Loop()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            try { await MayConnect().WaitAsync(stop); }
            catch (OperationCanceledException) { return; }
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
                _current = router;
                if (Offline) continue; // sent away while the socket opened (GoOffline aborts only a socket it sees)
                Interlocked.Increment(ref _connections);
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
            // The client's reconnect delay after a lost socket: the behaviour under test. A router kept away (offline,
            // rebooting) connects as soon as it may: a rebooted router starts its client afresh.
            if (Offline) continue;
            try { await Task.Delay(ReconnectDelay, stop); }
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
            if (type == "firmware_upgrade") Interlocked.Increment(ref _upgradesReceived);
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
        var firmware = Firmware;
        var (answer, flash) = firmware is null ? (PretendRouter.AnswerFor(request), false) : firmware.Answer(request);
        try
        {
            if (answer is not null) await router.SendAsync(answer, _stop.Token);
            Answered[reqId] = 1;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The next socket answers it; an upgrade the firmware accepted is under way whether its answer got out or not.
            if (!flash) _unanswered[reqId] = request;
        }
        if (flash) _ = Flash(firmware!);
    }

    /// <summary>
    /// What the firmware's background sysupgrade does once the success answer is out: the image is written for
    /// <see cref="PretendFirmware.FlashDelay"/>, the router goes down (its socket dropped without a close frame),
    /// stays away for <see cref="PretendFirmware.RebootDelay"/>, and boots the release its outcome says, or never.
    /// </summary>
    private async Task Flash(PretendFirmware firmware)
    {
        try
        {
            await Task.Delay(firmware.FlashDelay, _stop.Token); // the firmware's time between its answer and the flash: modelled, not waited on
            lock (_gate)
            {
                _down = true;
                UpdateGate();
            }
            firmware.Rebooting();
            _current?.Abort();
            _unanswered.Clear(); // a rebooted router has forgotten the requests it had not answered
            await Task.Delay(firmware.RebootDelay, _stop.Token); // the router's reboot: modelled, not waited on
            _unanswered.Clear();
            if (!firmware.Boot()) return; // PretendUpgrade.Never: it stays down
            lock (_gate)
            {
                _down = false;
                UpdateGate();
            }
        }
        catch (OperationCanceledException)
        {
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

/// <summary>How a <see cref="PretendFirmware"/> takes a firmware_upgrade.</summary>
public enum PretendUpgrade
{
    /// <summary>Accepts, reboots and comes back running the image's release.</summary>
    Good,
    /// <summary>Accepts, reboots and comes back on the release it had (the image did not take).</summary>
    Bad,
    /// <summary>Accepts, goes down and never comes back (bricked).</summary>
    Never,
    /// <summary>Answers firmware_upgrade_error ("Failed to execute sysupgrade command"): nothing is flashed.</summary>
    Refuse,
}

/// <summary>Where a <see cref="PretendFirmware"/> is in an upgrade.</summary>
public enum PretendFirmwareState { Running, Flashing, Rebooting, Dead }

/// <summary>
/// The image a <see cref="ReconnectingRouter"/> runs, for rollout tests. get_firmware_info reports <see cref="Release"/>
/// as DISTRIB_RELEASE and <see cref="Revision"/> as DISTRIB_REVISION (seed/2025 frames, req_id echoed). A firmware_upgrade
/// whose url is http(s) is answered as the firmware answers it — firmware_upgrade_response success, sent before anything
/// is flashed — unless <see cref="Upgrade"/> is <see cref="PretendUpgrade.Refuse"/> (firmware_upgrade_error); the router
/// then drops its socket after <see cref="FlashDelay"/>, stays away <see cref="RebootDelay"/> and comes back as
/// <see cref="Upgrade"/> says. The image's release is <see cref="ImageRelease"/> when set, else read from the url's file
/// name (<see cref="ReleaseFromUrl"/>). Another firmware_upgrade while one runs is refused as 9.x firmware refuses it
/// (its code 1004). Every property may be changed while the router runs (e.g. Refuse first, then Good).
/// </summary>
public sealed class PretendFirmware
{
    public const string UpgradeStarted = "Firmware upgrade initiated successfully";
    public const string UpgradeFailed = "Failed to execute sysupgrade command";
    public const string UrlInvalid = "Missing or invalid 'url' field";
    public const string UpgradeRunning = "Firmware upgrade already in progress";

    private readonly Lock _lock = new();
    private readonly List<string> _urls = [];
    private string _release;
    private string? _revision;
    private string? _image;
    private string? _imageRevision;
    private PretendFirmwareState _state = PretendFirmwareState.Running;
    private int _flashes;

    public PretendFirmware(string release = "24.10.0", PretendUpgrade upgrade = PretendUpgrade.Good)
    {
        _release = release;
        Upgrade = upgrade;
    }

    /// <summary>DISTRIB_RELEASE now (after a good upgrade: the image's).</summary>
    public string Release
    {
        get { lock (_lock) return _release; }
        set { lock (_lock) _release = value; }
    }

    /// <summary>DISTRIB_REVISION now; unless set, "r1-&lt;release&gt;".</summary>
    public string Revision
    {
        get { lock (_lock) return _revision ?? DefaultRevision(_release); }
        set { lock (_lock) _revision = value; }
    }

    public PretendUpgrade Upgrade { get; set; }
    /// <summary>The release an image carries; null: read from the url (<see cref="ReleaseFromUrl"/>).</summary>
    public string? ImageRelease { get; set; }
    /// <summary>The revision an image carries; null: "r1-&lt;its release&gt;".</summary>
    public string? ImageRevision { get; set; }
    /// <summary>From the success answer to the socket's drop (sysupgrade fetching and writing the image).</summary>
    public TimeSpan FlashDelay { get; set; } = TimeSpan.FromMilliseconds(300);
    /// <summary>From the drop to the next connect (the reboot).</summary>
    public TimeSpan RebootDelay { get; set; } = TimeSpan.FromSeconds(2);

    public PretendFirmwareState State
    {
        get { lock (_lock) return _state; }
    }

    /// <summary>Upgrades accepted (each one flashed and rebooted the router).</summary>
    public int Flashes
    {
        get { lock (_lock) return _flashes; }
    }

    /// <summary>The url of every upgrade accepted, in order.</summary>
    public IReadOnlyList<string> FlashedUrls
    {
        get { lock (_lock) return _urls.ToList(); }
    }

    public static string DefaultRevision(string release) => "r1-" + release;

    /// <summary>
    /// The release an image's url names: its file name without query and image extensions
    /// (<c>https://fw.example/24.10.1.bin</c> → "24.10.1"); in a longer name the first version in it
    /// (<c>openwrt-24.10.1-ramips-mt7621-sysupgrade.bin</c> → "24.10.1"); else the bare file name.
    /// </summary>
    public static string ReleaseFromUrl(string url)
    {
        var path = Uri.TryCreate(url, UriKind.Absolute, out var u) ? u.AbsolutePath : url.Split('?', '#')[0];
        var name = Uri.UnescapeDataString(path.TrimEnd('/').Split('/')[^1]);
        string[] extensions = [".bin", ".img", ".gz", ".itb", ".trx", ".tar", ".ubi"];
        for (var stripped = true; stripped;)
        {
            stripped = false;
            foreach (var ext in extensions)
                if (name.Length > ext.Length && name.EndsWith(ext, StringComparison.OrdinalIgnoreCase))
                {
                    name = name[..^ext.Length];
                    stripped = true;
                }
        }
        var version = System.Text.RegularExpressions.Regex.Match(name, @"(?<![\d.])\d+\.\d+(?:\.\d+)*(?:-(?:rc\d+|SNAPSHOT))?");
        return version.Success && version.Value != name ? version.Value : name;
    }

    /// <summary>
    /// This firmware's answer to a request (null: none) and whether it starts flashing. Other requests than
    /// get_firmware_info and firmware_upgrade are answered as <see cref="PretendRouter.AnswerFor"/> answers them.
    /// </summary>
    public (string? Answer, bool Flash) Answer(JsonNode request)
    {
        var reqId = request["req_id"]?.DeepClone();
        switch ((string?)request["type"])
        {
            case "get_firmware_info":
                string release, revision;
                lock (_lock)
                {
                    release = _release;
                    revision = _revision ?? DefaultRevision(_release);
                }
                return (new JsonObject
                {
                    ["type"] = "firmware_info_response", ["req_id"] = reqId,
                    ["data"] = new JsonObject
                    {
                        ["DISTRIB_ID"] = "ChaWrt", ["DISTRIB_RELEASE"] = release, ["DISTRIB_REVISION"] = revision,
                        ["DISTRIB_TARGET"] = "ramips/mt7621", ["DISTRIB_DESCRIPTION"] = $"ChaWrt {release} {revision}",
                    },
                }.ToJsonString(), false);
            case "firmware_upgrade":
                var url = request["url"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
                string? refused;
                lock (_lock)
                {
                    refused = url is null || !(url.StartsWith("http://", StringComparison.Ordinal) || url.StartsWith("https://", StringComparison.Ordinal))
                        ? UrlInvalid
                        : _state != PretendFirmwareState.Running ? UpgradeRunning
                        : Upgrade == PretendUpgrade.Refuse ? UpgradeFailed
                        : null;
                    if (refused is null)
                    {
                        _state = PretendFirmwareState.Flashing;
                        _image = ImageRelease ?? ReleaseFromUrl(url!);
                        _imageRevision = ImageRevision;
                        _urls.Add(url!);
                        _flashes++;
                    }
                }
                return refused is null
                    ? (new JsonObject
                    {
                        ["type"] = "firmware_upgrade_response", ["req_id"] = reqId, ["status"] = "success", ["message"] = UpgradeStarted,
                    }.ToJsonString(), true)
                    : (new JsonObject { ["type"] = "firmware_upgrade_error", ["req_id"] = reqId, ["error"] = refused }.ToJsonString(), false);
            default:
                return (PretendRouter.AnswerFor(request), false);
        }
    }

    internal void Rebooting()
    {
        lock (_lock) _state = PretendFirmwareState.Rebooting;
    }

    /// <summary>The end of the reboot: runs the image (good) or the old release (bad); false when it never comes back.</summary>
    internal bool Boot()
    {
        lock (_lock)
        {
            switch (Upgrade)
            {
                case PretendUpgrade.Never:
                    _state = PretendFirmwareState.Dead;
                    return false;
                case PretendUpgrade.Good when _image is not null:
                    _release = _image;
                    _revision = _imageRevision ?? DefaultRevision(_image);
                    break;
            }
            _image = null;
            _state = PretendFirmwareState.Running;
            return true;
        }
    }
}
