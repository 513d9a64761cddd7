using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fleet.Cli;

/// <summary>
/// The admin API over HttpClient: every call carries the bearer key; a status that is not 2xx becomes a
/// <see cref="FleetctlException"/> with the problem's detail and the exit code for that status.
/// </summary>
public sealed class FleetApi(HttpClient http, Uri baseUrl, string? key)
{
    /// <summary>How long an ordinary call may take; a long poll adds the seconds it asked to wait.</summary>
    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    public Uri BaseUrl { get; } = baseUrl;

    public sealed record Answer(HttpStatusCode Status, string Body)
    {
        public JsonNode Json => JsonNode.Parse(Body) ?? throw new FleetctlException(ExitCodes.Error, "the API answered JSON null");
    }

    public Task<Answer> GetAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, ct);

    public async Task<Answer> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken ct,
        TimeSpan? extraTime = null, string? idempotencyKey = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(CallTimeout + (extraTime ?? TimeSpan.Zero));
        using var request = Request(method, path);
        if (body is not null) request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        if (idempotencyKey is not null) request.Headers.Add("Idempotency-Key", idempotencyKey);
        try
        {
            using var response = await http.SendAsync(request, timeout.Token);
            var text = await response.Content.ReadAsStringAsync(timeout.Token);
            if (!response.IsSuccessStatusCode) throw Failure(response.StatusCode, text);
            return new Answer(response.StatusCode, text);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new FleetctlException(ExitCodes.Error, $"{method} {path}: no answer from {BaseUrl} within {(CallTimeout + (extraTime ?? TimeSpan.Zero)).TotalSeconds:0} s");
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
    }

    /// <summary>Opens a response that streams (the event stream): headers read, the body left to the caller.</summary>
    public async Task<HttpResponseMessage> OpenStreamAsync(string path, string accept, CancellationToken ct)
    {
        using var request = Request(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
        if (response.IsSuccessStatusCode) return response;
        using (response) throw Failure(response.StatusCode, await response.Content.ReadAsStringAsync(ct));
    }

    private HttpRequestMessage Request(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, new Uri(BaseUrl, path));
        if (!string.IsNullOrEmpty(key)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return request;
    }

    private FleetctlException Unreachable(HttpRequestException e) =>
        new(ExitCodes.Error, $"cannot reach {BaseUrl}: {e.Message}");

    /// <summary>The problem+json's detail (or title), else the status and what the body says.</summary>
    private static FleetctlException Failure(HttpStatusCode status, string body)
    {
        string? detail = null;
        try
        {
            if (JsonNode.Parse(body) is JsonObject problem)
                detail = (problem["detail"] ?? problem["title"])?.GetValue<string>();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
        }
        detail ??= $"HTTP {(int)status} {status}{(string.IsNullOrWhiteSpace(body) ? "" : ": " + body.Trim())}";
        return new FleetctlException(ExitCodes.ForStatus((int)status), detail);
    }
}
