using Fleet.Edge.Config;
using Fleet.Edge.Platform;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Fleet.Edge.Tests;

/// <summary>Commands the tests run (ip, nft, ping) — argument lists only.</summary>
public static class Sh
{
    public static async Task<ProcessResult> Try(params string[] command) =>
        await ProcessRunner.RunAsync(command, [], null, TestContext.Current.CancellationToken);

    public static async Task<string> Run(params string[] command)
    {
        var r = await Try(command);
        if (!r.Ok) throw new InvalidOperationException($"{string.Join(' ', command)} failed ({r.ExitCode}): {r.StdErr}");
        return r.StdOut;
    }
}

/// <summary>A temporary directory with an edge config and a script that records its arguments.</summary>
public sealed class Workspace : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("fleet-edge-test-").FullName;
    public string StateDir => Path.Combine(Dir, "state");
    public string ReleaseFile => Path.Combine(Dir, "openwrt_release");
    public string Sysupgrade => Path.Combine(Dir, "sysupgrade");
    public string Reboot => Path.Combine(Dir, "reboot");
    public string SysupgradeLog => Sysupgrade + ".args";
    public string RebootLog => Reboot + ".args";

    public Workspace()
    {
        File.WriteAllText(ReleaseFile, """
            DISTRIB_ID='ChaWrt'
            DISTRIB_RELEASE='24.10-SNAPSHOT'
            DISTRIB_REVISION='r28790-abc123'
            DISTRIB_TARGET='ramips/mt7621'
            DISTRIB_DESCRIPTION='ChaWrt 24.10-SNAPSHOT r28790-abc123'
            """);
        WriteRecorder(Sysupgrade, 0);
        WriteRecorder(Reboot, 0);
    }

    /// <summary>A script that writes each argument on its own line to &lt;script&gt;.args and exits with <paramref name="exitCode"/>.</summary>
    public static void WriteRecorder(string path, int exitCode)
    {
        File.WriteAllText(path, $"#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\nexit {exitCode}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public EdgeConfig Config(Uri controller, string deviceId = "router-1", string gwInterface = "br-lan", string table = "fleet") => new()
    {
        ControllerUrl = controller.ToString(),
        DeviceId = deviceId,
        DeviceInfo = new() { ApDeviceId = deviceId, ApMacAddress = "8c:de:f9:5e:f7:06", LocationId = "lobby" },
        Gateways = [new GatewayConfig { GwId = "gw-1", GwChannel = "apfree", GwAddressV4 = "10.231.1.1", AuthMode = 1, GwInterface = gwInterface }],
        HeartbeatIntervalSeconds = 60,
        Firewall = new FirewallConfig { Backend = "memory", Table = table },
        StateDirectory = StateDir,
        SysupgradeCommand = Sysupgrade,
        RebootCommand = Reboot,
        ReleaseFile = ReleaseFile,
    };

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
