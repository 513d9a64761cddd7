using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Fleet.Simulator;

/// <summary>WebSocket opcodes (RFC 6455) as ws_thread.c names them.</summary>
public static class Opcodes
{
    public const int Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA;

    public static string Name(int opcode) => opcode switch
    {
        Continuation => "continuation",
        Text => "text",
        Binary => "binary",
        Close => "close",
        Ping => "ping",
        Pong => "pong",
        < 0 => "unknown",
        _ => $"opcode 0x{opcode:x}",
    };
}

/// <summary>Why a frame from the controller never reached the router's handler.</summary>
public enum LossKind
{
    /// <summary>Read together with a frame before it: only the first frame of a read is handled.</summary>
    BehindFirstFrame,
    /// <summary>Not complete in the read that brought its start: dropped (its rest is then misread as a new frame).</summary>
    Incomplete,
    /// <summary>The read reached 1,024 bytes: "Input buffer overflow", the connection is deaf from then on.</summary>
    Overflow,
    /// <summary>Arrived on a connection that is deaf since an overflow.</summary>
    WhileWedged,
    /// <summary>Arrived in the same read as the 101 reply: discarded with it.</summary>
    WithUpgradeReply,
}

/// <summary>One frame the controller sent that the router's reader lost, with what could be read of it.</summary>
/// <param name="Opcode">-1 when not even the header arrived whole.</param>
/// <param name="Bytes">The whole frame's length on the wire when its header was read, else what arrived.</param>
/// <param name="Name">A text frame's type, op or ("reply") data.type, if that much of it arrived.</param>
public sealed record FrameLoss(LossKind Kind, int Opcode, long Bytes, string? Name, string? ReqId)
{
    public override string ToString() =>
        $"{Kind}: {Opcodes.Name(Opcode)} frame of {Bytes} bytes" + (Name is null ? "" : $" '{Name}'") + (ReqId is null ? "" : $" req_id {ReqId}");
}

/// <summary>What a read event leads to.</summary>
public enum ReadAction
{
    /// <summary>Nothing to handle (a dropped partial frame, a wedged connection, data too short).</summary>
    None,
    /// <summary>Handle the frame at offset 0: <see cref="ReadResult.Opcode"/> and the payload.</summary>
    Frame,
    /// <summary>This read overflowed the 1,024-byte buffer: the connection is deaf from now on.</summary>
    Wedged,
}

/// <summary>The outcome of one read event.</summary>
public readonly record struct ReadResult(
    ReadAction Action, int Opcode, int PayloadOffset, int PayloadLength, bool Misread, List<FrameLoss>? Losses, int Bytes)
{
    public bool Lost => Losses is { Count: > 0 };
}

/// <summary>
/// The firmware's reader (src/ws_thread.c ws_read_cb and ws_receive, the same from the seed to 9.07;
/// FIRMWARE_FACTS.md A): everything one read event brings goes into a 1,024-byte buffer; if that reaches
/// 1,024 bytes the event returns without taking anything and the connection never reads a frame again;
/// otherwise only the frame at offset 0 is parsed, and only if it is complete; the rest is gone. One per
/// connection: besides what the firmware knows it follows the true frame boundaries of the stream (the
/// firmware does not) so that each frame it loses can be named, and a frame split over two reads is
/// known for what it is when its rest arrives and is misread as a new frame.
/// </summary>
public sealed class FirmwareReader
{
    /// <summary><c>unsigned char data[1024]</c>: a read of this many bytes or more overflows.</summary>
    public const int BufferSize = 1024;

    // The true stream: a frame whose header or payload continues past the last read.
    private byte[]? _partialHeader;
    private int _partialHeaderLength;
    private long _payloadLeft;

    /// <summary>Set after an overflow: no frame is handled on this connection again.</summary>
    public bool Wedged { get; private set; }

    /// <summary>Read events seen (each a drain of what was available).</summary>
    public long Reads { get; private set; }

    /// <summary>
    /// Applies the firmware's rules to one read after the upgrade. The caller handles the frame the result
    /// points at (in <paramref name="data"/>, unmasked in place as ws_receive does) — for a misread, a
    /// "frame" made of the rest of a split one, as the firmware would.
    /// </summary>
    public ReadResult Read(Span<byte> data)
    {
        Reads++;
        var midFrame = _payloadLeft > 0 || _partialHeaderLength > 0;
        List<FrameLoss>? losses = null;
        var starts = Follow(data, ref losses);
        if (Wedged)
        {
            Classify(starts, LossKind.WhileWedged, ref losses);
            return new ReadResult(ReadAction.None, -1, 0, 0, false, losses, data.Length);
        }
        if (data.Length >= BufferSize)
        {
            Wedged = true;
            Classify(starts, LossKind.Overflow, ref losses);
            return new ReadResult(ReadAction.Wedged, -1, 0, 0, false, losses, data.Length);
        }

        // ws_receive: one frame at offset 0, complete, or nothing.
        var first = ParseAt0(data);
        if (first is not { } f)
        {
            Classify(starts, LossKind.BehindFirstFrame, ref losses, behindFirst: 0);
            return new ReadResult(ReadAction.None, -1, 0, 0, midFrame, losses, data.Length);
        }
        if (f.Masked) Unmask(data.Slice(f.HeaderLength, (int)f.PayloadLength), data.Slice(f.HeaderLength - 4, 4));
        // The frame at 0 is a true frame unless the read began inside one (a misread tail): then every frame that starts in this read is lost.
        Classify(starts, LossKind.BehindFirstFrame, ref losses, behindFirst: midFrame ? 0 : 1);
        return new ReadResult(ReadAction.Frame, f.Opcode, f.HeaderLength, (int)f.PayloadLength, midFrame, losses, data.Length);
    }

    /// <summary>
    /// A read that is not handled at all: data discarded with the 101 reply, or read while the connection
    /// is deaf (before the upgrade, an overflow wedges too). Returns the frames lost in it.
    /// </summary>
    public List<FrameLoss>? Discard(ReadOnlySpan<byte> data, LossKind kind)
    {
        List<FrameLoss>? losses = null;
        var starts = Follow(data, ref losses);
        Classify(starts, Wedged ? LossKind.WhileWedged : kind, ref losses);
        return losses;
    }

    /// <summary>Marks the connection deaf (an overflow before the upgrade).</summary>
    public void Wedge() => Wedged = true;

    // ------------------------------------------------------------------ the firmware's parse

    private readonly record struct Header(int Opcode, bool Masked, int HeaderLength, long PayloadLength);

    /// <summary>ws_receive's header parse at offset 0; null when the frame is not all there.</summary>
    private static Header? ParseAt0(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2) return null;
        var h = TryHeader(data);
        if (h is not { } header) return null;
        return (ulong)header.HeaderLength + (ulong)header.PayloadLength > (ulong)data.Length ? null : header;
    }

    /// <summary>A frame header at the start of <paramref name="data"/>, or null when it is cut short.</summary>
    private static Header? TryHeader(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2) return null;
        var opcode = data[0] & 0x0F;
        var masked = (data[1] & 0x80) != 0;
        long length = data[1] & 0x7F;
        var headerLength = 2 + (masked ? 4 : 0);
        if (length == 126)
        {
            headerLength += 2;
            if (data.Length < 4) return null;
            length = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
        }
        else if (length == 127)
        {
            headerLength += 8;
            if (data.Length < 10) return null;
            var big = BinaryPrimitives.ReadUInt64BigEndian(data[2..]);
            length = big > long.MaxValue / 2 ? long.MaxValue / 2 : (long)big;
        }
        if (data.Length < headerLength) return null;
        return new Header(opcode, masked, headerLength, length);
    }

    private static void Unmask(Span<byte> payload, ReadOnlySpan<byte> key)
    {
        for (var i = 0; i < payload.Length; i++) payload[i] ^= key[i & 3];
    }

    // ------------------------------------------------------------------ the true stream

    private readonly record struct Start(int Offset, int Opcode, long Bytes, bool Complete, string? Name, string? ReqId);

    /// <summary>Walks the true frame boundaries through this read; returns the frames that start in it.</summary>
    private List<Start> Follow(ReadOnlySpan<byte> data, ref List<FrameLoss>? losses)
    {
        var starts = new List<Start>(2);
        var pos = 0;
        if (_partialHeaderLength > 0)
        {
            // A header cut short by the last read: complete it (the frame was counted then).
            var need = Math.Min(14 - _partialHeaderLength, data.Length);
            data[..need].CopyTo(_partialHeader.AsSpan(_partialHeaderLength));
            var combined = _partialHeader.AsSpan(0, _partialHeaderLength + need);
            if (TryHeader(combined) is { } h)
            {
                var used = h.HeaderLength - _partialHeaderLength;
                _partialHeaderLength = 0;
                pos = used;
                _payloadLeft = h.PayloadLength;
            }
            else
            {
                _partialHeaderLength += need;
                return starts;
            }
        }
        if (_payloadLeft > 0)
        {
            var take = (int)Math.Min(_payloadLeft, data.Length - pos);
            _payloadLeft -= take;
            pos += take;
        }
        while (pos < data.Length)
        {
            var rest = data[pos..];
            if (TryHeader(rest) is not { } h)
            {
                _partialHeader ??= new byte[14];
                rest.CopyTo(_partialHeader);
                _partialHeaderLength = rest.Length;
                starts.Add(new Start(pos, rest.Length >= 1 ? rest[0] & 0x0F : -1, rest.Length, false, null, null));
                break;
            }
            var total = h.HeaderLength + h.PayloadLength;
            var available = (int)Math.Min(h.PayloadLength, rest.Length - h.HeaderLength);
            var (name, reqId) = h.Opcode == Opcodes.Text ? Sniff(rest.Slice(h.HeaderLength, available), h.Masked ? rest.Slice(h.HeaderLength - 4, 4) : default, available == h.PayloadLength) : (null, null);
            var complete = available == h.PayloadLength;
            starts.Add(new Start(pos, h.Opcode, total, complete, name, reqId));
            if (!complete)
            {
                _payloadLeft = h.PayloadLength - available;
                break;
            }
            pos += (int)total;
        }
        return starts;
    }

    /// <summary>Every start but the first <paramref name="behindFirst"/> is lost: incomplete ones as such, the others as <paramref name="kind"/>.</summary>
    private static void Classify(List<Start> starts, LossKind kind, ref List<FrameLoss>? losses, int behindFirst = 0)
    {
        for (var i = behindFirst; i < starts.Count; i++)
        {
            var s = starts[i];
            var k = kind is LossKind.BehindFirstFrame && !s.Complete ? LossKind.Incomplete : kind;
            (losses ??= []).Add(new FrameLoss(k, s.Opcode, s.Bytes, s.Name, s.ReqId));
        }
    }

    /// <summary>A text payload's type, op (or "reply" for an envelope) and req_id, from as much of it as arrived.</summary>
    private static (string? Name, string? ReqId) Sniff(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> mask, bool complete)
    {
        byte[]? copy = null;
        if (!mask.IsEmpty)
        {
            copy = payload.ToArray();
            Unmask(copy, mask);
            payload = copy;
        }
        string? type = null, op = null, reqId = null;
        var response = false;
        var reader = new Utf8JsonReader(payload, isFinalBlock: complete, default);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return (null, null);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = reader.GetString();
                if (!reader.Read()) break;
                switch (key)
                {
                    case "type" when reader.TokenType == JsonTokenType.String: type = reader.GetString(); break;
                    case "op" when reader.TokenType == JsonTokenType.String: op = reader.GetString(); break;
                    case "req_id" when reader.TokenType is JsonTokenType.String or JsonTokenType.Number:
                        reqId = reader.TokenType == JsonTokenType.String ? reader.GetString() : Encoding.UTF8.GetString(reader.ValueSpan);
                        break;
                    case "response": response = true; if (!reader.TrySkip()) goto done; break;
                    default: if (!reader.TrySkip()) goto done; break;
                }
            }
        }
        catch (JsonException) { }
        done:
        return (op ?? type ?? (response ? "reply" : null), reqId);
    }
}
