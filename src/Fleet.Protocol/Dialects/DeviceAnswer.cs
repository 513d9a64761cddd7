using System.Text.Json;

namespace Fleet.Protocol;

/// <summary>
/// A device's answer to one of the controller's requests, in no dialect: what is needed to settle the
/// command it answers, plus the answer as the device sent it (kept in the command's history).
/// A dialect makes it from whatever frame its devices answer with (<see cref="IDeviceDialect.Decode"/>).
/// </summary>
public sealed record DeviceAnswer
{
    /// <summary>The answer's name as the device gave it: kickoff_response, firmware_info_error, request_error…</summary>
    public required string Type { get; init; }
    /// <summary>The req_id the device echoed, if it echoes.</summary>
    public ReqId? ReqId { get; init; }
    /// <summary>The request type this answers (kickoff for a kickoff_error); null when the device did not say.</summary>
    public string? RequestType { get; init; }
    /// <summary>The device's error text when the request failed; null when it succeeded.</summary>
    public string? Error { get; init; }
    /// <summary>The device refused the request as one it does not know (request_error).</summary>
    public bool Unsupported { get; init; }
    /// <summary>Kickoff answers: the client the device speaks of (a cross-check for firmware that echoes no req_id).</summary>
    public string? ClientMac { get; init; }
    /// <summary>firmware_info_response: the keys of /etc/openwrt_release.</summary>
    public IReadOnlyDictionary<string, string>? Firmware { get; init; }
    /// <summary>The whole answer as the device sent it.</summary>
    public JsonElement Body { get; init; }

    public bool Succeeded => Error is null;
}
