using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Fleet.Protocol;

namespace Fleet.Simulator;

/// <summary>
/// What the routers of one firmware era saw of the controller's frames: how many the reader lost (only the
/// first frame of a read is handled, partial frames are dropped, an overflow wedges the connection),
/// control frames, and requests answered.
/// </summary>
public sealed class FirmwareCounters
{
    internal long _devices, _connects, _lostFrames, _wedged, _misreads, _pings, _pongsSent, _closes, _otherControl,
        _offlineForGood, _badUpgrades, _complaints, _commandsReceived, _commandsAnswered, _replies;

    public long Devices => Interlocked.Read(ref _devices);
    public long Connects => Interlocked.Read(ref _connects);
    /// <summary>Frames from the controller the reader lost (never handled).</summary>
    public long LostFrames => Interlocked.Read(ref _lostFrames);
    /// <summary>Connections that went deaf after a read of 1,024 bytes or more.</summary>
    public long Wedged => Interlocked.Read(ref _wedged);
    /// <summary>Reads that began inside a split frame: its rest was taken for a frame header.</summary>
    public long Misreads => Interlocked.Read(ref _misreads);
    public long PingsReceived => Interlocked.Read(ref _pings);
    public long PongsSent => Interlocked.Read(ref _pongsSent);
    public long CloseFramesReceived => Interlocked.Read(ref _closes);
    /// <summary>Pongs, binary, continuation and unknown-opcode frames handled.</summary>
    public long OtherControlFrames => Interlocked.Read(ref _otherControl);
    /// <summary>2025 routers that got a close frame: offline until wifidog restarts.</summary>
    public long OfflineForGood => Interlocked.Read(ref _offlineForGood);
    public long BadUpgrades => Interlocked.Read(ref _badUpgrades);
    /// <summary>Text frames the router could not use (answered with an error, or dropped as the firmware does).</summary>
    public long Complaints => Interlocked.Read(ref _complaints);
    public long CommandsReceived => Interlocked.Read(ref _commandsReceived);
    public long CommandsAnswered => Interlocked.Read(ref _commandsAnswered);
    public long Replies => Interlocked.Read(ref _replies);

    internal void WriteJson(Utf8JsonWriter w)
    {
        w.WriteNumber("devices", Devices);
        w.WriteNumber("connects", Connects);
        w.WriteNumber("lost_frames", LostFrames);
        w.WriteNumber("wedged", Wedged);
        w.WriteNumber("misreads", Misreads);
        w.WriteNumber("pings_received", PingsReceived);
        w.WriteNumber("pongs_sent", PongsSent);
        w.WriteNumber("close_frames_received", CloseFramesReceived);
        w.WriteNumber("other_control_frames", OtherControlFrames);
        w.WriteNumber("offline_for_good", OfflineForGood);
        w.WriteNumber("bad_upgrades", BadUpgrades);
        w.WriteNumber("complaints", Complaints);
        w.WriteNumber("commands_received", CommandsReceived);
        w.WriteNumber("commands_answered", CommandsAnswered);
        w.WriteNumber("replies_received", Replies);
    }
}

/// <summary>Counters of a simulator run; updated from every device task, read at any time.</summary>
public sealed class SimulatorStats
{
    private readonly FirmwareCounters[] _byEra = [new(), new(), new()];

    /// <summary>The counters of one era's routers.</summary>
    public FirmwareCounters For(FirmwareEra era) => _byEra[(int)era];

    /// <summary>The eras with routers in this run, with their counters.</summary>
    public IEnumerable<(FirmwareEra Era, FirmwareCounters Counters)> ByFirmware =>
        Enum.GetValues<FirmwareEra>().Select(e => (e, For(e))).Where(p => p.Item2.Devices > 0);

    public long LostFrames => _byEra.Sum(c => c.LostFrames);
    public long Wedged => _byEra.Sum(c => c.Wedged);
    public long Misreads => _byEra.Sum(c => c.Misreads);
    public long PingsReceived => _byEra.Sum(c => c.PingsReceived);
    public long CloseFramesReceived => _byEra.Sum(c => c.CloseFramesReceived);
    public long OfflineForGood => _byEra.Sum(c => c.OfflineForGood);
    public long BadUpgrades => _byEra.Sum(c => c.BadUpgrades);
    /// <summary>Any frame of the controller's the routers lost or that made one deaf or drop its link.</summary>
    public bool AnyLoss => LostFrames + Wedged + Misreads + CloseFramesReceived > 0;

    private long _connected, _connects, _connectFailures, _disconnects, _heartbeatsSent, _repliesReceived,
        _unsolicitedReplies, _commandsReceived, _commandsAnswered, _oneWay, _decodeErrors, _sendErrors, _reboots;
    private readonly ConcurrentDictionary<string, long> _byType = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public LatencyRecorder ReplyLatency { get; } = new();

    public long Connected => Interlocked.Read(ref _connected);
    public long Connects => Interlocked.Read(ref _connects);
    public long ConnectFailures => Interlocked.Read(ref _connectFailures);
    public long Disconnects => Interlocked.Read(ref _disconnects);
    public long HeartbeatsSent => Interlocked.Read(ref _heartbeatsSent);
    public long RepliesReceived => Interlocked.Read(ref _repliesReceived);
    public long UnsolicitedReplies => Interlocked.Read(ref _unsolicitedReplies);
    public long CommandsReceived => Interlocked.Read(ref _commandsReceived);
    public long CommandsAnswered => Interlocked.Read(ref _commandsAnswered);
    public long OneWayReceived => Interlocked.Read(ref _oneWay);
    public long DecodeErrors => Interlocked.Read(ref _decodeErrors);
    public long SendErrors => Interlocked.Read(ref _sendErrors);
    public long Reboots => Interlocked.Read(ref _reboots);
    public IReadOnlyDictionary<string, long> CommandsByType => _byType;
    /// <summary>Connection failures and drops by reason (first line of the exception).</summary>
    public ConcurrentDictionary<string, long> Errors { get; } = new(StringComparer.Ordinal);

    internal void OnDevice(FirmwareEra era) => Interlocked.Increment(ref For(era)._devices);
    internal void OnConnected(FirmwareEra era)
    {
        Interlocked.Increment(ref For(era)._connects);
        OnConnected();
    }
    internal void OnConnected() { Interlocked.Increment(ref _connects); Interlocked.Increment(ref _connected); }
    internal void OnLoss(FirmwareEra era, FrameLoss loss)
    {
        Interlocked.Increment(ref For(era)._lostFrames);
        Error($"lost frame ({RouterDialects.NameOf(era)}): {loss.Kind} {Opcodes.Name(loss.Opcode)}");
    }
    internal void OnWedged(FirmwareEra era)
    {
        Interlocked.Increment(ref For(era)._wedged);
        Error($"wedged ({RouterDialects.NameOf(era)}): input buffer overflow, connection deaf");
    }
    internal void OnMisread(FirmwareEra era) => Interlocked.Increment(ref For(era)._misreads);
    internal void OnControlFrame(FirmwareEra era, int opcode, bool answered)
    {
        var c = For(era);
        switch (opcode)
        {
            case Opcodes.Ping:
                Interlocked.Increment(ref c._pings);
                if (answered) Interlocked.Increment(ref c._pongsSent);
                break;
            case Opcodes.Close:
                Interlocked.Increment(ref c._closes);
                Error($"close frame received ({RouterDialects.NameOf(era)})");
                break;
            default:
                Interlocked.Increment(ref c._otherControl);
                break;
        }
    }
    internal void OnOfflineForGood(FirmwareEra era) => Interlocked.Increment(ref For(era)._offlineForGood);
    internal void OnBadUpgrade(FirmwareEra era, string detail)
    {
        Interlocked.Increment(ref For(era)._badUpgrades);
        Error("upgrade: " + detail);
    }
    internal void OnComplaint(FirmwareEra era, string detail)
    {
        Interlocked.Increment(ref For(era)._complaints);
        OnDecodeError();
        Error($"refused ({RouterDialects.NameOf(era)}): {detail}");
    }
    internal void OnReply(FirmwareEra era, long? micros)
    {
        Interlocked.Increment(ref For(era)._replies);
        OnReply(micros);
    }
    internal void OnCommand(FirmwareEra era, string type, bool answered, bool oneWay)
    {
        var c = For(era);
        Interlocked.Increment(ref c._commandsReceived);
        if (answered) Interlocked.Increment(ref c._commandsAnswered);
        OnCommand(type, answered, oneWay);
    }
    internal void OnDisconnected() { Interlocked.Decrement(ref _connected); Interlocked.Increment(ref _disconnects); }
    internal void OnConnectFailed(string reason) { Interlocked.Increment(ref _connectFailures); Error(reason); }
    internal void OnHeartbeatSent() => Interlocked.Increment(ref _heartbeatsSent);
    internal void OnReply(long? micros)
    {
        Interlocked.Increment(ref _repliesReceived);
        if (micros is { } m) ReplyLatency.RecordMicros(m); else Interlocked.Increment(ref _unsolicitedReplies);
    }
    internal void OnCommand(string type, bool answered, bool oneWay)
    {
        Interlocked.Increment(ref _commandsReceived);
        _byType.AddOrUpdate(type, 1, static (_, n) => n + 1);
        if (answered) Interlocked.Increment(ref _commandsAnswered);
        if (oneWay) Interlocked.Increment(ref _oneWay);
    }
    internal void OnDecodeError() => Interlocked.Increment(ref _decodeErrors);
    internal void OnSendError(string reason) { Interlocked.Increment(ref _sendErrors); Error(reason); }
    internal void OnReboot() => Interlocked.Increment(ref _reboots);
    internal void Error(string reason) => Errors.AddOrUpdate(reason, 1, static (_, n) => n + 1);

    public TimeSpan Elapsed => _clock.Elapsed;

    private long _measureStart = -1, _measureEnd = -1, _hbAtMeasure, _repliesAtMeasure, _cmdsAtMeasure, _hbAtEnd, _repliesAtEnd, _cmdsAtEnd;

    /// <summary>Starts the measured window: clears the latency histogram and remembers the counters (after ramp and warm-up).</summary>
    public void StartMeasurement()
    {
        _hbAtMeasure = HeartbeatsSent;
        _repliesAtMeasure = RepliesReceived;
        _cmdsAtMeasure = CommandsReceived;
        ReplyLatency.Reset();
        Interlocked.Exchange(ref _measureStart, _clock.ElapsedTicks);
    }

    /// <summary>Ends the measured window (before connections are closed, so closing is not counted).</summary>
    public void StopMeasurement()
    {
        if (Interlocked.Read(ref _measureStart) < 0 || Interlocked.Read(ref _measureEnd) >= 0) return;
        _hbAtEnd = HeartbeatsSent;
        _repliesAtEnd = RepliesReceived;
        _cmdsAtEnd = CommandsReceived;
        Interlocked.Exchange(ref _measureEnd, _clock.ElapsedTicks);
    }

    /// <summary>Length of the measured window so far, in seconds (0 if it never started).</summary>
    public double MeasuredSeconds => Interlocked.Read(ref _measureStart) is var m and >= 0
        ? (double)((Interlocked.Read(ref _measureEnd) is var e and >= 0 ? e : _clock.ElapsedTicks) - m) / Stopwatch.Frequency : 0;

    private (long Heartbeats, long Replies, long Commands) InWindow() => Interlocked.Read(ref _measureEnd) >= 0
        ? (_hbAtEnd - _hbAtMeasure, _repliesAtEnd - _repliesAtMeasure, _cmdsAtEnd - _cmdsAtMeasure)
        : (HeartbeatsSent - _hbAtMeasure, RepliesReceived - _repliesAtMeasure, CommandsReceived - _cmdsAtMeasure);

    /// <summary>One progress line.</summary>
    public string Line(double cpuPercent)
    {
        var latency = ReplyLatency.Summary();
        return string.Create(CultureInfo.InvariantCulture,
            $"t={Elapsed.TotalSeconds,6:0.0}s connected={Connected} hb_sent={HeartbeatsSent} replies={RepliesReceived} " +
            $"p50={latency.P50 / 1000:0.00}ms p99={latency.P99 / 1000:0.00}ms " +
            $"p99.9={latency.P999 / 1000:0.00}ms cmds={CommandsReceived} answered={CommandsAnswered} " +
            $"connect_fail={ConnectFailures} drops={Disconnects} send_err={SendErrors} decode_err={DecodeErrors} " +
            $"lost={LostFrames} wedged={Wedged} pings={PingsReceived} closes={CloseFramesReceived} sim_cpu={cpuPercent:0}%");
    }

    /// <summary>
    /// One line per firmware era with routers in the run, and a LOSS line when the routers' readers lost
    /// frames, went deaf or got close frames (empty when there was nothing to say beyond one era's line).
    /// </summary>
    public IEnumerable<string> Summary()
    {
        foreach (var (era, c) in ByFirmware)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"  firmware {RouterDialects.NameOf(era),-4}: devices={c.Devices} connects={c.Connects} replies={c.Replies} cmds={c.CommandsReceived} " +
                $"answered={c.CommandsAnswered} refused={c.Complaints} lost={c.LostFrames} wedged={c.Wedged} misreads={c.Misreads} " +
                $"pings={c.PingsReceived} pongs={c.PongsSent} closes={c.CloseFramesReceived} offline_for_good={c.OfflineForGood}");
        if (AnyLoss)
            yield return $"  LOSS: {LostFrames} frame(s) lost to the routers' reader, {Wedged} connection(s) wedged, " +
                         $"{Misreads} misread(s), {CloseFramesReceived} close frame(s) received ({OfflineForGood} router(s) offline for good)";
    }

    public string ToJson(double cpuPercent, double cpuSeconds)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("elapsed_s", Math.Round(Elapsed.TotalSeconds, 3));
            w.WriteNumber("connected", Connected);
            w.WriteNumber("connects", Connects);
            w.WriteNumber("connect_failures", ConnectFailures);
            w.WriteNumber("disconnects", Disconnects);
            w.WriteNumber("heartbeats_sent", HeartbeatsSent);
            w.WriteNumber("replies_received", RepliesReceived);
            w.WriteNumber("unsolicited_replies", UnsolicitedReplies);
            var latency = ReplyLatency.Summary();
            w.WriteNumber("reply_p50_ms", Math.Round(latency.P50 / 1000, 3));
            w.WriteNumber("reply_p99_ms", Math.Round(latency.P99 / 1000, 3));
            w.WriteNumber("reply_p999_ms", Math.Round(latency.P999 / 1000, 3));
            w.WriteNumber("reply_max_ms", Math.Round(latency.Max / 1000, 3));
            w.WriteNumber("commands_received", CommandsReceived);
            w.WriteNumber("commands_answered", CommandsAnswered);
            w.WriteNumber("one_way_received", OneWayReceived);
            w.WriteNumber("decode_errors", DecodeErrors);
            w.WriteNumber("send_errors", SendErrors);
            w.WriteNumber("reboots", Reboots);
            w.WriteNumber("lost_frames", LostFrames);
            w.WriteNumber("wedged", Wedged);
            w.WriteNumber("misreads", Misreads);
            w.WriteNumber("pings_received", PingsReceived);
            w.WriteNumber("close_frames_received", CloseFramesReceived);
            w.WriteNumber("offline_for_good", OfflineForGood);
            w.WriteNumber("bad_upgrades", BadUpgrades);
            w.WriteStartObject("by_firmware");
            foreach (var (era, c) in ByFirmware)
            {
                w.WriteStartObject(RouterDialects.NameOf(era));
                c.WriteJson(w);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            var ms = MeasuredSeconds;
            w.WriteNumber("measured_s", Math.Round(ms, 3));
            var (hb, replies, cmds) = InWindow();
            w.WriteNumber("heartbeats_per_s", ms > 0 ? Math.Round(hb / ms, 1) : 0);
            w.WriteNumber("replies_per_s", ms > 0 ? Math.Round(replies / ms, 1) : 0);
            w.WriteNumber("commands_per_s", ms > 0 ? Math.Round(cmds / ms, 1) : 0);
            w.WriteNumber("sim_cpu_percent", Math.Round(cpuPercent, 1));
            w.WriteNumber("sim_cpu_seconds", Math.Round(cpuSeconds, 3));
            w.WriteStartObject("commands_by_type");
            foreach (var (k, v) in _byType.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteStartObject("errors");
            foreach (var (k, v) in Errors.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
