// A stand-in controller for bench/scripts/edge.sh: accepts one router (Fleet.Edge) on /ws/wifidogx, waits for its
// connect frame, authorises CLIENTS clients (one auth frame each, distinct MACs and IPs, as a portal backend would
// after each login) and PASSES temporary passes, then only answers heartbeats with a heartbeat reply, as a
// controller does between events. GET /stats says how far it got; the script reads the agent's footprint meanwhile.
//   dotnet EdgeController.dll --urls http://127.0.0.1:8090 --Clients 300 --Passes 20
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var clients = builder.Configuration.GetValue<int?>("Clients") ?? 300;
var passes = builder.Configuration.GetValue<int?>("Passes") ?? 20;
var gwId = builder.Configuration.GetValue<string>("GwId") ?? "gw-1";
var app = builder.Build();
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });

long connections = 0, heartbeats = 0, frames = 0, authsSent = 0, passesSent = 0;
string? deviceId = null;

app.Map("/ws/wifidogx", async (HttpContext context) =>
{
    if (!context.WebSockets.IsWebSocketRequest) { context.Response.StatusCode = 400; return; }
    using var ws = await context.WebSockets.AcceptWebSocketAsync();
    Interlocked.Increment(ref connections);
    var buffer = new byte[64 * 1024];
    try
    {
        while (true)
        {
            var length = 0;
            ValueWebSocketReceiveResult r;
            do
            {
                r = await ws.ReceiveAsync(buffer.AsMemory(length), context.RequestAborted);
                length += r.Count;
            } while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);
            if (r.MessageType == WebSocketMessageType.Close) break;
            Interlocked.Increment(ref frames);
            var frame = JsonNode.Parse(buffer.AsSpan(0, length)) as JsonObject;
            switch ((string?)frame?["type"])
            {
                case "connect":
                    deviceId = (string?)frame!["device_id"];
                    // What a portal backend sends after each login: one frame per client, each far below 1024 bytes.
                    for (var i = 0; i < clients; i++)
                    {
                        await Send(ws, new JsonObject
                        {
                            ["type"] = "auth", ["token"] = $"tok-{i}", ["client_ip"] = $"10.{20 + i / 65536}.{i / 256 % 256}.{i % 256}",
                            ["client_mac"] = Mac(0x02, i), ["gw_id"] = gwId, ["once_auth"] = false,
                        }, context.RequestAborted);
                        Interlocked.Increment(ref authsSent);
                    }
                    for (var i = 0; i < passes; i++)
                    {
                        await Send(ws, new JsonObject { ["type"] = "tmp_pass", ["client_mac"] = Mac(0x06, i), ["timeout"] = 300 }, context.RequestAborted);
                        Interlocked.Increment(ref passesSent);
                    }
                    break;
                case "heartbeat":
                    Interlocked.Increment(ref heartbeats);
                    await Send(ws, new JsonObject
                    {
                        ["type"] = "heartbeat",
                        ["gateway"] = new JsonArray(new JsonObject { ["gw_id"] = gwId, ["auth_mode"] = 1 }),
                    }, context.RequestAborted);
                    break;
            }
        }
        if (ws.State == WebSocketState.CloseReceived)
            await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }
    catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or JsonException) { }
});

app.MapGet("/stats", () => Results.Text(new JsonObject
{
    ["device_id"] = deviceId,
    ["connections"] = Interlocked.Read(ref connections),
    ["frames"] = Interlocked.Read(ref frames),
    ["heartbeats"] = Interlocked.Read(ref heartbeats),
    ["auths_sent"] = Interlocked.Read(ref authsSent),
    ["passes_sent"] = Interlocked.Read(ref passesSent),
}.ToJsonString(), "application/json"));

app.Run();

static string Mac(int first, int i) => $"{first:x2}:00:00:{i >> 16 & 0xff:x2}:{i >> 8 & 0xff:x2}:{i & 0xff:x2}";

static Task Send(WebSocket ws, JsonObject frame, CancellationToken ct) =>
    ws.SendAsync(Encoding.UTF8.GetBytes(frame.ToJsonString()), WebSocketMessageType.Text, true, ct);
