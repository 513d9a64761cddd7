namespace Fleet.Protocol;

/// <summary>What a router makes of one text frame from the controller.</summary>
public enum InboundKind
{
    /// <summary>A request the router has a handler for: <see cref="RouterInbound.Request"/>.</summary>
    Request,
    /// <summary>The controller's reply to a report of the router; <see cref="RouterInbound.ApplyModes"/> says whether its gateway modes are taken.</summary>
    ReportReply,
    /// <summary>9.x <c>gateway_heartbeat</c>: new gateway auth modes, taken, never answered.</summary>
    GatewayModes,
    /// <summary>A frame the router cannot use: answered with <see cref="RouterInbound.Answer"/>, or silently dropped when that is null.</summary>
    Complaint,
}

/// <summary>One text frame from the controller as a router of some era reads it.</summary>
public sealed record RouterInbound
{
    public required InboundKind Kind { get; init; }
    /// <summary>
    /// The request's type (seed/2025) or op (9); the reply's type or data.type ("connect", "heartbeat");
    /// <c>gateway_heartbeat</c>; for a complaint the name the frame went by, if any, else what it was ("not JSON").
    /// </summary>
    public required string Name { get; init; }
    /// <summary>The frame's req_id, as sent.</summary>
    public ReqId? ReqId { get; init; }
    /// <summary>The request, decoded (<see cref="InboundKind.Request"/>). Ops Fleet has no record for are a <see cref="SimpleRequest"/>.</summary>
    public IControllerFrame? Request { get; init; }
    /// <summary>The gateway auth modes a reply or gateway_heartbeat carried (entries lacking gw_id or auth_mode left out).</summary>
    public IReadOnlyList<GatewayAuthMode>? Gateway { get; init; }
    /// <summary>Whether the router takes <see cref="Gateway"/> (9.x: only connect/bootstrap replies and gateway_heartbeat).</summary>
    public bool ApplyModes { get; init; }
    /// <summary>Complaints: what the router answers (null: nothing, the frame is dropped as the firmware logs it).</summary>
    public IAnswerFrame? Answer { get; init; }
    /// <summary>Complaints: why the router could not use the frame.</summary>
    public string? Detail { get; init; }
    /// <summary>Complaints from a decode: the decoder's finding.</summary>
    public DecodeError? Error { get; init; }

    public static RouterInbound Complaint(string name, string detail, IAnswerFrame? answer, ReqId? reqId = null, DecodeError? error = null) =>
        new() { Kind = InboundKind.Complaint, Name = name, Detail = detail, Answer = answer, ReqId = reqId, Error = error };
}

/// <summary>What a router of some era does when the controller sends a WebSocket close frame.</summary>
public enum CloseFrameEffect
{
    /// <summary>Seed: "Unsupported WebSocket opcode" logged; the connection stays.</summary>
    Ignored,
    /// <summary>2025-07 … 2026-03-10: the connection is freed and nothing restarts it; offline until wifidog restarts.</summary>
    OfflineForGood,
    /// <summary>9.07: the connection is freed, reconnect in 3 s.</summary>
    Reconnect,
}

/// <summary>
/// The router's side of the wire in one firmware era: how it writes its reports (connect, heartbeat) and
/// answers, what it makes of each frame from the controller, and how it treats control frames. The reading
/// itself (1,024-byte buffer, first frame only) is the same for every era and lives with the client
/// (Fleet.Simulator's FirmwareReader). Implementations: <see cref="TypeRouterDialect.Seed"/>,
/// <see cref="TypeRouterDialect.V2025"/>, <see cref="OpRouterDialect.Instance"/>; <see cref="RouterDialects.For"/>.
/// The controller's side of the same wire is <see cref="IDeviceDialect"/>.
/// </summary>
public interface IRouterDialect
{
    FirmwareEra Era { get; }

    /// <summary>The protocol name a device view shows: "seed", "2025" or "9".</summary>
    string Name { get; }

    /// <summary>Pings get a pong with the same payload (2025, 9); seed logs "Unsupported opcode" and answers nothing.</summary>
    bool AnswersPings { get; }

    CloseFrameEffect OnCloseFrame { get; }

    /// <summary>An opcode other than text, binary, continuation, ping, pong, close gets a close frame 1003 (2025, 9); seed ignores it.</summary>
    bool ClosesOnUnknownOpcode { get; }

    /// <summary>
    /// A wrong upgrade reply: 9.07 drops the connection and retries in 2 s; seed and 2025 just return, and
    /// the TCP connection stays open and idle (FIRMWARE_FACTS.md A.1).
    /// </summary>
    bool RetriesBadUpgrade { get; }

    /// <summary>
    /// A report (connect or heartbeat) as this firmware writes it: key order, what it leaves out (seed: no
    /// sys_info; connect never has sys_info), and in 9.x <c>op</c>, <c>mode</c> and a fresh <c>req_id</c>
    /// (when <see cref="DeviceReport.ReqId"/> is null).
    /// </summary>
    byte[] EncodeReport(DeviceReport report);

    /// <summary>Reads one text frame from the controller as this firmware does.</summary>
    RouterInbound Decode(ReadOnlySpan<byte> utf8);

    /// <summary>An answer as this firmware writes it (9.x: in the envelope; a seed/2025-shaped answer is converted).</summary>
    byte[] EncodeAnswer(IAnswerFrame answer);
}

public static class RouterDialects
{
    public static IRouterDialect For(FirmwareEra era) => era switch
    {
        FirmwareEra.Seed => TypeRouterDialect.Seed,
        FirmwareEra.V2025 => TypeRouterDialect.V2025,
        _ => OpRouterDialect.Instance,
    };

    /// <summary>"seed", "2025", "9" (as a device view shows them) → era.</summary>
    public static FirmwareEra? Parse(string name) => name switch
    {
        TypeDialect.SeedName => FirmwareEra.Seed,
        TypeDialect.V2025Name => FirmwareEra.V2025,
        OpDialect.DialectName => FirmwareEra.V9,
        _ => null,
    };

    public static string NameOf(FirmwareEra era) => For(era).Name;
}
