using System.Net;
using System.Text;
using System.Web;
using Fleet.Cli.Tests.Support;
using Xunit;

namespace Fleet.Cli.Tests;

/// <summary>
/// A --wait longer than one long poll (the API's ?wait= is at most 120 s): fleetctl asks again with the same
/// Idempotency-Key, so the API answers with the same command instead of queuing another. Against answers
/// written in the test, since a real node would need minutes.
/// </summary>
public sealed class LongWaitTests
{
    private sealed class Submits(params string[] statuses) : HttpMessageHandler
    {
        public List<(string? Wait, string? Key, string Body)> Calls { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            Calls.Add((HttpUtility.ParseQueryString(request.RequestUri!.Query)["wait"],
                request.Headers.TryGetValues("Idempotency-Key", out var keys) ? keys.Single() : null,
                await request.Content!.ReadAsStringAsync(ct)));
            var status = statuses[Math.Min(Calls.Count, statuses.Length) - 1];
            return new HttpResponseMessage(status is "queued" or "sent" ? HttpStatusCode.Accepted : HttpStatusCode.OK)
            {
                Content = new StringContent($$"""{"command_id":"k1","device_id":"r1","type":"get_sys_info","status":"{{status}}","request":{"type":"get_sys_info"},"response":null,"error":null,"created_at":"2026-03-01T10:00:00Z","sent_at":null,"completed_at":null,"expires_at":"2026-03-02T10:00:00Z"}""",
                    Encoding.UTF8, "application/json"),
            };
        }
    }

    [Fact]
    public async Task A_long_wait_asks_again_with_the_same_idempotency_key_and_at_most_120_s_a_call()
    {
        var api = new Submits("queued", "sent", "succeeded");
        var run = await CliRun.InProcess(["commands", "send", "r1", "--type", "get_sys_info", "--wait", "600", "--url", "http://fleet.test"],
            new Dictionary<string, string?>(), api);
        Assert.True(run.Exit == ExitCodes.Ok, run.ToString());
        Assert.Equal(3, api.Calls.Count);
        Assert.All(api.Calls, c => Assert.Equal("120", c.Wait));
        Assert.NotNull(api.Calls[0].Key);
        Assert.All(api.Calls, c => Assert.Equal(api.Calls[0].Key, c.Key));
        Assert.All(api.Calls, c => Assert.Equal("""{"type":"get_sys_info"}""", c.Body));
    }

    [Fact]
    public async Task A_short_wait_asks_for_exactly_that_long_and_a_given_key_is_kept()
    {
        var api = new Submits("expired");
        var run = await CliRun.InProcess(["commands", "send", "r1", "--type", "get_sys_info", "--wait", "7", "--idempotency-key", "job-42",
            "--url", "http://fleet.test"], new Dictionary<string, string?>(), api);
        Assert.True(run.Exit == ExitCodes.CommandNotSucceeded, run.ToString());
        var call = Assert.Single(api.Calls);
        Assert.Equal(("7", "job-42"), (call.Wait, call.Key));
    }
}
