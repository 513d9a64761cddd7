using Microsoft.AspNetCore.Http.HttpResults;

namespace Fleet.Server.Admin;

/// <summary>RFC 9457 problem+json answers whose detail says what to fix.</summary>
public static class Problems
{
    public static ProblemHttpResult Result(int status, string title, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: title);

    public static ProblemHttpResult BadRequest(string detail) => Result(400, "Invalid request", detail);
    public static ProblemHttpResult NotFound(string detail) => Result(404, "Not found", detail);
    public static ProblemHttpResult Conflict(string detail) => Result(409, "Conflict", detail);
    public static ProblemHttpResult Unavailable(string detail) => Result(503, "Unavailable", detail);
    public static ProblemHttpResult Timeout(string detail) => Result(504, "Timed out", detail);

    /// <summary>For handlers that write the response themselves (the WebSocket endpoint).</summary>
    public static Task Write(HttpContext ctx, int status, string title, string detail) =>
        Result(status, title, detail).ExecuteAsync(ctx);
}
