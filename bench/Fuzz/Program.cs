// Fuzzing the device protocol: two targets.
//   codec       in-process: cases of seeded mutations of valid frames of every dialect and direction (and random
//               bytes) through every decoding entry point the node uses; a case fails when anything throws, when two
//               decodes of the same bytes differ, or when a decoded message does not encode back to itself.
//                 dotnet bench/Fuzz/bin/Release/net10.0/Fuzz.dll codec --cases 1000000 --seed 1 --threads 2
//               Reproduce one case (prints it and its check): … codec --seed 1 --case 123456
//   connection  against a running node: healthy routers of every era heartbeat and take commands while raw sockets
//               send mutated frames; at the end every healthy router must still hold its first connection, every
//               command must have succeeded, and (with --node-log) the node's log must hold no exception.
//                 dotnet bench/Fuzz/bin/Release/net10.0/Fuzz.dll connection --base http://127.0.0.1:18490 \
//                     --duration 180 --healthy 30 --fuzz-sockets 8 --node-log bench/results/server-node.log
// Both write their figures as JSON (--json) and exit 1 when anything failed (the first failing input is saved to --out).
// tests/Shared/FuzzFrames.cs, CodecFuzz.cs and ConnectionFuzz.cs hold the engine; the tests run the same code briefly.
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Fleet.Testing;
using static Fleet.Bench.CliOptions;

(bool, long) Long(string v, long min) => (long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min, n);
(bool, int) Int(string v, int min) => (int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min, n);
(bool, double) NotNegative(string v) => (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d >= 0 && !double.IsInfinity(d), d);
(bool, double) Positive(string v) => (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d > 0 && !double.IsInfinity(d), d);
(bool, string) Any(string v) => (true, v);

var seedOption = Valued("--seed", "the run's seed: the same seed makes the same cases", 1L, v => Long(v, 0), "an integer ≥ 0");
var jsonOption = Valued("--json", "write the figures as JSON to this file", "", Any, "");
var outOption = Valued("--out", "directory for failing inputs", "bench/results", Any, "");

var casesOption = Valued("--cases", "how many cases", 1_000_000L, v => Long(v, 1), "an integer ≥ 1");
var firstOption = Valued("--first-case", "the first case's number", 0L, v => Long(v, 0), "an integer ≥ 0");
var threadsOption = Valued("--threads", "threads (the results do not depend on it)", 1, v => Int(v, 1), "an integer ≥ 1");
var caseOption = Valued("--case", "reproduce this one case: print its input and what the check says", -1L, v => Long(v, 0), "an integer ≥ 0");
var codec = new Command("codec", "in-process: mutated and random frames through every decoding entry point")
{
    seedOption, casesOption, firstOption, threadsOption, caseOption, jsonOption, outOption,
};

var baseOption = Valued("--base", "the node's HTTP address", new Uri("http://127.0.0.1:8080"),
    v => (Uri.TryCreate(v, UriKind.Absolute, out var u) && u.Scheme is "http", u!), "an http URL");
var keyOption = Valued("--api-key", "an operator or admin API key (default: $FLEET_API_KEY)", Environment.GetEnvironmentVariable("FLEET_API_KEY") ?? "", Any, "");
var healthyOption = Valued("--healthy", "healthy routers (a third of each era: seed, 2025, 9)", 30, v => Int(v, 1), "an integer ≥ 1");
var socketsOption = Valued("--fuzz-sockets", "sockets sending mutated frames at once", 8, v => Int(v, 1), "an integer ≥ 1");
var durationOption = Valued("--duration", "seconds of fuzzing", 180.0, Positive, "a number > 0");
var heartbeatOption = Valued("--heartbeat-seconds", "the healthy routers' heartbeat interval", 5.0, Positive, "a number > 0");
var commandOption = Valued("--command-every", "seconds between commands to healthy routers (round robin)", 1.0, Positive, "a number > 0");
var rateOption = Valued("--rate", "frames per second per fuzzing socket (0: as fast as it goes)", 200.0, NotNegative, "a number ≥ 0");
var logOption = Valued("--node-log", "the node's log (console JSON format) to check for errors afterwards", "", Any, "");
var connection = new Command("connection", "against a running node: healthy routers unaffected while sockets send mutated frames")
{
    seedOption, baseOption, keyOption, healthyOption, socketsOption, durationOption, heartbeatOption, commandOption, rateOption, logOption,
    jsonOption, outOption,
};
var root = new RootCommand("Fuzzing the device protocol: the codec (in-process) and the connection (against a node).") { codec, connection };

var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parsed.Action is HelpAction) return await parsed.InvokeAsync();
if (parsed.Errors.Count > 0 || parsed.CommandResult.Command == root)
{
    Console.Error.WriteLine(parsed.Errors.Count > 0 ? $"error: {parsed.Errors[0].Message}" : "error: say which target: codec or connection");
    return 2;
}
var seed = parsed.GetValue(seedOption);
var jsonPath = parsed.GetValue(jsonOption)!;
var outDir = parsed.GetValue(outOption)!;

if (parsed.CommandResult.Command == codec)
{
    if (parsed.GetValue(caseOption) is >= 0 and var one)
    {
        var input = new FrameMutator(FuzzSeeds.Weighted()).Case(seed, one, out var recipe);
        Console.WriteLine($"case {one} of seed {seed}: {recipe}");
        Console.WriteLine($"base64: {Convert.ToBase64String(input)}");
        Console.WriteLine($"text:   {Encoding.UTF8.GetString(input)}");
        var outcomes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var problem = CodecFuzz.Check(input, outcomes);
        foreach (var k in outcomes.Keys) Console.WriteLine($"  {k}");
        Console.WriteLine(problem is { } p ? $"FAILS at {p.EntryPoint}: {p.Problem}" : "passes");
        return problem is null ? 0 : 1;
    }
    var cases = parsed.GetValue(casesOption);
    var threads = parsed.GetValue(threadsOption);
    Console.WriteLine($"codec fuzz: {cases:N0} cases of seed {seed} from case {parsed.GetValue(firstOption)} on {threads} thread(s)");
    var lastReport = Environment.TickCount64;
    var result = CodecFuzz.Run(seed, cases, threads, parsed.GetValue(firstOption), progress: (done, total) =>
    {
        var now = Environment.TickCount64;
        if (now - Interlocked.Read(ref lastReport) < 10_000) return;
        Interlocked.Exchange(ref lastReport, now);
        Console.WriteLine($"  {done:N0} / {total:N0}");
    });
    string? failureFile = null;
    if (result.Failures.Count > 0)
    {
        Directory.CreateDirectory(outDir);
        var first = result.Failures[0];
        failureFile = Path.Combine(outDir, $"fuzz-codec-seed{seed}-case{first.Case}.bin");
        File.WriteAllBytes(failureFile, first.Input);
        File.WriteAllText(Path.ChangeExtension(failureFile, ".txt"), string.Join("\n\n", result.Failures.Select(f => f.ToString())));
    }
    Console.WriteLine(CodecFuzz.Summary(result));
    foreach (var (kind, count) in result.FailureKinds) Console.WriteLine($"  {count,8:N0}  {kind}");
    foreach (var f in result.Failures.Take(5)) Console.WriteLine(f);
    if (failureFile is not null) Console.WriteLine($"first failing input: {failureFile} (all kept failures: {Path.ChangeExtension(failureFile, ".txt")})");
    var json = CodecFuzz.ToJson(result, failureFile);
    if (jsonPath.Length > 0) File.WriteAllText(jsonPath, json);
    return result.FailureCount == 0 ? 0 : 1;
}

{
    var options = new ConnectionFuzzOptions
    {
        Node = parsed.GetValue(baseOption)!,
        ApiKey = parsed.GetValue(keyOption),
        Healthy = parsed.GetValue(healthyOption),
        FuzzSockets = parsed.GetValue(socketsOption),
        Duration = TimeSpan.FromSeconds(parsed.GetValue(durationOption)),
        Seed = seed,
        HeartbeatEvery = TimeSpan.FromSeconds(parsed.GetValue(heartbeatOption)),
        CommandEvery = TimeSpan.FromSeconds(parsed.GetValue(commandOption)),
        FramesPerSecond = parsed.GetValue(rateOption),
        FailureDirectory = outDir,
        Log = line => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}"),
    };
    var result = await ConnectionFuzz.RunAsync(options);
    var failures = result.Failures.ToList();
    var logPath = parsed.GetValue(logOption)!;
    var node = new System.Text.Json.Nodes.JsonObject();
    if (logPath.Length > 0)
    {
        var entries = File.ReadLines(logPath).Select(NodeLogEntry.Parse).OfType<NodeLogEntry>().ToList();
        var check = NodeLog.Check(entries);
        failures.AddRange(check.Failures);
        node["log_entries"] = entries.Count;
        node["log_by_level"] = new System.Text.Json.Nodes.JsonObject(entries.GroupBy(e => e.Level).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => KeyValuePair.Create(g.Key, (System.Text.Json.Nodes.JsonNode?)g.Count())));
        node["log_errors"] = new System.Text.Json.Nodes.JsonObject(check.Errors.Select(kv => KeyValuePair.Create(kv.Key, (System.Text.Json.Nodes.JsonNode?)kv.Value)));
        node["log_failures"] = check.Failures.Count;
    }
    var text = System.Text.Json.Nodes.JsonNode.Parse(result.ToJson())!.AsObject();
    text["seed"] = seed;
    text["node_log"] = node;
    text["failures"] = new System.Text.Json.Nodes.JsonArray(failures.Select(f => (System.Text.Json.Nodes.JsonNode?)f).ToArray());
    var json = text.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    Console.WriteLine(json);
    if (jsonPath.Length > 0) File.WriteAllText(jsonPath, json);
    return failures.Count == 0 ? 0 : 1;
}
