using System.Text.Json;

namespace Fleet.Protocol;

/// <summary>
/// The dialect of WEBSOCKET_API.md and EXTENSIONS.md: every frame names itself with "type"; requests
/// carry req_id, which 2025 firmware echoes and seed-era firmware ignores. The reply to a report is a
/// frame of type heartbeat; auth, tmp_pass and reboot_device get no answer when they succeed.
/// </summary>
public sealed class TypeDialect : IDeviceDialect
{
    public const string SeedName = "seed";
    public const string V2025Name = "2025";

    /// <summary>Stateless: one instance serves every connection of this dialect.</summary>
    public static readonly TypeDialect Seed = new();

    private TypeDialect() { }

    public string Name => SeedName;

    public string NameFor(DeviceReport report) => report.SysInfo is not null || report.ReqId is not null ? V2025Name : SeedName;

    public DeviceFrame Decode(ReadOnlySpan<byte> utf8)
    {
        var decoded = ProtocolCodec.DecodeFromDevice(utf8);
        return decoded.Message switch
        {
            DeviceReport report => new DeviceFrame(report, null, null),
            IAnswerFrame answer => new DeviceFrame(null, ToAnswer(answer, utf8), null),
            _ => new DeviceFrame(null, null, decoded.Error),
        };
    }

    private static DeviceAnswer ToAnswer(IAnswerFrame frame, ReadOnlySpan<byte> utf8)
    {
        var unsupported = frame.Type == RequestKinds.RequestError;
        return new DeviceAnswer
        {
            Type = frame.Type,
            ReqId = frame.ReqId,
            RequestType = RequestKinds.ForAnswer(frame.Type)?.Type,
            Error = frame.ErrorText,
            Unsupported = unsupported,
            ClientMac = frame switch
            {
                KickoffResponse k => k.ClientMac,
                KickoffError e => e.ClientMac,
                _ => null,
            },
            Firmware = (frame as FirmwareInfoResponse)?.DataAsStrings(),
            // The frame was valid JSON for the decode above (read the same way); this keeps it whole for the command's history.
            Body = ProtocolCodec.ParseAccepted(utf8),
        };
    }

    public byte[] EncodeReply(string reportType, ReqId? reportReqId, ReportReply reply) => ProtocolCodec.Encode(reply);

    public bool ReplyIsReusable => true;

    public bool AppliesModesFromReplyTo(string reportType) => true;

    public byte[] EncodeModes(ReportReply reply) => ProtocolCodec.Encode(reply);

    public byte[] EncodeRequest(IControllerRequest request) => ProtocolCodec.Encode(request);

    public bool Answers(string requestType) => RequestKinds.Find(requestType) is { OneWay: false };
}
