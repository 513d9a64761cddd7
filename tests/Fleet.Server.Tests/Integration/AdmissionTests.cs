using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Fleet.Protocol;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Fleet.Server.Tests.Support;
using Fleet.Simulator;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// Device admission with a real node (SQLite, Kestrel, real sockets) and routers that read exactly like the
/// firmware (RealReaderRouter) or hand-written sockets (RawWebSocket): a spoofing socket is refused while the
/// keyed router stays connected; a 9.x router enrolled with the fleet key is pending, approved by an admin,
/// handed its own key over its paced link and reconnects with it; keys are revoked; connections that replace
/// each other flag the device cloned; no key reaches a log or the journal; every change has an audit row.
/// </summary>
public sealed class AdmissionTests
{
    private const string FleetKey = "fleet-enrolment-key-0000000001";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<Node> StartAsync(string mode, params string[] extra) =>
        Node.StartAsync(null, ["--Fleet:Security:DeviceAdmission", mode, "--Fleet:Security:EnrolmentKeys:0", FleetKey, .. extra]);

    private static RealReaderRouter Router(Node node, string id, FirmwareEra era, string? key) =>
        new(node.WebSocketUri(key is null ? "/ws/wifidogx" : $"/ws/wifidogx?key={key}"), id, era)
        {
            HeartbeatEvery = TimeSpan.FromSeconds(1),
            Delays = ReconnectDelays.All(TimeSpan.FromMilliseconds(300)),
        };

    private static async Task<JsonNode> Device(Node node, string id) => await node.GetJson($"/api/v1/devices/{id}");

    private static async Task<JsonNode> DeviceWhen(Node node, string id, Func<JsonNode, bool> ok, string what) =>
        await Eventually.Value(async () => await Device(node, id), ok, $"{id}: {what}");

    private static async Task<JsonNode> Admission(Node node) => (await node.GetJson("/api/v1/node"))["admission"]!;

    /// <summary>A socket that upgrades with <paramref name="key"/> and claims <paramref name="deviceId"/> in a seed connect.</summary>
    private static async Task<RawWebSocket> Claim(Node node, string deviceId, string? key)
    {
        var raw = await RawWebSocket.ConnectAsync(node.BaseAddress.Host, node.BaseAddress.Port,
            key is null ? "/ws/wifidogx" : $"/ws/wifidogx?key={key}", Ct);
        if (raw.ResponseHead.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            await raw.SendTextAsync($$"""{"type":"connect","device_id":"{{deviceId}}","gateway":[{"gw_id":"gw-1","auth_mode":1}]}""", Ct);
        return raw;
    }

    /// <summary>The node ends the socket: the next read meets the end of the stream (no frame, no close frame).</summary>
    private static async Task AssertClosedByNode(RawWebSocket raw)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        var ex = await Record.ExceptionAsync(async () => await raw.ReadFrameAsync(deadline.Token));
        Assert.True(ex is EndOfStreamException or IOException, $"expected the node to drop the socket, got {ex?.GetType().Name ?? "a frame"}");
    }

    private static async Task<(string Key, JsonNode Body)> NewKey(Node node, string deviceId)
    {
        var (status, body, _) = await node.Send(HttpMethod.Post, $"/api/v1/devices/{deviceId}/key");
        Assert.True(status == 201, $"POST key → {status} {body?.ToJsonString()}");
        return ((string)body!["key"]!, body);
    }

    private static List<(string Actor, string Action, string? Device, string Outcome, string? Detail)> AuditRows(Node node)
    {
        using var c = new SqliteConnection($"Data Source={node.DbPath}");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT actor, action, device_id, outcome, detail FROM audit_log ORDER BY id";
        using var r = cmd.ExecuteReader();
        var rows = new List<(string, string, string?, string, string?)>();
        while (r.Read())
            rows.Add((r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4)));
        return rows;
    }

    /// <summary>Every byte the database holds in its journal, snapshots and tables, searched for a text.</summary>
    private static bool DatabaseContains(Node node, string text)
    {
        using var c = new SqliteConnection($"Data Source={node.DbPath}");
        c.Open();
        var tables = new List<string>();
        using (var list = c.CreateCommand())
        {
            list.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table'";
            using var r = list.ExecuteReader();
            while (r.Read()) tables.Add(r.GetString(0));
        }
        var needle = Encoding.UTF8.GetBytes(text);
        foreach (var table in tables)
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT * FROM \"{table}\"";
            using var r = cmd.ExecuteReader();
            while (r.Read())
                for (var i = 0; i < r.FieldCount; i++)
                {
                    if (r.IsDBNull(i)) continue;
                    var bytes = r.GetValue(i) switch
                    {
                        byte[] b => b,
                        var v => Encoding.UTF8.GetBytes(Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? ""),
                    };
                    if (bytes.AsSpan().IndexOf(needle) >= 0) return true;
                }
        }
        return false;
    }

    // ------------------------------------------------------------------ device-key admission

    [Fact]
    public async Task A_spoofing_socket_is_refused_while_the_keyed_router_stays_connected()
    {
        await using var node = await StartAsync("device-key");
        var (key, issued) = await NewKey(node, "keyed-1");
        Assert.Null(issued["hand_over"]); // never connected: to be configured on the router
        Assert.Equal($"/ws/wifidogx?key={key}", (string?)issued["web_socket_path"]);
        var (otherKey, _) = await NewKey(node, "keyed-2");

        await using var router = Router(node, "keyed-1", FirmwareEra.Seed, key).Start();
        await router.WaitConnectedAsync();
        var before = await DeviceWhen(node, "keyed-1", d => (bool?)d["online"] == true && (string?)d["credential"] == "device-key", "online with its key");
        Assert.Equal("approved", (string?)before["admission"]);

        // A fleet key (once the device has used its own), another device's key, no key, a made-up key.
        await using (var fleet = await Claim(node, "keyed-1", FleetKey)) await AssertClosedByNode(fleet);
        await using (var stolen = await Claim(node, "keyed-1", otherKey)) await AssertClosedByNode(stolen);
        await using (var none = await Claim(node, "keyed-1", null)) Assert.StartsWith("HTTP/1.1 401", none.ResponseHead);
        await using (var wrong = await Claim(node, "keyed-1", "fdk_not-a-key-of-this-fleet-at-all")) Assert.StartsWith("HTTP/1.1 401", wrong.ResponseHead);

        var admission = await Admission(node);
        Assert.Equal(1, (long?)admission["connects_refused"]!["key_required"]);
        Assert.Equal(1, (long?)admission["connects_refused"]!["key_of_another_device"]);
        Assert.Equal(1, (long?)admission["upgrades_refused"]!["no_key"]);
        Assert.Equal(1, (long?)admission["upgrades_refused"]!["unknown_key"]);
        // The router was never disturbed: one connection, still up, the same connected_at.
        await router.HeartbeatNowAsync();
        var after = await Device(node, "keyed-1");
        Assert.True(router.Connected);
        Assert.Equal(1, router.Connections);
        Assert.Equal((string?)before["connected_at"], (string?)after["connected_at"]);
        Assert.Equal("device-key", (string?)after["credential"]);
        Assert.False((bool?)after["cloned"]);
        router.AssertClean();
        Assert.Contains(AuditRows(node), r => r.Action == "device.key.create" && r.Device == "keyed-1" && r.Outcome == "201");
        Assert.False(DatabaseContains(node, key));
    }

    [Fact]
    public async Task A_401_at_the_upgrade_is_problem_json_that_says_what_is_missing()
    {
        await using var node = await StartAsync("device-key");
        using var http = new HttpClient();
        var raw = await RawWebSocket.ConnectAsync(node.BaseAddress.Host, node.BaseAddress.Port, "/ws/wifidogx", Ct);
        await using (raw)
        {
            Assert.StartsWith("HTTP/1.1 401", raw.ResponseHead);
            Assert.Contains("application/problem+json", raw.ResponseHead);
        }
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(node.BaseAddress, "/ws/wifidogx?key=short"));
        request.Headers.Add("Connection", "upgrade");
        request.Headers.Add("Upgrade", "websocket");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(new byte[16]));
        var response = await http.SendAsync(request, Ct);
        Assert.Equal(401, (int)response.StatusCode);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        Assert.Contains("neither an enrolment key of this fleet nor a device's key", (string?)problem["detail"]);
    }

    [Fact]
    public async Task Enrolment_of_a_9x_router_ends_with_it_reconnecting_on_its_own_key()
    {
        await using var node = await StartAsync("device-key");
        await using var router = Router(node, "enrol-9", FirmwareEra.V9, FleetKey).Start();
        await router.WaitConnectedAsync();

        // Pending: visible, reads only.
        var pending = await DeviceWhen(node, "enrol-9", d => (string?)d["admission"] == "pending", "pending");
        Assert.Equal("fleet-key", (string?)pending["credential"]);
        var (status, problem, type) = await node.Post("/api/v1/devices/enrol-9/commands", """{"type":"get_status"}""");
        Assert.Equal((409, "application/problem+json"), (status, type));
        Assert.Contains("pending approval", (string?)problem!["detail"]);
        (status, _, _) = await node.Send(HttpMethod.Put, "/api/v1/devices/enrol-9/gateways/gw-1/auth-mode", """{"auth_mode":0}""");
        Assert.Equal(409, status);
        await Eventually.True(async () => (await node.GetJson("/api/v1/devices?admission=pending"))["items"]!.AsArray()
            .Any(i => (string?)i!["device_id"] == "enrol-9"), "the directory lists it as pending");

        // An operator may not approve; an admin may.
        using (var op = new HttpClient { BaseAddress = node.BaseAddress }.Authorize(TestKeys.Operator))
            Assert.Equal(403, (int)(await op.PostAsync("/api/v1/devices/enrol-9/approve", null, Ct)).StatusCode);
        var (approvedStatus, approval, _) = await node.Send(HttpMethod.Post, "/api/v1/devices/enrol-9/approve");
        Assert.True(approvedStatus == 200, approval?.ToJsonString());
        var key = (string)approval!["key"]!;
        var commandId = (string)approval["hand_over"]!["command_id"]!;
        Assert.Equal("approved", (string?)approval["admission"]);

        // The router receives set_websocket_serv over its paced link, answers, is dropped, reconnects with its key.
        var request = Assert.Single(await router.WaitForRequestsAsync(1), r => r.Name == "set_websocket_serv");
        var handed = Assert.IsType<SetWebSocketServRequest>(request.Request);
        Assert.Equal($"/ws/wifidogx?key={key}", handed.Path);
        Assert.Null(handed.Hostname);
        await router.WaitConnectedAsync(connections: 2);
        Assert.Equal($"/ws/wifidogx?key={key}", router.Device.Server.Path);
        var approved = await DeviceWhen(node, "enrol-9",
            d => (bool?)d["online"] == true && (string?)d["credential"] == "device-key", "online with its own key");
        Assert.Equal("approved", (string?)approved["admission"]);
        var command = await node.GetJson($"/api/v1/devices/enrol-9/commands/{commandId}");
        Assert.Equal("succeeded", (string?)command["status"]);
        Assert.DoesNotContain(key, command.ToJsonString()); // the history shows the request without its key

        // Its key is in use: the fleet key no longer admits a socket claiming it, and the router stays.
        var keys = await node.GetJson("/api/v1/devices/enrol-9/key");
        Assert.NotNull(keys["keys"]![0]!["used_at"]);
        Assert.NotNull(keys["key_required_since"]);
        await using (var spoof = await Claim(node, "enrol-9", FleetKey)) await AssertClosedByNode(spoof);
        Assert.True(await router.HeartbeatNowAsync());
        Assert.Equal(2, router.Connections);
        Assert.True(router.Connected);
        Assert.True((bool?)(await Device(node, "enrol-9"))["online"]);
        router.AssertClean();

        var audit = AuditRows(node).Where(r => r.Device == "enrol-9").ToList();
        Assert.Contains(audit, r => r is { Action: "device.approve", Outcome: "200", Actor: "test-admin" } && r.Detail!.Contains(commandId));
        Assert.Contains(audit, r => r.Action == "refused" && r.Detail!.Contains("/approve")); // the operator's try
        Assert.DoesNotContain(audit, r => (r.Detail ?? "").Contains(key));
        Assert.False(DatabaseContains(node, key));
    }

    [Fact]
    public async Task A_seed_routers_key_is_shown_once_to_configure_and_then_required()
    {
        await using var node = await StartAsync("device-key");
        await using (var first = Router(node, "enrol-seed", FirmwareEra.Seed, FleetKey).Start())
        {
            await first.WaitConnectedAsync();
            await DeviceWhen(node, "enrol-seed", d => (string?)d["admission"] == "pending", "pending");
        }
        var (status, approval, _) = await node.Send(HttpMethod.Post, "/api/v1/devices/enrol-seed/approve");
        Assert.Equal(200, status);
        Assert.Null(approval!["hand_over"]);
        Assert.Contains("configure it on the router", (string?)approval["not_handed_over"]);
        var path = (string)approval["web_socket_path"]!;

        // The admin configures the router with its key.
        await using var router = new RealReaderRouter(node.WebSocketUri(path), "enrol-seed", FirmwareEra.Seed)
        {
            HeartbeatEvery = TimeSpan.FromSeconds(1), Delays = ReconnectDelays.All(TimeSpan.FromMilliseconds(300)),
        }.Start();
        await router.WaitConnectedAsync();
        await DeviceWhen(node, "enrol-seed", d => (string?)d["credential"] == "device-key" && (string?)d["admission"] == "approved", "with its key");
        await using (var spoof = await Claim(node, "enrol-seed", FleetKey)) await AssertClosedByNode(spoof);
        Assert.Equal(1, router.Connections);
        router.AssertClean();
    }

    [Fact]
    public async Task Revoking_a_key_closes_the_socket_and_keeps_the_router_out()
    {
        await using var node = await StartAsync("device-key");
        var (key, _) = await NewKey(node, "revoked-1");
        await using var router = Router(node, "revoked-1", FirmwareEra.V9, key).Start();
        await router.WaitConnectedAsync();
        await DeviceWhen(node, "revoked-1", d => (bool?)d["online"] == true, "online");
        router.ExpectLoss = true; // its reconnects get 401: the firmware counts a bad upgrade

        var (status, body, _) = await node.Send(HttpMethod.Delete, "/api/v1/devices/revoked-1/key");
        Assert.Equal(200, status);
        Assert.Equal((1, true), ((int?)body!["revoked"], (bool?)body["connection_closed"]));
        await DeviceWhen(node, "revoked-1", d => (bool?)d["online"] == false, "offline");
        await router.WaitForAsync(r => r.Losses.Any(l => l.Kind == RouterLossKind.BadUpgrade), "its reconnect refused");
        Assert.Equal(1, router.Connections);
        Assert.True((long?)(await Admission(node))["upgrades_refused"]!["unknown_key"] >= 1);
        Assert.Equal(404, (await node.Send(HttpMethod.Delete, "/api/v1/devices/revoked-1/key")).Status);
        Assert.Contains(AuditRows(node), r => r is { Action: "device.key.revoke", Device: "revoked-1", Outcome: "200" });
        Assert.Contains(AuditRows(node), r => r.Action == "device.key.revoke" && r.Outcome.StartsWith("404"));
    }

    [Fact]
    public async Task Auto_approve_hands_a_9x_router_its_key_at_once()
    {
        await using var node = await StartAsync("device-key", "--Fleet:Security:AutoApprove", "true");
        await using var router = Router(node, "auto-9", FirmwareEra.V9, FleetKey).Start();
        await router.WaitConnectedAsync(connections: 2, within: TimeSpan.FromSeconds(30));
        var device = await DeviceWhen(node, "auto-9", d => (string?)d["credential"] == "device-key", "reconnected with its key");
        Assert.Equal(("approved", "auto-approve"), ((string?)device["admission"], (string?)device["admission_by"]));
        Assert.StartsWith("/ws/wifidogx?key=fdk_", router.Device.Server.Path);
        Assert.Contains(AuditRows(node), r => r is { Actor: "auto-approve", Action: "device.approve", Device: "auto-9" });
        Assert.Equal(1, (long?)(await Admission(node))["auto_approved"]);
        router.AssertClean();
    }

    // ------------------------------------------------------------------ fleet-key and open admission

    [Fact]
    public async Task Fleet_key_admission_takes_the_fleet_key_and_refuses_another_devices_key()
    {
        await using var node = await StartAsync("fleet-key");
        Assert.Equal("fleet-key", (string?)(await node.GetJson("/api/v1/node"))["device_admission"]);
        await using var router = Router(node, "fleet-1", FirmwareEra.V2025, FleetKey).Start();
        await router.WaitConnectedAsync();
        var device = await DeviceWhen(node, "fleet-1", d => (bool?)d["online"] == true, "online");
        Assert.Equal(("approved", "fleet key", "fleet-key"),
            ((string?)device["admission"], (string?)device["admission_by"], (string?)device["credential"]));
        var (otherKey, _) = await NewKey(node, "fleet-2");
        await using (var stolen = await Claim(node, "fleet-1", otherKey)) await AssertClosedByNode(stolen);
        await using (var none = await Claim(node, "fleet-1", null)) Assert.StartsWith("HTTP/1.1 401", none.ResponseHead);
        Assert.Equal(1, router.Connections);
        Assert.True(router.Connected);
        router.AssertClean();
    }

    [Fact]
    public async Task Open_admission_is_the_default_and_shows_in_the_node_figures()
    {
        await using var node = await Node.StartAsync();
        var n = await node.GetJson("/api/v1/node");
        Assert.Equal("open", (string?)n["device_admission"]);
        await using var router = Router(node, "open-1", FirmwareEra.Seed, null).Start();
        await router.WaitConnectedAsync();
        var device = await DeviceWhen(node, "open-1", d => (bool?)d["online"] == true, "online");
        Assert.Null((string?)device["admission"]);
        Assert.Equal("none", (string?)device["credential"]);
        router.AssertClean();
    }

    [Fact]
    public async Task Connections_that_keep_replacing_each_other_flag_the_device_cloned()
    {
        await using var node = await Node.StartAsync();
        var sockets = new List<RawWebSocket>();
        try
        {
            for (var i = 0; i < 7; i++) // 6 replacements
            {
                var raw = await Claim(node, "twin-1", null);
                sockets.Add(raw);
                var reply = await raw.ReadFrameAsync(Ct); // the connect was handled (in order) before the next one
                Assert.Contains("heartbeat", reply.PayloadText);
            }
            var device = await DeviceWhen(node, "twin-1", d => (bool?)d["cloned"] == true, "flagged cloned");
            Assert.NotNull(device["cloned_since"]);
            Assert.Equal(1, (long?)(await Admission(node))["clone_episodes"]);
        }
        finally
        {
            foreach (var s in sockets) await s.DisposeAsync();
        }
    }

    // ------------------------------------------------------------------ settings, logs

    [Theory]
    [InlineData("closed", "must be open, fleet-key or device-key")]
    [InlineData("fleet-key", "EnrolmentKeys is empty")]
    public async Task A_bad_admission_setting_stops_the_node_with_what_to_fix(string mode, string message)
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => FleetNode.CreateAsync([
            "--urls", "http://127.0.0.1:0", "--Fleet:Persistence:ConnectionString", $"Data Source={Node.NewDbPath()}",
            "--Fleet:Cluster:Port", "0", "--Fleet:Security:DeviceAdmission", mode, .. TestKeys.Arguments(),
        ]));
        Assert.Contains(message, ex.Message);
        var short_ = Assert.Throws<InvalidOperationException>(() =>
            DeviceAdmission.Validate(new SecuritySettings { DeviceAdmission = "device-key", EnrolmentKeys = ["has space in it 123"] }));
        Assert.Contains("EnrolmentKeys:0", short_.Message);
    }

    [Fact]
    public async Task Keys_in_the_websocket_path_never_reach_the_logs()
    {
        var capture = new CapturedLogs();
        var app = await FleetNode.CreateAsync([
            "--urls", "http://127.0.0.1:0", "--Fleet:Persistence:ConnectionString", $"Data Source={Node.NewDbPath()}",
            "--Fleet:Cluster:Port", "0", "--Fleet:Security:EnrolmentKeys:0", FleetKey,
            // Everything at Information and below, provider-specific rules included: the URL loggers must stay quiet anyway.
            "--Logging:LogLevel:Default", "Information", "--Logging:LogLevel:Microsoft.AspNetCore", "Trace",
            "--Logging:Captured:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics", "Trace", .. TestKeys.Arguments(),
        ], b => b.Logging.AddProvider(capture));
        await app.StartAsync(Ct);
        try
        {
            var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            using var http = new HttpClient { BaseAddress = address }.Authorize();
            var key = (string)JsonNode.Parse(await (await http.PostAsync("/api/v1/devices/logged-1/key", null, Ct)).Content.ReadAsStringAsync(Ct))!["key"]!;
            foreach (var presented in new[] { key, FleetKey, "fdk_unknown-key-0000000000000000" })
            {
                await using var raw = await RawWebSocket.ConnectAsync(address.Host, address.Port, $"/ws/wifidogx?key={presented}", Ct);
                await raw.SendTextAsync("""{"type":"connect","device_id":"logged-1","gateway":[{"gw_id":"gw-1","auth_mode":1}]}""", Ct);
                await raw.ReadFrameAsync(Ct);
            }
            await http.GetAsync($"/api/v1/node?key={key}", Ct); // an admin request with a key in its query, too
            await Eventually.True(() => capture.Entries.Any(e => e.Contains("presented its key")), "the first use was logged");
            Assert.Contains(capture.Entries, e => e.Contains("device admission is open: any socket may claim any device_id"));
            Assert.DoesNotContain(capture.Entries, e => e.Contains(key) || e.Contains(FleetKey) || e.Contains("fdk_unknown"));
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
    }

    /// <summary>Every log entry of the node, formatted, with its state's values (what any provider could print).</summary>
    [ProviderAlias("Captured")]
    private sealed class CapturedLogs : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _entries = new();
        public IReadOnlyCollection<string> Entries => _entries;
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);
        public void Dispose() { }

        private sealed class Logger(string category, ConcurrentQueue<string> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = state is IEnumerable<KeyValuePair<string, object?>> kv ? string.Join(" ", kv.Select(p => $"{p.Key}={p.Value}")) : "";
                entries.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {values} {exception}");
            }
        }
    }
}
