using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Fleet.Testing;

/// <summary>
/// A reader of GET /api/v1/events (Server-Sent Events): opens the stream, waits for the first keep-alive (the
/// subscription is live from then on), and hands out each event (type and JSON data) in order.
/// </summary>
public sealed class SseStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly CancellationTokenSource _cts = new();
    private readonly Channel<(string Type, JsonNode Data)> _events = Channel.CreateUnbounded<(string, JsonNode)>();
    private readonly Task _reading;

    public HttpResponseHeaders Headers => _response.Headers;
    public string? ContentType => _response.Content.Headers.ContentType?.MediaType;

    private SseStream(HttpResponseMessage response, Stream body, TaskCompletionSource subscribed)
    {
        _response = response;
        _reading = Task.Run(() => ReadAsync(body, subscribed));
    }

    public static async Task<SseStream> OpenAsync(HttpClient http, string path, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"GET {path} → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}", null, response.StatusCode);
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stream = new SseStream(response, await response.Content.ReadAsStreamAsync(), subscribed);
        await subscribed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return stream;
    }

    private async Task ReadAsync(Stream body, TaskCompletionSource subscribed)
    {
        using var reader = new StreamReader(body, Encoding.UTF8);
        string? type = null;
        var data = new StringBuilder();
        try
        {
            while (await reader.ReadLineAsync(_cts.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    if (type == "keep-alive") subscribed.TrySetResult();
                    else if (data.Length > 0) _events.Writer.TryWrite((type ?? "message", JsonNode.Parse(data.ToString())!));
                    type = null;
                    data.Clear();
                }
                else if (line.StartsWith("event:", StringComparison.Ordinal)) type = line["event:".Length..].Trim();
                else if (line.StartsWith("data:", StringComparison.Ordinal)) data.Append(line["data:".Length..].TrimStart());
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        finally
        {
            _events.Writer.TryComplete();
            subscribed.TrySetException(new InvalidOperationException("the event stream ended before its first keep-alive"));
        }
    }

    /// <summary>The next event that matches, skipping others; fails after <paramref name="within"/> (default 30 s).</summary>
    public async Task<JsonNode> Next(Func<string, JsonNode, bool> match, TimeSpan? within = null)
    {
        using var timeout = new CancellationTokenSource(within ?? TimeSpan.FromSeconds(30));
        try
        {
            while (true)
            {
                var (type, data) = await _events.Reader.ReadAsync(timeout.Token);
                if (match(type, data)) return data;
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("no matching event on the stream within the time allowed");
        }
    }

    /// <summary>The next event of a type for a device.</summary>
    public Task<JsonNode> Next(string type, string? deviceId = null, Func<JsonNode, bool>? also = null, TimeSpan? within = null) =>
        Next((t, d) => t == type && (deviceId is null || (string?)d["device_id"] == deviceId) && (also?.Invoke(d) ?? true), within);

    /// <summary>Everything received so far that has not been read.</summary>
    public List<(string Type, JsonNode Data)> Drain()
    {
        var list = new List<(string, JsonNode)>();
        while (_events.Reader.TryRead(out var e)) list.Add(e);
        return list;
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _response.Dispose();
        try { await _reading; } catch { /* ended */ }
        _cts.Dispose();
    }
}
