using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Fleet.Server.Events;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Fleet.Server.Alerts;

/// <summary>
/// Delivers each alert opening and resolution to every configured webhook: a POST of the alert's JSON with
/// X-Fleet-Event and X-Fleet-Signature (sha256=hex HMAC of the body with the webhook's secret), retried with
/// exponential backoff and jitter (Polly) on network errors, timeouts, 408, 429 and 5xx. Deliveries run beside each
/// other (at most <see cref="Parallel"/>), so one webhook that is down does not hold back the others.
/// </summary>
public sealed class WebhookSender : BackgroundService
{
    public const int Parallel = 8;
    public const string SignatureHeader = "X-Fleet-Signature";
    public const string EventHeader = "X-Fleet-Event";
    private readonly Channel<(string Type, AlertView Alert)> _queue = Channel.CreateUnbounded<(string, AlertView)>();
    private readonly AlertSettings _settings;
    private readonly HttpClient _http;
    private readonly ILogger<WebhookSender> _log;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly SemaphoreSlim _slots = new(Parallel);
    private long _delivered, _failed;

    public long Delivered => Interlocked.Read(ref _delivered);
    public long Failed => Interlocked.Read(ref _failed);

    public WebhookSender(IOptions<Hosting.FleetSettings> settings, IHttpClientFactory http, ILogger<WebhookSender> log)
    {
        _settings = settings.Value.Alerts;
        _http = http.CreateClient(nameof(WebhookSender));
        _log = log;
        _pipeline = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>().Handle<TimeoutRejectedException>()
                    .HandleResult(r => (int)r.StatusCode >= 500 || r.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests),
                MaxRetryAttempts = Math.Max(0, _settings.WebhookAttempts - 1),
                BackoffType = DelayBackoffType.Exponential,
                Delay = TimeSpan.FromSeconds(_settings.WebhookFirstRetrySeconds),
                MaxDelay = TimeSpan.FromMinutes(1),
                UseJitter = true,
                OnRetry = a =>
                {
                    _log.LogWarning("Webhook delivery failed ({Outcome}); attempt {Attempt}, retrying in {Delay}",
                        a.Outcome.Exception?.Message ?? $"HTTP {(int)a.Outcome.Result!.StatusCode}", a.AttemptNumber + 1, a.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            })
            .AddTimeout(TimeSpan.FromSeconds(10))
            .Build();
    }

    public void Enqueue(string type, AlertView alert)
    {
        if (_settings.Webhooks.Count > 0) _queue.Writer.TryWrite((type, alert));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var (type, alert) in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(alert, EventsApi.Json);
            foreach (var hook in _settings.Webhooks)
            {
                await _slots.WaitAsync(stoppingToken);
                _ = DeliverAsync(hook, type, alert.AlertId, body, stoppingToken).ContinueWith(_ => _slots.Release(), TaskScheduler.Default);
            }
        }
    }

    /// <summary>sha256=hex(HMAC-SHA256(secret, body)): what a receiver recomputes to trust a delivery.</summary>
    public static string Sign(string secret, ReadOnlySpan<byte> body) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    private async Task DeliverAsync(WebhookSettings hook, string type, string alertId, byte[] body, CancellationToken ct)
    {
        var signature = Sign(hook.Secret, body);
        try
        {
            using var response = await _pipeline.ExecuteAsync(async token =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, hook.Url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new("application/json");
                request.Headers.Add(SignatureHeader, signature);
                request.Headers.Add(EventHeader, type);
                return await _http.SendAsync(request, token);
            }, ct);
            if (response.IsSuccessStatusCode)
            {
                Interlocked.Increment(ref _delivered);
                return;
            }
            Interlocked.Increment(ref _failed);
            _log.LogError("Webhook {Url} refused {Type} of alert {Alert}: HTTP {Status}", hook.Url, type, alertId, (int)response.StatusCode);
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutRejectedException or OperationCanceledException)
        {
            Interlocked.Increment(ref _failed);
            _log.LogError("Webhook {Url}: {Type} of alert {Alert} not delivered after {Attempts} attempts: {Error}",
                hook.Url, type, alertId, _settings.WebhookAttempts, e.Message);
        }
    }
}
