// Open-loop admin command load: POST /api/v1/devices/{id}/commands?wait=W at a fixed offered
// rate, whatever the answers' latency (requests are started on schedule, not one after another),
// and latency is measured from each request's scheduled start so queueing is not hidden.
//   dotnet bench/CommandLoad/bin/Release/net10.0/CommandLoad.dll --base http://127.0.0.1:8080 \
//       --rate 200 --duration 20 --devices 10000 --device-prefix sim --json /tmp/cmd.json
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

// Every option may be repeated (the last one counts) and needs a value, as before System.CommandLine.
Option<T> Valued<T>(string name, string description, T defaultValue, Func<string, (bool Ok, T Value)> parse, string check)
{
    var option = new Option<T>(name)
    {
        Description = description,
        Arity = ArgumentArity.ZeroOrMore,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            var v = r.Tokens.Count == 0 ? null : r.Tokens[^1].Value;
            if (v is not null && parse(v) is (true, var value)) return value;
            r.AddError($"{name} '{v}' is not {check}");
            return defaultValue;
        },
    };
    option.Validators.Add(r =>
    {
        if (!r.Implicit && r.Tokens.Count == 0) r.AddError($"{name} needs a value");
    });
    return option;
}
(bool, double) Positive(string v) => (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d > 0 && !double.IsInfinity(d), d);
(bool, double) NotNegative(string v) => (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d >= 0 && !double.IsInfinity(d), d);
(bool, int) Count(string v, int min) => (int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min, n);
(bool, string) Any(string v) => (true, v);

var baseOption = Valued("--base", "the node's HTTP address", new Uri("http://127.0.0.1:8080"),
    v => (Uri.TryCreate(v, UriKind.Absolute, out var u) && u.Scheme is "http" or "https", u!), "an http(s) URL");
var rateOption = Valued("--rate", "commands offered per second", 200.0, Positive, "a number > 0");
var durationOption = Valued("--duration", "measured seconds", 20.0, NotNegative, "a number ≥ 0");
var devicesOption = Valued("--devices", "commands go to devices <prefix>-<first>…<first+N-1>, at random", 100, v => Count(v, 1), "an integer ≥ 1");
var prefixOption = Valued("--device-prefix", "device id prefix (as the simulator's)", "sim", Any, "");
var firstOption = Valued("--first-index", "first device index", 0, v => Count(v, 0), "an integer ≥ 0");
var waitOption = Valued("--wait", "seconds each POST waits for the command's outcome (?wait=)", 5.0, NotNegative, "a number ≥ 0");
var bodyOption = Valued("--body", "the command's JSON body, sent as given", new JsonObject { ["type"] = "get_firmware_info" }.ToJsonString(),
    Any, "");
var jsonOption = Valued("--json", "write the figures as JSON to this file", "", Any, "");
var warmupOption = Valued("--warmup", "seconds offered before measuring", 2.0, NotNegative, "a number ≥ 0");
var maxInFlightOption = Valued("--max-in-flight", "requests in flight at most; beyond it a scheduled request is skipped", 5000, v => Count(v, 1), "an integer ≥ 1");
var command = new RootCommand("Open-loop admin command load: POST /api/v1/devices/{id}/commands?wait=W at a fixed offered rate.")
{
    baseOption, rateOption, durationOption, devicesOption, prefixOption, firstOption, waitOption, bodyOption, jsonOption,
    warmupOption, maxInFlightOption,
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
var body = Encoding.UTF8.GetBytes(parsed.GetValue(bodyOption)!);
var maxInFlight = parsed.GetValue(maxInFlightOption);
var wait = parsed.GetValue(waitOption);
var waitText = wait.ToString(CultureInfo.InvariantCulture);

using var http = new HttpClient(new SocketsHttpHandler
{
    UseProxy = false, MaxConnectionsPerServer = 256, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
})
{ BaseAddress = parsed.GetValue(baseOption), Timeout = TimeSpan.FromSeconds(wait + 10) };

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
        using var content = new ByteArrayContent(body);
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

