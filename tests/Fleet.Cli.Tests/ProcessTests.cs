using System.Diagnostics;
using Fleet.Cli.Tests.Support;
using Xunit;

namespace Fleet.Cli.Tests;

/// <summary>The built tool as a real process: the exit code and stderr reach the shell that ran it.</summary>
public sealed class ProcessTests(CliNode node) : IClassFixture<CliNode>
{
    private static async Task<(int Exit, string Out, string Err)> Fleetctl(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "fleetctl.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment.Remove("FLEET_URL");
        start.Environment.Remove("FLEET_KEY");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task The_exit_code_and_the_detail_travel_to_the_calling_process()
    {
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri, CliNode.NewDeviceId());
        await node.Listed(router.DeviceId);
        var url = node.BaseAddress.ToString();

        var listed = await Fleetctl("devices", "list", "--url", url, "--key", TestKeys.Admin);
        Assert.True(listed.Exit == 0, listed.Err);
        Assert.Contains(listed.Out.Split('\n'), l => l.StartsWith(router.DeviceId + " ", StringComparison.Ordinal));

        var missing = await Fleetctl("devices", "get", "no-such-router", "--url", url, "--key", TestKeys.Admin);
        Assert.Equal(ExitCodes.NotFound, missing.Exit);
        Assert.StartsWith("fleetctl: ", missing.Err);
        Assert.Contains("no-such-router", missing.Err);

        var refused = await Fleetctl("devices", "list", "--url", url, "--key", "wrong");
        Assert.Equal(ExitCodes.Unauthorized, refused.Exit);
    }
}
