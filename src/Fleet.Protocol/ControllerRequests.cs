namespace Fleet.Protocol;

/// <summary>Operations every controller request has, whatever its record.</summary>
public static class ControllerRequests
{
    /// <summary>The same request carrying <paramref name="reqId"/>.</summary>
    public static IControllerRequest WithReqId(this IControllerRequest request, ReqId reqId) => request switch
    {
        AuthRequest a => a with { ReqId = reqId },
        KickoffRequest k => k with { ReqId = reqId },
        TmpPassRequest t => t with { ReqId = reqId },
        FirmwareUpgradeRequest f => f with { ReqId = reqId },
        UpdateDeviceInfoRequest u => u with { ReqId = reqId },
        SetWifiInfoRequest w => w with { ReqId = reqId },
        SyncDomainsRequest s => s with { ReqId = reqId },
        SyncMacsRequest m => m with { ReqId = reqId },
        GetClientInfoRequest g => g with { ReqId = reqId },
        SimpleRequest s => s with { ReqId = reqId },
        ShellRequest s => s with { ReqId = reqId },
        SetAuthServRequest a => a with { ReqId = reqId },
        SetMqttServRequest m => m with { ReqId = reqId },
        SetWebSocketServRequest w => w with { ReqId = reqId },
        _ => throw new ArgumentException($"no req_id for {request.GetType().Name}", nameof(request)),
    };
}
