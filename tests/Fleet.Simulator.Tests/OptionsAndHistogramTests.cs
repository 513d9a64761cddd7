using Xunit;

namespace Fleet.Simulator.Tests;

public sealed class OptionsAndHistogramTests
{
    [Fact]
    public void Defaults_target_the_local_node_with_100_echoing_devices()
    {
        var (o, error) = SimulatorOptions.Parse([]);
        Assert.Null(error);
        Assert.Equal("ws://127.0.0.1:8080/ws/wifidogx", o!.Url.ToString());
        Assert.Equal(100, o.Devices);
        Assert.False(o.SeedEra);
        Assert.Null(o.Duration);
    }

    [Fact]
    public void Every_option_is_parsed_in_both_spellings()
    {
        var (o, error) = SimulatorOptions.Parse(["--url", "ws://127.0.0.1:9/x", "--devices=250", "--heartbeat-seconds", "0.5",
            "--ramp", "100", "--duration", "3", "--seed-era", "--device-prefix", "r", "--gateways", "2", "--source-addresses", "4",
            "--first-index", "1000", "--no-reconnect", "--stats-seconds", "0", "--stats-json", "/tmp/x.json", "--warmup", "1"]);
        Assert.Null(error);
        Assert.Equal(250, o!.Devices);
        Assert.Equal(0.5, o.HeartbeatSeconds);
        Assert.Equal(TimeSpan.FromSeconds(3), o.Duration);
        Assert.True(o.SeedEra);
        Assert.Equal("r-001000", o.DeviceId(o.FirstIndex));
        Assert.Equal(2, o.Gateways);
        Assert.Equal(4, o.SourceAddresses);
        Assert.False(o.Reconnect);
        Assert.Equal("/tmp/x.json", o.StatsJson);
        Assert.Equal(1, o.WarmupSeconds);
    }

    [Theory]
    [InlineData("--devices", "0")]
    [InlineData("--devices", "many")]
    [InlineData("--heartbeat-seconds", "-1")]
    [InlineData("--url", "http://127.0.0.1/x")]
    [InlineData("--device-prefix", "a b")]
    [InlineData("--bogus", "1")]
    public void Bad_values_are_reported_not_thrown(string name, string value)
    {
        var (o, error) = SimulatorOptions.Parse([name, value]);
        Assert.Null(o);
        Assert.Contains(name, error);
    }

    [Fact]
    public void Option_without_its_value_is_reported()
    {
        Assert.Equal("--devices needs a value", SimulatorOptions.Parse(["--devices"]).Error);
    }

    [Fact]
    public void Runner_spreads_large_fleets_over_loopback_source_addresses()
    {
        using var big = new SimulatorRunner(new SimulatorOptions { Devices = 45_000 });
        Assert.Equal(["127.0.0.1", "127.0.0.2", "127.0.0.3"], big.SourceAddresses.Select(a => a.ToString()));
        using var small = new SimulatorRunner(new SimulatorOptions { Devices = 10 });
        Assert.Empty(small.SourceAddresses);
        using var remote = new SimulatorRunner(new SimulatorOptions { Devices = 10, SourceAddresses = 4, Url = new Uri("ws://10.0.0.1/ws") });
        Assert.Empty(remote.SourceAddresses);
    }

    [Fact]
    public void Histogram_percentiles_are_within_three_percent()
    {
        var h = new LatencyHistogram();
        for (var v = 1; v <= 100_000; v++) h.RecordMicros(v);
        Assert.Equal(100_000, h.Count);
        Assert.InRange(h.PercentileMicros(50), 50_000 * 0.97, 50_000 * 1.03);
        Assert.InRange(h.PercentileMicros(99), 99_000 * 0.97, 99_000 * 1.03);
        Assert.InRange(h.PercentileMicros(99.9), 99_900 * 0.97, 100_000);
        Assert.Equal(100_000, h.MaxMicros);
        Assert.Equal(7, new LatencyHistogram().Also(x => x.RecordMicros(7)).PercentileMicros(100));
    }

    [Fact]
    public void Histogram_reset_forgets_everything()
    {
        var h = new LatencyHistogram();
        h.RecordMicros(1000);
        h.Reset();
        Assert.Equal(0, h.Count);
        Assert.Equal(0, h.PercentileMicros(99));
    }
}

internal static class Ext
{
    public static T Also<T>(this T t, Action<T> a) { a(t); return t; }
}
