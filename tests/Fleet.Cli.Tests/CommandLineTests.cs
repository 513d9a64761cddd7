using System.Net;
using Fleet.Cli.Tests.Support;
using Xunit;

namespace Fleet.Cli.Tests;

/// <summary>What fleetctl decides before it calls the API: usage errors, help, where it connects.</summary>
public sealed class CommandLineTests
{
    private static readonly Dictionary<string, string?> NoEnv = new();

    /// <summary>Fails the test if fleetctl calls the API at all.</summary>
    private sealed class NoCalls : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) =>
            throw new InvalidOperationException($"fleetctl called {request.RequestUri}");
    }

    /// <summary>Answers 200 {"items":[],"next_cursor":null} and keeps the request's URI.</summary>
    private sealed class EmptyPage : HttpMessageHandler
    {
        public Uri? Uri { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            Uri = request.RequestUri;
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent("""{"items":[],"next_cursor":null}""", System.Text.Encoding.UTF8, "application/json"),
            });
        }
    }

    [Theory]
    [InlineData("devices lst")]
    [InlineData("devices list --online maybe")]
    [InlineData("devices list --protocol 8")]
    [InlineData("commands send")]
    [InlineData("commands send r1 --wait soon")]
    [InlineData("keys create k1")]
    [InlineData("auth-mode set r1 gw-1 portal")]
    public async Task A_wrong_command_line_exits_2_without_calling_the_api(string line)
    {
        var run = await CliRun.InProcess(line.Split(' '), NoEnv, new NoCalls());
        Assert.True(run.Exit == ExitCodes.Usage, run.ToString());
        Assert.StartsWith("fleetctl: ", run.Err);
    }

    [Theory]
    [InlineData("--body [1,2]", "--body must be a JSON object")]
    [InlineData("--body {", "--body is not valid JSON")]
    [InlineData("--field novalue", "--field 'novalue' must be name=value")]
    public async Task A_bad_body_exits_2_without_calling_the_api(string options, string error)
    {
        var run = await CliRun.InProcess(["commands", "send", "r1", .. options.Split(' ')], NoEnv, new NoCalls());
        Assert.True(run.Exit == ExitCodes.Usage, run.ToString());
        Assert.StartsWith($"fleetctl: {error}", run.Err);
    }

    [Fact]
    public async Task Help_lists_the_commands_and_the_exit_codes()
    {
        var run = await CliRun.InProcess(["--help"], NoEnv, new NoCalls());
        Assert.True(run.Exit == 0, run.ToString());
        foreach (var command in new[] { "devices", "commands", "auth-mode", "keys", "events" }) Assert.Contains($"  {command} ", run.Out);
        Assert.Contains("  7  --wait ran out while the command was still queued or sent", run.Out);
        Assert.Contains("FLEET_URL", run.Out);
    }

    [Fact]
    public async Task The_url_comes_from_the_option_then_FLEET_URL_then_the_default()
    {
        var handler = new EmptyPage();
        await CliRun.InProcess(["devices", "list"], NoEnv, handler);
        Assert.Equal(new Uri("http://localhost:8080/api/v1/devices?"), handler.Uri);
        await CliRun.InProcess(["devices", "list", "--online", "false", "--gw-id", "gw 1"], new Dictionary<string, string?> { ["FLEET_URL"] = "http://fleet.test:9000" }, handler);
        Assert.Equal("fleet.test:9000", handler.Uri!.Authority);
        Assert.Equal("?online=false&gw_id=gw+1", handler.Uri.Query);
        await CliRun.InProcess(["devices", "list", "--url", "https://other.test"], new Dictionary<string, string?> { ["FLEET_URL"] = "http://fleet.test:9000" }, handler);
        Assert.Equal("other.test", handler.Uri!.Authority);
    }

    [Fact]
    public async Task An_unreachable_node_exits_1()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // a port nothing listens on
        var run = await CliRun.InProcess(["devices", "list", "--url", $"http://127.0.0.1:{port}"], NoEnv);
        Assert.True(run.Exit == ExitCodes.Error, run.ToString());
        Assert.StartsWith($"fleetctl: cannot reach http://127.0.0.1:{port}/", run.Err);
    }
}
