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
            "--first-index", "1000", "--no-reconnect", "--stats-seconds", "0", "--stats-json", "/tmp/x.json", "--warmup", "1", "--device-log", "/tmp/d.jsonl"]);
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
        Assert.Equal("/tmp/d.jsonl", o.DeviceLog);
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
        Assert.Equal("--url needs a value", SimulatorOptions.Parse(["--url", "--seed-era"]).Error);
    }

    [Fact]
    public void A_repeated_option_takes_its_last_value_as_the_bench_scripts_expect()
    {
        // bench/scripts/lib.sh passes --stats-seconds 5 and callers append --stats-seconds 1.
        var (o, error) = SimulatorOptions.Parse(["--stats-seconds", "5", "--devices", "3", "--stats-seconds", "1", "--devices=4"]);
        Assert.Null(error);
        Assert.Equal(1, o!.StatsSeconds);
        Assert.Equal(4, o.Devices);
        Assert.True(SimulatorOptions.Parse(["--echo-req-id", "--seed-era"]).Options!.SeedEra);
        Assert.False(SimulatorOptions.Parse(["--seed-era", "--echo-req-id"]).Options!.SeedEra);
    }

    [Fact]
    public void Source_addresses_and_base_are_clamped_to_the_loopback_range()
    {
        var o = SimulatorOptions.Parse(["--source-addresses", "999", "--source-base", "300"]).Options!;
        Assert.Equal(254, o.SourceAddresses);
        Assert.Equal(254, o.SourceAddressBase);
    }

    [Fact]
    public void Help_is_recognised_and_lists_every_option()
    {
        Assert.IsType<System.CommandLine.Help.HelpAction>(SimulatorOptions.ParseCommandLine(["--help"]).Action);
        var names = SimulatorOptions.Command.Options.Select(o => o.Name).ToList();
        foreach (var name in new[] { "--url", "--devices", "--heartbeat-seconds", "--ramp", "--duration", "--firmware", "--seed-era", "--echo-req-id", "--device-work-ms",
                     "--device-prefix", "--first-index", "--gateways", "--source-addresses", "--source-base", "--no-reconnect",
                     "--no-spread", "--stats-seconds", "--stats-json", "--device-log", "--warmup", "--seed" })
            Assert.Contains(name, names);
    }

    private static SimulatorOptions Parse(params string[] args)
    {
        var (o, error) = SimulatorOptions.Parse(args);
        Assert.Null(error);
        return o!;
    }

    [Fact]
    public void Firmware_is_chosen_by_name_and_the_old_flags_stay_aliases_where_the_last_one_wins()
    {
        Assert.Equal(FirmwareChoice.V2025, Parse().Firmware);
        Assert.Equal(FirmwareChoice.V9, Parse("--firmware", "9").Firmware);
        Assert.Equal(FirmwareChoice.Mix, Parse("--firmware=mix").Firmware);
        Assert.True(Parse("--firmware", "seed").SeedEra);
        Assert.Equal(FirmwareChoice.Seed, Parse("--firmware", "9", "--seed-era").Firmware);
        Assert.Equal(FirmwareChoice.V9, Parse("--seed-era", "--firmware", "9").Firmware);
        Assert.Equal(FirmwareChoice.V2025, Parse("--firmware", "seed", "--echo-req-id").Firmware);
        Assert.Equal("--firmware '8' is not seed, 2025, 9 or mix", SimulatorOptions.Parse(["--firmware", "8"]).Error);
        Assert.Equal("9", Parse("--firmware", "9").FirmwareName);
    }

    [Fact]
    public void The_seed_era_property_is_an_alias_of_firmware_seed()
    {
        Assert.Equal(FirmwareChoice.Seed, new SimulatorOptions { SeedEra = true }.Firmware);
        Assert.Equal(FirmwareChoice.V9, new SimulatorOptions { Firmware = FirmwareChoice.V9, SeedEra = false }.Firmware);
        Assert.Equal(FirmwareChoice.V2025, new SimulatorOptions { Firmware = FirmwareChoice.Seed, SeedEra = false }.Firmware);
    }

    [Fact]
    public void Mix_gives_a_third_of_the_routers_to_each_era_by_device_index()
    {
        var o = Parse("--firmware", "mix", "--devices", "9", "--first-index", "30");
        Assert.Equal([Fleet.Protocol.FirmwareEra.Seed, Fleet.Protocol.FirmwareEra.V2025, Fleet.Protocol.FirmwareEra.V9, Fleet.Protocol.FirmwareEra.Seed],
            Enumerable.Range(30, 4).Select(o.EraOf));
        using var runner = new SimulatorRunner(o);
        Assert.Equal([3, 3, 3], runner.Stats.ByFirmware.Select(p => (int)p.Counters.Devices));
        Assert.Equal(3, runner.Devices.Count(d => d.Era == Fleet.Protocol.FirmwareEra.V9));
    }

    [Fact]
    public void Device_work_ms_is_a_non_negative_integer()
    {
        Assert.Equal(0, Parse().DeviceWorkMs);
        Assert.Equal(250, Parse("--device-work-ms", "250").DeviceWorkMs);
        Assert.Contains("--device-work-ms", SimulatorOptions.Parse(["--device-work-ms", "-1"]).Error);
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
    public void Histogram_percentiles_are_within_a_tenth_of_a_percent()
    {
        var h = new LatencyRecorder();
        for (var v = 1; v <= 100_000; v++) h.RecordMicros(v);
        Assert.Equal(100_000, h.Count);
        Assert.InRange(h.PercentileMicros(50), 50_000 * 0.999, 50_000 * 1.001);
        Assert.InRange(h.PercentileMicros(99), 99_000 * 0.999, 99_000 * 1.001);
        Assert.InRange(h.PercentileMicros(99.9), 99_900 * 0.999, 99_900 * 1.001);
        Assert.InRange(h.MaxMicros, 100_000, 100_000 * 1.001);
        var one = new LatencyRecorder();
        one.RecordMicros(7);
        Assert.Equal(7, one.PercentileMicros(100));
        var s = h.Summary();
        Assert.Equal(100_000, s.Count);
        Assert.Equal(h.PercentileMicros(99), s.P99);
        Assert.InRange(s.Mean, 50_000 * 0.999, 50_000 * 1.001);
    }

    [Fact]
    public void Histogram_keeps_what_was_recorded_between_reads()
    {
        var h = new LatencyRecorder();
        h.RecordMicros(1000);
        Assert.Equal(1, h.Count);
        h.RecordMicros(2000);
        Assert.Equal(2, h.Count);
        Assert.InRange(h.MaxMicros, 2000, 2002);
    }

    [Fact]
    public void Histogram_records_from_many_threads_without_losing_values()
    {
        var h = new LatencyRecorder();
        Parallel.For(0, 8, _ => { for (var i = 1; i <= 10_000; i++) h.RecordMicros(i); });
        Assert.Equal(80_000, h.Count);
    }

    [Fact]
    public void Histogram_clamps_values_outside_its_range()
    {
        var h = new LatencyRecorder();
        h.RecordMicros(-5);
        h.Record(TimeSpan.FromHours(3));
        Assert.Equal(2, h.Count);
        Assert.Equal(0, h.PercentileMicros(50));
        Assert.InRange(h.MaxMicros, LatencyRecorder.HighestMicros, LatencyRecorder.HighestMicros * 1.001);
    }

    [Fact]
    public void Histogram_reset_forgets_everything()
    {
        var h = new LatencyRecorder();
        h.RecordMicros(1000);
        h.Reset();
        Assert.Equal(0, h.Count);
        Assert.Equal(0, h.PercentileMicros(99));
        Assert.Equal(0, h.Summary().Max);
    }
}
