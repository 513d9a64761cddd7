namespace Fleet.Protocol;

/// <summary>
/// The router's side of the "type" dialect (WEBSOCKET_API.md, EXTENSIONS.md). Seed (675a352 process_ws_msg):
/// reports <c>{"type","device_id","device_info"?,"gateway"}</c> with no sys_info and no req_id; takes
/// <c>heartbeat</c>/<c>connect</c> replies (applies <c>gateway[].auth_mode</c>), auth, kickoff, tmp_pass,
/// get_firmware_info and firmware_upgrade; drops everything else, bad JSON and frames without a type
/// silently; answers flat without req_id; ignores pings and close frames. 2025 (as EXTENSIONS.md defines
/// it): heartbeats add nested sys_info; every request of EXTENSIONS.md; answers echo the request's req_id
/// at the top level; a missing or unknown type gets request_error; pings get pongs; a close frame ends
/// the link for good (FIRMWARE_FACTS.md A.2).
/// </summary>
public sealed class TypeRouterDialect : IRouterDialect
{
    /// <summary>The requests seed firmware routes (675a352 process_ws_msg 772-811).</summary>
    private static readonly HashSet<string> SeedRequests = new(StringComparer.Ordinal)
    {
        AuthRequest.TypeName, KickoffRequest.TypeName, TmpPassRequest.TypeName, "get_firmware_info", FirmwareUpgradeRequest.TypeName,
    };

    public static readonly TypeRouterDialect Seed = new(FirmwareEra.Seed);
    public static readonly TypeRouterDialect V2025 = new(FirmwareEra.V2025);

    private TypeRouterDialect(FirmwareEra era) => Era = era;

    public FirmwareEra Era { get; }
    public string Name => Era == FirmwareEra.Seed ? TypeDialect.SeedName : TypeDialect.V2025Name;
    public bool AnswersPings => Era != FirmwareEra.Seed;
    public CloseFrameEffect OnCloseFrame => Era == FirmwareEra.Seed ? CloseFrameEffect.Ignored : CloseFrameEffect.OfflineForGood;
    public bool ClosesOnUnknownOpcode => Era != FirmwareEra.Seed;
    public bool RetriesBadUpgrade => false;

    /// <summary>Whether this era has a handler for the request type.</summary>
    public bool Routes(string type) => Era == FirmwareEra.Seed ? SeedRequests.Contains(type) : RequestKinds.Find(type) is not null;

    public byte[] EncodeReport(DeviceReport report) =>
        RouterWire.Write(w =>
        {
            w.WriteString("type", report.Type);
            w.WriteString("device_id", report.DeviceId);
            RouterWire.WriteDeviceInfo(w, report.DeviceInfo);
            RouterWire.WriteGateways(w, report.Gateway);
            if (Era != FirmwareEra.Seed && report is HeartbeatMessage && report.SysInfo is { } s) RouterWire.WriteSysInfo(w, s);
        });

    public RouterInbound Decode(ReadOnlySpan<byte> utf8)
    {
        var envelope = ProtocolCodec.ReadEnvelope(utf8);
        if (envelope.Error is { } bad)
            return RouterInbound.Complaint("not JSON", bad.Message, FirmwareAnswers.ToBadFrame(Era, bad), error: bad);
        if (envelope.Type is HeartbeatMessage.TypeName or ConnectMessage.TypeName)
        {
            var (_, gateways) = RouterWire.ReadModes(utf8, inData: false);
            return new RouterInbound
            {
                Kind = InboundKind.ReportReply, Name = envelope.Type, ReqId = envelope.ReqId, Gateway = gateways ?? [], ApplyModes = true,
            };
        }
        var decoded = ProtocolCodec.DecodeFromController(utf8);
        if (decoded.Message is { } message)
        {
            var reqId = (message as IControllerRequest)?.ReqId;
            return Routes(message.Type)
                ? new RouterInbound { Kind = InboundKind.Request, Name = message.Type, ReqId = reqId, Request = message }
                : RouterInbound.Complaint(message.Type, $"no handler for '{message.Type}'", FirmwareAnswers.UnknownRequest(Era, message.Type, reqId), reqId);
        }
        var error = decoded.Error!;
        return RouterInbound.Complaint(error.Type ?? envelope.Op ?? "(no type)", error.Message, FirmwareAnswers.ToBadFrame(Era, error), error.ReqId, error);
    }

    public byte[] EncodeAnswer(IAnswerFrame answer) => answer is OpAnswer
        ? throw new ArgumentException("an answer of the op dialect", nameof(answer))
        : ProtocolCodec.Encode(answer);
}
