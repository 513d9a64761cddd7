using System.Globalization;

namespace Fleet.Simulator;

/// <summary>How a simulator run behaves. Parsed from the command line by <see cref="Parse"/>.</summary>
public sealed record SimulatorOptions
{
    public Uri Url { get; init; } = new("ws://127.0.0.1:8080/ws/wifidogx");
    public int Devices { get; init; } = 100;
    /// <summary>Seconds between heartbeats of one device (fractions allowed for load runs).</summary>
    public double HeartbeatSeconds { get; init; } = 60;
    /// <summary>New connections per second while ramping up.</summary>
    public double Ramp { get; init; } = 500;
    /// <summary>Total run time; null runs until cancelled (Ctrl-C).</summary>
    public TimeSpan? Duration { get; init; }
    /// <summary>Seed-era firmware: never echo req_id, no request_error, only the seed's request types.</summary>
    public bool SeedEra { get; init; }
    public string DevicePrefix { get; init; } = "sim";
    /// <summary>Index of this process's first device (to split one fleet over several processes).</summary>
    public int FirstIndex { get; init; }
    public int Gateways { get; init; } = 1;
    /// <summary>Source addresses 127.0.0.1, .2, … to spread connections over; 0 = one per 20,000 devices.</summary>
    public int SourceAddresses { get; init; }
    /// <summary>Last octet of the first source address (several simulator processes use distinct ones).</summary>
    public int SourceAddressBase { get; init; } = 1;
    /// <summary>Reconnect after errors and closes like the firmware (2 s, 5 s after EOF).</summary>
    public bool Reconnect { get; init; } = true;
    /// <summary>Spread each device's first heartbeat uniformly over one interval (else send it at once).</summary>
    public bool SpreadHeartbeats { get; init; } = true;
    /// <summary>Seconds between progress lines; 0 prints only the final summary.</summary>
    public double StatsSeconds { get; init; } = 5;
    /// <summary>Where to write the final statistics as JSON (for bench scripts), if anywhere.</summary>
    public string? StatsJson { get; init; }
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Fixed delay before every reconnect; null keeps the firmware's (2 s after errors, 3 s after a close, 5 s after a reboot).</summary>
    public TimeSpan? ReconnectDelay { get; init; }
    public int Seed { get; init; } = 1;
    /// <summary>Seconds after the ramp before the measured window starts (latency histogram reset).</summary>
    public double WarmupSeconds { get; init; }

    public string DeviceId(int index) => $"{DevicePrefix}-{index:D6}";

    public const string Usage = """
        Fleet.Simulator — N simulated WiFiDogX routers over real WebSockets.

          --url URL               controller endpoint (default ws://127.0.0.1:8080/ws/wifidogx)
          --devices N             number of routers (default 100)
          --heartbeat-seconds S   heartbeat interval, fractions allowed (default 60)
          --ramp R                new connections per second (default 500)
          --duration S            run for S seconds then close (default: until Ctrl-C)
          --seed-era              seed firmware: never echo req_id, no request_error
          --echo-req-id           upstream firmware: echo req_id (the default)
          --device-prefix P       device ids are P-000000, P-000001, … (default sim)
          --first-index I         first device index (split a fleet over processes)
          --gateways G            gateways per device (default 1)
          --source-addresses K    spread over 127.0.0.1..K (default: one per 20,000 devices)
          --source-base B         first source address is 127.0.0.B (default 1)
          --no-reconnect          do not reconnect after a drop
          --no-spread             send every first heartbeat at once instead of spreading
          --stats-seconds S       progress line every S seconds, 0 for none (default 5)
          --stats-json PATH       write the final statistics as JSON
          --warmup S              after the ramp, wait S seconds then start measuring (default 0)
          --seed N                random seed (default 1)
        """;

    /// <summary>Parses command-line arguments; returns an error sentence instead of throwing.</summary>
    public static (SimulatorOptions? Options, string? Error) Parse(IReadOnlyList<string> args)
    {
        var o = new SimulatorOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string? inline = null;
            var eq = name.IndexOf('=');
            if (name.StartsWith("--", StringComparison.Ordinal) && eq > 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            string Value()
            {
                if (inline is not null) return inline;
                if (i + 1 >= args.Count) throw new FormatException($"{name} needs a value");
                return args[++i];
            }
            int Int(int min)
            {
                var v = Value();
                if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min)
                    throw new FormatException($"{name} '{v}' is not an integer ≥ {min}");
                return n;
            }
            double Num(double minExclusive)
            {
                var v = Value();
                if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !(d > minExclusive) || double.IsInfinity(d))
                    throw new FormatException($"{name} '{v}' is not a number > {minExclusive.ToString(CultureInfo.InvariantCulture)}");
                return d;
            }
            try
            {
                o = name switch
                {
                    "--url" => o with { Url = ParseUrl(Value()) },
                    "--devices" => o with { Devices = Int(1) },
                    "--heartbeat-seconds" => o with { HeartbeatSeconds = Num(0) },
                    "--ramp" => o with { Ramp = Num(0) },
                    "--duration" => o with { Duration = TimeSpan.FromSeconds(Num(0)) },
                    "--seed-era" => o with { SeedEra = true },
                    "--echo-req-id" => o with { SeedEra = false },
                    "--device-prefix" => o with { DevicePrefix = Prefix(Value()) },
                    "--first-index" => o with { FirstIndex = Int(0) },
                    "--gateways" => o with { Gateways = Int(1) },
                    "--source-addresses" => o with { SourceAddresses = Math.Min(Int(0), 254) },
                    "--source-base" => o with { SourceAddressBase = Math.Clamp(Int(1), 1, 254) },
                    "--no-reconnect" => o with { Reconnect = false },
                    "--no-spread" => o with { SpreadHeartbeats = false },
                    "--stats-seconds" => o with { StatsSeconds = Num(-1) },
                    "--stats-json" => o with { StatsJson = Value() },
                    "--seed" => o with { Seed = Int(0) },
                    "--warmup" => o with { WarmupSeconds = Num(-1) },
                    _ => throw new FormatException($"unknown option '{name}'"),
                };
            }
            catch (FormatException ex)
            {
                return (null, ex.Message);
            }
        }
        return (o, null);
    }

    private static Uri ParseUrl(string v) =>
        Uri.TryCreate(v, UriKind.Absolute, out var u) && (u.Scheme == "ws" || u.Scheme == "wss")
            ? u : throw new FormatException($"--url '{v}' is not a ws:// or wss:// URL");

    private static string Prefix(string v) =>
        Fleet.Protocol.FieldRules.IsDeviceId(v + "-000000") ? v : throw new FormatException($"--device-prefix '{v}' makes no valid device id");
}
