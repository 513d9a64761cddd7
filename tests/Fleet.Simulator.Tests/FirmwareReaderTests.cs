using System.Text;
using Xunit;

namespace Fleet.Simulator.Tests;

/// <summary>
/// The firmware's read rules (ws_read_cb, ws_receive; FIRMWARE_FACTS.md A.1/A.2) on bytes, no socket:
/// one read is one call.
/// </summary>
public sealed class FirmwareReaderTests
{
    private static byte[] Text(string json) => RawWebSocketServer.Text(json);
    private static byte[] Join(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
    private static string Payload(byte[] data, ReadResult r) => Encoding.UTF8.GetString(data, r.PayloadOffset, r.PayloadLength);

    private const string Kickoff = """{"op":"kickoff","req_id":7,"client_ip":"10.0.0.5","client_mac":"aa:bb:cc:dd:ee:ff","device_id":"r1","gw_id":"gw-1"}""";

    [Fact]
    public void A_single_frame_is_handled_and_nothing_is_lost()
    {
        var reader = new FirmwareReader();
        var data = Text("""{"type":"get_firmware_info"}""");
        var r = reader.Read(data);
        Assert.Equal((ReadAction.Frame, Opcodes.Text, false), (r.Action, r.Opcode, r.Lost));
        Assert.Equal("""{"type":"get_firmware_info"}""", Payload(data, r));
    }

    [Fact]
    public void Of_two_frames_in_one_read_only_the_first_is_handled_and_the_second_is_named_as_lost()
    {
        var data = Join(Text("""{"type":"get_firmware_info","req_id":1}"""), Text(Kickoff));
        var r = new FirmwareReader().Read(data);
        Assert.Equal(ReadAction.Frame, r.Action);
        Assert.Equal("""{"type":"get_firmware_info","req_id":1}""", Payload(data, r));
        var loss = Assert.Single(r.Losses!);
        Assert.Equal(new FrameLoss(LossKind.BehindFirstFrame, Opcodes.Text, Text(Kickoff).Length, "kickoff", "7"), loss);
    }

    [Fact]
    public void A_ping_is_the_first_frame_and_the_request_behind_it_is_lost()
    {
        var r = new FirmwareReader().Read(Join(RawWebSocketServer.Ping("hi"), Text(Kickoff)));
        Assert.Equal((ReadAction.Frame, Opcodes.Ping, 2), (r.Action, r.Opcode, r.PayloadLength));
        Assert.Equal("kickoff", Assert.Single(r.Losses!).Name);
    }

    [Fact]
    public void A_read_of_1024_bytes_or_more_wedges_the_connection_for_good()
    {
        var reader = new FirmwareReader();
        var big = Text("{\"op\":\"sync_trusted_mac\",\"req_id\":1,\"macs\":[\"" + new string('a', 1100) + "\"]}");
        var r = reader.Read(big);
        Assert.Equal(ReadAction.Wedged, r.Action);
        Assert.Equal(LossKind.Overflow, Assert.Single(r.Losses!).Kind);
        Assert.True(reader.Wedged);
        // Deaf from now on: even a small, proper frame is lost.
        var after = reader.Read(Text(Kickoff));
        Assert.Equal(ReadAction.None, after.Action);
        Assert.Equal(new FrameLoss(LossKind.WhileWedged, Opcodes.Text, Text(Kickoff).Length, "kickoff", "7"), Assert.Single(after.Losses!));
    }

    [Fact]
    public void Two_small_frames_that_add_up_to_1024_bytes_wedge_too()
    {
        var half = Text("{\"type\":\"x\",\"pad\":\"" + new string('b', 490) + "\"}");
        Assert.True(half.Length is > 500 and < 1023);
        var r = new FirmwareReader().Read(Join(half, half));
        Assert.Equal(ReadAction.Wedged, r.Action);
        Assert.Equal(2, r.Losses!.Count);
    }

    [Fact]
    public void A_1023_byte_read_is_still_read()
    {
        var payload = "{\"type\":\"x\",\"pad\":\"" + new string('c', 1023 - 4 - 21) + "\"}";
        var frame = Text(payload);
        Assert.Equal(1023, frame.Length);
        Assert.Equal(ReadAction.Frame, new FirmwareReader().Read(frame).Action);
    }

    [Fact]
    public void A_frame_split_over_two_reads_is_lost_and_its_rest_is_misread_as_a_frame()
    {
        var reader = new FirmwareReader();
        var frame = Text(Kickoff);
        var first = reader.Read(frame.AsSpan(0, 40).ToArray());
        Assert.Equal(ReadAction.None, first.Action);
        Assert.Equal(new FrameLoss(LossKind.Incomplete, Opcodes.Text, frame.Length, "kickoff", "7"), Assert.Single(first.Losses!));
        // The rest, then a proper frame, in one read: the firmware parses the rest as a header; the proper frame is lost behind it.
        var rest = Join(frame.AsSpan(40).ToArray(), Text("""{"op":"get_status","req_id":8}"""));
        var second = reader.Read(rest);
        Assert.True(second.Misread);
        Assert.Equal(new FrameLoss(LossKind.BehindFirstFrame, Opcodes.Text, Text("""{"op":"get_status","req_id":8}""").Length, "get_status", "8"), Assert.Single(second.Losses!));
        // The stream is back on its frame boundaries: the next read is handled.
        var third = reader.Read(Text("""{"op":"get_status","req_id":9}"""));
        Assert.Equal((ReadAction.Frame, false, false), (third.Action, third.Misread, third.Lost));
    }

    [Fact]
    public void A_header_split_over_two_reads_is_followed_too()
    {
        var reader = new FirmwareReader();
        var frame = Text(new string('x', 200)); // 126-byte+ payload: a 4-byte header
        Assert.Equal((LossKind.Incomplete, Opcodes.Text), reader.Read(frame.AsSpan(0, 3).ToArray()).Losses!.Single() is var l ? (l.Kind, l.Opcode) : default);
        var rest = reader.Read(frame.AsSpan(3).ToArray());
        Assert.Null(rest.Losses);
        Assert.Equal(ReadAction.Frame, reader.Read(Text("{}")).Action);
    }

    [Fact]
    public void Bytes_arriving_with_the_101_are_discarded_and_named()
    {
        var reader = new FirmwareReader();
        var losses = reader.Discard(Text("""{"type":"heartbeat","gateway":[]}"""), LossKind.WithUpgradeReply);
        Assert.Equal(new FrameLoss(LossKind.WithUpgradeReply, Opcodes.Text, Text("""{"type":"heartbeat","gateway":[]}""").Length, "heartbeat", null), Assert.Single(losses!));
    }

    [Fact]
    public void A_masked_frame_from_the_server_is_unmasked_as_ws_receive_does()
    {
        var payload = Encoding.UTF8.GetBytes("""{"type":"x"}""");
        var key = new byte[] { 1, 2, 3, 4 };
        var frame = new byte[2 + 4 + payload.Length];
        frame[0] = 0x81;
        frame[1] = (byte)(0x80 | payload.Length);
        key.CopyTo(frame, 2);
        for (var i = 0; i < payload.Length; i++) frame[6 + i] = (byte)(payload[i] ^ key[i % 4]);
        var r = new FirmwareReader().Read(frame);
        Assert.Equal("""{"type":"x"}""", Payload(frame, r));
    }

    [Fact]
    public void An_answer_envelope_lost_behind_a_frame_is_named_reply()
    {
        var r = new FirmwareReader().Read(Join(Text("{}"), Text("""{"req_id":3,"response":"200","data":{"type":"connect","gateway":[]}}""")));
        Assert.Equal(("reply", "3"), (r.Losses!.Single().Name, r.Losses!.Single().ReqId));
    }
}
