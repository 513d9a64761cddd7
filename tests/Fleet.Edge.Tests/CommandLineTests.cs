using Fleet.Edge.Hosting;

namespace Fleet.Edge.Tests;

/// <summary>The options, messages and exit codes the procd script and operators rely on (docs/EDGE.md).</summary>
public class CommandLineTests
{
    private static async Task<(int ExitCode, string Out, string Err)> Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await EdgeCommandLine.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string ShippedConfig() =>
        Path.Combine(ConfigTests.RepoRoot(), "deploy", "openwrt", "files", "etc", "fleet-edge", "edge.json");

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_names_both_options_and_exits_0(string help)
    {
        var r = await Run(help);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("--config <edge.json>", r.Out);
        Assert.Contains("--check", r.Out);
        Assert.Contains(EdgeCommandLine.DefaultConfigPath, r.Out);
    }

    [Fact]
    public async Task Check_of_a_valid_config_says_so_and_exits_0()
    {
        var path = ShippedConfig();
        var r = await Run("--config", path, "--check");
        Assert.Equal((0, $"fleet-edge: {path} is valid"), (r.ExitCode, r.Out.Trim()));
    }

    [Fact]
    public async Task Check_of_a_bad_config_names_the_key_and_exits_78()
    {
        using var ws = new Workspace();
        var path = Path.Combine(ws.Dir, "edge.json");
        File.WriteAllText(path, File.ReadAllText(ShippedConfig()).Replace("\"heartbeat_interval_seconds\": 60", "\"heartbeat_interval_seconds\": \"soon\""));
        var r = await Run("--check", "--config", path);
        Assert.Equal(78, r.ExitCode);
        Assert.Contains($"fleet-edge: bad config {path}:", r.Err);
        Assert.Contains("  heartbeat_interval_seconds: expected an integer", r.Err);
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--config")]
    [InlineData("@/etc/fleet-edge/args")] // no response files
    public async Task Bad_arguments_print_the_usage_and_exit_64(string arg)
    {
        var r = await Run(arg);
        Assert.Equal(64, r.ExitCode);
        Assert.Contains("usage: Fleet.Edge --config <edge.json> [--check]", r.Err);
        Assert.Empty(r.Out);
    }
}
