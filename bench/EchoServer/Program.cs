// The bare baseline: Kestrel + WebSockets and nothing else. Answers each heartbeat frame with a
// heartbeat reply; ignores every other frame. Zero-byte receives on idle sockets, pooled buffers,
// one constant reply frame. No actors, no persistence, no logging per message.
using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var maxConnections = builder.Configuration.GetValue<long?>("MaxConnections") ?? 19_500;
builder.WebHost.ConfigureKestrel(k =>
{
    k.Limits.MaxConcurrentConnections = maxConnections;
    k.Limits.MaxConcurrentUpgradedConnections = maxConnections;
    k.AddServerHeader = false;
});
var app = builder.Build();
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });

long open = 0, heartbeats = 0, frames = 0;
var reply = System.Text.Encoding.UTF8.GetBytes(new JsonObject
{
    ["type"] = "heartbeat",
    ["gateway"] = new JsonArray(new JsonObject { ["gw_id"] = "gw-1", ["auth_mode"] = 1 }),
}.ToJsonString());

app.Map("/ws/wifidogx", async (HttpContext context) =>
{
    if (!context.WebSockets.IsWebSocketRequest) { context.Response.StatusCode = 400; return; }
    using var ws = await context.WebSockets.AcceptWebSocketAsync();
    Interlocked.Increment(ref open);
    var sendLock = new SemaphoreSlim(1, 1);
    try
    {
        while (true)
        {
            var peek = await ws.ReceiveAsync(Memory<byte>.Empty, context.RequestAborted);
            if (peek.MessageType == WebSocketMessageType.Close) break;
            var buffer = ArrayPool<byte>.Shared.Rent(4096);
            try
            {
                var length = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (length == buffer.Length) { var b = ArrayPool<byte>.Shared.Rent(buffer.Length * 2); buffer.AsSpan(0, length).CopyTo(b); ArrayPool<byte>.Shared.Return(buffer); buffer = b; }
                    r = await ws.ReceiveAsync(buffer.AsMemory(length), context.RequestAborted);
                    length += r.Count;
                } while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);
                if (r.MessageType == WebSocketMessageType.Close) break;
                Interlocked.Increment(ref frames);
                if (IsHeartbeat(buffer.AsSpan(0, length)))
                {
                    Interlocked.Increment(ref heartbeats);
                    await ws.SendAsync(reply, WebSocketMessageType.Text, true, context.RequestAborted);
                }
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
        }
        if (ws.State == WebSocketState.CloseReceived)
            await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }
    catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { }
    finally { Interlocked.Decrement(ref open); }
});

app.MapGet("/stats", () => Results.Text(new JsonObject
{
    ["open"] = Interlocked.Read(ref open),
    ["frames"] = Interlocked.Read(ref frames),
    ["heartbeats"] = Interlocked.Read(ref heartbeats),
}.ToJsonString(), "application/json"));

// A full, compacting GC, then this process's RSS: what bench scripts divide by the device count.
app.MapPost("/debug/gc", () =>
{
    GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    GC.WaitForPendingFinalizers();
    GC.Collect();
    var rss = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
    return Results.Text(new JsonObject
    {
        ["managed_bytes"] = GC.GetTotalMemory(false),
        ["rss_kb"] = long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture),
    }.ToJsonString(), "application/json");
});

app.Run();

// Reads only the top-level "type" of the frame.
static bool IsHeartbeat(ReadOnlySpan<byte> frame)
{
    var reader = new Utf8JsonReader(frame);
    try
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
                return reader.Read() && reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("heartbeat"u8);
            reader.Read();
            reader.Skip();
        }
    }
    catch (JsonException) { }
    return false;
}
