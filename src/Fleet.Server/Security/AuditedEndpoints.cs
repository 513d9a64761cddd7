using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Metadata;

namespace Fleet.Server.Security;

/// <summary>
/// Every endpoint that changes something says <c>.Audited("action")</c>: once its handler has answered, one
/// audit row records who (key name, role, address), the action, the device in the route, and the outcome
/// (the status and, for a refusal, the problem's detail). A handler adds what else matters (a command's
/// type and id, an override) with <see cref="AddDetail"/>, never a secret.
/// </summary>
public static class AuditedEndpoints
{
    private const string DetailItem = "fleet.audit_detail";

    public static RouteHandlerBuilder Audited(this RouteHandlerBuilder endpoint, string action) =>
        endpoint.AddEndpointFilter(async (ctx, next) =>
        {
            var result = await next(ctx);
            var http = ctx.HttpContext;
            var (status, problem) = Outcome(result, http);
            var outcome = status < 400 ? $"{status}" : $"{status}: {problem}";
            await http.RequestServices.GetRequiredService<AuditLog>().RecordAsync(http, action,
                ApiKeyAuthentication.DeviceOf(http), outcome, http.Items[DetailItem] as string);
            return result;
        });

    /// <summary>Adds to the audit row's detail (e.g. "type=kickoff command=c…"); never pass a secret.</summary>
    public static void AddDetail(this HttpContext ctx, string detail) =>
        ctx.Items[DetailItem] = ctx.Items[DetailItem] is string before ? $"{before}; {detail}" : detail;

    private static (int Status, string? Problem) Outcome(object? result, HttpContext http)
    {
        while (result is INestedHttpResult nested) result = nested.Result;
        return result switch
        {
            ProblemHttpResult p => (p.StatusCode, p.ProblemDetails.Detail),
            IStatusCodeHttpResult { StatusCode: { } code } => (code, null),
            _ => (http.Response.StatusCode, null),
        };
    }
}
