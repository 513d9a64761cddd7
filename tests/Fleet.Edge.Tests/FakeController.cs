using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fleet.Edge.Tests;

/// <summary>A controller stand-in: Kestrel on a loopback port, /ws/wifidogx, every frame the agent sends recorded.</summary>
public sealed class FakeController : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<DeviceSocket> _accepted = Channel.CreateUnbounded<DeviceSocket>();
    private readonly List<DeviceSocket> _open = [];

    public Uri Url { get; }
    public int Connections { get; private set; }

    private FakeController(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public static async Task<FakeController> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        app.UseWebSockets();
        FakeController? self = null;
        app.Map("/ws/wifidogx", async (HttpContext ctx) =>
        {
            if (!ctx.WebSockets.IsWebSocketRequest) { ctx.Response.StatusCode = 400; return; }
            var ws = await ctx.WebSockets.AcceptWebSocketAsync();
            var socket = new DeviceSocket(ws, ctx);
            self!.Connections++;
            lock (self._open) self._open.Add(socket);
            await self._accepted.Writer.WriteAsync(socket);
            await socket.RunAsync();
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new FakeController(app, new Uri(address.Replace("http://", "ws://") + "/ws/wifidogx"));
        return self;
    }

    public async Task<DeviceSocket> NextConnectionAsync(TimeSpan? within = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(10));
        return await _accepted.Reader.ReadAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        // Kestrel waits for running requests on stop; a WebSocket request runs until it is dropped.
        lock (_open) _open.ForEach(s => s.Abort());
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One agent connection as the controller sees it.</summary>
public sealed class DeviceSocket(WebSocket ws, HttpContext ctx)
{
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly List<string> _types = [];

    /// <summary>The type of every frame received so far, in order.</summary>
    public IReadOnlyList<string> Types { get { lock (_types) return [.. _types]; } }

    internal async Task RunAsync()
    {
        var buffer = new byte[64 * 1024];
        var receive = Task.Run(async () =>
        {
            try
            {
                while (ws.State == WebSocketState.Open)
                {
                    var r = await ws.ReceiveAsync(buffer, CancellationToken.None);
                    if (r.MessageType == WebSocketMessageType.Close) break;
                    using var doc = JsonDocument.Parse(buffer.AsMemory(0, r.Count));
                    var frame = doc.RootElement.Clone();
                    lock (_types) _types.Add(frame.GetProperty("type").GetString()!);
                    await _frames.Writer.WriteAsync(frame);
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
            _done.TrySetResult();
        });
        await Task.WhenAny(receive, _done.Task);
    }

    public async Task SendAsync(string json)
    {
        await _sendLock.WaitAsync();
        try { await ws.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None); }
        finally { _sendLock.Release(); }
    }

    /// <summary>The next frame whose type is <paramref name="type"/>; frames of other types are skipped.</summary>
    public async Task<JsonElement> ExpectAsync(string type, TimeSpan? within = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                var f = await _frames.Reader.ReadAsync(cts.Token);
                if (f.GetProperty("type").GetString() == type) return f;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"no '{type}' frame from the agent"); }
    }

    /// <summary>A close frame, as a controller shutting down sends.</summary>
    public async Task CloseAsync()
    {
        try { await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None); }
        catch (WebSocketException) { }
        _done.TrySetResult();
    }

    /// <summary>Drops the TCP connection without a close frame.</summary>
    public void Abort()
    {
        if (_done.Task.IsCompleted) return;
        try { ctx.Abort(); } catch (ObjectDisposedException) { } // the request already ended
        _done.TrySetResult();
    }
}
