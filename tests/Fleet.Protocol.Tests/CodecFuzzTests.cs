using Fleet.Testing;
using Xunit;

namespace Fleet.Protocol.Tests;

/// <summary>
/// A short run of the codec fuzzer (tests/Shared/CodecFuzz.cs; bench/Fuzz runs it for a million cases and more):
/// mutated and random frames through every decoding entry point the node uses, none may throw, decode differently
/// twice, or decode to something that does not encode back to itself.
/// </summary>
public class CodecFuzzTests
{
    [Fact]
    public void Twenty_thousand_mutated_and_random_frames_decode_without_an_exception_and_the_same_way_twice()
    {
        var result = CodecFuzz.Run(seed: 1, cases: 20_000, threads: 2, ct: TestContext.Current.CancellationToken);

        Assert.Equal(20_000, result.Cases);
        Assert.True(result.FailureCount == 0,
            $"{result.FailureCount} failing case(s); the first ones:\n" + string.Join("\n\n", result.Failures.Take(5)));
        // The mutations reach past the parser: every dialect decodes reports and answers, the admin path accepts requests.
        long Count(string prefix) => result.Outcomes.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(kv => kv.Value);
        Assert.True(Count("TypeDialect.Decode: report") > 300, "type-dialect reports decoded");
        Assert.True(Count("TypeDialect.Decode: answer") > 500, "type-dialect answers decoded");
        Assert.True(Count("OpDialect.Decode: report") > 300, "op-dialect reports decoded");
        Assert.True(Count("OpDialect.Decode: answer") > 500, "op-dialect answers decoded");
        Assert.True(Count("OpDialect.Decode: complaint") > 0, "op-dialect complaints");
        Assert.True(Count("ProtocolCodec.DecodeFromController: ok") > 500, "controller frames decoded");
        Assert.True(result.Outcomes.Where(kv => kv.Key.EndsWith("(accepted)", StringComparison.Ordinal)).Sum(kv => kv.Value) > 200,
            "admin requests accepted after the value rules");
        foreach (var kind in Enum.GetNames<DecodeErrorKind>())
            Assert.True(Count($"ProtocolCodec.DecodeFromDevice: error {kind}") > 0, $"DecodeFromDevice: some {kind}");
    }

    [Fact]
    public void A_case_is_the_same_bytes_whenever_it_is_made()
    {
        var a = new FrameMutator(FuzzSeeds.All());
        var b = new FrameMutator(FuzzSeeds.All());
        for (var i = 0; i < 200; i++)
            Assert.Equal(a.Case(7, i, out var ra), b.Case(7, i, out var rb));
        Assert.NotEqual(a.Case(7, 1, out _), a.Case(8, 1, out _));
    }

    [Fact]
    public void Every_seed_is_a_valid_frame_in_its_dialect()
    {
        foreach (var seed in FuzzSeeds.All())
        {
            if (seed.Direction == FuzzDirection.FromDevice)
            {
                // Reports can open a connection (their dialect is told from them); answers are read in the connection's dialect.
                IDeviceDialect dialect = seed.Dialect == "9" ? new OpDialect() : TypeDialect.Seed;
                if (seed.Name.EndsWith("connect", StringComparison.Ordinal) || seed.Name.EndsWith("heartbeat", StringComparison.Ordinal))
                    Assert.Equal(dialect.Name, DeviceDialects.Detect(seed.Bytes)?.Name);
                var frame = dialect.Decode(seed.Bytes);
                Assert.True(frame.Error is null, $"{seed.Name}: {frame.Error}: {seed.Text}");
            }
            else if (seed.Name is "9-shell" or "9-set_websocket_serv")
            {
                Assert.Equal(InboundKind.Request, OpRouterDialect.Instance.Decode(seed.Bytes).Kind);
            }
            else
            {
                var router = RouterDialects.For(seed.Dialect == "9" ? FirmwareEra.V9 : FirmwareEra.V2025);
                var inbound = router.Decode(seed.Bytes);
                Assert.True(inbound.Kind != InboundKind.Complaint, $"{seed.Name}: the router complains: {inbound.Detail}: {seed.Text}");
            }
        }
    }
}
