// Admin command load: POST /api/v1/devices/{id}/commands?wait=W.
// Open loop (the default): at a fixed offered rate to devices picked at random, whatever the answers'
// latency (requests are started on schedule, not one after another), and latency is measured from each
// request's scheduled start so queueing is not hidden.
//   dotnet bench/CommandLoad/bin/Release/net10.0/CommandLoad.dll --base http://127.0.0.1:8080 \
//       --rate 200 --duration 20 --devices 10000 --device-prefix sim --json /tmp/cmd.json
// Bursts (--burst K): in each of --rounds rounds, K commands posted at once to every device, the round
// over when all have their outcome, then --gap seconds; what it measures is how long a device takes to
// get its K commands (bench/scripts/frame-pause.sh: one-way commands separated only by the frame pause).
//   … --burst 5 --rounds 10 --devices 40 --device-prefix fp --wait 30 \
//       --body '{"type":"auth","token":"t","client_ip":"192.168.1.{octet}","client_mac":"{mac}","gw_id":"gw-1"}'
// In --body, {n} becomes the request's number (0, 1, … over the run), {mac} a client MAC made of it
// (02:00:00:00:00:00 + n) and {octet} 1 + n mod 254, so that every request can name a distinct client.
using System.Collections.Concurrent;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fleet.Simulator;
using static Fleet.Bench.CliOptions;

(bool, double) Positive(string v) => (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d > 0 && !double.IsInfinity(d), d);
(bool, double) NotNegative(string v) => (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d >= 0 && !double.IsInfinity(d), d);
(bool, int) Count(string v, int min) => (int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min, n);
(bool, string) Any(string v) => (true, v);

var baseOption = Valued("--base", "the node's HTTP address", new Uri("http://127.0.0.1:8080"),
    v => (Uri.TryCreate(v, UriKind.Absolute, out var u) && u.Scheme is "http" or "https", u!), "an http(s) URL");
var rateOption = Valued("--rate", "commands offered per second", 200.0, Positive, "a number > 0");
var durationOption = Valued("--duration", "measured seconds", 20.0, NotNegative, "a number ≥ 0");
var devicesOption = Valued("--devices", "commands go to devices <prefix>-<first>…<first+N-1> (open loop: at random; bursts: each of them)", 100, v => Count(v, 1), "an integer ≥ 1");
var prefixOption = Valued("--device-prefix", "device id prefix (as the simulator's)", "sim", Any, "");
var firstOption = Valued("--first-index", "first device index", 0, v => Count(v, 0), "an integer ≥ 0");
var waitOption = Valued("--wait", "seconds each POST waits for the command's outcome (?wait=)", 5.0, NotNegative, "a number ≥ 0");
var bodyOption = Valued("--body", "the command's JSON body; {n}, {mac}, {octet} are replaced per request (see the top of Program.cs)", new JsonObject { ["type"] = "get_firmware_info" }.ToJsonString(),
    Any, "");
var jsonOption = Valued("--json", "write the figures as JSON to this file", "", Any, "");
var warmupOption = Valued("--warmup", "seconds offered before measuring", 2.0, NotNegative, "a number ≥ 0");
var maxInFlightOption = Valued("--max-in-flight", "requests in flight at most; beyond it a scheduled request is skipped", 5000, v => Count(v, 1), "an integer ≥ 1");
var burstOption = Valued("--burst", "K > 0: bursts of K commands to every device at once, round after round, instead of the open loop", 0, v => Count(v, 0), "an integer ≥ 0");
var roundsOption = Valued("--rounds", "bursts: how many rounds", 10, v => Count(v, 1), "an integer ≥ 1");
var keyOption = Valued("--api-key", "the admin API key sent as Authorization: Bearer (default: $FLEET_API_KEY)",
    Environment.GetEnvironmentVariable("FLEET_API_KEY") ?? "", Any, "");
var gapOption = Valued("--gap", "bursts: seconds between the end of a round and the next", 0.5, NotNegative, "a number ≥ 0");
var command = new RootCommand("Admin command load: POST /api/v1/devices/{id}/commands?wait=W, open loop at a fixed offered rate or in bursts (--burst).")
{
    baseOption, rateOption, durationOption, devicesOption, prefixOption, firstOption, waitOption, bodyOption, jsonOption,
    warmupOption, maxInFlightOption, burstOption, roundsOption, gapOption, keyOption,
};

var parsed = command.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parsed.Action is HelpAction) return await parsed.InvokeAsync();
if (parsed.Errors.Count > 0)
{
    Console.Error.WriteLine($"error: {parsed.Errors[0].Message}");
    Console.Error.WriteLine($"options: {string.Join(' ', command.Options.Select(o => o.Name).Where(n => n.StartsWith("--", StringComparison.Ordinal) && n is not ("--help" or "--version")))}");
    return 2;
}

var rate = parsed.GetValue(rateOption);
var duration = TimeSpan.FromSeconds(parsed.GetValue(durationOption));
var warmup = TimeSpan.FromSeconds(parsed.GetValue(warmupOption));
var devices = parsed.GetValue(devicesOption);
var first = parsed.GetValue(firstOption);
var prefix = parsed.GetValue(prefixOption)!;
var bodyTemplate = parsed.GetValue(bodyOption)!;
var templated = bodyTemplate.Contains("{n}", StringComparison.Ordinal) || bodyTemplate.Contains("{mac}", StringComparison.Ordinal)
    || bodyTemplate.Contains("{octet}", StringComparison.Ordinal);
var fixedBody = Encoding.UTF8.GetBytes(bodyTemplate);
long requestNumber = -1;
// The body of the next request: the template with its per-request fields filled in.
byte[] NextBody()
{
    if (!templated) return fixedBody;
    var n = Interlocked.Increment(ref requestNumber);
    var mac = string.Join(':', BitConverter.GetBytes(n).Take(5).Reverse().Prepend((byte)0x02).Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
    return Encoding.UTF8.GetBytes(bodyTemplate
        .Replace("{n}", n.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
        .Replace("{mac}", mac, StringComparison.Ordinal)
        .Replace("{octet}", (1 + n % 254).ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
}
var maxInFlight = parsed.GetValue(maxInFlightOption);
var wait = parsed.GetValue(waitOption);
var waitText = wait.ToString(CultureInfo.InvariantCulture);

using var http = new HttpClient(new SocketsHttpHandler
{
    UseProxy = false, MaxConnectionsPerServer = 256, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
})
{ BaseAddress = parsed.GetValue(baseOption), Timeout = TimeSpan.FromSeconds(wait + 10) };
if (parsed.GetValue(keyOption) is { Length: > 0 } apiKey)
    http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);

var burst = parsed.GetValue(burstOption);
if (burst > 0) return await Bursts();

var latency = new LatencyRecorder();
var statuses = new ConcurrentDictionary<string, long>();
var commandStatuses = new ConcurrentDictionary<string, long>();
long inFlight = 0, skipped = 0, sent = 0;
var tasks = new List<Task>();
var cpu = new CpuMeter();
var start = Stopwatch.GetTimestamp();
var total = (long)((warmup + duration).TotalSeconds * rate);
var measureFrom = (long)(warmup.TotalSeconds * rate);
var random = new Random(7);

async Task One(long k, long scheduledAt)
{
    var device = $"{prefix}-{first + random.Next(devices):D6}";
    try
    {
        using var content = new ByteArrayContent(NextBody());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync($"/api/v1/devices/{device}/commands?wait={waitText}", content);
        var text = await response.Content.ReadAsStringAsync();
        var elapsed = Stopwatch.GetElapsedTime(scheduledAt);
        if (k >= measureFrom)
        {
            latency.Record(elapsed);
            statuses.AddOrUpdate(((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), 1, (_, n) => n + 1);
            var status = "?";
            try { using var doc = JsonDocument.Parse(text); if (doc.RootElement.TryGetProperty("status", out var s)) status = s.ToString(); }
            catch (JsonException) { }
            commandStatuses.AddOrUpdate(status, 1, (_, n) => n + 1);
        }
    }
    catch (Exception e)
    {
        if (k >= measureFrom) statuses.AddOrUpdate(e.GetType().Name, 1, (_, n) => n + 1);
    }
    finally { Interlocked.Decrement(ref inFlight); }
}

for (long k = 0; k < total;)
{
    var due = (long)(Stopwatch.GetElapsedTime(start).TotalSeconds * rate);
    for (; k < Math.Min(due + 1, total); k++)
    {
        var scheduledAt = start + (long)(k / rate * Stopwatch.Frequency);
        if (Interlocked.Read(ref inFlight) >= maxInFlight) { if (k >= measureFrom) skipped++; continue; }
        Interlocked.Increment(ref inFlight);
        sent++;
        var kk = k;
        tasks.Add(Task.Run(() => One(kk, scheduledAt)));
        if (k == measureFrom) cpu = new CpuMeter();
    }
    await Task.Delay(1);
}
await Task.WhenAll(tasks);

var summary = latency.Summary();
string Ms(double micros) => (micros / 1000).ToString("0.00", CultureInfo.InvariantCulture);
Console.WriteLine($"offered {rate}/s for {duration.TotalSeconds}s (+{warmup.TotalSeconds}s warm-up): {summary.Count} measured, skipped {skipped} (in-flight cap)");
Console.WriteLine($"latency ms: p50 {Ms(summary.P50)}  p99 {Ms(summary.P99)}  p99.9 {Ms(summary.P999)}  max {Ms(summary.Max)}");
Console.WriteLine($"http: {string.Join(", ", statuses.Select(p => $"{p.Key}×{p.Value}"))}; command status: {string.Join(", ", commandStatuses.Select(p => $"{p.Key}×{p.Value}"))}; load-tool cpu {cpu.PercentSinceStart():0}%");
if (parsed.GetValue(jsonOption) is { Length: > 0 } path)
{
    using var stream = File.Create(path);
    using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
    w.WriteStartObject();
    w.WriteNumber("offered_per_s", rate);
    w.WriteNumber("measured", summary.Count);
    w.WriteNumber("skipped", skipped);
    w.WriteNumber("p50_ms", Math.Round(summary.P50 / 1000, 3));
    w.WriteNumber("p99_ms", Math.Round(summary.P99 / 1000, 3));
    w.WriteNumber("p999_ms", Math.Round(summary.P999 / 1000, 3));
    w.WriteNumber("max_ms", Math.Round(summary.Max / 1000, 3));
    w.WriteNumber("load_cpu_percent", Math.Round(cpu.PercentSinceStart(), 1));
    w.WriteStartObject("http");
    foreach (var (k, v) in statuses) w.WriteNumber(k, v);
    w.WriteEndObject();
    w.WriteStartObject("command_status");
    foreach (var (k, v) in commandStatuses) w.WriteNumber(k, v);
    w.WriteEndObject();
    w.WriteEndObject();
}
return 0;

// Bursts: every device gets K commands at once; a round ends when all of them have their outcome.
async Task<int> Bursts()
{
    var rounds = parsed.GetValue(roundsOption);
    var gap = TimeSpan.FromSeconds(parsed.GetValue(gapOption));
    var perCommand = new LatencyRecorder();
    var perBurst = new LatencyRecorder();
    var perRound = new LatencyRecorder();
    var httpStatuses = new ConcurrentDictionary<string, long>();
    var outcomes = new ConcurrentDictionary<string, long>();
    void Tally(ConcurrentDictionary<string, long> d, string key) => d.AddOrUpdate(key, 1, (_, n) => n + 1);

    async Task PostOne(string device, long startedAt)
    {
        try
        {
            using var content = new ByteArrayContent(NextBody());
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await http.PostAsync($"/api/v1/devices/{device}/commands?wait={waitText}", content);
            var text = await response.Content.ReadAsStringAsync();
            perCommand.Record(Stopwatch.GetElapsedTime(startedAt));
            Tally(httpStatuses, ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture));
            var status = "?";
            try { using var doc = JsonDocument.Parse(text); if (doc.RootElement.TryGetProperty("status", out var s)) status = s.ToString(); }
            catch (JsonException) { }
            Tally(outcomes, status);
        }
        catch (Exception e)
        {
            Tally(httpStatuses, e.GetType().Name);
        }
    }

    async Task OneDevice(string device, long startedAt)
    {
        var posts = new Task[burst];
        for (var j = 0; j < burst; j++) posts[j] = PostOne(device, startedAt);
        await Task.WhenAll(posts);
        perBurst.Record(Stopwatch.GetElapsedTime(startedAt)); // the device's last command done
    }

    var cpuMeter = new CpuMeter();
    var runStart = Stopwatch.GetTimestamp();
    for (var round = 0; round < rounds; round++)
    {
        if (round > 0 && gap > TimeSpan.Zero) await Task.Delay(gap); // the load's shape, not a wait for anything
        var startedAt = Stopwatch.GetTimestamp();
        var devicesDone = new Task[devices];
        for (var d = 0; d < devices; d++) devicesDone[d] = OneDevice($"{prefix}-{first + d:D6}", startedAt);
        await Task.WhenAll(devicesDone);
        perRound.Record(Stopwatch.GetElapsedTime(startedAt));
    }
    var elapsed = Stopwatch.GetElapsedTime(runStart);

    var c = perCommand.Summary();
    var b = perBurst.Summary();
    var r = perRound.Summary();
    string Ms(double micros) => (micros / 1000).ToString("0.0", CultureInfo.InvariantCulture);
    Console.WriteLine($"bursts of {burst} to each of {devices} devices, {rounds} rounds ({gap.TotalSeconds}s apart): {c.Count} commands in {elapsed.TotalSeconds:0.0}s");
    Console.WriteLine($"a device's burst done, ms: p50 {Ms(b.P50)}  p99 {Ms(b.P99)}  max {Ms(b.Max)}; a round (all devices) p50 {Ms(r.P50)}  max {Ms(r.Max)}");
    Console.WriteLine($"a command done, ms: p50 {Ms(c.P50)}  p99 {Ms(c.P99)}  max {Ms(c.Max)}");
    Console.WriteLine($"http: {string.Join(", ", httpStatuses.Select(p => $"{p.Key}×{p.Value}"))}; command status: {string.Join(", ", outcomes.Select(p => $"{p.Key}×{p.Value}"))}; load-tool cpu {cpuMeter.PercentSinceStart():0}%");
    if (parsed.GetValue(jsonOption) is { Length: > 0 } path)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("mode", "burst");
        w.WriteNumber("burst", burst);
        w.WriteNumber("devices", devices);
        w.WriteNumber("rounds", rounds);
        w.WriteNumber("commands", c.Count);
        w.WriteNumber("elapsed_s", Math.Round(elapsed.TotalSeconds, 3));
        w.WriteNumber("burst_p50_ms", Math.Round(b.P50 / 1000, 3));
        w.WriteNumber("burst_p99_ms", Math.Round(b.P99 / 1000, 3));
        w.WriteNumber("burst_max_ms", Math.Round(b.Max / 1000, 3));
        w.WriteNumber("round_p50_ms", Math.Round(r.P50 / 1000, 3));
        w.WriteNumber("round_max_ms", Math.Round(r.Max / 1000, 3));
        w.WriteNumber("p50_ms", Math.Round(c.P50 / 1000, 3));
        w.WriteNumber("p99_ms", Math.Round(c.P99 / 1000, 3));
        w.WriteNumber("max_ms", Math.Round(c.Max / 1000, 3));
        w.WriteNumber("load_cpu_percent", Math.Round(cpuMeter.PercentSinceStart(), 1));
        w.WriteStartObject("http");
        foreach (var (k, v) in httpStatuses) w.WriteNumber(k, v);
        w.WriteEndObject();
        w.WriteStartObject("command_status");
        foreach (var (k, v) in outcomes) w.WriteNumber(k, v);
        w.WriteEndObject();
        w.WriteEndObject();
    }
    return 0;
}
