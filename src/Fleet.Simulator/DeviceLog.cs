using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fleet.Protocol;

namespace Fleet.Simulator;

/// <summary>
/// The device-side log of a run (--device-log PATH): one JSON line per request a router executed (and what it
/// answered), per frame its reader lost, per connection up and down. It is what an invariant checker holds
/// the controller's claims against (a command executed twice, a frame lost), so it records what the router
/// did, not what the controller says. Cheap: routers' heartbeats and their replies are not logged, lines go
/// through one buffered writer, flushed at the end of the run (and every second so a reader sees them).
/// </summary>
public sealed class DeviceLog : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly object _lock = new();
    private readonly Timer _flush;
    private bool _disposed;

    public DeviceLog(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        _writer = new StreamWriter(new FileStream(Path, FileMode.Create, FileAccess.Write, FileShare.Read), new UTF8Encoding(false), 1 << 16);
        _flush = new Timer(_ => Flush(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public string Path { get; }

    /// <summary>Names of the line kinds (<c>"ev"</c>).</summary>
    public static class Events
    {
        public const string Request = "request", Loss = "loss", Wedged = "wedged", Up = "up", Down = "down", Stall = "stall";
    }

    /// <summary>A request the router handled: its kind, its req_id as the frame carried it, its content key and the answer it sent (null: none).</summary>
    public void Request(string deviceId, FirmwareEra era, RouterInbound inbound, DeviceAction action, byte[]? answer) =>
        Write(deviceId, era, Events.Request, w =>
        {
            w.WriteString("kind", inbound.Name);
            WriteReqId(w, inbound.ReqId);
            if (inbound.Request is { } request) w.WriteString("content", ContentKey(request));
            if (answer is null) w.WriteNull("answer");
            else w.WriteString("answer", Encoding.UTF8.GetString(answer));
            if (action.Reboot) w.WriteBoolean("reboot", true);
        });

    public void Loss(string deviceId, FirmwareEra era, FrameLoss loss) =>
        Write(deviceId, era, Events.Loss, w =>
        {
            w.WriteString("loss", loss.Kind.ToString());
            w.WriteNumber("opcode", loss.Opcode);
            w.WriteNumber("bytes", loss.Bytes);
            if (loss.Name is not null) w.WriteString("kind", loss.Name);
            if (loss.ReqId is not null) w.WriteString("req_id", loss.ReqId);
        });

    public void Wedged(string deviceId, FirmwareEra era, int bytes) =>
        Write(deviceId, era, Events.Wedged, w => w.WriteNumber("bytes", bytes));

    public void Up(string deviceId, FirmwareEra era, long epoch) =>
        Write(deviceId, era, Events.Up, w => w.WriteNumber("conn", epoch));

    public void Down(string deviceId, FirmwareEra era, string reason) =>
        Write(deviceId, era, Events.Down, w => w.WriteString("reason", reason));

    /// <summary>
    /// The simulator's own process did not run its timers for <paramref name="ms"/> ms (a starved machine): its routers
    /// read nothing meanwhile, so frames that arrived apart can be read together, as on a real router whose event
    /// loop is busy. One line for the whole run (no device); <c>t</c> is when the stall ended.
    /// </summary>
    public void Stall(long ms)
    {
        var line = $"{{\"t\":\"{DateTimeOffset.UtcNow:O}\",\"ev\":\"{Events.Stall}\",\"ms\":{ms}}}";
        lock (_lock)
        {
            if (!_disposed) _writer.WriteLine(line);
        }
    }

    private static void WriteReqId(Utf8JsonWriter w, ReqId? id)
    {
        if (id is not { } r) { w.WriteNull("req_id"); return; }
        if (r.IsNumber) { w.WritePropertyName("req_id"); w.WriteRawValue(r.Value); }
        else w.WriteString("req_id", r.Value);
    }

    private void Write(string deviceId, FirmwareEra era, string ev, Action<Utf8JsonWriter> body)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("t", DateTimeOffset.UtcNow.ToString("O"));
            w.WriteString("device", deviceId);
            w.WriteString("era", EraName(era));
            w.WriteString("ev", ev);
            body(w);
            w.WriteEndObject();
        }
        var line = Encoding.UTF8.GetString(buffer.WrittenSpan);
        lock (_lock)
        {
            if (!_disposed) _writer.WriteLine(line);
        }
    }

    public static string EraName(FirmwareEra era) => era switch
    {
        FirmwareEra.Seed => "seed",
        FirmwareEra.V9 => "9",
        _ => "2025",
    };

    /// <summary>
    /// What a request asks, whatever dialect carried it and whichever connection: its canonical JSON (the
    /// protocol codec's encoding, keys sorted) without req_id and device_id. The same request posted to the
    /// admin API (its command view's <c>request</c>) has the same key (<see cref="ContentKey(string)"/>).
    /// </summary>
    public static string ContentKey(IControllerFrame request) => Canonical(ProtocolCodec.EncodeToString(request));

    /// <summary>
    /// The content key of a request given as JSON (a command view's <c>request</c>): through the codec like a
    /// frame's, or, for JSON the codec refuses (a kickoff without device_id), the JSON itself made canonical.
    /// </summary>
    public static string ContentKey(string requestJson)
    {
        var decoded = ProtocolCodec.DecodeFromController(requestJson);
        return decoded.IsOk ? ContentKey(decoded.Message!) : Canonical(requestJson);
    }

    private static string Canonical(string json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        node.Remove("req_id");
        node.Remove("device_id");
        return Sorted(node)!.ToJsonString();
    }

    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Sorted).ToArray()),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };

    public void Flush()
    {
        lock (_lock)
        {
            if (!_disposed) _writer.Flush();
        }
    }

    public void Dispose()
    {
        _flush.Dispose();
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _writer.Flush();
            _writer.Dispose();
        }
    }
}
