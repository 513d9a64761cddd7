using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fleet.Protocol;
using Fleet.Simulator;

namespace Fleet.Testing;

/// <summary>How a connection fuzz run goes (<see cref="ConnectionFuzz"/>).</summary>
public sealed record ConnectionFuzzOptions
{
    /// <summary>The node's HTTP address (its WebSocket endpoint is /ws/wifidogx there).</summary>
    public required Uri Node { get; init; }
    /// <summary>An operator or admin key for /api/v1.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Healthy routers, a third of each firmware era (seed, 2025, 9), reading like the firmware.</summary>
    public int Healthy { get; init; } = 30;
    /// <summary>Sockets sending mutated frames at once.</summary>
    public int FuzzSockets { get; init; } = 8;
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(3);
    public long Seed { get; init; } = 1;
    /// <summary>The healthy routers' heartbeat interval (the firmware's is 60 s).</summary>
    public TimeSpan HeartbeatEvery { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>How often, over the run, a command goes to one of the healthy routers (round robin).</summary>
    public TimeSpan CommandEvery { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Frames per second per fuzzing socket; 0: as fast as the socket takes them.</summary>
    public double FramesPerSecond { get; init; } = 200;
    /// <summary>How long a probe (or a fuzz socket's first connect) may wait for its reply.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Where failing sockets' last frames are written (one file each); null: not written.</summary>
    public string? FailureDirectory { get; init; }
    public Action<string>? Log { get; init; }
}

/// <summary>What a connection fuzz run saw. <see cref="Failures"/> empty: the node passed.</summary>
public sealed record ConnectionFuzzResult
{
    public TimeSpan Elapsed { get; init; }
    public long FramesSent { get; init; }
    public long WireOddities { get; init; }
    public long FuzzConnections { get; init; }
    public long UpgradesRefused { get; init; }
    public long ProbesAnswered { get; init; }
    public long ProbesUnanswered { get; init; }
    /// <summary>Fuzz sockets the node ended (dropped TCP, or answered a client close) before their probe.</summary>
    public long EndedByNode { get; init; }
    /// <summary>Close frames the node sent that no close of ours began, by status code.</summary>
    public IReadOnlyDictionary<string, long> CloseFramesFromNode { get; init; } = new Dictionary<string, long>();
    public long PingsFromNode { get; init; }
    public int HealthyRouters { get; init; }
    public int HealthyStillConnectedOnce { get; init; }
    public long HealthyHeartbeats { get; init; }
    public long HealthyReplies { get; init; }
    /// <summary>The longest a healthy router waited from a heartbeat to the next reply to its reports.</summary>
    public double HealthyReplyWaitMaxMs { get; init; }
    public long HealthyLosses { get; init; }
    public long CommandsSent { get; init; }
    public IReadOnlyDictionary<string, long> CommandOutcomes { get; init; } = new Dictionary<string, long>();
    public double CommandP50Ms { get; init; }
    public double CommandP99Ms { get; init; }
    public IReadOnlyDictionary<string, long> NodeRefused { get; init; } = new Dictionary<string, long>();
    public bool NodeReady { get; init; }
    public IReadOnlyList<string> Failures { get; init; } = [];
    public IReadOnlyList<string> FailureFiles { get; init; } = [];

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["target"] = "connection",
            ["seconds"] = Math.Round(Elapsed.TotalSeconds, 1),
            ["fuzz_frames_sent"] = FramesSent,
            ["fuzz_frames_per_second"] = Math.Round(FramesSent / Math.Max(1, Elapsed.TotalSeconds)),
            ["wire_oddities_sent"] = WireOddities,
            ["fuzz_connections"] = FuzzConnections,
            ["upgrades_refused"] = UpgradesRefused,
            ["probes_answered"] = ProbesAnswered,
            ["probes_unanswered"] = ProbesUnanswered,
            ["fuzz_sockets_ended_by_node"] = EndedByNode,
            ["close_frames_from_node"] = new JsonObject(CloseFramesFromNode.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["pings_from_node"] = PingsFromNode,
            ["healthy_routers"] = HealthyRouters,
            ["healthy_connected_once"] = HealthyStillConnectedOnce,
            ["healthy_heartbeats"] = HealthyHeartbeats,
            ["healthy_replies"] = HealthyReplies,
            ["healthy_reply_wait_max_ms"] = Math.Round(HealthyReplyWaitMaxMs, 1),
            ["healthy_losses"] = HealthyLosses,
            ["commands_sent"] = CommandsSent,
            ["command_outcomes"] = new JsonObject(CommandOutcomes.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["command_p50_ms"] = Math.Round(CommandP50Ms, 1),
            ["command_p99_ms"] = Math.Round(CommandP99Ms, 1),
            ["node_refused_frames"] = new JsonObject(NodeRefused.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["node_ready"] = NodeReady,
            ["failures"] = new JsonArray(Failures.Select(f => (JsonNode?)f).ToArray()),
            ["failure_files"] = new JsonArray(FailureFiles.Select(f => (JsonNode?)f).ToArray()),
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}

/// <summary>
/// The connection fuzzer, against a real node: <see cref="ConnectionFuzzOptions.Healthy"/> routers of every era (the
/// simulator's firmware-exact client: one frame per read, 1,024-byte reader, losses recorded) connect and heartbeat
/// and take commands through the admin API, while <see cref="ConnectionFuzzOptions.FuzzSockets"/> raw WebSockets send
/// mutated frames (<see cref="FrameMutator"/> over seeds naming their own device ids, never a healthy router's) as fast
/// as allowed, with now and then a frame odd on the wire (binary, fragmented, a ping, invalid UTF-8, an unknown opcode).
/// <para>
/// Most fuzz sockets bind first (a valid connect for their own device_id, answered), then send a batch of mutated
/// frames and a probe — a connect naming a gateway no other frame names, whose reply must come back: the socket still
/// reads and answers after whatever it was sent. The rest start with mutated frames (the dialect is decided by the
/// first frame) and are not probed. Sockets end by a TCP drop or a close of ours, and come back.
/// </para>
/// At the end every healthy router must still hold its first connection (never replaced or dropped), have lost no
/// frame and had every heartbeat followed by a reply within 15 s; every command must have succeeded (or been delivered, where its dialect does
/// not answer); the node must show each healthy router online, list a newly connected router in its directory, and be
/// ready; and no fuzz socket may have had a close frame it did not ask for, or a ping. The node's log is the caller's
/// to check (a file for a separate process, a logger for an in-process node: <see cref="NodeLog"/>).
/// </summary>
public sealed class ConnectionFuzz
{
    private readonly ConnectionFuzzOptions _o;
    private readonly HttpClient _http;
    private readonly ConcurrentQueue<string> _failures = new();
    private readonly ConcurrentQueue<string> _failureFiles = new();
    private readonly ConcurrentDictionary<string, long> _closeFrames = new();
    private readonly ConcurrentDictionary<string, long> _commandOutcomes = new();
    private readonly ConcurrentBag<double> _commandMs = [];
    private long _frames, _oddities, _connections, _refusedUpgrades, _probesOk, _probesFailed, _endedByNode, _pings, _commandsSent;

    public ConnectionFuzz(ConnectionFuzzOptions options)
    {
        _o = options;
        _http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = options.Node, Timeout = TimeSpan.FromSeconds(90) };
        if (options.ApiKey is { Length: > 0 } key) _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
    }

    private void Say(string line) => _o.Log?.Invoke(line);

    private void Fail(string what)
    {
        _failures.Enqueue(what);
        Say("FAILURE: " + what);
    }

    public static Task<ConnectionFuzzResult> RunAsync(ConnectionFuzzOptions options, CancellationToken ct = default) =>
        new ConnectionFuzz(options).RunAsync(ct);

    private async Task<ConnectionFuzzResult> RunAsync(CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var routers = Enumerable.Range(0, _o.Healthy).Select(i => new HealthyRouter(WsUri(), $"healthy-{_o.Seed}-{i:D3}",
            (FirmwareEra)(i % 3), _o.HeartbeatEvery)).ToList();
        try
        {
            foreach (var r in routers) r.Start(stopAll.Token);
            await WaitAsync(() => routers.All(r => r.Connections >= 1 && r.Connected), "every healthy router connected", TimeSpan.FromSeconds(60));
            await WaitAsync(async () =>
            {
                foreach (var r in routers)
                    if (await DeviceAsync(r.DeviceId) is not { } view || view["online"]?.GetValue<bool>() != true) return false;
                return true;
            }, "every healthy router online in the node's view", TimeSpan.FromSeconds(60));
            Say($"{routers.Count} healthy routers connected; fuzzing with {_o.FuzzSockets} sockets for {_o.Duration.TotalSeconds:0} s");

            using var fuzzing = CancellationTokenSource.CreateLinkedTokenSource(stopAll.Token);
            fuzzing.CancelAfter(_o.Duration);
            var commands = new List<Task>();
            var slots = Enumerable.Range(0, _o.FuzzSockets).Select(k => Task.Run(() => SlotAsync(k, fuzzing.Token))).ToList();
            var commander = Task.Run(async () =>
            {
                var n = 0;
                while (!fuzzing.IsCancellationRequested)
                {
                    // The command rate is the load's shape (one every CommandEvery), not a wait for anything.
                    try { await Task.Delay(_o.CommandEvery, fuzzing.Token); }
                    catch (OperationCanceledException) { break; }
                    if (routers.Count == 0) continue;
                    var router = routers[n % routers.Count];
                    lock (commands) commands.Add(CommandAsync(router, n++));
                }
            });
            var progress = Task.Run(async () =>
            {
                while (!fuzzing.IsCancellationRequested)
                {
                    // A progress line every 10 s for a long run; nothing waits on it.
                    try { await Task.Delay(TimeSpan.FromSeconds(10), fuzzing.Token); }
                    catch (OperationCanceledException) { break; }
                    Say($"{clock.Elapsed.TotalSeconds:0} s: {Interlocked.Read(ref _frames):N0} fuzz frames, {Interlocked.Read(ref _connections):N0} fuzz connections, " +
                        $"probes {Interlocked.Read(ref _probesOk)} answered / {Interlocked.Read(ref _probesFailed)} not, commands {Interlocked.Read(ref _commandsSent)}, " +
                        $"healthy connected once {routers.Count(r => r.Connections == 1 && r.Connected)}/{routers.Count}");
                }
            });
            await Task.WhenAll(slots);
            await commander;
            await progress;
            Say("fuzzing over; commands in flight finishing, then one command to every healthy router");
            Task[] pending;
            lock (commands) pending = [.. commands];
            await Task.WhenAll(pending);
            await Task.WhenAll(routers.Select((r, i) => CommandAsync(r, 1_000_000 + i, final: true)));
            await CheckRoutersAsync(routers);
            await CheckDirectoryAsync(routers, stopAll.Token);
        }
        finally
        {
            await stopAll.CancelAsync();
            foreach (var r in routers) await r.StopAsync();
        }
        if (!_closeFrames.IsEmpty)
            Fail($"the node sent close frames no close of ours began (firmware of 2025-07 to 2026-03 never reconnects after one): " +
                 string.Join(", ", _closeFrames.Select(kv => $"{kv.Value} with status {kv.Key}")));
        if (Interlocked.Read(ref _pings) > 0) Fail($"the node sent {_pings} ping(s) to devices");
        var ready = false;
        try { ready = (await _http.GetAsync("/readyz", ct)).IsSuccessStatusCode; }
        catch (HttpRequestException) { }
        if (!ready) Fail("the node is not ready at the end (/readyz)");
        var refused = new Dictionary<string, long>();
        try
        {
            var node = JsonNode.Parse(await _http.GetStringAsync("/api/v1/node", ct))!;
            foreach (var (k, v) in node["connections"]!["refused"]!.AsObject()) refused[k] = v!.GetValue<long>();
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or NullReferenceException)
        {
            Fail($"GET /api/v1/node failed: {ex.Message}");
        }
        var ms = _commandMs.OrderBy(x => x).ToArray();
        return new ConnectionFuzzResult
        {
            Elapsed = clock.Elapsed,
            FramesSent = _frames,
            WireOddities = _oddities,
            FuzzConnections = _connections,
            UpgradesRefused = _refusedUpgrades,
            ProbesAnswered = _probesOk,
            ProbesUnanswered = _probesFailed,
            EndedByNode = _endedByNode,
            CloseFramesFromNode = new SortedDictionary<string, long>(_closeFrames),
            PingsFromNode = _pings,
            HealthyRouters = routers.Count,
            HealthyStillConnectedOnce = routers.Count(r => r.Connections == 1),
            HealthyHeartbeats = routers.Sum(r => (long)r.HeartbeatsSent),
            HealthyReplies = routers.Sum(r => (long)r.Replies),
            HealthyReplyWaitMaxMs = routers.Count == 0 ? 0 : routers.Max(r => r.ReplyWaitMaxMs),
            HealthyLosses = routers.Sum(r => (long)r.Losses.Count),
            CommandsSent = _commandsSent,
            CommandOutcomes = new SortedDictionary<string, long>(_commandOutcomes),
            CommandP50Ms = ms.Length == 0 ? 0 : ms[(int)(ms.Length * 0.5)],
            CommandP99Ms = ms.Length == 0 ? 0 : ms[Math.Min(ms.Length - 1, (int)(ms.Length * 0.99))],
            NodeRefused = new SortedDictionary<string, long>(refused),
            NodeReady = ready,
            Failures = [.. _failures],
            FailureFiles = [.. _failureFiles],
        };
    }

    private Uri WsUri() => new($"ws://{_o.Node.Authority}/ws/wifidogx");

    private static async Task WaitAsync(Func<bool> condition, string what, TimeSpan within) =>
        await WaitAsync(() => Task.FromResult(condition()), what, within);

    // Eventually.True's polling (a condition with a deadline), without xunit: this file also runs in bench/Fuzz.
    private static async Task WaitAsync(Func<Task<bool>> condition, string what, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException) { }
            if (clock.Elapsed > within) throw new TimeoutException($"'{what}' did not happen within {within.TotalSeconds:0} s");
            await Task.Delay(100);
        }
    }

    private async Task<JsonNode?> DeviceAsync(string id)
    {
        using var r = await _http.GetAsync($"/api/v1/devices/{id}");
        return r.IsSuccessStatusCode ? JsonNode.Parse(await r.Content.ReadAsStringAsync()) : null;
    }

    // ------------------------------------------------------------------ healthy routers: commands and checks

    private async Task CommandAsync(HealthyRouter router, int n, bool final = false)
    {
        // get_firmware_info is answered in every dialect; auth is answered by 9.x only (delivered once written on seed/2025).
        var auth = !final && n % 2 == 1;
        var mac = $"02:00:00:{(n >> 16) & 0xff:x2}:{(n >> 8) & 0xff:x2}:{n & 0xff:x2}";
        var body = auth
            ? $$"""{"type":"auth","token":"t-{{n}}","client_ip":"192.168.1.{{1 + n % 250}}","client_mac":"{{mac}}","gw_id":"gw-1"}"""
            : """{"type":"get_firmware_info"}""";
        var expected = auth && router.Era != FirmwareEra.V9 ? "delivered" : "succeeded";
        Interlocked.Increment(ref _commandsSent);
        var clock = Stopwatch.StartNew();
        string outcome;
        try
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await _http.PostAsync($"/api/v1/devices/{router.DeviceId}/commands?wait=60", content);
            var text = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode == 200 ? (string?)JsonNode.Parse(text)?["status"] : null;
            outcome = status ?? $"http {(int)response.StatusCode}";
            if (status != expected)
                Fail($"command {(auth ? "auth" : "get_firmware_info")} to {router.DeviceId} ({router.Dialect}): expected {expected}, got {outcome}: {text}");
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
        {
            outcome = "error " + ex.GetType().Name;
            Fail($"command to {router.DeviceId}: {ex.Message}");
        }
        _commandMs.Add(clock.Elapsed.TotalMilliseconds);
        _commandOutcomes.AddOrUpdate($"{(auth ? "auth" : "get_firmware_info")}/{router.Dialect}: {outcome}", 1, (_, v) => v + 1);
    }

    private async Task CheckRoutersAsync(List<HealthyRouter> routers)
    {
        foreach (var r in routers)
        {
            if (r.Connections != 1 || !r.Connected)
                Fail($"healthy {r.DeviceId} ({r.Dialect}): {r.Connections} connection(s), connected {r.Connected} — it was dropped or replaced: {r.Describe()}");
            if (r.Losses.Count > 0)
                Fail($"healthy {r.DeviceId} ({r.Dialect}) lost {r.Losses.Count} frame(s): {string.Join("; ", r.Losses.Take(5))}");
            // Every heartbeat answered soon: a reply comes after each (one reply may answer several: the node keeps only
            // one reply to unchanged reports waiting for the router's reader).
            if (r.ReplyWaitMaxMs > MaxReplyWait.TotalMilliseconds || r.UnansweredFor > MaxReplyWait || r.Replies == 0)
                Fail($"healthy {r.DeviceId} ({r.Dialect}): {r.HeartbeatsSent} heartbeats, {r.Replies} replies, the longest wait for a reply " +
                     $"{r.ReplyWaitMaxMs:0} ms, unanswered now for {r.UnansweredFor.TotalMilliseconds:0} ms (at most {MaxReplyWait.TotalSeconds:0} s)");
            var view = await DeviceAsync(r.DeviceId);
            if (view?["online"]?.GetValue<bool>() != true || (string?)view["protocol"] != r.Dialect)
                Fail($"healthy {r.DeviceId}: the node shows {view?.ToJsonString() ?? "nothing"}");
        }
    }

    private async Task CheckDirectoryAsync(List<HealthyRouter> routers, CancellationToken ct)
    {
        // The directory is fed from the journal by one projection: a poisoned event would stall it for every device.
        var canary = new HealthyRouter(WsUri(), $"canary-{_o.Seed}-{Environment.TickCount64 % 100000}", FirmwareEra.V2025, _o.HeartbeatEvery);
        canary.Start(ct);
        try
        {
            await WaitAsync(async () =>
            {
                var list = JsonNode.Parse(await _http.GetStringAsync($"/api/v1/devices?q={canary.DeviceId}&online=true"))!;
                return list["items"]!.AsArray().Count == 1;
            }, "a router connected after the fuzzing listed online in the directory", TimeSpan.FromSeconds(60));
            var listed = JsonNode.Parse(await _http.GetStringAsync($"/api/v1/devices?q=healthy-{_o.Seed}-&online=true&limit=1000"))!["items"]!.AsArray().Count;
            if (listed != routers.Count) Fail($"the directory lists {listed} of {routers.Count} healthy routers online");
        }
        catch (TimeoutException ex)
        {
            Fail(ex.Message);
        }
        finally
        {
            await canary.StopAsync();
        }
    }

    // ------------------------------------------------------------------ fuzz sockets

    private sealed class FuzzSocket(RawWebSocket socket) : IAsyncDisposable
    {
        public RawWebSocket Socket { get; } = socket;
        public ConcurrentQueue<string> Inbox { get; } = new();
        public SemaphoreSlim Arrived { get; } = new(0);
        public volatile bool Ended;
        public volatile bool WeClosed;
        public Task Reader = Task.CompletedTask;
        public ValueTask DisposeAsync() => Socket.DisposeAsync();
    }

    private async Task SlotAsync(int slot, CancellationToken ct)
    {
        var deviceId = $"fuzz-{_o.Seed}-{slot:D2}";
        // Mostly what a device sends, reports most of all (their path reaches the entity); some of what a controller sends.
        var deviceSeeds = FuzzSeeds.FromDevice(deviceId);
        var reports = deviceSeeds.Where(FuzzSeeds.IsReport).ToList();
        var mutator = new FrameMutator([.. deviceSeeds, .. deviceSeeds, .. reports, .. reports, .. reports, .. reports, .. FuzzSeeds.FromController(deviceId)]);
        var rng = FrameMutator.CaseRandom(_o.Seed, 1_000_000L * (slot + 1));
        var recent = new Queue<string>();
        var probe = 0;
        var pace = _o.FramesPerSecond > 0 ? TimeSpan.FromSeconds(1 / _o.FramesPerSecond) : TimeSpan.Zero;
        var nextSend = Stopwatch.GetTimestamp();

        void Remember(string what)
        {
            recent.Enqueue(what);
            if (recent.Count > 200) recent.Dequeue();
        }

        async Task<bool> Send(FuzzSocket s, byte opcode, byte[] payload, bool fin = true)
        {
            if (pace > TimeSpan.Zero)
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), nextSend);
                if (wait > TimeSpan.Zero) await Task.Delay(wait, ct); // pacing the fuzz frames (--pace), the load's shape
                nextSend = Math.Max(nextSend, Stopwatch.GetTimestamp()) + (long)(pace.TotalSeconds * Stopwatch.Frequency);
            }
            try
            {
                await s.Socket.SendFrameAsync(opcode, payload, fin, ct);
                Interlocked.Increment(ref _frames);
                return true;
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                return false;
            }
        }

        while (!ct.IsCancellationRequested)
        {
            FuzzSocket s;
            try
            {
                var raw = await RawWebSocket.ConnectAsync(_o.Node.Host, _o.Node.Port, "/ws/wifidogx", ct);
                if (!raw.ResponseHead.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref _refusedUpgrades);
                    await raw.DisposeAsync();
                    await Task.Delay(200, ct); // a refused upgrade is retried after a pause, as a real client backs off
                    continue;
                }
                s = new FuzzSocket(raw);
            }
            catch (OperationCanceledException) { return; }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
            {
                Interlocked.Increment(ref _refusedUpgrades);
                try { await Task.Delay(200, ct); } catch (OperationCanceledException) { return; } // reconnect backoff, as above
                continue;
            }
            Interlocked.Increment(ref _connections);
            s.Reader = Task.Run(() => ReadAsync(s));
            await using (s)
            {
                try
                {
                    var bound = rng.Next(10) < 7;
                    var op = rng.Next(3) == 0; // a third of the sockets speak the 9.x dialect
                    Remember($"--- connection {Interlocked.Read(ref _connections)}, {(bound ? "bound" : "unbound")}, {(op ? "op" : "type")}");
                    if (bound)
                    {
                        var first = Connect(deviceId, op, "fz-1");
                        Remember("connect: " + first);
                        if (!await Send(s, RawFrame.Text, Encoding.UTF8.GetBytes(first))) continue;
                        var replied = await AwaitAsync(s, _ => true, ct);
                        if (replied != true)
                        {
                            if (ct.IsCancellationRequested) break;
                            if (s.Ended) Interlocked.Increment(ref _endedByNode);
                            else Fail($"{deviceId}: a fresh socket's first connect was not answered within {_o.ProbeTimeout.TotalSeconds:0} s");
                            continue;
                        }
                    }
                    while (!ct.IsCancellationRequested && !s.Ended)
                    {
                        // Bound sockets: a batch, then a probe (which waits for the replies the batch made the node queue);
                        // unbound ones stream a longer batch and are not probed.
                        var batch = bound ? 20 + rng.Next(181) : 50 + rng.Next(351);
                        for (var i = 0; i < batch && !ct.IsCancellationRequested && !s.Ended && !s.WeClosed; i++)
                        {
                            if (rng.Next(150) == 0)
                            {
                                var (opcode, payload, fin, what) = Oddity(rng, deviceId, op);
                                Interlocked.Increment(ref _oddities);
                                Remember("wire: " + what);
                                if (opcode == RawFrame.Close) s.WeClosed = true;
                                if (!await Send(s, opcode, payload, fin)) break;
                                continue;
                            }
                            var frame = mutator.Next(rng, out var recipe);
                            // A text frame that is not UTF-8 ends the socket in the WebSocket layer, before any decoding (the
                            // codec fuzzer has those); here it is made UTF-8, and sent as it is only as a wire oddity.
                            if (!System.Text.Unicode.Utf8.IsValid(frame)) frame = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(frame));
                            Remember($"{recipe}: {Convert.ToBase64String(frame)}");
                            if (!await Send(s, RawFrame.Text, frame)) break;
                        }
                        if (!bound || s.Ended || ct.IsCancellationRequested || s.WeClosed) break;
                        var gw = $"probe-{slot}-{++probe}";
                        var probeFrame = Connect(deviceId, op, gw);
                        Remember("probe: " + probeFrame);
                        var marker = $"\"gw_id\":\"{gw}\"";
                        if (!await Send(s, RawFrame.Text, Encoding.UTF8.GetBytes(probeFrame))) break;
                        var answered = await AwaitAsync(s, text => text.Contains(marker, StringComparison.Ordinal), CancellationToken.None);
                        if (answered == true) Interlocked.Increment(ref _probesOk);
                        else if (s.Ended) break;
                        else
                        {
                            Interlocked.Increment(ref _probesFailed);
                            Fail($"{deviceId}: probe {gw} unanswered within {_o.ProbeTimeout.TotalSeconds:0} s on a socket still open" + SaveRecent(deviceId, probe, recent));
                            break;
                        }
                        if (rng.Next(2) == 0) break; // a new connection, or more on this one
                    }
                    if (s.Ended && !s.WeClosed) Interlocked.Increment(ref _endedByNode);
                    else if (!s.Ended && rng.Next(4) == 0)
                    {
                        // A clean close of ours; the node completes it.
                        s.WeClosed = true;
                        await Send(s, RawFrame.Close, [0x03, 0xE8]);
                    }
                }
                catch (OperationCanceledException) { }
            }
            try { await s.Reader; } catch (Exception) { /* the reader records how the socket ended */ }
        }
    }

    private string SaveRecent(string deviceId, int probe, IEnumerable<string> recent)
    {
        if (_o.FailureDirectory is null) return "";
        Directory.CreateDirectory(_o.FailureDirectory);
        var path = Path.Combine(_o.FailureDirectory, $"connection-{deviceId}-probe-{probe}.txt");
        File.WriteAllLines(path, recent);
        _failureFiles.Enqueue(path);
        return $" (its last frames: {path})";
    }

    /// <summary>Waits for a text frame from the node that <paramref name="match"/> accepts; null when the socket ended first.</summary>
    private async Task<bool?> AwaitAsync(FuzzSocket s, Func<string, bool> match, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < _o.ProbeTimeout)
        {
            while (s.Inbox.TryDequeue(out var text))
                if (match(text)) return true;
            if (s.Ended) return null;
            try { await s.Arrived.WaitAsync(TimeSpan.FromMilliseconds(200), ct); }
            catch (OperationCanceledException) { return false; }
        }
        return false;
    }

    /// <summary>Reads what the node sends: text frames to the inbox; close frames it began and pings are counted.</summary>
    private async Task ReadAsync(FuzzSocket s)
    {
        try
        {
            while (true)
            {
                var frame = await s.Socket.ReadFrameAsync();
                switch (frame.Opcode)
                {
                    case RawFrame.Text:
                        s.Inbox.Enqueue(frame.PayloadText);
                        s.Arrived.Release();
                        break;
                    case RawFrame.Close:
                        if (!s.WeClosed)
                        {
                            var code = frame.Payload.Length >= 2 ? (frame.Payload[0] << 8 | frame.Payload[1]).ToString(CultureInfo.InvariantCulture) : "none";
                            _closeFrames.AddOrUpdate(code, 1, (_, v) => v + 1);
                        }
                        return;
                    case RawFrame.Ping:
                        Interlocked.Increment(ref _pings);
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or ObjectDisposedException or System.Net.Sockets.SocketException
                                       or InvalidDataException or OperationCanceledException)
        {
        }
        finally
        {
            s.Ended = true;
            s.Arrived.Release();
        }
    }

    private static string Connect(string deviceId, bool op, string gwId)
    {
        var gateway = $$"""[{"gw_id":"{{gwId}}","gw_channel":"fuzz","gw_address_v4":"10.9.0.1","auth_mode":1,"gw_interface":"br-lan"}]""";
        return op
            ? $$"""{"op":"connect","device_id":"{{deviceId}}","mode":0,"gateway":{{gateway}},"req_id":"{{gwId}}"}"""
            : $$"""{"type":"connect","device_id":"{{deviceId}}","gateway":{{gateway}}}""";
    }

    /// <summary>A frame odd on the wire: binary, fragmented, control frames from the device, invalid UTF-8, reserved opcodes.</summary>
    private static (byte Opcode, byte[] Payload, bool Fin, string What) Oddity(Random rng, string deviceId, bool op)
    {
        var heartbeat = Encoding.UTF8.GetBytes(op
            ? $$"""{"op":"heartbeat","device_id":"{{deviceId}}","gateway":[{"gw_id":"fz-1","auth_mode":1}],"req_id":7}"""
            : $$"""{"type":"heartbeat","device_id":"{{deviceId}}","gateway":[{"gw_id":"fz-1","auth_mode":1}]}""");
        return rng.Next(8) switch
        {
            0 => (RawFrame.Binary, heartbeat, true, "binary frame"),
            1 => (RawFrame.Text, heartbeat[..(heartbeat.Length / 2)], false, "first half of a fragmented text message"),
            2 => (RawFrame.Continuation, heartbeat[(heartbeat.Length / 2)..], true, "a continuation frame"),
            3 => (RawFrame.Ping, "fuzz"u8.ToArray(), true, "a ping from the device"),
            4 => (RawFrame.Pong, [], true, "an unsolicited pong"),
            5 => (RawFrame.Text, [.. "{\"type\":\"heartbeat\",\"device_id\":\""u8, 0xC0, 0xAF, .. "\"}"u8], true, "a text frame with invalid UTF-8"),
            6 => ((byte)(3 + rng.Next(5)), heartbeat, true, "a reserved data opcode"),
            _ => (RawFrame.Close, [0x03, 0xE8], true, "a close frame from the device"),
        };
    }

    // ------------------------------------------------------------------ a healthy router

    /// <summary>A router of one era over the simulator's firmware-exact client, counting what a fuzz run checks.</summary>
    /// <summary>How long a healthy router may wait for the reply to a heartbeat (the node answers in milliseconds).</summary>
    private static readonly TimeSpan MaxReplyWait = TimeSpan.FromSeconds(15);

    private sealed class HealthyRouter(Uri url, string deviceId, FirmwareEra era, TimeSpan heartbeatEvery) : IFirmwareObserver
    {
        private readonly SimulatedDevice _device = new(deviceId, era);
        private readonly List<string> _losses = [];
        private readonly ConcurrentQueue<string> _events = new();
        private FirmwareClient? _client;
        private Task _loop = Task.CompletedTask;
        private CancellationTokenSource _stop = new();
        private CancellationToken _ct;
        private int _connections, _heartbeats, _replies;
        // The oldest heartbeat no reply has followed yet (Stopwatch ticks, 0: none), and the longest such wait so far.
        private long _unansweredSince;
        private double _maxWaitMs;

        public string DeviceId => _device.DeviceId;
        public FirmwareEra Era => _device.Era;
        public string Dialect => _device.Dialect.Name;
        public int Connections => Volatile.Read(ref _connections);
        public bool Connected => _client?.Connected ?? false;
        public int HeartbeatsSent => Volatile.Read(ref _heartbeats);
        public int Replies => Volatile.Read(ref _replies);
        public IReadOnlyList<string> Losses { get { lock (_losses) return [.. _losses]; } }
        public double ReplyWaitMaxMs { get { lock (_losses) return _maxWaitMs; } }

        public TimeSpan UnansweredFor
        {
            get { lock (_losses) return _unansweredSince == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_unansweredSince); }
        }

        public string Describe() => string.Join(" | ", _events.TakeLast(10));

        public void Start(CancellationToken outer)
        {
            _stop = CancellationTokenSource.CreateLinkedTokenSource(outer);
            var ct = _ct = _stop.Token;
            _client = new FirmwareClient(_device, new FirmwareClientOptions
            {
                Url = url, Delays = ReconnectDelays.All(TimeSpan.FromSeconds(1)), ConnectTimeout = TimeSpan.FromSeconds(20),
            }, this);
            var client = _client;
            _loop = Task.Run(() => client.RunAsync(ct));
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            try { await _loop; }
            catch (OperationCanceledException) { }
        }

        private void Event(string what)
        {
            _events.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {what}");
            while (_events.Count > 50) _events.TryDequeue(out _);
        }

        private void Loss(string what)
        {
            lock (_losses) _losses.Add(what);
            Event("LOSS " + what);
        }

        void IFirmwareObserver.OnUpgraded(long epoch)
        {
            Interlocked.Increment(ref _connections);
            Event("upgraded");
            _ = Task.Run(async () =>
            {
                try
                {
                    while (!_ct.IsCancellationRequested)
                    {
                        await Task.Delay(heartbeatEvery, _ct); // the router's heartbeat interval: the behaviour simulated
                        // Stamped before the heartbeat goes: on loopback its reply can be read before the send returns.
                        lock (_losses)
                            if (_unansweredSince == 0) _unansweredSince = Stopwatch.GetTimestamp();
                        if (_client is not { } c || !c.Beat(epoch)) return;
                    }
                }
                catch (OperationCanceledException) { }
            });
        }

        void IFirmwareObserver.OnReportSent(bool heartbeat)
        {
            if (heartbeat) Interlocked.Increment(ref _heartbeats);
        }

        void IFirmwareObserver.OnConnectFailed(string reason) => Event("connect failed: " + reason);
        void IFirmwareObserver.OnBadUpgrade(string detail) => Loss("bad upgrade: " + detail);
        void IFirmwareObserver.OnLoss(FrameLoss loss) => Loss(loss.ToString());
        void IFirmwareObserver.OnWedged(int bytes) => Loss($"wedged by a read of {bytes} bytes");
        void IFirmwareObserver.OnMisread(int opcode, int bytes) => Loss($"misread {bytes} bytes as opcode {opcode}");
        void IFirmwareObserver.OnControlFrame(int opcode, bool answered, string detail) => Loss($"control frame {opcode}: {detail}");
        void IFirmwareObserver.OnDisconnected(string reason, TimeSpan? reconnectAfter) => Event("disconnected: " + reason);

        void IFirmwareObserver.OnHandled(RouterInbound inbound, DeviceAction action, byte[]? answer)
        {
            if (inbound.Kind is InboundKind.ReportReply)
            {
                Interlocked.Increment(ref _replies);
                lock (_losses)
                {
                    if (_unansweredSince != 0) _maxWaitMs = Math.Max(_maxWaitMs, Stopwatch.GetElapsedTime(_unansweredSince).TotalMilliseconds);
                    _unansweredSince = 0;
                }
            }
            else if (inbound.Kind is InboundKind.Complaint) Loss($"could not use a frame ({inbound.Name}): {inbound.Detail}");
        }
    }
}

/// <summary>One entry of a node's log: its level (Error, Critical…), category, message and exception text, if any.</summary>
public sealed record NodeLogEntry(string Level, string Category, string Message, string? Exception)
{
    /// <summary>A line of the console logger's JSON format (<c>--Logging:Console:FormatterName json</c>); null for anything else.</summary>
    public static NodeLogEntry? Parse(string line)
    {
        if (!line.StartsWith('{')) return null;
        try
        {
            var o = JsonNode.Parse(line);
            return o?["LogLevel"] is null ? null
                : new NodeLogEntry((string?)o["LogLevel"] ?? "", (string?)o["Category"] ?? "", (string?)o["Message"] ?? "", (string?)o["Exception"]);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// What a node's log must not hold after fuzzing: any entry at Error or Critical level that carries an exception
/// (an actor failing and being restarted is logged so by its supervisor; an exception escaping a request handler is
/// logged so by Kestrel), any Critical entry, and any Error entry that names an exception or a restart in its text.
/// Error entries the node writes on purpose about bad device input (no exception) are counted, not failed.
/// </summary>
public static class NodeLog
{
    public static (IReadOnlyList<string> Failures, IReadOnlyDictionary<string, long> Errors) Check(IEnumerable<NodeLogEntry> entries)
    {
        var failures = new List<string>();
        var errors = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (e.Level is not ("Error" or "Critical")) continue;
            var message = e.Message.Length > 160 ? e.Message[..160] + "…" : e.Message;
            var key = $"{e.Level} {e.Category}: {System.Text.RegularExpressions.Regex.Replace(message, "[0-9]+", "N")}";
            errors[key] = errors.GetValueOrDefault(key) + 1;
            if (e.Level == "Critical" || !string.IsNullOrEmpty(e.Exception)
                || e.Message.Contains("Exception", StringComparison.Ordinal) || e.Message.Contains("restart", StringComparison.OrdinalIgnoreCase))
                failures.Add($"node log: {e.Level} {e.Category}: {e.Message}" + (e.Exception is null ? "" : $"\n{e.Exception}"));
        }
        return (failures, errors);
    }
}
