using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Fleet.Cluster.Tests.Support;
using Fleet.Protocol;
using Fleet.Simulator;

namespace Fleet.Cluster.Tests.Chaos;

/// <summary>
/// The chaos run (issue 11): three nodes on PostgreSQL behind nginx, the simulator's routers of all three
/// dialects reading like the real client, an open-loop operator load of every command type through nginx's
/// admin listener; every 20–60 s a random node is SIGKILLed or SIGTERMed and restarted, and every 10–25 s a
/// third of the routers drop their connection and come back. At the end <see cref="ChaosChecker"/> holds the
/// admin API against the simulator's device-side log. Its length comes from FLEET_CHAOS_SECONDS (default 120:
/// the short run of the test command); bench/scripts/chaos.sh runs the 10-minute one.
/// </summary>
public sealed class ChaosTests(ITestOutputHelper output) : ClusterTestBase(output)
{
    private static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;

    private static double EnvD(string name, double fallback) =>
        double.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;

    private readonly TimeSpan _chaos = TimeSpan.FromSeconds(Env("FLEET_CHAOS_SECONDS", 120));
    private readonly int _devices = Env("FLEET_CHAOS_DEVICES", 30);
    private readonly double _rate = EnvD("FLEET_CHAOS_RATE", 3);
    private readonly int _seed = Env("FLEET_CHAOS_SEED", Environment.TickCount & 0x7fffffff);

    /// <summary>The answer deadline given to every command (?timeout=): a command sent to a router that vanished ends timed_out this soon.</summary>
    private const int CommandTimeoutSeconds = 20;

    private readonly ConcurrentBag<AcceptedCommand> _accepted = [];
    private readonly ConcurrentDictionary<string, int> _refused = new();
    private readonly ConcurrentDictionary<string, int> _retries = new();
    private readonly ConcurrentQueue<string> _events = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<(string Ip, string Mac)>> _clients = new();
    private int _submitted, _abandoned;

    [Fact]
    public async Task Every_command_ends_once_and_no_router_executes_one_twice_through_kills_restarts_and_reconnect_waves()
    {
        var test = TestContext.Current.CancellationToken;
        var random = new Random(_seed);
        Log($"chaos {_chaos.TotalSeconds:0} s, {_devices} routers (seed/2025/9 a third each), {_rate} commands/s, seed {_seed}");
        var deviceLog = Path.Combine(Cluster.WorkDir, "device-log.jsonl");
        var options = new SimulatorOptions
        {
            Url = Cluster.Nginx.WebSocketUri,
            Devices = _devices,
            Firmware = FirmwareChoice.Mix,
            HeartbeatSeconds = 15,
            Ramp = 20,
            DevicePrefix = "chaos",
            StatsSeconds = 0,
            DeviceLog = deviceLog,
            Seed = _seed,
        };
        using var runner = new SimulatorRunner(options);
        using var stopRouters = CancellationTokenSource.CreateLinkedTokenSource(test);
        var routersRun = Task.Run(() => runner.RunAsync(stopRouters.Token), CancellationToken.None);
        using var admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Cluster.Nginx.AdminPort}"), Timeout = TimeSpan.FromSeconds(15) }.Authorize();

        try
        {
            await runner.WaitConnectedAsync(_devices, TimeSpan.FromSeconds(60), test);
            var notOnline = await RoutersNotOnline(runner, TimeSpan.FromSeconds(60));
            Assert.True(notOnline.Count == 0, $"before the chaos, routers not online: {string.Join(", ", notOnline.Take(5))}");
            Log($"{_devices} routers online; chaos starts at {DateTime.UtcNow:HH:mm:ss.fff}");

            // ---------------------------------------------------------------- the chaos
            var clock = Stopwatch.StartNew();
            var chaosStart = DateTime.UtcNow;
            using var chaosOver = CancellationTokenSource.CreateLinkedTokenSource(test);
            chaosOver.CancelAfter(_chaos);
            var submits = new ConcurrentBag<Task>();
            var load = Task.Run(() => OperatorLoad(runner, admin, new Random(random.Next()), submits, chaosOver.Token), CancellationToken.None);
            var kills = Task.Run(() => NodeChaos(new Random(random.Next()), clock, chaosOver.Token), CancellationToken.None);
            var waves = Task.Run(() => ReconnectWaves(runner, new Random(random.Next()), clock, chaosOver.Token), CancellationToken.None);
            await Task.WhenAll(load, kills, waves);
            Log($"chaos over after {clock.Elapsed.TotalSeconds:0} s; waiting for {submits.Count} submits to end");
            await Task.WhenAll(submits);

            // ---------------------------------------------------------------- settle
            foreach (var n in Cluster.Nodes.Where(n => !n.Running))
            {
                Log($"{n.Name} is not running at the end of the chaos: starting it");
                n.Start();
            }
            await Cluster.WaitFormed(Cluster.Nodes, TimeSpan.FromSeconds(120));
            var settle = Stopwatch.StartNew();
            var unfinished = await WaitCommandsFinal(TimeSpan.FromSeconds(CommandTimeoutSeconds * 3 + 30));
            Log($"commands final after {settle.Elapsed.TotalSeconds:0} s of settling ({unfinished} not final)");
            var offline = await RoutersNotOnline(runner, TimeSpan.FromSeconds(60));
            Log($"routers online after {settle.Elapsed.TotalSeconds:0} s of settling ({offline.Count} not)");

            // The directory is fed from the journal (about 1 s behind): wait for it to agree, then judge what it shows.
            ChaosInput? input = null;
            try
            {
                await Eventually.True(async () =>
                {
                    input = await Collect(runner, deviceLog);
                    return !ChaosChecker.Check(input).Violations.Any(v =>
                        v.Kind is ViolationKind.DirectoryDrift or ViolationKind.RouterOffline or ViolationKind.EntityDisagreesWithRouter);
                }, "the directory agrees with the entities and the routers", TimeSpan.FromSeconds(30), every: TimeSpan.FromSeconds(2));
            }
            catch (TimeoutException) { } // what still disagrees is judged below, with the rest

            // ---------------------------------------------------------------- the check
            await stopRouters.CancelAsync();
            await routersRun;
            runner.DeviceLog!.Flush();
            input = input! with { DeviceLog = DeviceLogLine.ReadFile(deviceLog) };
            var report = ChaosChecker.Check(input);
            report.Figures.Insert(0, ("chaos", $"{_chaos.TotalSeconds:0} s from {chaosStart:HH:mm:ss} UTC, {_devices} routers (seed/2025/9), {_rate} commands/s offered, seed {_seed}"));
            report.Figures.Insert(1, ("node events", string.Join("; ", _events)));
            report.Figures.Insert(2, ("submits", $"{_submitted} sent, {_accepted.Count} accepted, {_abandoned} abandoned after retries, " +
                                                 $"refused: {(_refused.IsEmpty ? "none" : string.Join(", ", _refused.Select(p => $"{p.Key} ×{p.Value}")))}; " +
                                                 $"retried because of: {(_retries.IsEmpty ? "nothing" : string.Join(", ", _retries.Select(p => $"{p.Key} ×{p.Value}")))}"));
            report.Figures.Add(("simulator", runner.Stats.Line(0)));
            var text = report.Render();
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Log(line);
            Measure($"chaos {_chaos.TotalSeconds:0} s: {report.Violations.Count} violations; " +
                    string.Join("; ", report.Figures.Where(f => f.Name is not "node events" and not "simulator").Select(f => $"{f.Name}: {f.Value}")));
            // The files hold every violation (the test output the first 10 of each kind).
            var full = report.Render(int.MaxValue);
            File.WriteAllText(Path.Combine(Cluster.WorkDir, "chaos-report.txt"), full);
            if (Environment.GetEnvironmentVariable("FLEET_CHAOS_REPORT") is { Length: > 0 } reportPath)
                File.WriteAllText(reportPath, $"work dir {Cluster.WorkDir}\n{full}");
            Assert.True(report.Violations.Count == 0, $"the chaos run found {report.Violations.Count} violations:\n{report.Render(5)}");
        }
        finally
        {
            await stopRouters.CancelAsync();
            await routersRun;
        }
    }

    // ------------------------------------------------------------------ the operator

    /// <summary>Every type each dialect executes (seed's own five; 2025 adds EXTENSIONS.md's; 9.x all, the privileged ones too).</summary>
    private static readonly string[] SeedKinds = ["auth", "kickoff", "tmp_pass", "get_firmware_info", "firmware_upgrade"];
    private static readonly string[] Kinds2025 =
    [
        .. SeedKinds, "get_status", "reboot_device", "update_device_info", "get_wifi_info", "set_wifi_info", "get_sys_info",
        "sync_trusted_domain", "get_trusted_domains", "sync_trusted_wildcard_domains", "get_trusted_wildcard_domains", "get_client_info",
    ];
    private static readonly string[] Kinds9 =
    [
        .. Kinds2025, "get_clients", "get_device_info", "sync_trusted_mac", "get_trusted_mac", "shell", "set_auth_serv", "set_mqtt_serv",
        "set_websocket_serv",
    ];

    private static string[] KindsOf(FirmwareEra era) => era switch { FirmwareEra.Seed => SeedKinds, FirmwareEra.V9 => Kinds9, _ => Kinds2025 };

    /// <summary>Open loop: a command every 1/rate s, whatever the earlier ones are doing.</summary>
    private async Task OperatorLoad(SimulatorRunner runner, HttpClient admin, Random random, ConcurrentBag<Task> submits, CancellationToken ct)
    {
        var every = TimeSpan.FromSeconds(1 / _rate);
        var next = Stopwatch.GetTimestamp();
        var n = 0;
        while (!ct.IsCancellationRequested)
        {
            var device = runner.Devices[random.Next(runner.Devices.Count)];
            var kinds = KindsOf(device.Era);
            var kind = kinds[random.Next(kinds.Length)];
            // Reboots take a router away for 5 s: one in four picks of it is kept.
            if (kind == "reboot_device" && random.Next(4) != 0) kind = "get_status";
            var body = Body(kind, device.DeviceId, ++n);
            var key = $"chaos-{_seed}-{n}";
            submits.Add(Task.Run(() => Submit(admin, device.DeviceId, kind, body, key), CancellationToken.None));
            next += (long)(every.TotalSeconds * Stopwatch.Frequency);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
            try
            {
                if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
            }
            catch (OperationCanceledException) { break; }
        }
    }

    /// <summary>A request of this kind whose content is this command's own wherever the kind has content (so a second execution shows).</summary>
    private string Body(string kind, string deviceId, int n)
    {
        var ip = $"10.{n >> 16 & 0xff}.{n >> 8 & 0xff}.{(n & 0xff) | 1}";
        var mac = SimulatedDevice.MacOf(n, 0x0a);
        JsonObject o = kind switch
        {
            "auth" => new() { ["type"] = kind, ["token"] = $"tok-{n}", ["client_ip"] = ip, ["client_mac"] = mac, ["gw_id"] = "gw-1" },
            "kickoff" => Kickoff(deviceId, ip, mac),
            "tmp_pass" => new() { ["type"] = kind, ["client_mac"] = mac, ["timeout"] = 600 },
            "firmware_upgrade" => new() { ["type"] = kind, ["url"] = $"http://firmware.example.com/chaos-{n}.bin" },
            "update_device_info" => new() { ["type"] = kind, ["device_info"] = new JsonObject { ["location_id"] = $"chaos-{n}" } },
            "set_wifi_info" => new() { ["type"] = kind, ["data"] = new JsonObject { ["radio0"] = new JsonObject { ["channel"] = 1 + n % 11, ["ssid"] = $"chaos-{n}" } } },
            "sync_trusted_domain" => new() { ["type"] = kind, ["domains"] = new JsonArray($"d{n}.example.com") },
            "sync_trusted_wildcard_domains" => new() { ["type"] = kind, ["domains"] = new JsonArray($"*.w{n}.example.com") },
            "get_client_info" => new() { ["type"] = kind, ["mac"] = mac },
            "sync_trusted_mac" => new() { ["type"] = kind, ["macs"] = new JsonArray(mac) },
            "shell" => new() { ["type"] = kind, ["command"] = $"echo chaos-{n}" },
            "set_auth_serv" => new() { ["type"] = kind, ["hostname"] = $"auth{n}.example.com" },
            "set_mqtt_serv" => new() { ["type"] = kind, ["hostname"] = $"mqtt{n}.example.com" },
            // Pointed at where it already is (nginx), so the router keeps coming back to this cluster.
            "set_websocket_serv" => new() { ["type"] = kind, ["hostname"] = "127.0.0.1", ["port"] = Cluster.Nginx.Port, ["path"] = "/ws/wifidogx" },
            _ => new() { ["type"] = kind },
        };
        if (kind == "auth") _clients.GetOrAdd(deviceId, _ => new()).Enqueue((ip, mac));
        return o.ToJsonString();
    }

    /// <summary>A kickoff of a client an earlier auth let in, where there is one (else of a stranger: the router refuses it, the command fails).</summary>
    private JsonObject Kickoff(string deviceId, string ip, string mac)
    {
        if (_clients.TryGetValue(deviceId, out var q) && q.TryDequeue(out var c)) (ip, mac) = c;
        return new JsonObject { ["type"] = "kickoff", ["client_ip"] = ip, ["client_mac"] = mac, ["gw_id"] = "gw-1" };
    }

    /// <summary>
    /// What an operator's script does: POST with an Idempotency-Key; on a 5xx, a timeout or a refused
    /// connection (a node going down behind nginx) retry with the same key for up to 90 s; a 4xx is an answer.
    /// </summary>
    private async Task Submit(HttpClient admin, string deviceId, string kind, string body, string key)
    {
        Interlocked.Increment(ref _submitted);
        var deadline = Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            string problem;
            try
            {
                using var req = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/devices/{deviceId}/commands?timeout={CommandTimeoutSeconds}")
                {
                    Content = new StringContent(body, Encoding.UTF8, "application/json"),
                };
                req.Headers.Add("Idempotency-Key", key);
                using var r = await admin.SendAsync(req);
                var text = await r.Content.ReadAsStringAsync();
                var status = (int)r.StatusCode;
                if (status is 200 or 202)
                {
                    var id = (string)JsonNode.Parse(text)!["command_id"]!;
                    _accepted.Add(new AcceptedCommand(id, deviceId, kind, attempt));
                    return;
                }
                if (status < 500)
                {
                    var detail = text;
                    try { detail = (string?)(JsonNode.Parse(text) as JsonObject)?["detail"] ?? text; }
                    catch (System.Text.Json.JsonException) { } // not problem+json: the text as it came
                    _refused.AddOrUpdate($"{kind} {status}", 1, (_, v) => v + 1);
                    Log($"refused: {kind} for {deviceId} → {status} {detail}");
                    return;
                }
                problem = $"{status}";
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                problem = ex is TaskCanceledException ? "client timeout" : "connection";
            }
            _retries.AddOrUpdate(problem, 1, (_, v) => v + 1);
            if (deadline.Elapsed > TimeSpan.FromSeconds(90))
            {
                Interlocked.Increment(ref _abandoned);
                Log($"abandoned: {kind} for {deviceId} (key {key}) after {attempt} attempts, last {problem}");
                return;
            }
            await Task.Delay(TimeSpan.FromSeconds(1)); // an operator's back-off between retries
        }
    }

    // ------------------------------------------------------------------ nodes and routers

    /// <summary>Every 20–60 s: a random node SIGKILLed or SIGTERMed, restarted at once, and waited for until ready.</summary>
    private async Task NodeChaos(Random random, Stopwatch clock, CancellationToken ct)
    {
        while (true)
        {
            try { await Task.Delay(TimeSpan.FromSeconds(20 + random.NextDouble() * 40), ct); }
            catch (OperationCanceledException) { return; }
            var node = Cluster.Nodes[random.Next(Cluster.Nodes.Count)];
            var kill = random.Next(2) == 0;
            var signalAt = DateTime.UtcNow;
            string what;
            if (kill)
            {
                await node.Kill();
                what = "SIGKILL";
            }
            else
            {
                try { what = $"SIGTERM (exit in {(await node.Terminate(TimeSpan.FromSeconds(60))).TotalSeconds:0.0} s)"; }
                catch (TimeoutException ex) { what = $"SIGTERM, then SIGKILL: {ex.Message}"; }
            }
            node.Start();
            var sw = Stopwatch.StartNew();
            try { await node.WaitReady(TimeSpan.FromSeconds(90)); }
            catch (Exception ex) when (ex is TimeoutException or NodeExitedException) { what += $"; not ready again: {ex.Message}"; }
            var e = $"{clock.Elapsed.TotalSeconds:0}s ({signalAt:HH:mm:ss}) {node.Name} {what}, ready in {sw.Elapsed.TotalSeconds:0.0} s";
            _events.Enqueue(e);
            Log(e);
        }
    }

    /// <summary>Every 10–25 s: a third of the routers drop their TCP connection (no close frame) and come back 5 s later.</summary>
    private async Task ReconnectWaves(SimulatorRunner runner, Random random, Stopwatch clock, CancellationToken ct)
    {
        while (true)
        {
            try { await Task.Delay(TimeSpan.FromSeconds(10 + random.NextDouble() * 15), ct); }
            catch (OperationCanceledException) { return; }
            var wave = runner.Devices.Where(_ => random.Next(3) == 0).ToList();
            foreach (var d in wave) runner.Client(d.DeviceId).Drop("reconnect wave");
            var e = $"{clock.Elapsed.TotalSeconds:0}s ({DateTime.UtcNow:HH:mm:ss}) wave: {wave.Count} routers dropped";
            _events.Enqueue(e);
            Log(e);
        }
    }

    // ------------------------------------------------------------------ reading the end state

    private IReadOnlyList<string> LivePrefixes => Cluster.Nodes.Where(n => n.Running).Select(n => n.AkkaAddress + "#").ToList();

    /// <summary>Waits (up to <paramref name="within"/>) for every router's entity to say online on a live node; returns those that do not.</summary>
    private async Task<List<string>> RoutersNotOnline(SimulatorRunner runner, TimeSpan within)
    {
        var pending = runner.Devices.Select(d => d.DeviceId).ToList();
        try
        {
            await Eventually.True(async () =>
            {
                var still = new List<string>();
                foreach (var id in pending)
                {
                    var e = await Entity(Cluster.Nodes[Random.Shared.Next(Cluster.Nodes.Count)], id);
                    if (e is null || !e.Online || !LivePrefixes.Any(p => e.Node?.StartsWith(p, StringComparison.Ordinal) == true)) still.Add(id);
                }
                pending = still;
                return pending.Count == 0;
            }, "every router online on a live node", within, every: TimeSpan.FromSeconds(1));
        }
        catch (TimeoutException) { } // the ones left are reported
        return pending;
    }

    /// <summary>Waits for every accepted command to be final (as one node lists it); returns how many are not.</summary>
    private async Task<int> WaitCommandsFinal(TimeSpan within)
    {
        var byDevice = _accepted.GroupBy(a => a.DeviceId).ToList();
        var notFinal = 0;
        try
        {
            await Eventually.True(async () =>
            {
                notFinal = 0;
                foreach (var g in byDevice)
                {
                    var listed = await ListCommands(Cluster.Nodes[Random.Shared.Next(Cluster.Nodes.Count)], g.Key);
                    var status = listed.ToDictionary(c => c.CommandId, c => c.Status);
                    notFinal += g.Count(a => !status.TryGetValue(a.CommandId, out var s) || !ChaosChecker.FinalStatuses.Contains(s));
                }
                return notFinal == 0;
            }, "every accepted command final", within, every: TimeSpan.FromSeconds(1));
        }
        catch (TimeoutException) { } // the count left is reported
        return notFinal;
    }

    private async Task<ChaosInput> Collect(SimulatorRunner runner, string deviceLog)
    {
        var commands = new List<ApiCommand>();
        var entities = new List<DeviceRow>();
        foreach (var d in runner.Devices)
        {
            foreach (var node in Cluster.Nodes.Where(n => n.Running)) commands.AddRange(await ListCommands(node, d.DeviceId));
            if (await Entity(Cluster.Nodes.First(n => n.Running), d.DeviceId) is { } e) entities.Add(e);
        }
        var directory = (await FleetCluster.Directory(Cluster.Nodes.First(n => n.Running))).Select(Row).ToList();
        var routers = runner.Devices.Select(d =>
        {
            lock (d) return new RouterTruth(d.DeviceId, DeviceLog.EraName(d.Era), d.DeviceInfo.LocationId, d.DeviceInfo.ApMacAddress);
        }).ToList();
        return new ChaosInput
        {
            Accepted = _accepted.ToList(),
            ApiCommands = commands,
            DeviceLog = File.Exists(deviceLog) ? DeviceLogLine.ReadFile(deviceLog) : [],
            Routers = routers,
            Directory = directory,
            Entities = entities,
            LiveNodes = LivePrefixes,
            NodeExits = Cluster.Nodes.SelectMany(n => n.Exits).ToList(),
        };
    }

    private static async Task<List<ApiCommand>> ListCommands(NodeProcess node, string deviceId)
    {
        try
        {
            var items = (await node.GetJson($"/api/v1/devices/{deviceId}/commands"))["items"]!.AsArray();
            return items.Select(c => new ApiCommand((string)c!["command_id"]!, deviceId, (string)c["type"]!, (string)c["status"]!,
                c["request"] is JsonObject req ? DeviceLog.ContentKey(req.ToJsonString()) : null, node.Name, c["error"]?.ToJsonString())).ToList();
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or TaskCanceledException)
        {
            return [];
        }
    }

    private static async Task<DeviceRow?> Entity(NodeProcess node, string deviceId)
    {
        try { return Row(await node.GetJson($"/api/v1/devices/{deviceId}")); }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or TaskCanceledException) { return null; }
    }

    /// <summary>A directory item or an entity view, as the fields both have.</summary>
    private static DeviceRow Row(JsonNode v)
    {
        var info = v["device_info"] as JsonObject;
        var gateways = (v["gateways"] as JsonArray ?? []).Select(g => g is JsonObject o ? (string?)o["gw_id"] : (string?)g)
            .Where(g => g is not null).Select(g => g!).ToList();
        return new DeviceRow((string)v["device_id"]!, (bool?)v["online"] ?? false, (string?)v["node"], (string?)v["protocol"],
            info is null ? (string?)v["location_id"] : (string?)info["location_id"],
            info is null ? (string?)v["ap_mac_address"] : (string?)info["ap_mac_address"], gateways);
    }
}
