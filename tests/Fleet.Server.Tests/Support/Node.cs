using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;

namespace Fleet.Server.Tests.Support;

/// <summary>A real Fleet.Server node in this process: Kestrel on a loopback port, SQLite in a temp file.</summary>
public sealed class Node : IAsyncDisposable
{
    public WebApplication App { get; }
    public Uri BaseAddress { get; }
    public HttpClient Http { get; }
    public string DbPath { get; }

    private Node(WebApplication app, Uri baseAddress, string dbPath)
    {
        App = app;
        BaseAddress = baseAddress;
        DbPath = dbPath;
        Http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) }.Authorize();
    }

    public Uri WebSocketUri(string path = "/ws/wifidogx") => new($"ws://{BaseAddress.Authority}{path}");

    public static string NewDbPath() => InProcessNode.NewDbPath();

    public static Task<Node> StartAsync(string? dbPath = null, params string[] extraArgs) =>
        StartAsync(dbPath, testKeys: true, configure: null, extraArgs);

    /// <param name="testKeys">Start with <see cref="TestKeys"/> configured (and send the admin key); false: no key configured at all.</param>
    /// <param name="configure">Changes to the host before it is built (e.g. a logger that a test reads).</param>
    public static async Task<Node> StartAsync(string? dbPath, bool testKeys, Action<WebApplicationBuilder>? configure, params string[] extraArgs)
    {
        dbPath ??= NewDbPath();
        var (app, address) = await InProcessNode.StartAsync(dbPath, testKeys, configure, extraArgs);
        return new Node(app, address, dbPath);
    }

    public async Task<JsonNode> GetJson(string path)
    {
        var r = await Http.GetAsync(path);
        var body = await r.Content.ReadAsStringAsync();
        // An HTTP failure, not a fault of the test: Eventually retries it (a device not known yet is a 404).
        if (!r.IsSuccessStatusCode) throw new HttpRequestException($"GET {path} → {(int)r.StatusCode}: {body}", null, r.StatusCode);
        return JsonNode.Parse(body)!;
    }

    /// <param name="key">The API key to send instead of the admin key.</param>
    public async Task<(int Status, JsonNode? Body, string? ContentType)> Send(HttpMethod method, string path, string? json = null, string? key = null)
    {
        using var req = new HttpRequestMessage(method, path);
        if (key is not null) req.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        if (json is not null) req.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        var r = await Http.SendAsync(req);
        var text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), r.Content.Headers.ContentType?.MediaType);
    }

    public Task<(int Status, JsonNode? Body, string? ContentType)> Post(string path, string json) => Send(HttpMethod.Post, path, json);

    public async Task<long> Refused(string reason)
    {
        var n = await GetJson("/api/v1/node");
        return n["connections"]!["refused"]![reason]?.GetValue<long>() ?? 0;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
