using System.Net;
using System.Text;
using System.Web;
using Fleet.Cli.Tests.Support;
using Xunit;

namespace Fleet.Cli.Tests;

/// <summary>
/// fleetctl events against a stream written in the test, as docs/ADMIN_API.md ("Event stream") describes it
/// (and, in AgainstANodeTests, against a real node): the URL it asks for, how it reads the stream, what it prints.
/// </summary>
public sealed class EventsTests
{
    private const string Stream = """
        event: keep-alive
        data: {}

        id: 7
        event: device.online
        data: {"type":"device.online","at":"2026-03-01T10:00:00Z","device_id":"r1","node":"n1","protocol":"9","remote":"10.0.0.5:40112"}

        id: 8
        event: command.status
        data: {"type":"command.status","at":"2026-03-01T10:00:01Z","device_id":"r1","command_id":"c1","command_type":"kickoff","status":"failed","error":"Client not found"}

        event: keep-alive
        data: {}

        id: 9
        event: alert.opened
        data: {"type":"alert.opened","at":"2026-03-01T10:00:02Z","node":"n2","alert":{"alert_id":"a1","rule":"node_left","node":"n2","state":"open","summary":"node n2 unreachable","opened_at":"2026-03-01T10:00:02Z"}}


        """;

    /// <summary>Answers every request with one fixed response and keeps the request.</summary>
    private sealed class OneAnswer(HttpStatusCode status, string mediaType, string body) : HttpMessageHandler
    {
        public HttpRequestMessage? Request { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            Request = request;
            return Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, mediaType) });
        }
    }

    private static Task<CliRun> Events(OneAnswer handler, params string[] args) =>
        CliRun.InProcess(["events", "--url", "http://fleet.test:8080", .. args],
            new Dictionary<string, string?> { ["FLEET_KEY"] = "k-1" }, handler);

    [Fact]
    public async Task Each_event_is_one_line_with_its_time_type_device_and_fields()
    {
        var handler = new OneAnswer(HttpStatusCode.OK, "text/event-stream", Stream.Replace("\r\n", "\n"));
        var run = await Events(handler);
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Equal(
        [
            "2026-03-01T10:00:00Z device.online r1 node=n1 protocol=9 remote=10.0.0.5:40112",
            "2026-03-01T10:00:01Z command.status r1 command_id=c1 command_type=kickoff status=failed error=\"Client not found\"",
            "2026-03-01T10:00:02Z alert.opened - node=n2 alert_id=a1 rule=node_left state=open summary=\"node n2 unreachable\"",
        ], run.Lines);
        Assert.Equal("/api/v1/events", handler.Request!.RequestUri!.AbsolutePath);
        Assert.Equal("", handler.Request.RequestUri.Query);
        Assert.Equal("Bearer k-1", handler.Request.Headers.Authorization!.ToString());
        Assert.Contains("text/event-stream", handler.Request.Headers.Accept.Select(a => a.MediaType));
    }

    [Fact]
    public async Task Json_prints_each_event_data_as_is_and_the_filters_go_in_the_url()
    {
        var handler = new OneAnswer(HttpStatusCode.OK, "text/event-stream", Stream.Replace("\r\n", "\n"));
        var run = await Events(handler, "--device-id", "r1", "--types", "device.online,command.status", "--types", "alert.opened", "--json");
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Equal(3, run.Lines.Count);
        Assert.StartsWith("""{"type":"device.online","at":"2026-03-01T10:00:00Z","device_id":"r1",""", run.Lines[0]);
        Assert.Equal("""{"type":"alert.opened","at":"2026-03-01T10:00:02Z","node":"n2","alert":{"alert_id":"a1","rule":"node_left","node":"n2","state":"open","summary":"node n2 unreachable","opened_at":"2026-03-01T10:00:02Z"}}""",
            run.Lines[2]);
        var query = HttpUtility.ParseQueryString(handler.Request!.RequestUri!.Query);
        Assert.Equal("r1", query["device_id"]);
        Assert.Equal("device.online,command.status,alert.opened", query["types"]);
    }

    [Fact]
    public async Task A_refused_stream_exits_with_the_code_of_its_status_and_the_detail()
    {
        var handler = new OneAnswer(HttpStatusCode.BadRequest, "application/problem+json",
            """{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"Bad Request","status":400,"detail":"types: 'device.exploded' is not an event type"}""");
        var run = await Events(handler, "--types", "device.exploded");
        Assert.True(run.Exit == ExitCodes.Usage, run.ToString());
        Assert.Equal("fleetctl: types: 'device.exploded' is not an event type", run.Err.Trim());
        Assert.Equal("", run.Out);
    }
}
