using System.Net;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Fleet.Server.Alerts;
using Fleet.Server.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>Issue 13 on a real node: the event stream, /api/v1/stats, /metrics, alerts and their webhooks.</summary>
public sealed class OperateTests : IAsyncLifetime
{
    private Node _node = null!;
    private WebhookReceiver _hook = null!;

    public async ValueTask InitializeAsync()
    {
        _hook = await WebhookReceiver.StartAsync(failFirst: 1);
        _node = await Node.StartAsync(null,
            "--Fleet:Alerts:DeviceOfflineSeconds", "1", "--Fleet:Alerts:ScanEverySeconds", "1",
            "--Fleet:Alerts:WebhookFirstRetrySeconds", "0.05", "--Fleet:Directory:ReconcileEverySeconds", "0",
            "--Fleet:Alerts:Webhooks:0:Url", _hook.Url, "--Fleet:Alerts:Webhooks:0:Secret", WebhookReceiver.Secret);
    }

    public async ValueTask DisposeAsync()
    {
        await _node.DisposeAsync();
        await _hook.DisposeAsync();
    }

    private static string Id() => "op-" + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task The_stream_shows_a_router_online_its_command_through_to_succeeded_and_offline()
    {
        var id = Id();
        await using var events = await SseStream.OpenAsync(_node.Http, $"/api/v1/events?device_id={id}");
        Assert.Equal("text/event-stream", events.ContentType);
        Assert.Equal("no", events.Headers.GetValues("X-Accel-Buffering").Single());

        var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        var online = await events.Next("device.online", id);
        Assert.False(string.IsNullOrEmpty((string?)online["protocol"]));
        Assert.NotNull((string?)online["node"]);

        var (status, body, _) = await _node.Post($"/api/v1/devices/{id}/commands",
            """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""");
        Assert.Equal(202, status);
        var commandId = (string)body!["command_id"]!;
        await router.Answer(await router.ReceiveType("kickoff"));
        foreach (var expected in new[] { "queued", "sent", "succeeded" })
        {
            var e = await events.Next("command.status", id, d => (string?)d["command_id"] == commandId && (string?)d["status"] == expected);
            Assert.Equal("kickoff", (string?)e["command_type"]);
        }

        await router.DisposeAsync();
        var offline = await events.Next("device.offline", id);
        Assert.False(string.IsNullOrEmpty((string?)offline["at"]));
        // The stream was for this device only.
        Assert.All(events.Drain(), e => Assert.Equal(id, (string?)e.Data["device_id"]));
    }

    [Fact]
    public async Task A_types_filter_keeps_only_those_types_and_a_refused_frame_is_an_event()
    {
        var id = Id();
        await using var events = await SseStream.OpenAsync(_node.Http, "/api/v1/events?types=frame.refused");
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        await router.Send("""{"type":"heartbeat","device_id":"someone-else","gateway":[]}""");
        var refused = await events.Next("frame.refused", id);
        Assert.Equal("device_id_mismatch", (string?)refused["reason"]);
        Assert.DoesNotContain(events.Drain(), e => e.Type != "frame.refused");
    }

    [Theory]
    [InlineData("/api/v1/events?types=device.online,nope", "'nope' is not an event type")]
    [InlineData("/api/v1/events?device_id=" + "bad%20id", "is not a device id")]
    [InlineData("/api/v1/alerts?state=maybe", "state 'maybe' must be open, resolved or all")]
    [InlineData("/api/v1/alerts?limit=0", "limit '0' must be an integer from 1 to 1000")]
    public async Task Bad_queries_get_a_problem_that_names_what_is_wrong(string path, string detail)
    {
        var (status, body, type) = await _node.Send(HttpMethod.Get, path);
        Assert.Equal(400, status);
        Assert.Equal("application/problem+json", type);
        Assert.Contains(detail, (string?)body!["detail"]);
    }

    [Fact]
    public async Task The_stream_needs_a_viewer_key()
    {
        using var anonymous = new HttpClient { BaseAddress = _node.BaseAddress };
        var r = await anonymous.GetAsync("/api/v1/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        await using var viewer = await SseStream.OpenAsync(anonymous, "/api/v1/events", TestKeys.Viewer);
    }

    [Fact]
    public async Task Stats_count_the_fleet_by_state_and_protocol()
    {
        var id = Id();
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        await Eventually.True(async () =>
        {
            var s = await _node.GetJson("/api/v1/stats");
            var d = s["devices"]!;
            return (long)d["online"]! >= 1 && (long)d["known"]! == (long)d["online"]! + (long)d["offline"]!
                   && d["by_protocol"]!.AsObject().Sum(p => (long)p.Value!) >= 1 && s["alerts"]!["open"] is not null;
        }, "stats count the connected router");
    }

    [Fact]
    public async Task Metrics_are_scraped_in_prometheus_format_without_a_key()
    {
        var id = Id();
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        await router.HeartbeatAndReply();
        Assert.Equal(202, (await _node.Post($"/api/v1/devices/{id}/commands", """{"type":"get_firmware_info"}""")).Status);
        var sent = await router.ReceiveType("get_firmware_info");
        await router.Answer(sent);
        await router.Send("""{"type":"heartbeat","device_id":"not-me","gateway":[]}""");
        await Eventually.True(async () => await _node.Refused("device_id_mismatch") >= 1, "refusal counted");
        await Eventually.True(async () => (await _node.GetJson($"/api/v1/devices/{id}/commands"))["items"]!.AsArray()
            .Any(c => (string?)c!["status"] == "succeeded"), "command succeeded");

        using var anonymous = new HttpClient { BaseAddress = _node.BaseAddress };
        string text = "";
        await Eventually.True(async () =>
        {
            var r = await anonymous.GetAsync("/metrics", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.StartsWith("text/plain", r.Content.Headers.ContentType?.MediaType);
            text = await r.Content.ReadAsStringAsync();
            return text.Contains("fleet_commands_total{") && text.Contains("fleet_devices_known");
        }, "metrics with the command");
        foreach (var name in new[]
                 {
                     "fleet_devices_connected", "fleet_devices_known", "fleet_heartbeats_total", "fleet_frames_refused_total",
                     "fleet_frames_lost_risk_total", "fleet_commands_total", "fleet_command_duration_seconds_bucket",
                     "fleet_journal_write_duration_seconds_bucket", "fleet_connections_rejected_total", "fleet_cluster_members",
                     // the runtime's and ASP.NET Core's own meters
                     "dotnet_gc_collections_total", "http_server_request_duration_seconds_bucket", "kestrel_active_connections",
                 })
            Assert.Contains("\n" + name, "\n" + text);
        Assert.Matches("""fleet_commands_total\{[^}]*outcome="succeeded"[^}]*type="get_firmware_info"[^}]*\} [1-9]""", text);
        Assert.Matches("""fleet_frames_refused_total\{[^}]*reason="device_id_mismatch"[^}]*\} [1-9]""", text);
        Assert.Matches("""fleet_cluster_members\{[^}]*status="up"[^}]*\} 1""", text);

        // deploy/grafana's dashboard plots only series this node exports.
        var dashboard = JsonNode.Parse(File.ReadAllText(Path.Combine(Unit.Paths.Repo, "deploy", "grafana", "dashboards", "fleet.json")))!;
        var exprs = dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => (string)t!["expr"]!).ToList();
        Assert.True(exprs.Count >= 10, $"{exprs.Count} queries");
        var exported = text.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('{', ' ')[0]).ToHashSet();
        foreach (var expr in exprs)
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(expr, "(?:fleet|dotnet|kestrel|http_server)_[a-z_]+"))
            Assert.True(exported.Contains(m.Value), $"the dashboard asks for {m.Value}, which /metrics does not have");
    }

    [Fact]
    public async Task An_offline_router_opens_one_alert_signed_to_the_webhook_and_it_resolves_when_the_router_is_back()
    {
        var id = Id();
        await using var events = await SseStream.OpenAsync(_node.Http, $"/api/v1/events?device_id={id}&types=alert.opened,alert.resolved");
        var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        await router.DisposeAsync();

        var opened = await events.Next("alert.opened", id);
        var alert = opened["alert"]!;
        Assert.Equal("device_offline", (string?)alert["rule"]);
        Assert.Equal("open", (string?)alert["state"]);
        var alertId = (string)alert["alert_id"]!;
        // The webhook's first answer was a 500: the delivery was retried, and its signature checks out.
        var delivery = await _hook.Next(d => (string?)d.Body["alert_id"] == alertId && d.Event == "alert.opened");
        Assert.Equal(WebhookSender.Sign(WebhookReceiver.Secret, delivery.Raw), delivery.Signature);
        Assert.True(_hook.Refused >= 1);

        var list = await _node.GetJson($"/api/v1/alerts?device_id={id}");
        Assert.Equal(alertId, (string?)Assert.Single(list["items"]!.AsArray())!["alert_id"]);

        await using var back = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        var resolved = await events.Next("alert.resolved", id);
        Assert.Equal(alertId, (string?)resolved["alert"]!["alert_id"]);
        Assert.Equal("resolved", (string?)resolved["alert"]!["state"]);
        await _hook.Next(d => (string?)d.Body["alert_id"] == alertId && d.Event == "alert.resolved");
        // The scans (one a second) while it was offline opened no second alert for the same incident.
        Assert.DoesNotContain(events.Drain(), e => e.Type == "alert.opened");
        var all = await _node.GetJson($"/api/v1/alerts?device_id={id}&state=all");
        var only = Assert.Single(all["items"]!.AsArray())!;
        Assert.Equal("resolved", (string?)only["state"]);
        Assert.NotNull((string?)only["resolved_at"]);
    }

    [Fact]
    public async Task Every_device_offline_too_long_gets_its_alert_however_many_and_one_stranded_on_a_gone_node_counts_from_when_it_was_found()
    {
        // Directory rows as the projection writes them: 1,001 devices that disconnected two days ago (more than one scan
        // page), and one recorded online on a node that is no longer a member (its last_seen is when it connected).
        var longAgo = DateTimeOffset.UtcNow.AddDays(-2);
        const int disconnected = 1001;
        var stranded = Id();
        var written = DateTimeOffset.UtcNow;
        await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_node.DbPath}"))
        {
            await db.OpenAsync(TestContext.Current.CancellationToken);
            await using var tx = await db.BeginTransactionAsync(TestContext.Current.CancellationToken);
            var insert = db.CreateCommand();
            insert.CommandText = "INSERT INTO device_summary (device_id, online, node, connected_at, last_seen) VALUES ($id, $online, $node, $at, $at)";
            var id = insert.Parameters.Add("$id", Microsoft.Data.Sqlite.SqliteType.Text);
            var online = insert.Parameters.Add("$online", Microsoft.Data.Sqlite.SqliteType.Integer);
            insert.Parameters.AddWithValue("$node", "akka.tcp://fleet@10.255.0.1:4053#1");
            insert.Parameters.AddWithValue("$at", Directory.DirectoryStore.Ts(longAgo));
            for (var i = 0; i < disconnected; i++)
            {
                id.Value = $"gone-{i:D4}";
                online.Value = 0;
                await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
            }
            id.Value = stranded;
            online.Value = 1;
            await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
            await tx.CommitAsync(TestContext.Current.CancellationToken);
        }

        await Eventually.True(async () => (long)(await _node.GetJson("/api/v1/stats"))["alerts"]!["open"]! == disconnected + 1,
            "an alert for every device offline too long", TimeSpan.FromSeconds(60));
        var alert = Assert.Single((await _node.GetJson($"/api/v1/alerts?device_id={stranded}"))["items"]!.AsArray())!;
        Assert.Contains("when its node left the cluster", (string?)alert["summary"]);
        // Not at the first scan that found it (its last_seen is two days old): DeviceOfflineSeconds (1 s) after that.
        Assert.True(DateTimeOffset.Parse((string)alert["opened_at"]!, System.Globalization.CultureInfo.InvariantCulture) >= written.AddSeconds(1),
            $"opened at {alert["opened_at"]}, rows written at {written:O}");
        var last = Assert.Single((await _node.GetJson("/api/v1/alerts?device_id=gone-1000"))["items"]!.AsArray())!;
        Assert.Contains($"offline since {longAgo:yyyy-MM-dd HH:mm:ss}Z", (string?)last["summary"]);
    }

    [Fact]
    public async Task A_failed_command_opens_an_alert_that_a_later_success_resolves_and_one_can_be_resolved_by_hand()
    {
        var id = Id();
        await using var events = await SseStream.OpenAsync(_node.Http, $"/api/v1/events?device_id={id}&types=alert.opened,alert.resolved");
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id);
        const string kickoff = """{"type":"kickoff","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","gw_id":"gw-1"}""";
        await _node.Post($"/api/v1/devices/{id}/commands", kickoff);
        var request = await router.ReceiveType("kickoff");
        await router.Send($$"""{"type":"kickoff_error","req_id":"{{request["req_id"]}}","error":"Client not found"}""");
        var opened = (await events.Next("alert.opened", id))["alert"]!;
        Assert.Equal("command_failed", (string?)opened["rule"]);
        Assert.Contains("Client not found", (string?)opened["summary"]);

        await _node.Post($"/api/v1/devices/{id}/commands", kickoff);
        await router.Answer(await router.ReceiveType("kickoff"));
        Assert.Equal((string?)opened["alert_id"], (string?)(await events.Next("alert.resolved", id))["alert"]!["alert_id"]);

        await _node.Post($"/api/v1/devices/{id}/commands", kickoff);
        request = await router.ReceiveType("kickoff");
        await router.Send($$"""{"type":"kickoff_error","req_id":"{{request["req_id"]}}","error":"Client not found"}""");
        var second = (string)(await events.Next("alert.opened", id))["alert"]!["alert_id"]!;
        Assert.Equal(403, (await _node.Send(HttpMethod.Post, $"/api/v1/alerts/{second}/resolve", key: TestKeys.Viewer)).Status);
        var (status, body, _) = await _node.Send(HttpMethod.Post, $"/api/v1/alerts/{second}/resolve");
        Assert.Equal(200, status);
        Assert.Equal("resolved", (string?)body!["state"]);
        Assert.Equal(404, (await _node.Send(HttpMethod.Post, $"/api/v1/alerts/{second}/resolve")).Status);
    }
}

/// <summary>A webhook endpoint of the test's own (Kestrel on loopback): records each delivery; answers 500 to the first <c>failFirst</c>.</summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public const string Secret = "test-webhook-secret";
    private readonly WebApplication _app;
    private readonly Channel<Delivery> _deliveries = Channel.CreateUnbounded<Delivery>();
    private int _refused;
    public string Url { get; private set; } = "";
    public int Refused => Volatile.Read(ref _refused);

    public sealed record Delivery(string? Event, string? Signature, byte[] Raw, JsonNode Body);

    private WebhookReceiver(WebApplication app) => _app = app;

    public static async Task<WebhookReceiver> StartAsync(int failFirst = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        Microsoft.AspNetCore.Hosting.HostingAbstractionsWebHostBuilderExtensions.UseUrls(builder.WebHost, "http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        var calls = 0;
        app.MapPost("/hook", async (HttpContext ctx) =>
        {
            using var buffer = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(buffer);
            if (Interlocked.Increment(ref calls) <= failFirst)
            {
                Interlocked.Increment(ref receiver._refused);
                return Results.StatusCode(500);
            }
            var raw = buffer.ToArray();
            receiver._deliveries.Writer.TryWrite(new Delivery(ctx.Request.Headers["X-Fleet-Event"], ctx.Request.Headers["X-Fleet-Signature"],
                raw, JsonNode.Parse(raw)!));
            return Results.NoContent();
        });
        await app.StartAsync();
        receiver.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook";
        return receiver;
    }

    public async Task<Delivery> Next(Func<Delivery, bool> match)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var d = await _deliveries.Reader.ReadAsync(timeout.Token);
            if (match(d)) return d;
        }
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
