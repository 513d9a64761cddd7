using Akka.Actor;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Fleet.Server.Alerts;

/// <summary>/api/v1/alerts: open and past alerts (read from the database by any node), and resolving one by hand.</summary>
public static class AlertsApi
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static IEndpointRouteBuilder MapAlertsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/alerts").WithTags("operations");
        api.MapGet("/", List).WithName("ListAlerts").RequireAuthorization(Policies.Viewer);
        api.MapPost("/{alertId}/resolve", Resolve).WithName("ResolveAlert").RequireAuthorization(Policies.Operator).Audited("alert.resolve");
        return app;
    }

    public sealed record AlertList(IReadOnlyList<AlertView> Items);

    private static async Task<Results<Ok<AlertList>, ProblemHttpResult>> List([FromQuery(Name = "state")] string? state,
        [FromQuery(Name = "device_id")] string? deviceId, [FromQuery(Name = "limit")] string? limit, AlertStore store, CancellationToken ct)
    {
        if (state is not (null or "" or AlertView.Open or AlertView.Resolved or "all"))
            return Problems.BadRequest($"state '{state}' must be open, resolved or all");
        if (!string.IsNullOrEmpty(deviceId) && !FieldRules.IsDeviceId(deviceId)) return Problems.BadRequest($"device_id '{deviceId}' is not a device id");
        var n = DefaultLimit;
        if (!string.IsNullOrEmpty(limit) && (!int.TryParse(limit, out n) || n is < 1 or > MaxLimit))
            return Problems.BadRequest($"limit '{limit}' must be an integer from 1 to {MaxLimit}");
        var items = await store.QueryAsync(state switch { null or "" => AlertView.Open, "all" => null, _ => state },
            string.IsNullOrEmpty(deviceId) ? null : deviceId, n, ct);
        return TypedResults.Ok(new AlertList(items));
    }

    private static async Task<Results<Ok<AlertView>, ProblemHttpResult>> Resolve(string alertId, HttpContext ctx,
        IRequiredActor<AlertManager> manager, CancellationToken ct)
    {
        ctx.AddDetail($"alert={alertId}");
        object reply;
        try { reply = await manager.ActorRef.Ask<object>(new ResolveAlert(alertId), TimeSpan.FromSeconds(10), ct); }
        catch (Akka.Actor.AskTimeoutException) { return Problems.Unavailable("the alert manager did not answer within 10 s (it may be moving to another node); try again"); }
        return reply switch
        {
            AlertResolvedByHand r => TypedResults.Ok(r.Alert),
            AlertNotOpen => Problems.NotFound($"no open alert '{alertId}'"),
            _ => Problems.NotFound($"no open alert '{alertId}'"),
        };
    }
}
