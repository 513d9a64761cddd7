using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Fleet.Cli.Tests.Support;

/// <summary>
/// A stand-in for the API where a test needs answers a real node gives only slowly or rarely (a job's views over its
/// life, a 503 in the middle of a watch): each request is recorded, and answered by <see cref="Answer"/>.
/// </summary>
public sealed class ScriptedApi(Func<ScriptedApi.Request, (HttpStatusCode Status, string Body)> answer) : HttpMessageHandler
{
    public sealed record Request(HttpMethod Method, string PathAndQuery, string? Body, IReadOnlyDictionary<string, string> Headers)
    {
        public JsonNode Json => JsonNode.Parse(Body ?? "null")!;
    }

    private readonly List<Request> _requests = [];

    public IReadOnlyList<Request> Requests
    {
        get { lock (_requests) return [.. _requests]; }
    }

    public Func<Request, (HttpStatusCode Status, string Body)> Answer { get; } = answer;

    /// <summary>Answers every request with the same JSON.</summary>
    public static ScriptedApi Always(string json, HttpStatusCode status = HttpStatusCode.OK) => new(_ => (status, json));

    /// <summary>Answers the requests one after another with these (the last one again once they run out).</summary>
    public static ScriptedApi InTurn(params (HttpStatusCode Status, string Body)[] answers)
    {
        var next = 0;
        return new ScriptedApi(_ => answers[Math.Min(Interlocked.Increment(ref next) - 1, answers.Length - 1)]);
    }

    public static string Problem(int status, string detail) =>
        new JsonObject { ["type"] = "about:blank", ["status"] = status, ["detail"] = detail }.ToJsonString();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(ct);
        var headers = request.Headers.ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase);
        var recorded = new Request(request.Method, request.RequestUri!.PathAndQuery, body, headers);
        lock (_requests) _requests.Add(recorded);
        var (status, text) = Answer(recorded);
        return new HttpResponseMessage(status)
        {
            Content = new StringContent(text, Encoding.UTF8, (int)status >= 400 ? "application/problem+json" : "application/json"),
        };
    }
}
