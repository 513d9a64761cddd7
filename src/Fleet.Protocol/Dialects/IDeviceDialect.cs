namespace Fleet.Protocol;

/// <summary>What a device sent, in no dialect: a report (connect or heartbeat), an answer, or why it is neither.</summary>
public readonly record struct DeviceFrame(DeviceReport? Report, DeviceAnswer? Answer, DecodeError? Error);

/// <summary>
/// One wire dialect of the device protocol: how frames from a device are read and how the controller's
/// frames are written for it. A connection holds the dialect of its device; nothing behind the
/// connection (the device entity, the admin API) knows which one a device speaks. A new dialect is a
/// new implementation of this interface.
/// </summary>
public interface IDeviceDialect
{
    /// <summary>The name operators see for it.</summary>
    string Name { get; }

    /// <summary>Reads one text frame from the device.</summary>
    DeviceFrame Decode(ReadOnlySpan<byte> utf8);

    /// <summary>The reply to the device's <paramref name="report"/> (connect or heartbeat).</summary>
    byte[] EncodeReply(DeviceReport report, ReportReply reply);

    /// <summary>
    /// True when <see cref="EncodeReply"/> depends only on the reply, so the bytes of one reply may answer
    /// every later unchanged heartbeat (the hot path); false when each reply carries something of its report.
    /// </summary>
    bool ReplyIsReusable { get; }

    /// <summary>Tells the device new auth modes when no report of its awaits a reply.</summary>
    byte[] EncodeModes(ReportReply reply);

    /// <summary>A request; its <see cref="IControllerRequest.ReqId"/> is set.</summary>
    byte[] EncodeRequest(IControllerRequest request);

    /// <summary>Whether devices of this dialect answer a successful request of this type (else it is one-way).</summary>
    bool Answers(string requestType);
}
