using System.Net;
using System.Text.Json.Nodes;
using Fleet.Cli.Tests.Support;
using Xunit;

namespace Fleet.Cli.Tests;

/// <summary>
/// jobs, rollouts, devices tag and clients (docs/ADMIN_API.md "Fleet operations"): what fleetctl refuses before it calls
/// the API, the requests it builds, and how it shows and follows the API's answers (a stand-in API; the same commands
/// against a real node are in FleetOperationsAgainstANodeTests).
/// </summary>
public sealed class FleetOperationsCommandLineTests
{
    private static readonly Dictionary<string, string?> NoEnv = new();

    private sealed class NoCalls : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) =>
            throw new InvalidOperationException($"fleetctl called {request.RequestUri}");
    }

    private static void ExitsWith(int exit, CliRun run) => Assert.True(run.Exit == exit, $"expected exit {exit}, got {run}");

    private static string[] Args(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [Theory]
    [InlineData("jobs lst")]
    [InlineData("jobs get")]
    [InlineData("jobs list --kind bulk")]
    [InlineData("jobs create --all --rate fast --type kickoff")]
    [InlineData("jobs watch")]
    [InlineData("jobs watch j1 --wait soon")]
    [InlineData("rollouts create --all --release 24.10.1")]
    [InlineData("rollouts create --all --firmware-url https://fw.test/a.bin")]
    [InlineData("rollouts devices j1 --stage first")]
    [InlineData("rollouts approve")]
    [InlineData("clients kickoff")]
    [InlineData("clients kickoff aa:bb:cc:dd:ee:ff --wait soon")]
    [InlineData("devices tag")]
    [InlineData("devices list --tag")]
    public async Task A_wrong_command_line_exits_2_without_calling_the_api(string line)
    {
        var run = await CliRun.InProcess(Args(line), NoEnv, new NoCalls());
        ExitsWith(ExitCodes.Usage, run);
        Assert.StartsWith("fleetctl: ", run.Err);
    }

    [Theory]
    [InlineData("jobs create --type kickoff", "no selection: give --selection-json, --tag, --device")]
    [InlineData("rollouts create --firmware-url https://fw.test/a.bin --release 1", "no selection: give --selection-json, --tag, --device, --online, --gw-id, --protocol, --from-release,")]
    [InlineData("jobs create --all", "the command has no type")]
    [InlineData("jobs create --all --command-json [1]", "--command-json must be a JSON object")]
    [InlineData("jobs create --type kickoff --selection-json {", "--selection-json is not valid JSON")]
    [InlineData("jobs create --type kickoff --tag site", "--tag 'site' must be key=value")]
    [InlineData("jobs create --type kickoff --tag a=1 --tag a=2", "--tag: the key 'a' is given twice")]
    [InlineData("jobs create --all --type kickoff --field novalue", "--field 'novalue' must be name=value")]
    [InlineData("jobs watch j1 --interval 0", "--interval must be more than 0")]
    [InlineData("jobs watch j1 --wait -1", "--wait must not be negative")]
    [InlineData("rollouts create --all --firmware-url https://fw.test/a.bin --release 1 --window 1-5", "--window '1-5' must be HH:MM-HH:MM")]
    [InlineData("rollouts create --all --firmware-url https://fw.test/a.bin --release 1 --canary 2 --canary-percent 5", "give --canary or --canary-percent, not both")]
    [InlineData("devices tag r1", "give the tags (key=value …), or --clear")]
    [InlineData("devices tag r1 site=paris --clear", "give the tags or --clear, not both")]
    [InlineData("devices tag r1 paris", "tag 'paris' must be key=value")]
    [InlineData("devices list --tag site", "--tag 'site' must be key=value")]
    [InlineData("clients find", "give --mac or --ip")]
    [InlineData("clients kickoff aa:bb:cc:dd:ee:ff --wait -1", "--wait must not be negative")]
    public async Task A_wrong_request_exits_2_with_what_is_wrong_without_calling_the_api(string line, string error)
    {
        var run = await CliRun.InProcess(Args(line), NoEnv, new NoCalls());
        ExitsWith(ExitCodes.Usage, run);
        Assert.StartsWith($"fleetctl: {error}", run.Err);
    }

    [Fact]
    public async Task Help_lists_the_new_commands_and_exit_code_8()
    {
        var run = await CliRun.InProcess(["--help"], NoEnv, new NoCalls());
        ExitsWith(ExitCodes.Ok, run);
        foreach (var command in new[] { "jobs", "rollouts", "clients" }) Assert.Contains($"  {command} ", run.Out);
        Assert.Contains("  8  a watched job or rollout ended cancelled or aborted", run.Out);
        var jobs = await CliRun.InProcess(["jobs", "--help"], NoEnv, new NoCalls());
        foreach (var sub in new[] { "list", "get", "devices", "create", "pause", "resume", "cancel", "watch" }) Assert.Contains($"  {sub} ", jobs.Out);
        var rollouts = await CliRun.InProcess(["rollouts", "--help"], NoEnv, new NoCalls());
        foreach (var sub in new[] { "list", "get", "devices", "create", "pause", "resume", "abort", "approve", "watch" }) Assert.Contains($"  {sub} ", rollouts.Out);
    }

    private static string JobView(string status, int total, string counts, string id = "j1", string? rollout = null) =>
        $$"""
        {"job_id":"{{id}}","kind":"{{(rollout is null ? "command" : "rollout")}}","name":"kick everywhere","status":"{{status}}",
         "created_at":"2026-03-01T10:00:00Z","created_by":"test-admin","deadline":"2026-03-02T10:00:00Z","finished_at":null,
         "selection":{"all":true},"command":{"type":"kickoff","client_mac":"aa:bb:cc:dd:ee:ff"},"rate_per_minute":600,"wait_offline":true,
         "total":{{total}},"counts":{{counts}}{{(rollout is null ? "" : ",\"rollout\":" + rollout)}}}
        """;

    [Fact]
    public async Task Jobs_create_sends_the_selection_the_command_and_the_options_given_and_only_those()
    {
        var api = ScriptedApi.Always(JobView("running", 2, """{"pending":2}"""), HttpStatusCode.Created);
        var run = await CliRun.InProcess(["jobs", "create", "--selection-json", """{"tags":{"site":"paris"},"online":false}""",
            "--tag", "tz=Europe/Paris", "--online", "--gw-id", "gw-1", "--protocol", "9", "--release", "24.10.0", "--device", "r1", "--device", "r2",
            "--command-json", """{"type":"tmp_pass","timeout":60}""", "--field", "client_mac=aa:bb:cc:dd:ee:ff", "--field", "timeout=300",
            "--name", "pass for the lobby", "--rate", "60", "--deadline-seconds", "3600", "--no-wait-offline", "--timeout", "20",
            "--idempotency-key", "k-1", "--url", "http://fleet.test"], NoEnv, api);
        ExitsWith(ExitCodes.Ok, run);
        var request = Assert.Single(api.Requests);
        Assert.Equal(HttpMethod.Post, request.Method);
        Assert.Equal("/api/v1/jobs", request.PathAndQuery);
        Assert.Equal("k-1", request.Headers["Idempotency-Key"]);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"selection":{"tags":{"site":"paris","tz":"Europe/Paris"},"online":true,"device_ids":["r1","r2"],"gw_id":"gw-1","protocol":"9","release":"24.10.0"},
             "command":{"type":"tmp_pass","timeout":300,"client_mac":"aa:bb:cc:dd:ee:ff"},
             "name":"pass for the lobby","rate_per_minute":60,"deadline_seconds":3600,"wait_offline":false,"timeout_seconds":20}
            """), request.Json), request.Body);
        Assert.Contains(run.Lines, l => Args(l) is ["job_id", "j1"]);
        Assert.Contains(run.Lines, l => Args(l) is ["progress", "0/2", "finished"]);
        Assert.Contains(run.Lines, l => Args(l) is ["pending", "2"]);

        var minimal = ScriptedApi.Always(JobView("running", 2, """{"pending":2}"""), HttpStatusCode.Created);
        ExitsWith(ExitCodes.Ok, await CliRun.InProcess(["jobs", "create", "--all", "--type", "get_firmware_info", "--url", "http://fleet.test"], NoEnv, minimal));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"selection":{"all":true},"command":{"type":"get_firmware_info"}}"""),
            minimal.Requests[0].Json), minimal.Requests[0].Body);
    }

    [Fact]
    public async Task A_dry_run_shows_how_many_devices_and_which()
    {
        var api = ScriptedApi.Always("""{"dry_run":true,"count":2,"device_ids":["r1","r2"]}""");
        var run = await CliRun.InProcess(["jobs", "create", "--all", "--type", "reboot_device", "--dry-run", "--url", "http://fleet.test"], NoEnv, api);
        ExitsWith(ExitCodes.Ok, run);
        Assert.True((bool)api.Requests[0].Json["dry_run"]!);
        Assert.Contains(run.Lines, l => Args(l) is ["devices", "2"]);
        Assert.Contains("r1", run.Lines);
        Assert.Contains("r2", run.Lines);

        var json = await CliRun.InProcess(["jobs", "create", "--all", "--type", "reboot_device", "--dry-run", "--json", "--url", "http://fleet.test"], NoEnv, api);
        Assert.Equal(2, (int)json.Json["count"]!);
    }

    [Fact]
    public async Task Rollouts_create_sends_the_plan_with_windows_and_the_abort_rule()
    {
        var api = ScriptedApi.Always(JobView("running", 4, """{"pending":4}""", "ro1",
            """{"url":"https://fw.test/24.10.1.bin","release":"24.10.1","stages":[]}"""), HttpStatusCode.Created);
        var run = await CliRun.InProcess(["rollouts", "create", "--tag", "site=paris", "--from-release", "24.10.0",
            "--firmware-url", "https://fw.test/24.10.1.bin", "--release", "24.10.1", "--revision", "r2", "--force",
            "--canary-percent", "5", "--wave-factor", "2.5", "--rate", "30", "--abort-percent", "10", "--abort-min", "3",
            "--device-timeout", "600", "--retries", "1", "--window", "01:00-05:00", "--window", "22:00-23:30", "--zone", "Europe/Paris",
            "--zone-tag", "tz", "--approval", "--deadline-seconds", "86400", "--name", "24.10.1 for paris", "--url", "http://fleet.test"], NoEnv, api);
        ExitsWith(ExitCodes.Ok, run);
        var request = Assert.Single(api.Requests);
        Assert.Equal("/api/v1/rollouts", request.PathAndQuery);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""
            {"selection":{"tags":{"site":"paris"},"release":"24.10.0"},"url":"https://fw.test/24.10.1.bin","release":"24.10.1",
             "name":"24.10.1 for paris","revision":"r2","force":true,"canary_percent":5,"wave_factor":2.5,"rate_per_minute":30,
             "abort":{"failure_percent":10,"min_finished":3},"device_timeout_seconds":600,"retries":1,
             "windows":[{"start":"01:00","end":"05:00"},{"start":"22:00","end":"23:30"}],"zone":"Europe/Paris","zone_tag":"tz",
             "approval":true,"deadline_seconds":86400}
            """), request.Json), request.Body);
    }

    [Fact]
    public async Task Devices_list_filters_by_tags_and_release_and_tag_puts_the_operators_tags()
    {
        var list = ScriptedApi.Always("""
            {"items":[{"device_id":"r1","online":true,"protocol":"9","gateways":["gw-1"],"location_id":"lobby","node":"n1",
              "last_seen":"2026-03-01T10:00:00Z","release":"24.10.0","tags":{"location":"lobby","site":"paris"}}],"next_cursor":null,"count":1}
            """);
        var run = await CliRun.InProcess(["devices", "list", "--tag", "site=paris", "--tag", "tz=Europe/Paris", "--release", "24.10.0", "--count",
            "--url", "http://fleet.test"], NoEnv, list);
        ExitsWith(ExitCodes.Ok, run);
        Assert.Equal("/api/v1/devices?tag=site%3dparis&tag=tz%3dEurope%2fParis&release=24.10.0&count=true", list.Requests[0].PathAndQuery);
        Assert.Equal(["DEVICE", "ONLINE", "PROTOCOL", "GATEWAYS", "LOCATION", "NODE", "LAST", "SEEN", "RELEASE", "TAGS"], Args(run.Lines[0]));
        Assert.Equal("24.10.0 location=lobby,site=paris", string.Join(' ', Args(run.Lines[1])[^2..]));
        Assert.Contains("1 devices match", run.Lines);

        var tag = ScriptedApi.Always("""{"device_id":"r1","tags":{"location":"lobby","site":"lyon"},"operator_tags":{"site":"lyon"}}""");
        var set = await CliRun.InProcess(["devices", "tag", "r1", "site=lyon", "note=", "--url", "http://fleet.test"], NoEnv, tag);
        ExitsWith(ExitCodes.Ok, set);
        Assert.Equal(HttpMethod.Put, tag.Requests[0].Method);
        Assert.Equal("/api/v1/devices/r1/tags", tag.Requests[0].PathAndQuery);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"tags":{"site":"lyon","note":""}}"""), tag.Requests[0].Json), tag.Requests[0].Body);
        Assert.Contains(set.Lines, l => Args(l) is ["tags", "location=lobby,site=lyon"]);
        Assert.Contains(set.Lines, l => Args(l) is ["operator_tags", "site=lyon"]);

        ExitsWith(ExitCodes.Ok, await CliRun.InProcess(["devices", "tag", "r 1", "--clear", "--url", "http://fleet.test"], NoEnv, tag));
        Assert.Equal("/api/v1/devices/r%201/tags", tag.Requests[1].PathAndQuery);
        Assert.Equal("""{"tags":{}}""", tag.Requests[1].Body);
    }

    [Fact]
    public async Task Lists_pass_their_filters_and_all_follows_next_cursor()
    {
        var api = new ScriptedApi(r => (HttpStatusCode.OK, r.PathAndQuery.Contains("cursor=c2")
            ? $$"""{"items":[{{JobView("completed", 1, """{"succeeded":1}""", "j2")}}],"next_cursor":null}"""
            : $$"""{"items":[{{JobView("running", 3, """{"pending":1,"succeeded":1,"failed":1}""")}}],"next_cursor":"c2"}"""));
        var run = await CliRun.InProcess(["jobs", "list", "--kind", "command", "--status", "running", "--limit", "1", "--all", "--url", "http://fleet.test"], NoEnv, api);
        ExitsWith(ExitCodes.Ok, run);
        Assert.Equal(["/api/v1/jobs?kind=command&status=running&limit=1", "/api/v1/jobs?kind=command&status=running&limit=1&cursor=c2"],
            api.Requests.Select(r => r.PathAndQuery));
        Assert.Equal(["JOB_ID", "KIND", "STATUS", "PROGRESS", "CREATED", "CREATED_BY", "NAME"], Args(run.Lines[0]));
        Assert.Equal(["j1", "command", "running", "2/3"], Args(run.Lines[1]).Take(4));
        Assert.Equal(["j2", "command", "completed", "1/1"], Args(run.Lines[2]).Take(4));

        var devices = ScriptedApi.Always("""{"items":[{"device_id":"r1","status":"failed","command_id":"c1","error":"Client not found","updated_at":"2026-03-01T10:00:00Z"}],"next_cursor":null}""");
        var rows = await CliRun.InProcess(["rollouts", "devices", "ro 1", "--status", "failed", "--stage", "0", "--url", "http://fleet.test"], NoEnv, devices);
        ExitsWith(ExitCodes.Ok, rows);
        Assert.Equal("/api/v1/rollouts/ro%201/devices?status=failed&stage=0", devices.Requests[0].PathAndQuery);
        Assert.Equal(["r1", "failed", "-", "c1"], Args(rows.Lines[1]).Take(4));
        Assert.EndsWith("Client not found", rows.Lines[1]);

        var clients = ScriptedApi.Always("""{"items":[]}""");
        ExitsWith(ExitCodes.Ok, await CliRun.InProcess(["clients", "find", "--ip", "192.168.1.23", "--url", "http://fleet.test"], NoEnv, clients));
        Assert.Equal("/api/v1/clients?ip=192.168.1.23", clients.Requests[0].PathAndQuery);
    }

    private const string Stages = """
        {"url":"https://fw.test/24.10.1.bin","release":"24.10.1","revision":null,"current_stage":1,
         "abort":{"failure_percent":10,"min_finished":3},"windows":[{"start":"01:00","end":"05:00"}],"zone":"UTC","zone_tag":null,
         "approval":false,"device_timeout_seconds":900,"retries":2,
         "stages":[{"index":0,"size":1,"status":"completed","counts":{"upgraded":1}},
                   {"index":1,"size":4,"status":"running","counts":{"already":1,"failed":1,"waiting":1,"rebooting":1}}]}
        """;

    [Fact]
    public async Task A_rollouts_view_shows_its_plan_and_a_row_per_stage()
    {
        var api = ScriptedApi.Always(JobView("running", 5, """{"upgraded":1,"already":1,"failed":1,"waiting":1,"rebooting":1}""", "ro1", Stages));
        var run = await CliRun.InProcess(["rollouts", "get", "ro1", "--url", "http://fleet.test"], NoEnv, api);
        ExitsWith(ExitCodes.Ok, run);
        Assert.Equal("/api/v1/rollouts/ro1", api.Requests[0].PathAndQuery);
        Assert.Contains(run.Lines, l => Args(l) is ["progress", "3/5", "finished"]);
        Assert.Contains(run.Lines, l => Args(l) is ["windows", "01:00-05:00"]);
        Assert.Contains(run.Lines, l => Args(l) is ["current_stage", "1"]);
        Assert.Contains(run.Lines, l => Args(l) is ["0", "1", "completed", "1", "1", "0", "0", "0", "0", "0", "0"]);
        Assert.Contains(run.Lines, l => Args(l) is ["1", "4", "running", "2", "0", "1", "1", "1", "1", "0", "0"]);
    }

    [Fact]
    public async Task Watch_follows_a_job_until_it_completes_and_exits_0()
    {
        var api = ScriptedApi.InTurn(
            (HttpStatusCode.OK, JobView("running", 3, """{"pending":2,"succeeded":1}""")),
            (HttpStatusCode.OK, JobView("paused", 3, """{"pending":1,"sent":1,"succeeded":1}""")),
            (HttpStatusCode.ServiceUnavailable, ScriptedApi.Problem(503, "the node is shutting down")),
            (HttpStatusCode.OK, JobView("completed", 3, """{"succeeded":2,"failed":1}""")));
        var run = await CliRun.InProcess(["jobs", "watch", "j1", "--interval", "0.05", "--url", "http://fleet.test"], NoEnv, api);
        ExitsWith(ExitCodes.Ok, run);
        Assert.Equal(4, api.Requests.Count);
        Assert.All(api.Requests, r => Assert.Equal("/api/v1/jobs/j1", r.PathAndQuery));
        // stderr, not a terminal here: a line each time the progress changed (a failed read in between is ridden out).
        Assert.Equal([
            "fleetctl: job j1 running: 1/3 finished (pending 2, succeeded 1)",
            "fleetctl: job j1 paused: 1/3 finished (pending 1, sent 1, succeeded 1)",
            "fleetctl: job j1 completed: 3/3 finished (succeeded 2, failed 1)",
        ], run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains(run.Lines, l => Args(l) is ["status", "completed"]);
        Assert.Contains(run.Lines, l => Args(l) is ["failed", "1"]);

        var json = await CliRun.InProcess(["jobs", "watch", "j1", "--json", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(JobView("completed", 3, """{"succeeded":3}""")));
        ExitsWith(ExitCodes.Ok, json);
        Assert.Equal("completed", (string?)json.Json["status"]);
    }

    [Fact]
    public async Task Watch_exits_8_when_the_job_ends_cancelled_7_when_the_wait_runs_out_3_when_there_is_no_such_job()
    {
        var cancelled = await CliRun.InProcess(["jobs", "watch", "j1", "--interval", "0.05", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.InTurn((HttpStatusCode.OK, JobView("running", 1, """{"pending":1}""")), (HttpStatusCode.OK, JobView("cancelled", 1, """{"skipped":1}"""))));
        ExitsWith(ExitCodes.JobNotCompleted, cancelled);
        Assert.EndsWith("fleetctl: job j1 ended cancelled", cancelled.Err.Trim());

        var aborted = await CliRun.InProcess(["rollouts", "watch", "ro1", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(JobView("aborted", 5, """{"failed":3,"pending":2}""", "ro1", Stages)));
        ExitsWith(ExitCodes.JobNotCompleted, aborted);
        Assert.EndsWith("fleetctl: rollout ro1 ended aborted", aborted.Err.Trim());

        var running = await CliRun.InProcess(["jobs", "watch", "j1", "--wait", "1", "--interval", "0.2", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(JobView("running", 1, """{"pending":1}""")));
        ExitsWith(ExitCodes.StillPending, running);
        Assert.EndsWith("fleetctl: job j1 is still running after 1 s", running.Err.Trim());

        var missing = await CliRun.InProcess(["jobs", "watch", "j9", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(ScriptedApi.Problem(404, "no job 'j9'"), HttpStatusCode.NotFound));
        ExitsWith(ExitCodes.NotFound, missing);
        Assert.Equal("fleetctl: no job 'j9'", missing.Err.Trim());

        var down = ScriptedApi.InTurn((HttpStatusCode.OK, JobView("running", 1, """{"pending":1}""")),
            (HttpStatusCode.BadGateway, ScriptedApi.Problem(502, "bad gateway")));
        var gone = await CliRun.InProcess(["jobs", "watch", "j1", "--interval", "0.05", "--url", "http://fleet.test"], NoEnv, down);
        ExitsWith(ExitCodes.Error, gone);
        Assert.Equal(1 + JobViews.TransientFailures, down.Requests.Count);
    }

    [Fact]
    public async Task Watch_with_stderr_a_terminal_draws_a_bar_for_the_rollout_and_one_per_stage()
    {
        var api = ScriptedApi.InTurn(
            (HttpStatusCode.OK, JobView("awaiting_approval", 5, """{"upgraded":1,"pending":4}""", "ro1", Stages)),
            (HttpStatusCode.OK, JobView("completed", 5, """{"upgraded":4,"already":1}""", "ro1", Stages)));
        var run = await CliRun.InProcess(["rollouts", "watch", "ro1", "--interval", "0.05", "--url", "http://fleet.test"], NoEnv, api,
            stderrIsTerminal: true);
        ExitsWith(ExitCodes.Ok, run);
        // Spectre's live display (ANSI, redrawn in place): the rollout's bar, then one per stage, each with finished/total and
        // its figures in words; on 80 columns the words wrap, the bars and figures do not.
        var screen = System.Text.RegularExpressions.Regex.Replace(run.Err, "\u001b\\[[0-9;?]*[A-Za-z]", "");
        Assert.NotEqual(screen, run.Err);
        Assert.Matches(@"(?m)^rollout +━{24} +1/5 +20% +awaiting approval \(fleetctl *$\s+rollouts approve ro1\), stage 1:", screen);
        Assert.Matches(@"(?m)^  canary +━{24} +1/1 +100% +completed: upgraded 1, already 0,", screen);
        Assert.Matches(@"(?m)^  wave 1 +━{24} +2/4 +50% +running: upgraded 0, already 1, *$\s+failed 1, waiting 1, in progress", screen);
        Assert.Matches(@"rollout +━{24} +5/5 +100% +completed: upgraded 4, already 1", screen);
        Assert.Contains(run.Lines, l => Args(l) is ["status", "completed"]);
    }

    [Fact]
    public async Task Pause_resume_cancel_abort_approve_post_to_the_job_and_a_409_exits_5()
    {
        foreach (var (line, path) in new[]
                 {
                     ("jobs pause j1", "/api/v1/jobs/j1/pause"), ("jobs resume j1", "/api/v1/jobs/j1/resume"), ("jobs cancel j1", "/api/v1/jobs/j1/cancel"),
                     ("rollouts pause ro1", "/api/v1/rollouts/ro1/pause"), ("rollouts resume ro1", "/api/v1/rollouts/ro1/resume"),
                     ("rollouts abort ro1", "/api/v1/rollouts/ro1/abort"), ("rollouts approve ro1", "/api/v1/rollouts/ro1/approve"),
                 })
        {
            var api = ScriptedApi.Always(JobView("paused", 1, """{"pending":1}"""));
            ExitsWith(ExitCodes.Ok, await CliRun.InProcess([.. Args(line), "--url", "http://fleet.test"], NoEnv, api));
            Assert.Equal((HttpMethod.Post, path), (api.Requests[0].Method, api.Requests[0].PathAndQuery));
        }
        var refused = await CliRun.InProcess(["jobs", "resume", "j1", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(ScriptedApi.Problem(409, "job j1 is not paused"), HttpStatusCode.Conflict));
        ExitsWith(ExitCodes.Conflict, refused);
        Assert.Equal("fleetctl: job j1 is not paused", refused.Err.Trim());
    }

    [Fact]
    public async Task Clients_kickoff_exits_0_when_every_router_kicked_it_off_6_when_one_failed_7_when_one_is_pending()
    {
        static string Results(params string[] statuses) => new JsonObject
        {
            ["client_mac"] = "aa:bb:cc:dd:ee:ff",
            ["results"] = new JsonArray(statuses.Select((s, i) => (JsonNode?)new JsonObject
            {
                ["device_id"] = $"r{i}", ["gw_id"] = "gw-1", ["client_ip"] = "192.168.1.23", ["command_id"] = $"c{i}", ["status"] = s,
                ["error"] = s == "failed" ? "Client not found" : null,
            }).ToArray()),
        }.ToJsonString();

        var ok = ScriptedApi.Always(Results("succeeded", "succeeded"));
        var run = await CliRun.InProcess(["clients", "kickoff", "AA:BB:CC:DD:EE:FF", "--wait", "5", "--url", "http://fleet.test"], NoEnv, ok);
        ExitsWith(ExitCodes.Ok, run);
        Assert.Equal((HttpMethod.Post, "/api/v1/clients/AA%3ABB%3ACC%3ADD%3AEE%3AFF/kickoff?wait=5"), (ok.Requests[0].Method, ok.Requests[0].PathAndQuery));
        Assert.Equal(["r0", "gw-1", "192.168.1.23", "c0", "succeeded", "-"], Args(run.Lines[1]));

        var failed = await CliRun.InProcess(["clients", "kickoff", "aa:bb:cc:dd:ee:ff", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(Results("succeeded", "failed", "sent")));
        ExitsWith(ExitCodes.CommandNotSucceeded, failed);
        Assert.Equal("fleetctl: kickoff on r1 ended failed: Client not found", failed.Err.Trim());

        var pending = await CliRun.InProcess(["clients", "kickoff", "aa:bb:cc:dd:ee:ff", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(Results("succeeded", "sent", "unknown")));
        ExitsWith(ExitCodes.StillPending, pending);
        Assert.Equal("fleetctl: 2 kickoff(s) still pending: r1, r2", pending.Err.Trim());

        var notSent = ScriptedApi.Always(Results("not_sent"));
        ExitsWith(ExitCodes.CommandNotSucceeded, await CliRun.InProcess(["clients", "kickoff", "aa:bb:cc:dd:ee:ff", "--idempotency-key", "k-7",
            "--url", "http://fleet.test"], NoEnv, notSent));
        Assert.Equal("k-7", notSent.Requests[0].Headers["Idempotency-Key"]);

        var unknown = await CliRun.InProcess(["clients", "kickoff", "aa:bb:cc:dd:ee:ff", "--url", "http://fleet.test"], NoEnv,
            ScriptedApi.Always(ScriptedApi.Problem(404, "no router knows the client aa:bb:cc:dd:ee:ff"), HttpStatusCode.NotFound));
        ExitsWith(ExitCodes.NotFound, unknown);
    }
}
