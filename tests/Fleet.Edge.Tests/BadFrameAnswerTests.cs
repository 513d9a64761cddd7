using System.Text.Json;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

/// <summary>
/// What the agent answers to a frame it cannot decode: the 2025 firmware's answer
/// (<see cref="FirmwareAnswers.ToBadFrame"/> with <see cref="FirmwareEra.V2025"/>, as the link actor calls it).
/// </summary>
public class BadFrameAnswerTests
{
    private static IAnswerFrame? AnswerTo(string frame) =>
        FirmwareAnswers.ToBadFrame(FirmwareEra.V2025, ProtocolCodec.DecodeFromController(frame).Error!);

    [Theory]
    [InlineData("""{"type":"kickoff","req_id":7,"client_ip":"10.0.0.1"}""", "kickoff_error", "Missing required fields in request")]
    [InlineData("""{"type":"firmware_upgrade","req_id":7}""", "firmware_upgrade_error", "Missing or invalid 'url' field")]
    [InlineData("""{"type":"firmware_upgrade","req_id":7,"url":42}""", "firmware_upgrade_error", "Missing or invalid 'url' field")]
    [InlineData("""{"type":"no_such_thing","req_id":7}""", "request_error", "Unknown WebSocket message type")]
    [InlineData("""{"req_id":7}""", "request_error", "Missing message type in JSON")]
    public void Undecodable_requests_get_the_firmwares_error_with_req_id(string frame, string type, string error)
    {
        using var doc = JsonDocument.Parse(ProtocolCodec.Encode(AnswerTo(frame)!));
        var root = doc.RootElement;
        Assert.Equal(type, root.GetProperty("type").GetString());
        Assert.Equal(7, root.GetProperty("req_id").GetInt32());
        Assert.Equal(error, root.GetProperty("error").GetString());
    }

    [Fact]
    public void An_unknown_type_is_named_in_requested_type()
    {
        var r = Assert.IsType<GenericResponse>(AnswerTo("""{"type":"no_such_thing","req_id":7}"""));
        Assert.Equal("no_such_thing", r.RequestedType);
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("[1,2,3]")]
    [InlineData("""{"type":"auth","req_id":1}""")]
    [InlineData("""{"type":"tmp_pass"}""")]
    public void Garbage_and_broken_one_way_requests_get_no_answer(string frame) =>
        Assert.Null(AnswerTo(frame));
}
