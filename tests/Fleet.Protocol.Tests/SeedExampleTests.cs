using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit;

namespace Fleet.Protocol.Tests;

/// <summary>Every JSON example in the seed document decodes to a record and encodes back to the same JSON.</summary>
public partial class SeedExampleTests
{
    public static TheoryData<string> SeedExamples()
    {
        var doc = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "protocol", "WEBSOCKET_API.md"));
        var data = new TheoryData<string>();
        foreach (Match m in JsonBlock().Matches(doc))
        {
            // Placeholders like <integer> are not JSON: give them sample values; drop // comments.
            var json = Comment().Replace(m.Groups[1].Value, "");
            json = json.Replace("<integer>", "1").Replace("<new_auth_mode>", "0").Replace("<seconds>", "300")
                .Replace("<boolean>", "true");
            json = Regex.Replace(json, @",\s*\}", "}"); // left behind by a removed "// ... more" line
            data.Add(json);
        }
        return data;
    }

    [GeneratedRegex(@"```json\s*\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();

    [GeneratedRegex(@"//[^\n]*")]
    private static partial Regex Comment();

    [Fact]
    public void The_seed_document_has_every_example_we_expect() => Assert.Equal(18, SeedExamples().Count);

    [Theory]
    [MemberData(nameof(SeedExamples))]
    public void Seed_example_round_trips(string json)
    {
        var original = JsonNode.Parse(json)!;
        var type = (string)original["type"]!;
        // "heartbeat" goes both ways: the device's carries device_id, the controller's reply does not.
        var fromDevice = original["device_id"] is not null && type == "heartbeat" || type != "heartbeat" && type is not
            ("auth" or "kickoff" or "tmp_pass" or "get_firmware_info" or "firmware_upgrade");
        IWireMessage message = fromDevice
            ? ProtocolCodec.DecodeFromDevice(json).Message ?? throw new Xunit.Sdk.XunitException(ProtocolCodec.DecodeFromDevice(json).Error!.Message)
            : ProtocolCodec.DecodeFromController(json).Message ?? throw new Xunit.Sdk.XunitException(ProtocolCodec.DecodeFromController(json).Error!.Message);
        Assert.Equal(type, message.Type);
        var encoded = JsonNode.Parse(ProtocolCodec.EncodeToString(message))!;
        Assert.True(JsonNode.DeepEquals(original, encoded), $"expected {original.ToJsonString()}\n got {encoded.ToJsonString()}");
    }
}
