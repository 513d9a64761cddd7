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
    /// <summary>
    /// Answer every report — connect and heartbeat — in the device's dialect, with the auth modes of
    /// <see cref="ModesFor"/> (by default the gateways' own: a controller that wants nothing changed). An op
    /// device gets the response envelope echoing its report's req_id.
    /// </summary>
    public bool AnswerHeartbeats { get; init; }
    /// <summary>The auth_mode to answer for a device's gateway (null: the mode it reported).</summary>
    public Func<string, GatewayReport, int?>? ModesFor { get; init; }
    /// <summary>
    /// Runs when a device sends connect (after the reply to it, if any), before the next frame is read: the
    /// connection, the connect, and how many connects that device id has sent so far (1 on its first).
    /// Frames the device sends meanwhile are read after it returns, so it must not wait for an answer.
    /// </summary>
    public Func<DeviceSocket, ConnectMessage, int, Task>? OnConnect { get; init; }
    /// <summary>
    /// Pacing, as the device's reader needs (one frame at a time, FIRMWARE_FACTS.md A): after each frame it
    /// sends, the controller awaits this with the number of frames sent to that device so far (over all its
    /// connections; on a socket before its connect, on that socket), before it sends another. A test whose
    /// router runs in-process waits there until the router has read that many frames
    /// (<c>FirmwareClient.FramesHandledTotal</c>, <c>RealReaderRouter.FramesHandled</c>); a frame the router lost
    /// then fails the test by timing out (see <see cref="FakeController.Failures"/>). Null: frames go out as
    /// they come (the old behaviour).
    /// </summary>
    public Func<DeviceSocket, int, Task>? AwaitRead { get; init; }
}

/// <summary>
/// A controller stand-in for tests of the device side (the edge agent, the simulator, real-reader routers):
/// Kestrel on a loopback port serving /ws/wifidogx. Every frame a device sends is kept. Each connection
/// speaks the dialect its first frame shows (<see cref="DeviceDialects.Detect"/>: "type" frames as the
/// seed/2025 firmware, "op" frames as 9.x), so requests and replies go out as that device reads them. A test
/// either drives each connection itself (<see cref="NextConnectionAsync"/>, then
/// <see cref="DeviceSocket.ExpectAsync"/> and <see cref="DeviceSocket.SendAsync(IControllerFrame)"/>) or lets
/// the controller answer reports and act on connect (<see cref="FakeControllerOptions"/>) and reads what it
/// recorded per device.
/// </summary>
public sealed class FakeController : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<DeviceSocket> _accepted = Channel.CreateUnbounded<DeviceSocket>();
    private readonly List<DeviceSocket> _open = [];
    private readonly ConcurrentDictionary<string, int> _sentTo = new();
    private int _connections;
    private long _heartbeats, _undecodable;

    public Uri Url { get; private set; } = null!;
    internal FakeControllerOptions Options { get; }
    /// <summary>WebSocket connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);
    /// <summary>How many times each device sent connect.</summary>
    public ConcurrentDictionary<string, int> Connects { get; } = new();
    /// <summary>How many connections came from each source address.</summary>
    public ConcurrentDictionary<string, int> RemoteAddresses { get; } = new();
    /// <summary>Every answer each type-dialect device (seed, 2025) sent after its connect, in order, as the seed codec reads it.</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<IAnswerFrame>> Answers { get; } = new();
    /// <summary>Every answer each device of any dialect sent after its connect, in order, as its dialect reads it.</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<DeviceAnswer>> DeviceAnswers { get; } = new();

    /// <summary>The answers read from one device so far (empty until its first one; never a missing key while a test polls).</summary>
    public ConcurrentQueue<DeviceAnswer> AnswersFrom(string device) => DeviceAnswers.GetOrAdd(device, _ => new ConcurrentQueue<DeviceAnswer>());
    /// <summary>The protocol each device showed last ("seed", "2025", "9").</summary>
    public ConcurrentDictionary<string, string> Protocols { get; } = new();
    /// <summary>What op devices said about frames of ours they could not take (their 400 without req_id).</summary>
    public ConcurrentQueue<string> Complaints { get; } = new();
    /// <summary>
    /// What went wrong inside the controller's own handling of a device: an exception of OnConnect or of
    /// AwaitRead (a frame the device never read), by device. The connection is dropped after one.
    /// </summary>
    public ConcurrentQueue<string> Failures { get; } = new();
    /// <summary>Reports answered (with <see cref="FakeControllerOptions.AnswerHeartbeats"/>).</summary>
    public long HeartbeatsAnswered => Interlocked.Read(ref _heartbeats);
    /// <summary>Frames that are no device frame of the protocol, or answers before any connect.</summary>
    public long Undecodable => Interlocked.Read(ref _undecodable);

    private FakeController(WebApplication app, FakeControllerOptions options)
    {
        _app = app;
        Options = options;
    }

    public static Task<FakeController> StartAsync(int port = 0) => StartAsync(new FakeControllerOptions { Port = port });

    public static async Task<FakeController> StartAsync(FakeControllerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{options.Port}");
        var app = builder.Build();
        var controller = new FakeController(app, options);
        // No keep-alive pings: the firmware's reader may lose the frame behind a ping (seed never answers one).
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
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

    /// <summary>Frames sent to each device, over all its connections.</summary>
    public int FramesSentTo(string deviceId) => _sentTo.GetValueOrDefault(deviceId);

    internal int CountSent(string deviceId, int frames = 1) => _sentTo.AddOrUpdate(deviceId, frames, (_, n) => n + frames);

    /// <summary>The open connection of a device (its last connect), if any.</summary>
    public DeviceSocket? SocketOf(string deviceId)
    {
        lock (_open) return _open.LastOrDefault(s => s.DeviceId == deviceId);
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
        var dialect = socket.Dialect;
        if (dialect is null)
        {
            Interlocked.Increment(ref _undecodable);
            return;
        }
        var decoded = dialect.Decode(frame.Span);
        if (decoded.Complaint is { } complaint)
        {
            Complaints.Enqueue($"{socket.DeviceId ?? "?"}: {complaint}");
            return;
        }
        switch (decoded.Report)
        {
            case ConnectMessage c:
                await socket.BindAsync(c.DeviceId!);
                Protocols[c.DeviceId!] = socket.Protocol = dialect.NameFor(c);
                Answers.TryAdd(c.DeviceId!, new ConcurrentQueue<IAnswerFrame>());
                DeviceAnswers.TryAdd(c.DeviceId!, new ConcurrentQueue<DeviceAnswer>());
                var n = Connects.AddOrUpdate(c.DeviceId!, 1, (_, k) => k + 1);
                if (Options.AnswerHeartbeats) await ReplyAsync(socket, c);
                if (Options.OnConnect is { } onConnect) await onConnect(socket, c, n);
                return;
            case HeartbeatMessage h:
                if (socket.DeviceId is { } id && dialect.NameFor(h) != TypeDialect.SeedName) Protocols[id] = socket.Protocol = dialect.NameFor(h);
                if (Options.AnswerHeartbeats) await ReplyAsync(socket, h);
                return;
        }
        if (decoded.Answer is { } answer && socket.DeviceId is { } device)
        {
            AnswersFrom(device).Enqueue(answer);
            socket.OnAnswer(answer);
            if (dialect is TypeDialect && ProtocolCodec.DecodeFromDevice(frame.Span).Message is IAnswerFrame flat) Answers.GetOrAdd(device, _ => new ConcurrentQueue<IAnswerFrame>()).Enqueue(flat);
            return;
        }
        Interlocked.Increment(ref _undecodable);
    }

    private async Task ReplyAsync(DeviceSocket socket, DeviceReport report)
    {
        var reply = new ReportReply
        {
            Gateway = (report.Gateway ?? []).Select(g => new GatewayAuthMode
            {
                GwId = g.GwId, AuthMode = Options.ModesFor?.Invoke(report.DeviceId!, g) ?? g.AuthMode,
            }).ToList(),
        };
        await socket.SendBytesAsync(socket.Dialect!.EncodeReply(report.Type, report.ReqId, reply));
        Interlocked.Increment(ref _heartbeats);
    }

    public async ValueTask DisposeAsync()
    {
        // Kestrel waits for running requests on stop; a WebSocket request runs until it is dropped.
        lock (_open) _open.ForEach(s => s.Abort());
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One device connection as the controller sees it: every frame it sent, and a way to send it frames in its dialect.</summary>
public sealed class DeviceSocket
{
    private readonly WebSocket _ws;
    private readonly HttpContext _ctx;
    private readonly FakeController _controller;
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>();
    private readonly Channel<DeviceAnswer> _answers = Channel.CreateUnbounded<DeviceAnswer>();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly List<string> _types = [];
    private int _sent;
    private long _nextReqId;

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
    /// <summary>The dialect of this connection, from its first frame (null before it).</summary>
    public IDeviceDialect? Dialect { get; internal set; }
    /// <summary>"seed", "2025" or "9", as the device's reports show it.</summary>
    public string? Protocol { get; internal set; }
    /// <summary>Frames sent to the device on this socket.</summary>
    public int FramesSent => Volatile.Read(ref _sent);

    /// <summary>The name of every frame received so far, in order: its type, op, or (an op answer envelope) data.type.</summary>
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
                    // The dialect first: a test that saw the frame (ExpectAsync) may send at once, in that dialect.
                    Dialect ??= DeviceDialects.Detect(buffer.AsSpan(0, length));
                    Keep(buffer.AsSpan(0, length));
                    await _controller.OnFrameAsync(this, buffer.AsMemory(0, length));
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException) { }
            catch (Exception ex)
            {
                _controller.Failures.Enqueue($"{DeviceId ?? RemoteAddress}: {ex.GetType().Name}: {ex.Message}");
                Abort();
            }
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
        lock (_types) _types.Add(NameOf(element) ?? "");
        _frames.Writer.TryWrite(element);
    }

    /// <summary>A frame's name: "type" (seed/2025), "op" (9.x reports), or data.type of a 9.x answer envelope.</summary>
    private static string? NameOf(JsonElement f)
    {
        if (f.ValueKind != JsonValueKind.Object) return null;
        if (f.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String) return t.GetString();
        if (f.TryGetProperty("op", out var op) && op.ValueKind == JsonValueKind.String) return op.GetString();
        if (f.TryGetProperty("response", out _) && f.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Object
            && d.TryGetProperty("type", out var dt) && dt.ValueKind == JsonValueKind.String)
            return dt.GetString();
        return null;
    }

    internal void OnAnswer(DeviceAnswer answer) => _answers.Writer.TryWrite(answer);

    /// <summary>
    /// The socket now belongs to <paramref name="deviceId"/>: frames sent on it so far count toward that device
    /// from now on (under the send lock, so no frame in flight is counted twice or not at all).
    /// </summary>
    internal async Task BindAsync(string deviceId)
    {
        await _sendLock.WaitAsync();
        try
        {
            if (DeviceId is null) _controller.CountSent(deviceId, _sent);
            DeviceId = deviceId;
        }
        finally { _sendLock.Release(); }
    }

    /// <summary>Sends a text frame as given (paced by <see cref="FakeControllerOptions.AwaitRead"/>).</summary>
    public Task SendAsync(string json) => SendBytesAsync(Encoding.UTF8.GetBytes(json));

    /// <summary>
    /// Sends a protocol frame in this device's dialect: a request (an op device gets <c>op</c> and an integer
    /// req_id; one without a req_id is given one), or a <see cref="ReportReply"/> as new auth modes
    /// (type dialect: a heartbeat frame; op dialect: <c>gateway_heartbeat</c>). Before the device's first
    /// frame, the seed encoding.
    /// </summary>
    public Task SendAsync(IControllerFrame frame) => SendBytesAsync(Encode(frame));

    /// <summary>Sends new auth modes the way this device's dialect takes them outside a reply.</summary>
    public Task SendModesAsync(params GatewayAuthMode[] modes) => SendAsync(new ReportReply { Gateway = modes });

    /// <summary>
    /// Sends a request and, when the device's dialect answers it, waits for the answer (matched by req_id,
    /// or for a device that echoes none, the next answer to that request type); null for one-way requests.
    /// Not from inside <see cref="FakeControllerOptions.OnConnect"/>: answers are read after it returns.
    /// </summary>
    public async Task<DeviceAnswer?> RequestAsync(IControllerRequest request, TimeSpan? within = null)
    {
        var withId = request.ReqId is null ? request.WithReqId(ReqId.Of($"fc-{Interlocked.Increment(ref _nextReqId)}")) : request;
        await SendAsync(withId);
        if (Dialect is { } d && !d.Answers(withId.Type)) return null;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Xunit.TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                var a = await _answers.Reader.ReadAsync(cts.Token);
                if (a.ReqId == withId.ReqId || a.ReqId is null && a.RequestType == withId.Type) return a;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"no answer to {withId.Type} {withId.ReqId} from {DeviceId}"); }
    }

    private byte[] Encode(IControllerFrame frame) => (frame, Dialect) switch
    {
        (ReportReply r, { } d) => d.EncodeModes(r),
        (IControllerRequest q, OpDialect d) => d.EncodeRequest(q.ReqId is null ? q.WithReqId(ReqId.Of($"fc-{Interlocked.Increment(ref _nextReqId)}")) : q),
        (IControllerRequest q, { } d) => d.EncodeRequest(q),
        _ => ProtocolCodec.Encode(frame),
    };


    /// <summary>Sends one text frame; with pacing, returns once the device has read it.</summary>
    internal async Task SendBytesAsync(byte[] payload)
    {
        await _sendLock.WaitAsync();
        try
        {
            await _ws.SendAsync(payload, WebSocketMessageType.Text, true, CancellationToken.None);
            var sent = Interlocked.Increment(ref _sent);
            if (DeviceId is { } id) sent = _controller.CountSent(id);
            if (_controller.Options.AwaitRead is { } awaitRead) await awaitRead(this, sent);
        }
        finally { _sendLock.Release(); }
    }

    /// <summary>The next frame whose name (type, op, or an op answer's data.type) is <paramref name="type"/>; frames of other names are skipped.</summary>
    public async Task<JsonElement> ExpectAsync(string type, TimeSpan? within = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Xunit.TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                var f = await _frames.Reader.ReadAsync(cts.Token);
                if (NameOf(f) == type) return f;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"no '{type}' frame from the device"); }
    }

    /// <summary>A close frame, as a controller shutting down sends (never do this to a real router: see FIRMWARE_FACTS.md A.2).</summary>
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
