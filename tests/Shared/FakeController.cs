using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Fleet.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fleet.Testing;

/// <summary>What the <see cref="FakeController"/> does by itself; by default nothing but record.</summary>
public sealed record FakeControllerOptions
{
    /// <summary>Loopback port to listen on; 0 picks a free one.</summary>
    public int Port { get; init; }
    /// <summary>Answer every heartbeat with the gateways' own auth modes (a controller that wants nothing changed).</summary>
    public bool AnswerHeartbeats { get; init; }
    /// <summary>
    /// Runs when a device sends connect, before the next frame is read: the connection, the connect,
    /// and how many connects that device id has sent so far (1 on its first).
    /// </summary>
    public Func<DeviceSocket, ConnectMessage, int, Task>? OnConnect { get; init; }
}

/// <summary>
/// A controller stand-in for tests of the device side (the edge agent, the simulator): Kestrel on a
/// loopback port serving /ws/wifidogx. Every frame a device sends is kept. A test either drives each
/// connection itself (<see cref="NextConnectionAsync"/>, then <see cref="DeviceSocket.ExpectAsync"/> and
/// <see cref="DeviceSocket.SendAsync(string)"/>) or lets the controller answer heartbeats and act on
/// connect (<see cref="FakeControllerOptions"/>) and reads what it recorded per device.
/// </summary>
public sealed class FakeController : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly FakeControllerOptions _options;
    private readonly Channel<DeviceSocket> _accepted = Channel.CreateUnbounded<DeviceSocket>();
    private readonly List<DeviceSocket> _open = [];
    private int _connections;
    private long _heartbeats, _undecodable;

    public Uri Url { get; private set; } = null!;
    /// <summary>WebSocket connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);
    /// <summary>How many times each device sent connect.</summary>
    public ConcurrentDictionary<string, int> Connects { get; } = new();
    /// <summary>How many connections came from each source address.</summary>
    public ConcurrentDictionary<string, int> RemoteAddresses { get; } = new();
    /// <summary>Every answer each device sent (after its connect), in order.</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<IAnswerFrame>> Answers { get; } = new();
    /// <summary>Heartbeats answered (with <see cref="FakeControllerOptions.AnswerHeartbeats"/>).</summary>
    public long HeartbeatsAnswered => Interlocked.Read(ref _heartbeats);
    /// <summary>Frames that are no device frame of the protocol, or answers before any connect.</summary>
    public long Undecodable => Interlocked.Read(ref _undecodable);

    private FakeController(WebApplication app, FakeControllerOptions options)
    {
        _app = app;
        _options = options;
    }

    public static Task<FakeController> StartAsync(int port = 0) => StartAsync(new FakeControllerOptions { Port = port });

    public static async Task<FakeController> StartAsync(FakeControllerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{options.Port}");
        var app = builder.Build();
        var controller = new FakeController(app, options);
        app.UseWebSockets();
        app.Map("/ws/wifidogx", controller.AcceptAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        controller.Url = new Uri(address.Replace("http://", "ws://") + "/ws/wifidogx");
        return controller;
    }

    /// <summary>The next connection accepted (in order), or a timeout.</summary>
    public async Task<DeviceSocket> NextConnectionAsync(TimeSpan? within = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Xunit.TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(10));
        return await _accepted.Reader.ReadAsync(cts.Token);
    }

    private async Task AcceptAsync(HttpContext ctx)
    {
        if (!ctx.WebSockets.IsWebSocketRequest) { ctx.Response.StatusCode = 400; return; }
        var ws = await ctx.WebSockets.AcceptWebSocketAsync();
        var socket = new DeviceSocket(ws, ctx, this);
        Interlocked.Increment(ref _connections);
        RemoteAddresses.AddOrUpdate(socket.RemoteAddress, 1, (_, n) => n + 1);
        lock (_open) _open.Add(socket);
        await _accepted.Writer.WriteAsync(socket);
        try
        {
            await socket.RunAsync();
        }
        finally
        {
            // Before the request ends and Kestrel recycles its context: Abort (under the same lock) must
            // never touch a finished request.
            lock (_open) _open.Remove(socket);
        }
    }

    /// <summary>What the controller itself does with one frame (after the socket has kept it).</summary>
    internal async Task OnFrameAsync(DeviceSocket socket, ReadOnlyMemory<byte> frame)
    {
        var decoded = ProtocolCodec.DecodeFromDevice(frame.Span);
        switch (decoded.Message)
        {
            case ConnectMessage c:
                socket.DeviceId = c.DeviceId!;
                Answers.TryAdd(c.DeviceId!, new ConcurrentQueue<IAnswerFrame>());
                var n = Connects.AddOrUpdate(c.DeviceId!, 1, (_, k) => k + 1);
                if (_options.OnConnect is { } onConnect) await onConnect(socket, c, n);
                break;
            case HeartbeatMessage h when _options.AnswerHeartbeats:
                await socket.SendAsync(new ReportReply
                {
                    Gateway = (h.Gateway ?? []).Select(g => new GatewayAuthMode { GwId = g.GwId, AuthMode = g.AuthMode }).ToList(),
                });
                Interlocked.Increment(ref _heartbeats);
                break;
            case HeartbeatMessage:
                break;
            case IAnswerFrame answer when socket.DeviceId is { } id:
                Answers[id].Enqueue(answer);
                break;
            default:
                Interlocked.Increment(ref _undecodable);
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Kestrel waits for running requests on stop; a WebSocket request runs until it is dropped.
        lock (_open) _open.ForEach(s => s.Abort());
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One device connection as the controller sees it: every frame it sent, and a way to send it frames.</summary>
public sealed class DeviceSocket
{
    private readonly WebSocket _ws;
    private readonly HttpContext _ctx;
    private readonly FakeController _controller;
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly List<string> _types = [];

    internal DeviceSocket(WebSocket ws, HttpContext ctx, FakeController controller)
    {
        _ws = ws;
        _ctx = ctx;
        _controller = controller;
        RemoteAddress = ctx.Connection.RemoteIpAddress?.MapToIPv4().ToString() ?? "?";
    }

    /// <summary>The device id of the last connect on this socket, if any.</summary>
    public string? DeviceId { get; internal set; }
    public string RemoteAddress { get; }

    /// <summary>The type of every frame received so far, in order.</summary>
    public IReadOnlyList<string> Types { get { lock (_types) return [.. _types]; } }

    internal async Task RunAsync()
    {
        var receive = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (_ws.State == WebSocketState.Open)
                {
                    var length = 0;
                    ValueWebSocketReceiveResult r;
                    do
                    {
                        if (length == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
                        r = await _ws.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                        length += r.Count;
                    } while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        if (_ws.State == WebSocketState.CloseReceived)
                            await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                        break;
                    }
                    Keep(buffer.AsSpan(0, length));
                    await _controller.OnFrameAsync(this, buffer.AsMemory(0, length));
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException) { }
            _done.TrySetResult();
        });
        await Task.WhenAny(receive, _done.Task);
    }

    private void Keep(ReadOnlySpan<byte> frame)
    {
        JsonElement element;
        try
        {
            var reader = new Utf8JsonReader(frame);
            element = JsonElement.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            return; // not JSON: counted as undecodable by the controller, nothing to expect
        }
        var type = element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()! : "";
        lock (_types) _types.Add(type);
        _frames.Writer.TryWrite(element);
    }

    public async Task SendAsync(string json)
    {
        await _sendLock.WaitAsync();
        try { await _ws.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None); }
        finally { _sendLock.Release(); }
    }

    /// <summary>Sends a protocol frame (a request or a heartbeat reply) as the controller encodes it.</summary>
    public async Task SendAsync(IControllerFrame frame)
    {
        await _sendLock.WaitAsync();
        try { await _ws.SendAsync(ProtocolCodec.Encode(frame), WebSocketMessageType.Text, true, CancellationToken.None); }
        finally { _sendLock.Release(); }
    }

    /// <summary>The next frame whose type is <paramref name="type"/>; frames of other types are skipped.</summary>
    public async Task<JsonElement> ExpectAsync(string type, TimeSpan? within = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Xunit.TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                var f = await _frames.Reader.ReadAsync(cts.Token);
                if (f.ValueKind == JsonValueKind.Object && f.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
                    && t.GetString() == type)
                    return f;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"no '{type}' frame from the device"); }
    }

    /// <summary>A close frame, as a controller shutting down sends.</summary>
    public async Task CloseAsync()
    {
        try { await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None); }
        catch (WebSocketException) { }
        _done.TrySetResult();
    }

    /// <summary>Drops the TCP connection without a close frame.</summary>
    public void Abort()
    {
        if (_done.Task.IsCompleted) return;
        try { _ctx.Abort(); } catch (ObjectDisposedException) { } // the request already ended
        _done.TrySetResult();
    }
}
