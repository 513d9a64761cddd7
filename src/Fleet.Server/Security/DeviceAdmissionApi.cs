using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Fleet.Server.Connections;
using Fleet.Server.Devices;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fleet.Server.Security;

/// <summary>
/// Device admission's admin calls (ADMIN_API.md, "Device admission"): approve a pending device, create or rotate
/// a device's key, revoke its keys, read their state. Keys are shown once, in the answer that creates them, and
/// never logged or audited (a key is named by its fingerprint). Every change is audited, refusals included.
/// </summary>
public static class DeviceAdmissionApi
{
    public static IEndpointRouteBuilder MapDeviceAdmissionApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/devices/{deviceId}").WithTags("admission");
        api.MapPost("/approve", Approve).WithName("ApproveDevice").RequireAuthorization(Policies.Admin);
        api.MapPost("/key", CreateKey).WithName("CreateDeviceKey").RequireAuthorization(Policies.Admin);
        api.MapDelete("/key", RevokeKeys).WithName("RevokeDeviceKeys").RequireAuthorization(Policies.Admin);
        api.MapGet("/key", KeyStatus).WithName("GetDeviceKeys").RequireAuthorization(Policies.Viewer);
        return app;
    }

    /// <summary>
    /// A key, shown this once. HandOver: the command that carries it to a 9.x router (it then reconnects with it);
    /// otherwise NotHandedOver says why and WebSocketPath is what to configure on the router.
    /// </summary>
    public sealed record DeviceKeyIssued(string DeviceId, string? Admission, string Key, string Fingerprint, HandOverView? HandOver,
        string? NotHandedOver, string WebSocketPath);

    public sealed record DeviceKeysRevoked(string DeviceId, int Revoked, bool ConnectionClosed);

    private static async Task<Results<Ok<DeviceKeyIssued>, ProblemHttpResult>> Approve(string deviceId, HttpContext ctx,
        IRequiredActor<DeviceEntity> region, DeviceKeyStore keys, DeviceAdmission admission, AuditLog audit, CancellationToken ct)
    {
        const string action = "device.approve";
        if (!FieldRules.IsDeviceId(deviceId)) return await Refused(ctx, audit, action, deviceId, EntityAsk.NeverSeen(deviceId));
        var seen = await region.Ask(new GetDevice(deviceId), ct);
        if (seen is DeviceNotFound) return await Refused(ctx, audit, action, deviceId, EntityAsk.NeverSeen(deviceId));
        if (seen is not DeviceFound) return await Refused(ctx, audit, action, deviceId, EntityAsk.Unexpected(seen));
        var by = ctx.Caller().KeyName;
        var key = await keys.IssueAsync(deviceId, by, ct);
        var handOver = admission.NewHandOver(deviceId, key, by);
        var reply = await region.Ask(new ApproveDevice(deviceId, by, handOver), ct);
        if (reply is not KeyHandedOver done)
            return await Refused(ctx, audit, action, deviceId, EntityAsk.Unexpected(reply), $"key {DeviceKeyStore.Fingerprint(key)} issued, not shown");
        var issued = Issued(deviceId, key, done, admission, ((DeviceFound)seen).View);
        await audit.RecordAsync(ctx, action, deviceId, "200", Detail(issued));
        return TypedResults.Ok(issued);
    }

    private static async Task<Results<Created<DeviceKeyIssued>, ProblemHttpResult>> CreateKey(string deviceId, HttpContext ctx,
        IRequiredActor<DeviceEntity> region, DeviceKeyStore keys, DeviceAdmission admission, AuditLog audit, CancellationToken ct)
    {
        const string action = "device.key.create";
        if (!FieldRules.IsDeviceId(deviceId))
            return await Refused(ctx, audit, action, null, Problems.BadRequest(FieldRules.CheckDeviceId("device_id", deviceId)!));
        var by = ctx.Caller().KeyName;
        var key = await keys.IssueAsync(deviceId, by, ct);
        // A 9.x router the fleet knows (and has approved) is handed its new key; any other keeps the keys it has
        // until it presents this one: the answer says what to configure.
        var reply = await region.Ask(admission.NewHandOver(deviceId, key, by), ct);
        var done = reply switch
        {
            KeyHandedOver h => h,
            DeviceNotFound => new KeyHandedOver(null, null, null, "the device has never connected: configure the key on the router"),
            _ => new KeyHandedOver(null, null, null, "the device's entity did not answer: configure the key on the router, or approve the device again"),
        };
        var issued = Issued(deviceId, key, done, admission, (await region.Ask(new GetDevice(deviceId), ct) as DeviceFound)?.View);
        await audit.RecordAsync(ctx, action, deviceId, "201", Detail(issued));
        return TypedResults.Created($"/api/v1/devices/{deviceId}/key", issued);
    }

    private static async Task<Results<Ok<DeviceKeysRevoked>, ProblemHttpResult>> RevokeKeys(string deviceId, HttpContext ctx,
        IRequiredActor<DeviceEntity> region, DeviceKeyStore keys, AuditLog audit, CancellationToken ct)
    {
        const string action = "device.key.revoke";
        if (!FieldRules.IsDeviceId(deviceId))
            return await Refused(ctx, audit, action, null, Problems.BadRequest(FieldRules.CheckDeviceId("device_id", deviceId)!));
        var revoked = await keys.RevokeAsync(deviceId, ct);
        if (revoked == 0)
            return await Refused(ctx, audit, action, deviceId, Problems.NotFound($"device '{deviceId}' has no key"));
        // Its socket is closed; in device-key admission it cannot come back without a new key.
        var closed = await region.Ask(new RevokeDeviceKeys(deviceId), ct) is KeysRevoked { Closed: true };
        await audit.RecordAsync(ctx, action, deviceId, "200", $"{revoked} key(s) revoked{(closed ? "; connection closed" : "")}");
        return TypedResults.Ok(new DeviceKeysRevoked(deviceId, revoked, closed));
    }

    private static async Task<Results<Ok<DeviceKeyStatus>, ProblemHttpResult>> KeyStatus(string deviceId, DeviceKeyStore keys,
        CancellationToken ct)
    {
        if (!FieldRules.IsDeviceId(deviceId)) return Problems.BadRequest(FieldRules.CheckDeviceId("device_id", deviceId)!);
        var status = await keys.StatusAsync(deviceId, ct);
        return status.Keys.Count == 0 && status.KeyRequiredSince is null
            ? Problems.NotFound($"device '{deviceId}' has no key")
            : TypedResults.Ok(status);
    }

    private static DeviceKeyIssued Issued(string deviceId, string key, KeyHandedOver done, DeviceAdmission admission, DeviceView? view) =>
        new(deviceId, done.Admission ?? view?.Admission, key, DeviceKeyStore.Fingerprint(key), done.HandOver, done.NotHandedOver,
            $"{admission.HandOverPath ?? WebSocketEndpoint.Paths[0]}?{DeviceAdmission.KeyParameter}={key}");

    /// <summary>The audit row's detail: the key's fingerprint and where it went, never the key.</summary>
    private static string Detail(DeviceKeyIssued k) =>
        $"key {k.Fingerprint} issued; " + (k.HandOver is { } h
            ? $"handed over as command {h.CommandId} ({h.Status})"
            : $"not handed over ({k.NotHandedOver})");

    private static async Task<ProblemHttpResult> Refused(HttpContext ctx, AuditLog audit, string action, string? deviceId,
        ProblemHttpResult problem, string? detail = null)
    {
        await audit.RecordAsync(ctx, action, deviceId, $"{problem.StatusCode}: {problem.ProblemDetails.Detail}", detail);
        return problem;
    }
}
