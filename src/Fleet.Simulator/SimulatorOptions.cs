using System.CommandLine;
using System.Globalization;
using Fleet.Protocol;

namespace Fleet.Simulator;

/// <summary>Which firmware the simulated routers run: one era for all, or a third of them each (by device index).</summary>
public enum FirmwareChoice { Seed, V2025, V9, Mix }

/// <summary>How a simulator run behaves. Parsed from the command line by <see cref="Parse"/> (System.CommandLine).</summary>
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
    /// <summary>
    /// The firmware the routers run (--firmware seed|2025|9|mix): seed (WEBSOCKET_API.md), 2025
    /// (EXTENSIONS.md, the default), 9 (the op dialect of FIRMWARE_9.md) or mix (device index mod 3:
    /// seed, 2025, 9). Every era reads like the real client (FirmwareReader).
    /// </summary>
    public FirmwareChoice Firmware { get; init; } = FirmwareChoice.V2025;

    /// <summary>Seed-era firmware: never echo req_id, no request_error, only the seed's request types. An alias of <see cref="Firmware"/> = Seed (false leaves another era as it is).</summary>
    public bool SeedEra
    {
        get => Firmware == FirmwareChoice.Seed;
        init => Firmware = value ? FirmwareChoice.Seed : Firmware == FirmwareChoice.Seed ? FirmwareChoice.V2025 : Firmware;
    }

    /// <summary>
    /// Milliseconds each router's event loop stays busy after handling a frame (popen, firewall reload on the
    /// real router): frames arriving meanwhile pile up and are read together, so all but the first are lost.
    /// </summary>
    public int DeviceWorkMs { get; init; }

    /// <summary>The era of the router with this (absolute) device index.</summary>
    public FirmwareEra EraOf(int index) => Firmware switch
    {
        FirmwareChoice.Seed => FirmwareEra.Seed,
        FirmwareChoice.V9 => FirmwareEra.V9,
        FirmwareChoice.Mix => (FirmwareEra)(index % 3),
        _ => FirmwareEra.V2025,
    };

    /// <summary>The value --firmware takes for <see cref="Firmware"/>.</summary>
    public string FirmwareName => Firmware switch
    {
        FirmwareChoice.Seed => "seed",
        FirmwareChoice.V9 => "9",
        FirmwareChoice.Mix => "mix",
        _ => "2025",
    };
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
    /// <summary>
    /// Where to write the device-side log (<see cref="DeviceLog"/>), if anywhere: one JSON line per request a
    /// router executed, per frame its reader lost, per connection up and down.
    /// </summary>
    public string? DeviceLog { get; init; }
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Fixed delay before every reconnect; null keeps the firmware's (2 s after errors, 3 s after a close, 5 s after a reboot).</summary>
    public TimeSpan? ReconnectDelay { get; init; }
    public int Seed { get; init; } = 1;
    /// <summary>Seconds after the ramp before the measured window starts (latency histogram reset).</summary>
    public double WarmupSeconds { get; init; }

    public string DeviceId(int index) => $"{DevicePrefix}-{index:D6}";

    /// <summary>
    /// The command line: every option's name, value, default and check. Parsed by System.CommandLine;
    /// each option may be given more than once and the last one wins (the bench scripts append
    /// overrides such as a second --stats-seconds), and --opt=value works like --opt value.
    /// </summary>
    public static RootCommand Command => Cli.Command;

    /// <summary>Parses command-line arguments; returns an error sentence instead of throwing.</summary>
    public static (SimulatorOptions? Options, string? Error) Parse(IReadOnlyList<string> args) => From(ParseCommandLine(args));

    public static ParseResult ParseCommandLine(IReadOnlyList<string> args) => Cli.Command.Parse(args, Cli.Settings);

    /// <summary>The options a parse result holds, or its first error.</summary>
    public static (SimulatorOptions? Options, string? Error) From(ParseResult r)
    {
        if (r.Errors.Count > 0) return (null, r.Errors[0].Message);
        // --firmware, --seed-era and --echo-req-id set one thing: the last of them wins.
        var era = r.Tokens.LastOrDefault(t => t.Value is "--seed-era" or "--echo-req-id" or "--firmware")?.Value;
        var firmware = era switch
        {
            "--seed-era" => FirmwareChoice.Seed,
            "--echo-req-id" => FirmwareChoice.V2025,
            _ => Cli.ParseFirmware("--firmware", r.GetValue(Cli.Firmware)!),
        };
        var duration = r.GetValue(Cli.Duration);
        return (new SimulatorOptions
        {
            Url = r.GetValue(Cli.Url)!,
            Devices = r.GetValue(Cli.Devices),
            HeartbeatSeconds = r.GetValue(Cli.Heartbeat),
            Ramp = r.GetValue(Cli.Ramp),
            Duration = duration is { } d ? TimeSpan.FromSeconds(d) : null,
            Firmware = firmware,
            DeviceWorkMs = r.GetValue(Cli.DeviceWorkMs),
            DevicePrefix = r.GetValue(Cli.Prefix)!,
            FirstIndex = r.GetValue(Cli.FirstIndex),
            Gateways = r.GetValue(Cli.Gateways),
            SourceAddresses = r.GetValue(Cli.SourceAddresses),
            SourceAddressBase = r.GetValue(Cli.SourceBase),
            Reconnect = !r.GetValue(Cli.NoReconnect),
            SpreadHeartbeats = !r.GetValue(Cli.NoSpread),
            StatsSeconds = r.GetValue(Cli.StatsSeconds),
            StatsJson = r.GetValue(Cli.StatsJson),
            DeviceLog = r.GetValue(Cli.DeviceLog),
            WarmupSeconds = r.GetValue(Cli.Warmup),
            Seed = r.GetValue(Cli.Seed),
        }, null);
    }
}

/// <summary>The simulator's command line (System.CommandLine): one option object per setting, built in order.</summary>
internal static class Cli
{
    private static readonly SimulatorOptions Defaults = new();
    // No @file response files: the old parser had none, and a device prefix could start with '@'.
    public static readonly ParserConfiguration Settings = new() { ResponseFileTokenReplacer = null };

    public static readonly Option<Uri> Url = Valued("--url", "URL", "controller endpoint", ParseUrl, Defaults.Url);
    public static readonly Option<int> Devices = Valued("--devices", "N", "number of routers", Int(1), Defaults.Devices);
    public static readonly Option<double> Heartbeat = Valued("--heartbeat-seconds", "S", "heartbeat interval, fractions allowed", Num(0), Defaults.HeartbeatSeconds);
    public static readonly Option<double> Ramp = Valued("--ramp", "R", "new connections per second", Num(0), Defaults.Ramp);
    public static readonly Option<double?> Duration = Valued<double?>("--duration", "S", "run for S seconds then close [default: until Ctrl-C]", (n, v) => Num(0)(n, v));
    // Parsed to the name (checked) so that help shows the default as it is typed.
    public static readonly Option<string> Firmware = Valued("--firmware", "seed|2025|9|mix",
        "firmware the routers run: seed, 2025 (echoes req_id), 9 (op dialect), mix (a third each)",
        (n, v) => { ParseFirmware(n, v); return v; }, Defaults.FirmwareName);
    public static readonly Option<bool> SeedEra = Flag("--seed-era", "same as --firmware seed");
    public static readonly Option<bool> EchoReqId = Flag("--echo-req-id", "same as --firmware 2025");
    public static readonly Option<int> DeviceWorkMs = Valued("--device-work-ms", "MS",
        "each router is busy MS ms after handling a frame (frames arriving meanwhile are read together)", Int(0), Defaults.DeviceWorkMs);
    public static readonly Option<string> Prefix = Valued("--device-prefix", "P", "device ids are P-000000, P-000001, …", ParsePrefix, Defaults.DevicePrefix);
    public static readonly Option<int> FirstIndex = Valued("--first-index", "I", "first device index (split a fleet over processes)", Int(0), Defaults.FirstIndex);
    public static readonly Option<int> Gateways = Valued("--gateways", "G", "gateways per device", Int(1), Defaults.Gateways);
    public static readonly Option<int> SourceAddresses = Valued("--source-addresses", "K", "spread over 127.0.0.1..K; 0 = one per 20,000 devices",
        (n, v) => Math.Min(Int(0)(n, v), 254), Defaults.SourceAddresses);
    public static readonly Option<int> SourceBase = Valued("--source-base", "B", "first source address is 127.0.0.B",
        (n, v) => Math.Clamp(Int(1)(n, v), 1, 254), Defaults.SourceAddressBase);
    public static readonly Option<bool> NoReconnect = Flag("--no-reconnect", "do not reconnect after a drop");
    public static readonly Option<bool> NoSpread = Flag("--no-spread", "send every first heartbeat at once instead of spreading");
    public static readonly Option<double> StatsSeconds = Valued("--stats-seconds", "S", "progress line every S seconds, 0 for none", Num(-1), Defaults.StatsSeconds);
    public static readonly Option<string?> StatsJson = Valued<string?>("--stats-json", "PATH", "write the final statistics as JSON", (_, v) => v);
    public static readonly Option<string?> DeviceLog = Valued<string?>("--device-log", "PATH",
        "write the device-side log: a JSON line per request executed, frame lost, connection up/down", (_, v) => v);
    public static readonly Option<double> Warmup = Valued("--warmup", "S", "after the ramp, wait S seconds then start measuring", Num(-1), Defaults.WarmupSeconds);
    public static readonly Option<int> Seed = Valued("--seed", "N", "random seed", Int(0), Defaults.Seed);

    public static readonly RootCommand Command = new("Fleet.Simulator — N simulated WiFiDogX routers over real WebSockets.")
    {
        Url, Devices, Heartbeat, Ramp, Duration, Firmware, SeedEra, EchoReqId, DeviceWorkMs, Prefix, FirstIndex, Gateways, SourceAddresses, SourceBase,
        NoReconnect, NoSpread, StatsSeconds, StatsJson, DeviceLog, Warmup, Seed,
    };

    /// <summary>
    /// An option with a value, read by <paramref name="parse"/> (which throws FormatException with the
    /// sentence to show). Every occurrence is taken, one value each, and the last one counts.
    /// </summary>
    private static Option<T> Valued<T>(string name, string helpName, string description, Func<string, string, T> parse, T? defaultValue = default)
    {
        var option = new Option<T>(name)
        {
            Description = description,
            HelpName = helpName,
            Arity = ArgumentArity.ZeroOrMore,
            CustomParser = r =>
            {
                if (r.Tokens.Count == 0)
                {
                    r.AddError($"{name} needs a value");
                    return default;
                }
                try { return parse(name, r.Tokens[^1].Value); }
                catch (FormatException ex)
                {
                    r.AddError(ex.Message);
                    return default;
                }
            },
        };
        if (defaultValue is not null) option.DefaultValueFactory = _ => defaultValue;
        // Given without a value, an option with a default would quietly take the default.
        option.Validators.Add(r =>
        {
            if (!r.Implicit && r.Tokens.Count == 0) r.AddError($"{name} needs a value");
        });
        return option;
    }

    private static Option<bool> Flag(string name, string description) =>
        new(name) { Description = description, Arity = ArgumentArity.Zero };

    private static Func<string, string, int> Int(int min) => (name, v) =>
        int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min
            ? n : throw new FormatException($"{name} '{v}' is not an integer ≥ {min}");

    private static Func<string, string, double> Num(double minExclusive) => (name, v) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d > minExclusive && !double.IsInfinity(d)
            ? d : throw new FormatException($"{name} '{v}' is not a number > {minExclusive.ToString(CultureInfo.InvariantCulture)}");

    private static Uri ParseUrl(string name, string v) =>
        Uri.TryCreate(v, UriKind.Absolute, out var u) && (u.Scheme == "ws" || u.Scheme == "wss")
            ? u : throw new FormatException($"{name} '{v}' is not a ws:// or wss:// URL");

    public static FirmwareChoice ParseFirmware(string name, string v) => v.ToLowerInvariant() switch
    {
        "seed" => FirmwareChoice.Seed,
        "2025" => FirmwareChoice.V2025,
        "9" or "9.x" => FirmwareChoice.V9,
        "mix" => FirmwareChoice.Mix,
        _ => throw new FormatException($"{name} '{v}' is not seed, 2025, 9 or mix"),
    };

    private static string ParsePrefix(string name, string v) =>
        Fleet.Protocol.FieldRules.IsDeviceId(v + "-000000") ? v : throw new FormatException($"{name} '{v}' makes no valid device id");
}
