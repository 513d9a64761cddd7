using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace Fleet.Server.Connections;

/// <summary>
/// Accepts a device's WebSocket so that no close frame reaches the device unless it began the close. Firmware of
/// 2025-07 to 2026-03 frees its connection on a close frame and never reconnects (docs/FIRMWARE.md), and .NET's
/// WebSocket answers a frame it cannot take — a text frame that is not UTF-8 (json-c writes configuration strings
/// as they are), a fragment or opcode out of place — with a close frame (1007, 1002) before it fails the receive.
/// Here that frame is dropped: the receive still fails, the connection ends without a close frame, and the router
/// reconnects as it does after any dropped connection (found by bench/Fuzz connection; docs/FUZZING.md).
/// </summary>
public static class DeviceWebSocket
{
    private const string Rfc6455Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>
    /// The handshake ASP.NET Core's WebSocket middleware does (the request is one, <c>IsWebSocketRequest</c>), over a
    /// transport that lets only a normal close (1000, completing the device's own) through.
    /// </summary>
    public static async Task<WebSocket> AcceptAsync(HttpContext ctx, TimeSpan keepAlive)
    {
        var upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is not { IsUpgradableRequest: true })
            // HTTP/2 (extended CONNECT): no router speaks it; the framework's own path.
            return await ctx.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { KeepAliveInterval = keepAlive });
        var key = ctx.Request.Headers.SecWebSocketKey.ToString();
        ctx.Response.Headers.Connection = "Upgrade";
        ctx.Response.Headers.Upgrade = "websocket";
        ctx.Response.Headers.SecWebSocketAccept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key.Trim() + Rfc6455Guid)));
        var transport = await upgrade.UpgradeAsync();
        return WebSocket.CreateFromStream(new NoErrorCloseStream(transport),
            new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = keepAlive });
    }

    /// <summary>
    /// The upgraded connection, minus close frames other than a normal close. A server's frames are unmasked and
    /// .NET writes each in one write, so a close frame is a write starting 0x88, its status in bytes 2–3.
    /// </summary>
    internal sealed class NoErrorCloseStream(Stream inner) : Stream
    {
        private const ushort NormalClosure = 1000;

        /// <summary>Whether this write is a close frame with any status but a normal close (or none).</summary>
        internal static bool IsErrorClose(ReadOnlySpan<byte> frame) =>
            frame.Length >= 2 && frame[0] == 0x88
            && !(frame.Length >= 4 && (frame[1] & 0x7F) >= 2 && (frame[2] << 8 | frame[3]) == NormalClosure);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            IsErrorClose(buffer.Span) ? ValueTask.CompletedTask : inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (!IsErrorClose(buffer)) inner.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override void Flush() => inner.Flush();
        public override bool CanRead => inner.CanRead;
        public override bool CanWrite => inner.CanWrite;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            await base.DisposeAsync();
        }
    }
}
