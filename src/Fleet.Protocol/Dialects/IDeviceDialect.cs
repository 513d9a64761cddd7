namespace Fleet.Protocol;

/// <summary>
/// What a device sent, in no dialect: a report (connect or heartbeat), an answer, the device's complaint
/// about a frame of ours it could not take (op dialect: an error that names no request of ours), or why
/// it is none of these.
/// </summary>
public readonly record struct DeviceFrame(DeviceReport? Report, DeviceAnswer? Answer, DecodeError? Error, string? Complaint = null);

/// <summary>
/// One wire dialect of the device protocol: how frames from a device are read and how the controller's
/// frames are written for it. A connection holds the dialect of its device; nothing behind the
/// connection (the device entity, the admin API) knows which one a device speaks. A new dialect is a
/// new implementation of this interface.
/// </summary>
public interface IDeviceDialect
{
    /// <summary>The dialect's family name: "seed" (the "type" frames) or "9" (the "op" frames).</summary>
    string Name { get; }

    /// <summary>
    /// The protocol operators see for a device, from what one of its reports shows: "seed", "2025" (type
    /// frames with the 2025 firmware's sys_info or req_id) or "9" (op frames).
    /// </summary>
    string NameFor(DeviceReport report);

    /// <summary>Reads one text frame from the device.</summary>
    DeviceFrame Decode(ReadOnlySpan<byte> utf8);

    /// <summary>The reply to the device's report of <paramref name="reportType"/> (connect or heartbeat) that carried <paramref name="reportReqId"/>.</summary>
    byte[] EncodeReply(string reportType, ReqId? reportReqId, ReportReply reply);

    /// <summary>
    /// True when <see cref="EncodeReply"/> depends only on the reply, so the bytes of one reply may answer
    /// every later unchanged heartbeat (the hot path); false when each reply carries something of its report.
    /// </summary>
    bool ReplyIsReusable { get; }

    /// <summary>
    /// Whether the device applies the auth modes of our reply to this report (the current firmware applies
    /// them only from the reply to its connect; for anything else they go as <see cref="EncodeModes"/>).
    /// </summary>
    bool AppliesModesFromReplyTo(string reportType);

    /// <summary>Tells the device new auth modes when no report of its awaits a reply.</summary>
    byte[] EncodeModes(ReportReply reply);

    /// <summary>A request; its <see cref="IControllerRequest.ReqId"/> is set.</summary>
    byte[] EncodeRequest(IControllerRequest request);

    /// <summary>Whether devices of this dialect answer a successful request of this type (else it is one-way).</summary>
    bool Answers(string requestType);
}
