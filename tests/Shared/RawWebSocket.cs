using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Fleet.Testing;

/// <summary>One WebSocket frame as it was on the wire (payload unmasked).</summary>
public readonly record struct RawFrame(bool Fin, byte Opcode, byte[] Payload)
{
    /// <summary>
    /// Reads one frame from either side of a connection exactly as it was framed (a client's are masked, a
    /// server's are not): the one frame parser of the test helpers.
    /// </summary>
    public static async Task<RawFrame> ReadAsync(Stream stream, CancellationToken ct = default)
    {
        var two = new byte[2];
        await stream.ReadExactlyAsync(two, ct);
        var fin = (two[0] & 0x80) != 0;
        var opcode = (byte)(two[0] & 0x0F);
        var masked = (two[1] & 0x80) != 0;
        long length = two[1] & 0x7F;
        if (length == 126)
        {
            var ext = new byte[2];
            await stream.ReadExactlyAsync(ext, ct);
            length = BinaryPrimitives.ReadUInt16BigEndian(ext);
        }
        else if (length == 127)
        {
            var ext = new byte[8];
            await stream.ReadExactlyAsync(ext, ct);
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(ext);
        }
        if (length > 16 * 1024 * 1024) throw new InvalidDataException($"frame of {length} bytes");
        var mask = new byte[4];
        if (masked) await stream.ReadExactlyAsync(mask, ct);
        var payload = new byte[length];
        await stream.ReadExactlyAsync(payload, ct);
        if (masked)
            for (var i = 0; i < payload.Length; i++) payload[i] ^= mask[i % 4];
        return new RawFrame(fin, opcode, payload) { Masked = masked };
    }

    /// <summary>Whether the frame came masked (set by <see cref="ReadAsync"/>).</summary>
    public bool Masked { get; init; }

    public const byte Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA;
    public string PayloadText => Encoding.UTF8.GetString(Payload);
}

/// <summary>
/// A WebSocket client written out by hand over TCP, for tests of the wire itself rather than of what
/// ClientWebSocket makes of it: the exact handshake the WiFiDogX client sends (header by header, its
/// User-Agent), the server's response head as it came, and frames written and read byte by byte as
/// RFC 6455 lays them out (client frames masked, as a client must).
/// </summary>
public sealed class RawWebSocket : IAsyncDisposable
{
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    /// <summary>The Sec-WebSocket-Key this client sent.</summary>
    public string Key { get; }
    /// <summary>The server's response up to and including the empty line, as received.</summary>
    public string ResponseHead { get; }
    /// <summary>What a server must answer in Sec-WebSocket-Accept for <see cref="Key"/>.</summary>
    public string ExpectedAccept => AcceptFor(Key);

    private RawWebSocket(TcpClient tcp, string key, string head)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        Key = key;
        ResponseHead = head;
    }

    public static string AcceptFor(string key) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + Guid)));

    /// <summary>
    /// Connects to <paramref name="host"/>:<paramref name="port"/> and sends the upgrade request the
    /// real client sends. Returns whatever the server answered; check <see cref="ResponseHead"/>.
    /// </summary>
    public static async Task<RawWebSocket> ConnectAsync(string host, int port, string path = "/ws/wifidogx", CancellationToken ct = default)
    {
        var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(host, port, ct);
            var stream = tcp.GetStream();
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            var request = $"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: apfree-wifidog\r\n" +
                          $"Upgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), ct);
            // The head byte by byte, so no frame byte after it is consumed with it.
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(one, ct) == 1)
                head.Append((char)one[0]);
            return new RawWebSocket(tcp, key, head.ToString());
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>Sends one whole text frame, masked.</summary>
    public Task SendTextAsync(string text, CancellationToken ct = default) =>
        SendFrameAsync(RawFrame.Text, Encoding.UTF8.GetBytes(text), fin: true, ct);

    /// <summary>Sends one frame of any opcode, masked with a fresh key.</summary>
    public async Task SendFrameAsync(byte opcode, ReadOnlyMemory<byte> payload, bool fin = true, CancellationToken ct = default)
    {
        var header = new byte[14];
        var n = 0;
        header[n++] = (byte)((fin ? 0x80 : 0) | opcode);
        if (payload.Length < 126) header[n++] = (byte)(0x80 | payload.Length);
        else if (payload.Length <= ushort.MaxValue)
        {
            header[n++] = 0x80 | 126;
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(n), (ushort)payload.Length);
            n += 2;
        }
        else
        {
            header[n++] = 0x80 | 127;
            BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(n), (ulong)payload.Length);
            n += 8;
        }
        var mask = RandomNumberGenerator.GetBytes(4);
        mask.CopyTo(header, n);
        n += 4;
        var masked = payload.ToArray();
        for (var i = 0; i < masked.Length; i++) masked[i] ^= mask[i % 4];
        await _stream.WriteAsync(header.AsMemory(0, n), ct);
        await _stream.WriteAsync(masked, ct);
    }

    /// <summary>Reads the next frame exactly as the server framed it.</summary>
    public Task<RawFrame> ReadFrameAsync(CancellationToken ct = default) => RawFrame.ReadAsync(_stream, ct);

    public ValueTask DisposeAsync()
    {
        _stream.Dispose();
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
