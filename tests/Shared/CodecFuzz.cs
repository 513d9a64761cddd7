using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Fleet.Protocol;

namespace Fleet.Testing;

/// <summary>A case the codec fuzzer failed: which entry point, what went wrong, the input and how it was made.</summary>
public sealed record CodecFuzzFailure(long Case, string EntryPoint, string Problem, byte[] Input, string Recipe)
{
    public string InputText => Encoding.UTF8.GetString(Input);

    public override string ToString() =>
        $"case {Case} ({Recipe}): {EntryPoint}: {Problem}\n  input ({Input.Length} bytes, base64): {Convert.ToBase64String(Input)}\n" +
        $"  input as text: {(InputText.Length > 2000 ? InputText[..2000] + "…" : InputText)}";
}

/// <summary>What a codec fuzz run did: cases, time, how each entry point answered, and the failures (first ones kept).</summary>
public sealed record CodecFuzzResult(
    long Seed, long FirstCase, long Cases, TimeSpan Elapsed, IReadOnlyDictionary<string, long> Outcomes,
    long FailureCount, IReadOnlyList<CodecFuzzFailure> Failures, IReadOnlyDictionary<string, long> FailureKinds, long InputBytes = 0)
{
    public double CasesPerSecond => Cases / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>
/// The codec fuzzer: every case (from <see cref="FrameMutator"/> over <see cref="FuzzSeeds.All"/>) goes through every
/// decoding entry point the node uses on what a device sends and on what the admin API receives, and the router side's
/// decoders (Fleet.Edge, the simulator):
/// <list type="bullet">
/// <item><c>ProtocolCodec.ReadEnvelope</c>, <c>DeviceDialects.Detect</c>;</item>
/// <item><c>TypeDialect.Decode</c> and <c>OpDialect.Decode</c> (an OpDialect that sent requests 1–3, so answers match) — the
/// connection's decoders; for a report, what the connection then does with it (<c>NameFor</c>, the device_id and gw_id
/// rules, <c>EncodeReply</c> echoing the report's req_id);</item>
/// <item><c>ProtocolCodec.DecodeFromDevice</c>, <c>DecodeOpReport</c>, <c>DecodeFromController</c> (as the admin API calls it,
/// and with op names); for a decoded request, what the admin API and the connection then do (<c>FieldRules.CheckRequest</c>,
/// MAC normalisation, <c>CheckWireSize</c>, encoding in both dialects, and decoding that again);</item>
/// <item>the router dialects' <c>Decode</c> (seed, 2025, 9).</item>
/// </list>
/// A case fails when any of them throws (every bad input must come back as a decode error or complaint), when
/// decoding the same bytes twice gives different results, or when a decoded message, encoded and decoded again, does
/// not encode the same (what the node decodes it can write back unchanged).
/// </summary>
public static class CodecFuzz
{
    /// <summary>Runs cases [<paramref name="firstCase"/>, firstCase + <paramref name="cases"/>) of <paramref name="seed"/> on
    /// <paramref name="threads"/> threads; results do not depend on the thread count.</summary>
    public static CodecFuzzResult Run(long seed, long cases, int threads = 1, long firstCase = 0, int keepFailures = 20,
        Action<long, long>? progress = null, CancellationToken ct = default)
    {
        threads = Math.Max(1, threads);
        var seeds = FuzzSeeds.Weighted();
        var clock = Stopwatch.StartNew();
        long next = firstCase - 1, done = 0, failureCount = 0, bytes = 0;
        var end = firstCase + cases;
        var outcomes = new Dictionary<string, long>(StringComparer.Ordinal);
        var failures = new List<CodecFuzzFailure>();
        var kinds = new Dictionary<string, (long Count, CodecFuzzFailure First)>(StringComparer.Ordinal);
        var gate = new object();

        void Worker()
        {
            var mutator = new FrameMutator(seeds);
            var local = new Dictionary<string, long>(StringComparer.Ordinal);
            var localFailures = new List<CodecFuzzFailure>();
            var localKinds = new Dictionary<string, (long Count, CodecFuzzFailure First)>(StringComparer.Ordinal);
            long localFailureCount = 0, localBytes = 0;
            const int Batch = 256;
            while (!ct.IsCancellationRequested)
            {
                var start = Interlocked.Add(ref next, Batch) - Batch + 1;
                if (start >= end) break;
                var stop = Math.Min(end, start + Batch);
                for (var i = start; i < stop; i++)
                {
                    var input = mutator.Case(seed, i, out var recipe);
                    localBytes += input.Length;
                    var size = input.Length switch { < 1024 => "a: under 1 KiB", < 4096 => "b: 1-4 KiB", < 16384 => "c: 4-16 KiB", <= 65536 => "d: 16-64 KiB", _ => "e: over 64 KiB" };
                    local["input size " + size] = local.GetValueOrDefault("input size " + size) + 1;
                    if (Check(input, local) is { } problem)
                    {
                        localFailureCount++;
                        var failure = new CodecFuzzFailure(i, problem.EntryPoint, problem.Problem, input, recipe);
                        if (localFailures.Count < keepFailures) localFailures.Add(failure);
                        var kind = Kind(failure);
                        localKinds[kind] = localKinds.TryGetValue(kind, out var k) ? (k.Count + 1, k.First.Case < i ? k.First : failure) : (1, failure);
                    }
                }
                var total = Interlocked.Add(ref done, stop - start);
                progress?.Invoke(total, cases);
            }
            lock (gate)
            {
                foreach (var (k, v) in local) outcomes[k] = outcomes.GetValueOrDefault(k) + v;
                failures.AddRange(localFailures);
                failureCount += localFailureCount;
                bytes += localBytes;
                foreach (var (key, (count, firstOfKind)) in localKinds)
                    kinds[key] = kinds.TryGetValue(key, out var k) ? (k.Count + count, k.First.Case < firstOfKind.Case ? k.First : firstOfKind) : (count, firstOfKind);
            }
        }

        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(Worker) { IsBackground = true }).ToList();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        clock.Stop();
        return new CodecFuzzResult(seed, firstCase, Interlocked.Read(ref done), clock.Elapsed,
            new SortedDictionary<string, long>(outcomes, StringComparer.Ordinal),
            failureCount, failures.OrderBy(f => f.Case).Take(keepFailures).ToList(),
            new SortedDictionary<string, long>(kinds.ToDictionary(kv => $"{kv.Key} (first: case {kv.Value.First.Case})", kv => kv.Value.Count), StringComparer.Ordinal),
            bytes);
    }

    /// <summary>What kind of failure: the entry point, the exception's type and the first frame of ours it came from.</summary>
    public static string Kind(CodecFuzzFailure f)
    {
        var lines = f.Problem.Split('\n');
        var head = lines[0];
        var type = head.Contains(": ", StringComparison.Ordinal) && head.StartsWith("System.", StringComparison.Ordinal) ? head[..head.IndexOf(": ", StringComparison.Ordinal)] : head;
        var at = lines.Skip(1).Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("at Fleet.", StringComparison.Ordinal) && !l.StartsWith("at Fleet.Testing", StringComparison.Ordinal));
        if (at is not null && at.IndexOf(" in ", StringComparison.Ordinal) is > 0 and var cut) at = at[..cut];
        return $"{f.EntryPoint}: {type}{(at is null ? "" : " " + at)}";
    }

    /// <summary>Checks one input through every entry point: null when it passes, else the first problem.</summary>
    public static (string EntryPoint, string Problem)? Check(byte[] input, IDictionary<string, long>? outcomes = null)
    {
        var first = Render(input, outcomes, out var problem);
        if (problem is not null) return problem;
        // Deterministic: the same bytes, decoded again from scratch (fresh dialect instances), give the same everything.
        var second = Render(input.ToArray(), null, out problem);
        if (problem is not null) return problem;
        if (first != second)
        {
            var at = 0;
            while (at < first.Length && at < second.Length && first[at] == second[at]) at++;
            return ("determinism", $"two decodes of the same bytes differ from character {at}: '{Excerpt(first, at)}' vs '{Excerpt(second, at)}'");
        }
        return null;
    }

    private static string Excerpt(string s, int at) => s.Substring(Math.Max(0, at - 40), Math.Min(s.Length - Math.Max(0, at - 40), 120));

    private static readonly ReportReply SampleReply = new()
    {
        Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 0 }, new GatewayAuthMode { GwId = "gw-2", AuthMode = 1 }],
    };

    private static readonly string[] KnownGateways = ["gw-1", "gw-2"];

    /// <summary>An OpDialect as a connection has it after sending three requests (req_ids 1, 2, 3).</summary>
    private static OpDialect PrimedOpDialect()
    {
        var dialect = new OpDialect();
        dialect.EncodeRequest(new SimpleRequest { Type = "get_firmware_info", ReqId = ReqId.Of("c-fuzz-1") });
        dialect.EncodeRequest(new KickoffRequest
        {
            ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "fuzz-dev", GwId = "gw-1", ReqId = ReqId.Of("c-fuzz-2"),
        });
        dialect.EncodeRequest(new SimpleRequest { Type = "get_status", ReqId = ReqId.Of("c-fuzz-3") });
        return dialect;
    }

    private static string Render(byte[] input, IDictionary<string, long>? outcomes, out (string, string)? problem)
    {
        var sb = new StringBuilder(1024);
        (string, string)? failed = null;
        void Count(string entry, string outcome)
        {
            if (outcomes is null) return;
            var key = entry + ": " + outcome;
            outcomes[key] = outcomes.TryGetValue(key, out var n) ? n + 1 : 1;
        }
        void Step(string entry, Func<string> run)
        {
            try
            {
                var outcome = run();
                Count(entry, outcome);
                sb.Append('|').Append(entry).Append('=').Append(outcome);
            }
            catch (Exception ex)
            {
                Count(entry, "EXCEPTION " + ex.GetType().Name);
                failed ??= (entry, $"{ex.GetType().FullName}: {ex.Message}\n{ex.StackTrace}");
                sb.Append('|').Append(entry).Append("=threw ").Append(ex.GetType().Name);
            }
        }

        Step("ProtocolCodec.ReadEnvelope", () =>
        {
            var e = ProtocolCodec.ReadEnvelope(input);
            sb.Append(Describe(e));
            return e.Error is { } err ? "error " + err.Kind : e.HasResponse ? "response" : e.Op is not null ? "op" : e.Type is not null ? "type" : "no name";
        });
        Step("DeviceDialects.Detect", () => DeviceDialects.Detect(input)?.Name ?? "none");
        Step("TypeDialect.Decode", () => Frame(TypeDialect.Seed, TypeDialect.Seed.Decode(input), sb, ref failed));
        Step("OpDialect.Decode", () =>
        {
            var dialect = PrimedOpDialect();
            return Frame(dialect, dialect.Decode(input), sb, ref failed);
        });
        Step("ProtocolCodec.DecodeFromDevice", () => Outcome(ProtocolCodec.DecodeFromDevice(input), sb, ref failed, "DecodeFromDevice"));
        Step("ProtocolCodec.DecodeOpReport", () => Outcome(ProtocolCodec.DecodeOpReport(input), sb, ref failed, "DecodeOpReport"));
        Step("ProtocolCodec.DecodeFromController", () =>
        {
            // As CommandsApi calls it: the path's device_id fills in a kickoff's.
            var decoded = ProtocolCodec.DecodeFromController(input, m => m is KickoffRequest { DeviceId: null } k ? k with { DeviceId = "fuzz-dev" } : m);
            var outcome = Outcome(decoded, sb, ref failed, "DecodeFromController");
            if (decoded.Message is IControllerRequest request) outcome += " " + AdminPath(request, sb);
            return outcome;
        });
        Step("ProtocolCodec.DecodeFromController(op)", () => Outcome(ProtocolCodec.DecodeFromController(input, acceptOp: true), sb, ref failed, "DecodeFromController"));
        foreach (var era in new[] { FirmwareEra.Seed, FirmwareEra.V2025, FirmwareEra.V9 })
        {
            var router = RouterDialects.For(era);
            Step($"RouterDialect({router.Name}).Decode", () =>
            {
                var inbound = router.Decode(input);
                sb.Append(inbound.Kind).Append(',').Append(inbound.Name).Append(',').Append(inbound.ReqId).Append(',')
                    .Append(inbound.Request is null ? "" : ProtocolCodec.EncodeToString(inbound.Request)).Append(',')
                    .Append(string.Join(";", (inbound.Gateway ?? []).Select(g => $"{g.GwId}={g.AuthMode}"))).Append(',')
                    .Append(inbound.ApplyModes).Append(',').Append(inbound.Answer is null ? "" : Encoding.UTF8.GetString(router.EncodeAnswer(inbound.Answer)))
                    .Append(',').Append(inbound.Detail).Append(',').Append(inbound.Error?.Message);
                return inbound.Kind.ToString();
            });
        }
        problem = failed;
        return sb.ToString();
    }

    private static string Describe(Envelope e) =>
        $"{e.Type}/{e.Op}/{e.ReqId?.Value}:{e.ReqId?.IsNumber}/{e.HasResponse}/{e.TypeWrongKind}/{e.OpWrongKind}/{e.Error?.Kind}:{e.Error?.Message}:{e.Error?.Position}";

    private static string Describe(DecodeError e) => $"{e.Kind}:{e.Message}:{e.Type}:{e.Field}:{e.ReqId?.Value}:{e.ReqId?.IsNumber}:{e.Position}";

    /// <summary>A dialect's decoding, and what the connection does next with a report.</summary>
    private static string Frame(IDeviceDialect dialect, DeviceFrame frame, StringBuilder sb, ref (string, string)? failed)
    {
        if (frame.Error is { } error)
        {
            sb.Append(Describe(error));
            return "error " + error.Kind;
        }
        if (frame.Complaint is { } complaint)
        {
            sb.Append("complaint:").Append(complaint);
            return "complaint";
        }
        if (frame.Report is { } report)
        {
            sb.Append(ProtocolCodec.EncodeToString(report)).Append(dialect.NameFor(report));
            // DeviceConnection: the binding and gateway rules, then the reply echoing the report's req_id.
            sb.Append(FieldRules.IsDeviceId(report.DeviceId)).Append(report.Gateway?.All(g => FieldRules.IsGwId(g.GwId)));
            sb.Append(Encoding.UTF8.GetString(dialect.EncodeReply(report.Type, report.ReqId, SampleReply)));
            sb.Append(dialect.AppliesModesFromReplyTo(report.Type));
            return "report " + report.Type;
        }
        if (frame.Answer is { } a)
        {
            sb.Append(a.Type).Append(',').Append(a.ReqId?.Value).Append(',').Append(a.RequestType).Append(',').Append(a.Error).Append(',')
                .Append(a.Unsupported).Append(',').Append(a.ClientMac).Append(',')
                .Append(a.Firmware is null ? "" : string.Join(";", a.Firmware.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value)))
                .Append(',').Append(a.Body.GetRawText());
            return a.Succeeded ? "answer" : "answer (error)";
        }
        failed ??= ("dialect", "a DeviceFrame with neither report, answer, complaint nor error");
        return "nothing";
    }

    /// <summary>A codec decoding; a decoded message must encode, and decode again to what encodes the same.</summary>
    private static string Outcome<T>(Decoded<T> decoded, StringBuilder sb, ref (string, string)? failed, string entry) where T : class, IWireMessage
    {
        if (decoded.Error is { } error)
        {
            sb.Append(Describe(error));
            return "error " + error.Kind;
        }
        var message = decoded.Message!;
        var encoded = ProtocolCodec.Encode(message);
        sb.Append(Encoding.UTF8.GetString(encoded));
        var again = message is IDeviceFrame ? (IWireMessage?)ProtocolCodec.DecodeFromDevice(encoded).Message
            : message is IControllerFrame ? ProtocolCodec.DecodeFromController(encoded).Message : null;
        if (again is null)
            failed ??= (entry, $"decoded {message.Type}, encoded as {Encoding.UTF8.GetString(encoded)}, which does not decode");
        else if (!ProtocolCodec.Encode(again).AsSpan().SequenceEqual(encoded))
            failed ??= (entry, $"decoded {message.Type}: encoded {Encoding.UTF8.GetString(encoded)}, decoded and encoded again {ProtocolCodec.EncodeToString(again)}");
        return "ok " + message.Type;
    }

    /// <summary>What a decoded admin request goes through: the value rules, normalisation, the reader's size limit, encoding in each dialect.</summary>
    private static string AdminPath(IControllerRequest request, StringBuilder sb)
    {
        if (RequestKinds.Find(request.Type) is null) return "(not a command)";
        if (FieldRules.CheckRequest(request, KnownGateways) is { } problem)
        {
            sb.Append(problem);
            return "(refused)";
        }
        var normalised = FieldRules.Normalize(request, ReqId.Of("c0199aa00000000000000000000000001"));
        if (FieldRules.CheckWireSize(normalised) is { } tooLarge)
        {
            sb.Append(tooLarge);
            return "(too large)";
        }
        var seed = TypeDialect.Seed.EncodeRequest(normalised);
        var op = PrimedOpDialect().EncodeRequest(normalised);
        sb.Append(Encoding.UTF8.GetString(seed)).Append(Encoding.UTF8.GetString(op));
        var again = ProtocolCodec.DecodeFromController(seed);
        if (again.Message is null || !ProtocolCodec.Encode(again.Message).AsSpan().SequenceEqual(seed))
            throw new InvalidDataException($"the request as the node writes it, {Encoding.UTF8.GetString(seed)}, does not decode to itself ({again.Error?.Message})");
        return "(accepted)";
    }

    /// <summary>The run as a JSON object (bench output).</summary>
    public static string ToJson(CodecFuzzResult r, string? failureFile = null)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("target", "codec");
            w.WriteNumber("seed", r.Seed);
            w.WriteNumber("first_case", r.FirstCase);
            w.WriteNumber("cases", r.Cases);
            w.WriteNumber("seconds", Math.Round(r.Elapsed.TotalSeconds, 2));
            w.WriteNumber("cases_per_second", Math.Round(r.CasesPerSecond));
            w.WriteNumber("input_bytes", r.InputBytes);
            w.WriteNumber("failures", r.FailureCount);
            if (failureFile is not null) w.WriteString("first_failure_file", failureFile);
            w.WriteStartArray("first_failures");
            foreach (var f in r.Failures.Take(5))
            {
                w.WriteStartObject();
                w.WriteNumber("case", f.Case);
                w.WriteString("entry_point", f.EntryPoint);
                w.WriteString("problem", f.Problem.Split('\n')[0]);
                w.WriteString("recipe", f.Recipe);
                w.WriteString("input_base64", Convert.ToBase64String(f.Input));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("failure_kinds");
            foreach (var (k, v) in r.FailureKinds) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteStartObject("outcomes");
            foreach (var (k, v) in r.Outcomes) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Per entry point, how many cases ended how (for a short human summary).</summary>
    public static string Summary(CodecFuzzResult r) =>
        $"{r.Cases:N0} cases in {r.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s " +
        $"({r.CasesPerSecond.ToString("N0", CultureInfo.InvariantCulture)}/s, {r.InputBytes / Math.Max(1, r.Cases):N0} bytes a case on average), {r.FailureCount} failing";
}
