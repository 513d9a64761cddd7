using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Fleet.Testing;

/// <summary>
/// A WebSocket server written out by hand over TCP, the counterpart of <see cref="RawWebSocket"/>: it
/// answers the upgrade and then writes exactly the bytes a test asks for, in one TCP write each — two
/// frames back to back, a ping with a request behind it, a frame over the device reader's 1,023 bytes,
/// half a frame now and the rest later — so a device's reader can be tested against what a careless
/// controller does. Frames from the device are read and unmasked as they come (<see cref="RawServerConnection"/>).
/// Needs RawWebSocket.cs (for <see cref="RawFrame"/>).
/// </summary>
public sealed class RawWebSocketServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<RawServerConnection> _connections = [];

    public RawWebSocketServer() => _listener.Start();

    public Uri Url => new($"ws://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/ws/wifidogx");

    /// <summary>
    /// Accepts the next connection and answers its upgrade request: with a correct 101 by default, with
    /// <paramref name="reply"/>'s bytes if given (given the request head and the right Sec-WebSocket-Accept),
    /// and with <paramref name="trailing"/> in the same write (bytes that arrive with the 101).
    /// </summary>
    public async Task<RawServerConnection> AcceptAsync(TimeSpan? within = null, Func<string, string, byte[]>? reply = null, byte[]? trailing = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Xunit.TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(15));
        var tcp = await _listener.AcceptTcpClientAsync(cts.Token);
        tcp.NoDelay = true;
        var stream = tcp.GetStream();
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(one, cts.Token) == 1)
            head.Append((char)one[0]);
        var request = head.ToString();
        var key = request.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))[18..].Trim();
        var accept = RawWebSocket.AcceptFor(key);
        var answer = reply?.Invoke(request, accept) ?? Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
        await stream.WriteAsync(trailing is null ? answer : [.. answer, .. trailing], cts.Token);
        var connection = new RawServerConnection(tcp, request);
        lock (_connections) _connections.Add(connection);
        return connection;
    }

    // ------------------------------------------------------------------ frames as a server writes them (unmasked)

    public static byte[] Frame(int opcode, ReadOnlySpan<byte> payload, bool fin = true)
    {
        var header = payload.Length < 126 ? 2 : payload.Length <= ushort.MaxValue ? 4 : 10;
        var frame = new byte[header + payload.Length];
        frame[0] = (byte)((fin ? 0x80 : 0) | opcode);
        if (payload.Length < 126) frame[1] = (byte)payload.Length;
        else if (payload.Length <= ushort.MaxValue)
        {
            frame[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        else
        {
            frame[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
        }
        payload.CopyTo(frame.AsSpan(header));
        return frame;
    }

    public static byte[] Text(string json) => Frame(RawFrame.Text, Encoding.UTF8.GetBytes(json));
    public static byte[] Ping(string payload = "") => Frame(RawFrame.Ping, Encoding.UTF8.GetBytes(payload));
    public static byte[] Close(ushort code = 1000)
    {
        var payload = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, code);
        return Frame(RawFrame.Close, payload);
    }

    public async ValueTask DisposeAsync()
    {
        lock (_connections) _connections.ForEach(c => c.Drop());
        _listener.Stop();
        _listener.Dispose();
        await Task.CompletedTask;
    }
}

/// <summary>One device connection of a <see cref="RawWebSocketServer"/>: raw writes, and every frame the device sent.</summary>
public sealed class RawServerConnection
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly Channel<RawFrame> _frames = Channel.CreateUnbounded<RawFrame>();
    private readonly List<RawFrame> _received = [];

    internal RawServerConnection(TcpClient tcp, string requestHead)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        RequestHead = requestHead;
        _ = Task.Run(ReadLoop);
    }

    /// <summary>The device's upgrade request as it came.</summary>
    public string RequestHead { get; }

    /// <summary>Every frame the device sent so far.</summary>
    public IReadOnlyList<RawFrame> Received { get { lock (_received) return [.. _received]; } }

    /// <summary>Frames the device sent without a mask (a client must mask every frame).</summary>
    public int UnmaskedFrames { get; private set; }

    /// <summary>Set when the device closed the TCP connection.</summary>
    public bool Closed { get; private set; }

    /// <summary>Writes <paramref name="frames"/> in one TCP write: they reach the device's reader together.</summary>
    public async Task WriteAsync(params byte[][] frames)
    {
        var all = frames.SelectMany(f => f).ToArray();
        await _stream.WriteAsync(all, Xunit.TestContext.Current.CancellationToken);
    }

    public Task SendTextAsync(string json) => WriteAsync(RawWebSocketServer.Text(json));

    /// <summary>The next text frame from the device whose type, op or (an answer envelope) data.type is <paramref name="name"/>.</summary>
    public async Task<JsonElement> ExpectTextAsync(string name, TimeSpan? within = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Xunit.TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(15));
        try
        {
            while (true)
            {
                var f = await _frames.Reader.ReadAsync(cts.Token);
                if (f.Opcode != RawFrame.Text) continue;
                var json = JsonDocument.Parse(f.Payload).RootElement;
                if (NameOf(json) == name) return json;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"no '{name}' frame from the device"); }
    }

    /// <summary>The next frame from the device with this opcode (pongs, close frames).</summary>
    public async Task<RawFrame> ExpectFrameAsync(byte opcode, TimeSpan? within = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Xunit.TestContext.Current.CancellationToken);
        cts.CancelAfter(within ?? TimeSpan.FromSeconds(15));
        try
        {
            while (true)
            {
                var f = await _frames.Reader.ReadAsync(cts.Token);
                if (f.Opcode == opcode) return f;
            }
        }
        catch (OperationCanceledException) { throw new TimeoutException($"no frame of opcode {opcode} from the device"); }
    }

    public static string? NameOf(JsonElement f)
    {
        if (f.ValueKind != JsonValueKind.Object) return null;
        if (f.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String) return t.GetString();
        if (f.TryGetProperty("op", out var op) && op.ValueKind == JsonValueKind.String) return op.GetString();
        return f.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Object && d.TryGetProperty("type", out var dt)
            && dt.ValueKind == JsonValueKind.String ? dt.GetString() : null;
    }

    /// <summary>Closes the TCP connection (FIN), no close frame.</summary>
    public void Drop()
    {
        if (Interlocked.Exchange(ref _dropped, 1) == 1) return;
        try { _tcp.Client.Shutdown(SocketShutdown.Both); } catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        _tcp.Dispose();
    }

    private int _dropped;

    private async Task ReadLoop()
    {
        try
        {
            while (true)
            {
                var frame = await RawFrame.ReadAsync(_stream);
                if (!frame.Masked) UnmaskedFrames++;
                lock (_received) _received.Add(frame);
                _frames.Writer.TryWrite(frame);
            }
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or ObjectDisposedException or SocketException or OperationCanceledException)
        {
            Closed = true;
        }
    }
}
