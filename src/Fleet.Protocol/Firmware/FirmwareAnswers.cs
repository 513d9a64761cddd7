namespace Fleet.Protocol;

/// <summary>
/// Which firmware a device-side program plays: seed-era (no req_id, no request_error), 2025 (EXTENSIONS.md:
/// req_id echoed, request_error) or 9 (the op dialect of FIRMWARE_9.md: every frame names itself with "op",
/// answers come in an envelope with status/code/message).
/// </summary>
public enum FirmwareEra { Seed, V2025, V9 }

/// <summary>Whether the client a kickoff names is known to the router, and on which gateway.</summary>
public readonly record struct KnownClient(bool Found, string? GwId);

/// <summary>
/// How WiFiDogX firmware answers the controller, read from its source (src/ws_thread.c and
/// src/api_handlers_auth.c of liudf0716/apfree-wifidog): the kickoff checks in the firmware's order,
/// the error texts, and the answers to frames it cannot use. Fleet.Edge and Fleet.Simulator both
/// answer through this, so the two cannot disagree. The 9.x (op dialect) answers are in the second
/// part of this class (FirmwareAnswers.V9.cs); the seed and 2025 answers here are what Fleet.Edge uses.
/// </summary>
public static partial class FirmwareAnswers
{
    public const string KickedOff = "Client kicked off successfully";
    public const string UpgradeStarted = "Firmware upgrade initiated successfully";
    public const string FirmwareUrlInvalid = "Missing or invalid 'url' field";
    /// <summary>request_error texts of the 2025 firmware (process_ws_msg).</summary>
    public const string MissingType = "Missing message type in JSON";
    public const string UnknownType = "Unknown WebSocket message type";

    /// <summary>
    /// The firmware's kickoff: missing fields → client not found (by IP and MAC) → device_id → gateway.
    /// In the mismatch errors "expected" is what the request named and "actual" what the router has.
    /// A <see cref="KickoffResponse"/> means the caller removes the client.
    /// </summary>
    public static IAnswerFrame Kickoff(KickoffRequest r, string ownDeviceId, Func<string, string, KnownClient> findByIpAndMac)
    {
        if (r.ClientIp is null || r.ClientMac is null || r.DeviceId is null || r.GwId is null)
            return new KickoffError { ReqId = r.ReqId, Error = KickoffError.MissingFields };
        var mac = FieldRules.IsMac(r.ClientMac) ? FieldRules.NormalizeMac(r.ClientMac) : r.ClientMac;
        var client = findByIpAndMac(r.ClientIp, mac);
        if (!client.Found)
            return new KickoffError { ReqId = r.ReqId, Error = KickoffError.ClientNotFound, ClientIp = r.ClientIp, ClientMac = r.ClientMac };
        if (r.DeviceId != ownDeviceId)
            return new KickoffError { ReqId = r.ReqId, Error = KickoffError.DeviceIdMismatch, ExpectedDeviceId = r.DeviceId, ActualDeviceId = ownDeviceId };
        if (r.GwId != client.GwId)
            return new KickoffError
            {
                ReqId = r.ReqId, Error = KickoffError.GatewayIdMismatch, ClientMac = r.ClientMac,
                ExpectedGwId = r.GwId, ActualGwId = client.GwId ?? "null",
            };
        return new KickoffResponse { ReqId = r.ReqId, Status = "success", ClientIp = r.ClientIp, ClientMac = r.ClientMac, Message = KickedOff };
    }

    /// <summary>A firmware_upgrade the firmware accepts (it answers before running sysupgrade) or refuses for its URL.</summary>
    public static GenericResponse? RefuseUpgrade(FirmwareUpgradeRequest r) =>
        FieldRules.IsFirmwareUrl(r.Url) ? null : Error(RequestKinds.FirmwareUpgrade, r.ReqId, FirmwareUrlInvalid);

    public static GenericResponse UpgradeAccepted(ReqId? reqId) =>
        new() { Type = RequestKinds.FirmwareUpgrade.SuccessType!, ReqId = reqId, Status = "success", Message = UpgradeStarted };

    /// <summary>The error answer of a request kind, with the firmware's text.</summary>
    public static GenericResponse Error(RequestKind kind, ReqId? reqId, string error) =>
        new() { Type = kind.ErrorType ?? RequestKinds.RequestError, ReqId = reqId, Error = error };

    /// <summary>2025 firmware's answer to a request type it has no handler for; seed-era firmware logs it and answers nothing.</summary>
    public static GenericResponse? UnknownRequest(FirmwareEra era, string type, ReqId? reqId) =>
        era == FirmwareEra.Seed ? null
            : new GenericResponse { Type = RequestKinds.RequestError, ReqId = reqId, Error = UnknownType, RequestedType = type };

    /// <summary>
    /// What each era answers to a request name it has no handler for: seed nothing, 2025 request_error,
    /// 9 generic_response 400 "Unknown operation" with data.requested_op.
    /// </summary>
    public static IAnswerFrame? Unknown(FirmwareEra era, string name, ReqId? reqId) =>
        era == FirmwareEra.V9 ? UnknownOperationAnswer(name, reqId) : UnknownRequest(era, name, reqId);

    /// <summary>
    /// What the firmware answers to a frame it could not decode: nothing to unparseable JSON or to
    /// one-way requests; request_error (2025) to a missing or unknown type; a request's own error
    /// to missing or wrong fields where the firmware has one.
    /// </summary>
    public static IAnswerFrame? ToBadFrame(FirmwareEra era, DecodeError e) => era == FirmwareEra.V9 ? ToBadFrameV9(e) : e.Kind switch
    {
        DecodeErrorKind.NotJson or DecodeErrorKind.NotObject => null,
        DecodeErrorKind.MissingType => era == FirmwareEra.Seed ? null
            : new GenericResponse { Type = RequestKinds.RequestError, ReqId = e.ReqId, Error = MissingType },
        DecodeErrorKind.UnknownType => UnknownRequest(era, e.Type!, e.ReqId),
        _ => e.Type switch
        {
            KickoffRequest.TypeName => new KickoffError { ReqId = e.ReqId, Error = KickoffError.MissingFields },
            FirmwareUpgradeRequest.TypeName when e.Field is "url" or null => Error(RequestKinds.FirmwareUpgrade, e.ReqId, FirmwareUrlInvalid),
            // One-way requests and report replies have no answer, not even an error.
            AuthRequest.TypeName or TmpPassRequest.TypeName or ReportReply.TypeName => null,
            { } t when era != FirmwareEra.Seed && RequestKinds.Find(t) is { ErrorType: { } } kind =>
                Error(kind, e.ReqId, $"Missing or invalid '{e.Field}' field"),
            _ => null,
        },
    };

    /// <summary>
    /// The same answer carrying req_id, as 2025 firmware echoes it (seed-era firmware never does). For 9 the
    /// answer becomes an <see cref="OpAnswer"/> (<see cref="ToOpAnswer"/>) carrying the request's req_id.
    /// </summary>
    public static IAnswerFrame Echo(FirmwareEra era, IAnswerFrame answer, ReqId? reqId) =>
        era == FirmwareEra.V9 ? ToOpAnswer(answer) with { ReqId = reqId }
        : era == FirmwareEra.Seed || reqId is null ? WithReqId(answer, null) : WithReqId(answer, reqId);

    private static IAnswerFrame WithReqId(IAnswerFrame r, ReqId? id) => r switch
    {
        KickoffResponse k => k with { ReqId = id },
        KickoffError k => k with { ReqId = id },
        FirmwareInfoResponse f => f with { ReqId = id },
        GenericResponse g => g with { ReqId = id },
        OpAnswer o => o with { ReqId = id },
        _ => r,
    };
}
