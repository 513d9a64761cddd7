using System.Net;
using Microsoft.Extensions.Logging;
using System.Text.Json.Nodes;
using Fleet.Server.Tests.Support;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>Admin API keys and roles, the audit log, privileged requests, firmware URL rules and the admin-side limits, on a real node.</summary>
public sealed class ApiSecurityTests : IAsyncLifetime
{
    private Node _node = null!;

    public async ValueTask InitializeAsync() => _node = await Node.StartAsync(null, testKeys: true, configure: null,
        "--Fleet:Security:FirmwareUrlPrefixes:0", "https://fw.example.com/releases/",
        "--Fleet:Devices:MaxQueuedCommands", "3");

    public async ValueTask DisposeAsync() => await _node.DisposeAsync();

    private static string Id() => "r-" + Guid.NewGuid().ToString("N")[..10];

    private async Task<string> KnownOfflineDevice()
    {
        var id = Id();
        await using (var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), id)) { }
        await Eventually.True(async () => (await _node.GetJson($"/api/v1/devices/{id}"))["online"]!.GetValue<bool>() == false, "device offline");
        return id;
    }

    private async Task<JsonArray> Audit(string query)
    {
        var page = await _node.GetJson("/api/v1/audit?" + query);
        return page["items"]!.AsArray();
    }

    [Fact]
    public async Task No_key_or_an_unknown_key_is_401_problem_json_and_health_stays_open()
    {
        using var anonymous = new HttpClient { BaseAddress = _node.BaseAddress };
        var r = await anonymous.GetAsync("/api/v1/devices", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Bearer", r.Headers.WwwAuthenticate.ToString());
        Assert.Contains("Authorization: Bearer", await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));

        var (status, body, type) = await _node.Send(HttpMethod.Get, "/api/v1/devices", key: "not-a-key-of-this-fleet-at-all");
        Assert.Equal(401, status);
        Assert.Equal("application/problem+json", type);
        Assert.Contains("not one of this fleet's API keys", (string?)body!["detail"]);

        foreach (var open in new[] { "/healthz", "/readyz", "/openapi/v1.json" })
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(open, TestContext.Current.CancellationToken)).StatusCode);
        var openApi = JsonNode.Parse(await anonymous.GetStringAsync("/openapi/v1.json", TestContext.Current.CancellationToken))!;
        Assert.Equal("bearer", (string?)openApi["components"]!["securitySchemes"]!["bearer"]!["scheme"]);
        Assert.NotNull(openApi["security"]![0]!["bearer"]);
    }

    [Fact]
    public async Task Viewer_reads_but_gets_403_on_a_command_operator_gets_202_and_both_are_audited()
    {
        var device = await KnownOfflineDevice();
        Assert.Equal(200, (await _node.Send(HttpMethod.Get, $"/api/v1/devices/{device}", key: TestKeys.Viewer)).Status);

        var (status, body, type) = await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands",
            """{"type":"get_firmware_info"}""", TestKeys.Viewer);
        Assert.Equal(403, status);
        Assert.Equal("application/problem+json", type);
        Assert.Contains("test-viewer", (string?)body!["detail"]);

        var accepted = await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands", """{"type":"get_firmware_info"}""", TestKeys.Operator);
        Assert.Equal(202, accepted.Status);
        var commandId = (string)accepted.Body!["command_id"]!;
        Assert.Equal(200, (await _node.Send(HttpMethod.Put, $"/api/v1/devices/{device}/gateways/gw-1/auth-mode", """{"auth_mode":0}""", TestKeys.Operator)).Status);
        Assert.Equal(403, (await _node.Send(HttpMethod.Get, "/api/v1/audit", key: TestKeys.Operator)).Status);

        var rows = await Audit($"device_id={device}");
        Assert.Equal(3, rows.Count); // newest first
        Assert.Equal(("device.auth_mode", "test-operator", "operator", "200"),
            ((string)rows[0]!["action"]!, (string)rows[0]!["actor"]!, (string)rows[0]!["role"]!, (string)rows[0]!["outcome"]!));
        Assert.Equal("gw_id=gw-1 auth_mode=0", (string?)rows[0]!["detail"]);
        Assert.Equal(("command.submit", "test-operator", "202"), ((string)rows[1]!["action"]!, (string)rows[1]!["actor"]!, (string)rows[1]!["outcome"]!));
        Assert.Equal($"type=get_firmware_info command={commandId}", (string?)rows[1]!["detail"]);
        Assert.Equal(("refused", "test-viewer", "viewer"), ((string)rows[2]!["action"]!, (string)rows[2]!["actor"]!, (string)rows[2]!["role"]!));
        Assert.Equal("forbidden: needs operator", (string?)rows[2]!["outcome"]);
        Assert.Equal("127.0.0.1", (string?)rows[2]!["remote"]);

        // Filters and paging: by actor, one row per page, the cursor walks back in time.
        var first = await _node.GetJson($"/api/v1/audit?device_id={device}&actor=test-operator&limit=1");
        Assert.Equal("device.auth_mode", (string?)first["items"]![0]!["action"]);
        var second = await _node.GetJson($"/api/v1/audit?device_id={device}&actor=test-operator&limit=1&cursor={first["next_cursor"]}");
        Assert.Equal("command.submit", (string?)second["items"]![0]!["action"]);
        Assert.Null(second["next_cursor"]);
        Assert.Empty(await Audit($"device_id={device}&since={DateTime.UtcNow.AddMinutes(1):yyyy-MM-ddTHH:mm:ssZ}"));
        Assert.Equal(400, (await _node.Send(HttpMethod.Get, "/api/v1/audit?since=yesterday")).Status);
        Assert.Equal(400, (await _node.Send(HttpMethod.Get, "/api/v1/audit?limit=0")).Status);
    }

    [Fact]
    public async Task A_viewer_sees_client_tokens_redacted_and_the_audit_never_holds_them()
    {
        await using var router = await PretendRouter.ConnectAsync(_node.WebSocketUri(), Id());
        const string token = "client-token-3141592653";
        var (status, body, _) = await _node.Send(HttpMethod.Post, $"/api/v1/devices/{router.DeviceId}/commands",
            $$"""{"type":"auth","token":"{{token}}","client_ip":"10.0.0.5","client_mac":"aa:bb:cc:00:00:05","gw_id":"gw-1"}""", TestKeys.Operator);
        Assert.Equal(202, status);
        var id = (string)body!["command_id"]!;
        Assert.Equal(token, (string?)(await router.ReceiveType("auth"))["token"]); // the router gets it, of course

        var asViewer = await _node.Send(HttpMethod.Get, $"/api/v1/devices/{router.DeviceId}/commands/{id}", key: TestKeys.Viewer);
        Assert.Equal("(redacted)", (string?)asViewer.Body!["request"]!["token"]);
        Assert.Equal("aa:bb:cc:00:00:05", (string?)asViewer.Body!["request"]!["client_mac"]);
        var list = await _node.Send(HttpMethod.Get, $"/api/v1/devices/{router.DeviceId}/commands", key: TestKeys.Viewer);
        Assert.DoesNotContain(token, list.Body!.ToJsonString());
        var asOperator = await _node.Send(HttpMethod.Get, $"/api/v1/devices/{router.DeviceId}/commands/{id}", key: TestKeys.Operator);
        Assert.Equal(token, (string?)asOperator.Body!["request"]!["token"]);

        var audit = await _node.GetJson($"/api/v1/audit?device_id={router.DeviceId}");
        Assert.Single(audit["items"]!.AsArray());
        Assert.DoesNotContain(token, audit.ToJsonString());
    }

    [Fact]
    public async Task Privileged_requests_need_an_admin_key()
    {
        var device = await KnownOfflineDevice();
        const string shell = """{"type":"shell","command":"uptime","timeout":5}""";
        var (status, body, _) = await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands", shell, TestKeys.Operator);
        Assert.Equal(403, status);
        Assert.Contains("privileged", (string?)body!["detail"]);
        Assert.Equal(202, (await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands", shell, TestKeys.Admin)).Status);
        var rows = await Audit($"device_id={device}");
        Assert.Equal(["202", "403: " + (string?)body["detail"]], rows.Select(r => (string)r!["outcome"]!));
        Assert.All(rows, r => Assert.StartsWith("type=shell command=", (string)r!["detail"]!));
    }

    [Fact]
    public async Task Firmware_urls_outside_the_prefixes_are_refused_unless_an_admin_overrides_on_the_record()
    {
        var device = await KnownOfflineDevice();
        const string elsewhere = """{"type":"firmware_upgrade","url":"http://203.0.113.9/fw.bin"}""";
        var (status, body, _) = await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands", elsewhere, TestKeys.Operator);
        Assert.Equal(400, status);
        Assert.Contains("https://fw.example.com/releases/", (string?)body!["detail"]);
        Assert.Contains("FirmwareUrlPrefixes", (string?)body["detail"]);
        Assert.Equal(202, (await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands",
            """{"type":"firmware_upgrade","url":"https://fw.example.com/releases/9.07/fw.bin"}""", TestKeys.Operator)).Status);
        Assert.Equal(403, (await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands?allow_any_url=true", elsewhere, TestKeys.Operator)).Status);
        Assert.Equal(202, (await _node.Send(HttpMethod.Post, $"/api/v1/devices/{device}/commands?allow_any_url=true", elsewhere, TestKeys.Admin)).Status);
        var newest = (await Audit($"device_id={device}&limit=1"))[0]!;
        Assert.Equal(("test-admin", "202"), ((string)newest["actor"]!, (string)newest["outcome"]!));
        Assert.Contains("outside FirmwareUrlPrefixes allowed by admin: http://203.0.113.9/fw.bin", (string)newest["detail"]!);
    }

    [Fact]
    public async Task Idempotency_key_returns_the_same_command_on_a_retry()
    {
        var device = await KnownOfflineDevice();
        const string kickoff = """{"type":"kickoff","client_ip":"10.0.0.7","client_mac":"aa:bb:cc:00:00:07","gw_id":"gw-1"}""";
        async Task<HttpResponseMessage> Post(string key, string body)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/devices/{device}/commands") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
            req.Headers.Add("Idempotency-Key", key);
            return await _node.Http.SendAsync(req, TestContext.Current.CancellationToken);
        }
        var first = await Post("kick-7-attempt", kickoff);
        var retry = await Post("kick-7-attempt", kickoff);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        var firstId = (string)JsonNode.Parse(await first.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["command_id"]!;
        Assert.Equal(firstId, (string)JsonNode.Parse(await retry.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["command_id"]!);
        Assert.False(first.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal("true", retry.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Single((await _node.GetJson($"/api/v1/devices/{device}/commands"))["items"]!.AsArray());

        var other = await Post("kick-7-attempt", kickoff.Replace("10.0.0.7", "10.0.0.8"));
        Assert.Equal(HttpStatusCode.Conflict, other.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post("has space", kickoff)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await Post("kick-7-second", kickoff)).StatusCode);
        Assert.Equal(2, (await _node.GetJson($"/api/v1/devices/{device}/commands"))["items"]!.AsArray().Count);
    }

    [Fact]
    public async Task Limits_are_answered_with_clear_errors()
    {
        var device = await KnownOfflineDevice();
        var url = $"/api/v1/devices/{device}/commands";
        const string get = """{"type":"get_status"}""";
        var ttl = await _node.Post(url + "?ttl=604801", get);
        Assert.Equal(400, ttl.Status);
        Assert.Contains("ttl '604801' must be a whole number of seconds from 1 to 604800", (string?)ttl.Body!["detail"]);
        Assert.Contains("from 1 to 3600", (string?)(await _node.Post(url + "?timeout=3601", get)).Body!["detail"]);

        var big = await _node.Post(url, $$"""{"type":"get_status","pad":"{{new string('x', 70_000)}}"}""");
        Assert.Equal(400, big.Status);
        Assert.Contains("larger than 65536 bytes", (string?)big.Body!["detail"]);

        for (var i = 0; i < 3; i++) Assert.Equal(202, (await _node.Post(url, get)).Status);
        var (status, body, type) = await _node.Post(url, get);
        Assert.Equal(429, status);
        Assert.Equal("application/problem+json", type);
        Assert.Contains("3 unfinished commands", (string?)body!["detail"]);
        Assert.Contains("MaxQueuedCommands", (string?)body["detail"]);
    }

    [Fact]
    public async Task Admins_manage_keys_kept_in_the_database_and_a_deleted_key_stops_working()
    {
        var (status, body, _) = await _node.Post("/api/v1/keys", """{"name":"portal-backend","role":"viewer"}""");
        Assert.Equal(201, status);
        var key = (string)body!["key"]!;
        Assert.StartsWith("fleet_", key);
        Assert.Equal(200, (await _node.Send(HttpMethod.Get, "/api/v1/devices", key: key)).Status);
        Assert.Equal(403, (await _node.Send(HttpMethod.Post, "/api/v1/keys", """{"name":"x","role":"admin"}""", key)).Status);
        Assert.Equal(403, (await _node.Send(HttpMethod.Post, "/api/v1/keys", """{"name":"x","role":"admin"}""", TestKeys.Operator)).Status);
        Assert.Equal(409, (await _node.Post("/api/v1/keys", """{"name":"portal-backend","role":"admin"}""")).Status);
        Assert.Equal(400, (await _node.Post("/api/v1/keys", """{"name":"bad name","role":"admin"}""")).Status);
        Assert.Equal(400, (await _node.Post("/api/v1/keys", """{"name":"ok","role":"root"}""")).Status);

        var list = await _node.GetJson("/api/v1/keys");
        var names = list["items"]!.AsArray().Select(k => ((string)k!["name"]!, (string)k["source"]!)).ToList();
        Assert.Contains(("test-admin", "configuration"), names);
        Assert.Contains(("portal-backend", "database"), names);
        Assert.DoesNotContain(key, list.ToJsonString());

        Assert.Equal(409, (await _node.Send(HttpMethod.Delete, "/api/v1/keys/test-viewer")).Status);
        Assert.Equal(204, (await _node.Send(HttpMethod.Delete, "/api/v1/keys/portal-backend")).Status);
        Assert.Equal(401, (await _node.Send(HttpMethod.Get, "/api/v1/devices", key: key)).Status);
        Assert.Equal(404, (await _node.Send(HttpMethod.Delete, "/api/v1/keys/portal-backend")).Status);

        var rows = (await _node.GetJson("/api/v1/audit?actor=test-admin"))["items"]!.AsArray();
        Assert.Contains(rows, r => (string)r!["action"]! == "key.create" && (string)r["outcome"]! == "201" && (string)r["detail"]! == "name=portal-backend role=viewer");
        Assert.Contains(rows, r => (string)r!["action"]! == "key.delete" && (string)r["outcome"]! == "204");
        Assert.DoesNotContain(key, rows.ToJsonString());
    }
}

/// <summary>A fleet started with no key configured: the first start generates an admin key into a file, never into a log.</summary>
public sealed class GeneratedAdminKeyTests
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task First_start_writes_an_owner_only_key_file_beside_the_database_and_logs_only_its_path()
    {
        var db = Node.NewDbPath();
        var logs = new LogCapture();
        string key;
        await using (var node = await Node.StartAsync(db, testKeys: false, configure: b => b.Logging.AddProvider(logs)))
        {
            var file = Path.Combine(Path.GetDirectoryName(db)!, "admin.key");
            Assert.True(File.Exists(file));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            key = File.ReadAllText(file).Trim();
            Assert.Contains(logs.Lines, l => l.Contains(file));
            Assert.DoesNotContain(logs.Lines, l => l.Contains(key));
            Assert.Equal(401, (await node.Send(HttpMethod.Get, "/api/v1/devices", key: "fleet_wrong")).Status);
            Assert.Equal(200, (await node.Send(HttpMethod.Get, "/api/v1/devices", key: key)).Status);
        }
        // A restart keeps that key (it is in the database) and writes no new one.
        File.Delete(Path.Combine(Path.GetDirectoryName(db)!, "admin.key"));
        await using (var node = await Node.StartAsync(db, testKeys: false, configure: null))
        {
            Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(db)!, "admin.key")));
            Assert.Equal(200, (await node.Send(HttpMethod.Get, "/api/v1/devices", key: key)).Status);
        }
    }

    [Fact]
    public async Task A_bad_key_configuration_stops_the_node_with_what_to_fix()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Node.StartAsync(null, testKeys: false, configure: null,
            "--Fleet:Security:ApiKeys:0:Name", "ops", "--Fleet:Security:ApiKeys:0:Key", "short", "--Fleet:Security:ApiKeys:0:Role", "admin"));
        Assert.Contains("Fleet:Security:ApiKeys:0:Key is shorter than 16 characters", e.Message);
        e = await Assert.ThrowsAsync<InvalidOperationException>(() => Node.StartAsync(null, testKeys: false, configure: null,
            "--Fleet:Security:ApiKeys:0:Name", "ops", "--Fleet:Security:ApiKeys:0:KeySha256", "abc", "--Fleet:Security:ApiKeys:0:Role", "root"));
        Assert.Contains("Role 'root' must be viewer, operator or admin", e.Message);
    }

    private sealed class LogCapture : ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();
        public ILogger CreateLogger(string categoryName) => new Logger(this);
        public void Dispose() { }

        private sealed class Logger(LogCapture owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Lines.Enqueue(formatter(state, exception));
        }
    }
}
