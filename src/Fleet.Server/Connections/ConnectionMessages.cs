using Fleet.Protocol;
using Fleet.Server.Serialization;

namespace Fleet.Server.Connections;

// What a device entity tells the connection that holds its device's socket (may cross nodes). They are
// typed: the connection alone knows its device's dialect and encodes each once.

/// <summary>
/// The answer to a report the connection forwarded (a connect, or a heartbeat it could not answer itself):
/// which report (its type and the device's req_id, which some dialects echo) and the reply. Routine when the
/// report changed nothing (one such reply waiting for the device's reader is enough).
/// </summary>
public sealed record ReplyToReport(string DeviceId, ReportReply Reply, string ReportType, ReqId? ReportReqId, bool Routine = false)
    : IFleetSerializable;
/// <summary>The entity's answer to reports changed (an operator's auth_mode, once_auth): tell the device now and answer with it from now on.</summary>
public sealed record AuthModesChanged(string DeviceId, ReportReply Reply) : IFleetSerializable;
/// <summary>
/// A command for the device; the request's req_id is the command id. Its answer deadline (NotAfter) bounds
/// both how long the frame may wait for the device's reader and how long the next frame waits for its answer.
/// </summary>
public sealed record DeliverRequest(string DeviceId, IControllerRequest Request, DateTimeOffset NotAfter) : IFleetSerializable
{
    public string CommandId => Request.ReqId!.Value.Value;
}
/// <summary>Close the socket (a newer connection replaced it).</summary>
public sealed record CloseConnection(string Reason) : IFleetSerializable;
