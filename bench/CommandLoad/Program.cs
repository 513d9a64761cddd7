// Open-loop admin command load: POST /api/v1/devices/{id}/commands?wait=W at a fixed offered
// rate, whatever the answers' latency (requests are started on schedule, not one after another),
// and latency is measured from each request's scheduled start so queueing is not hidden.
//   dotnet bench/CommandLoad/bin/Release/net10.0/CommandLoad.dll --base http://127.0.0.1:8080 \
//       --rate 200 --duration 20 --devices 10000 --device-prefix sim --json /tmp/cmd.json
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Fleet.Simulator;

var opts = new Dictionary<string, string>(StringComparer.Ordinal)
{
    ["--base"] = "http://127.0.0.1:8080", ["--rate"] = "200", ["--duration"] = "20", ["--devices"] = "100",
    ["--device-prefix"] = "sim", ["--first-index"] = "0", ["--wait"] = "5", ["--body"] = """{"type":"get_firmware_info"}""",
    ["--json"] = "", ["--warmup"] = "2", ["--max-in-flight"] = "5000",
};
for (var i = 0; i + 1 < args.Length; i += 2)
{
    if (!opts.ContainsKey(args[i])) { Console.Error.WriteLine($"unknown option {args[i]}; options: {string.Join(' ', opts.Keys)}"); return 2; }
    opts[args[i]] = args[i + 1];
}
double D(string k) => double.Parse(opts[k], CultureInfo.InvariantCulture);
int I(string k) => int.Parse(opts[k], CultureInfo.InvariantCulture);

var rate = D("--rate");
var duration = TimeSpan.FromSeconds(D("--duration"));
var warmup = TimeSpan.FromSeconds(D("--warmup"));
var devices = I("--devices");
var first = I("--first-index");
var prefix = opts["--device-prefix"];
var body = Encoding.UTF8.GetBytes(opts["--body"]);
var maxInFlight = I("--max-in-flight");

using var http = new HttpClient(new SocketsHttpHandler
{
    UseProxy = false, MaxConnectionsPerServer = 256, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
})
{ BaseAddress = new Uri(opts["--base"]), Timeout = TimeSpan.FromSeconds(D("--wait") + 10) };

var latency = new LatencyHistogram();
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
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync($"/api/v1/devices/{device}/commands?wait={opts["--wait"]}", content);
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

string P(double p) => (latency.PercentileMicros(p) / 1000).ToString("0.00", CultureInfo.InvariantCulture);
Console.WriteLine($"offered {rate}/s for {duration.TotalSeconds}s (+{warmup.TotalSeconds}s warm-up): {latency.Count} measured, skipped {skipped} (in-flight cap)");
Console.WriteLine($"latency ms: p50 {P(50)}  p99 {P(99)}  p99.9 {P(99.9)}  max {(latency.MaxMicros / 1000).ToString("0.00", CultureInfo.InvariantCulture)}");
Console.WriteLine($"http: {string.Join(", ", statuses.Select(p => $"{p.Key}×{p.Value}"))}; command status: {string.Join(", ", commandStatuses.Select(p => $"{p.Key}×{p.Value}"))}; load-tool cpu {cpu.PercentSinceStart():0}%");
if (opts["--json"] is { Length: > 0 } path)
{
    using var stream = File.Create(path);
    using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
    w.WriteStartObject();
    w.WriteNumber("offered_per_s", rate);
    w.WriteNumber("measured", latency.Count);
    w.WriteNumber("skipped", skipped);
    w.WriteNumber("p50_ms", Math.Round(latency.PercentileMicros(50) / 1000, 3));
    w.WriteNumber("p99_ms", Math.Round(latency.PercentileMicros(99) / 1000, 3));
    w.WriteNumber("p999_ms", Math.Round(latency.PercentileMicros(99.9) / 1000, 3));
    w.WriteNumber("max_ms", Math.Round(latency.MaxMicros / 1000, 3));
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
