using Fleet.Edge.Router;

namespace Fleet.Edge.Tests;

public class RouterInfoTests
{
    [Fact]
    public void Release_file_lines_are_parsed_as_key_values_without_quotes()
    {
        var d = RouterInfo.ParseRelease("DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE=\"23.05.0\"\n# comment\n\nDISTRIB_ARCH=mipsel_24kc\nDISTRIB_DESCRIPTION='OpenWrt 23.05.0 r23497'\nnot a line\n");
        Assert.Equal("OpenWrt", d["DISTRIB_ID"]);
        Assert.Equal("23.05.0", d["DISTRIB_RELEASE"]);
        Assert.Equal("mipsel_24kc", d["DISTRIB_ARCH"]);
        Assert.Equal("OpenWrt 23.05.0 r23497", d["DISTRIB_DESCRIPTION"]);
        Assert.Equal(4, d.Count);
    }

    [Fact]
    public void A_missing_release_file_reads_as_nothing() =>
        Assert.Null(RouterInfo.ReadRelease("/nonexistent/openwrt_release"));

    [Fact]
    public void Sys_info_comes_from_the_proc_files()
    {
        using var ws = new Workspace();
        var proc = Path.Combine(ws.Dir, "proc");
        Directory.CreateDirectory(Path.Combine(proc, "sys/net/netfilter"));
        File.WriteAllText(Path.Combine(proc, "uptime"), "12345.67 40000.00\n");
        File.WriteAllText(Path.Combine(proc, "meminfo"), "MemTotal:  250000 kB\nMemFree:   100000 kB\nMemAvailable:   120000 kB\n");
        File.WriteAllText(Path.Combine(proc, "loadavg"), "0.42 0.30 0.20 1/80 1234\n");
        File.WriteAllText(Path.Combine(proc, "sys/net/netfilter/nf_conntrack_count"), "77\n");
        var s = RouterInfo.ReadSysInfo(proc, TimeSpan.FromSeconds(9));
        Assert.Equal((12345L, 120000L, 250000L, 0.42, 77L, 9L), (s.SysUptime, s.SysMemfree, s.SysMemtotal, s.SysLoad, s.NfConntrackCount, s.WifidogUptime));
    }

    [Fact]
    public void Sys_info_of_this_machine_has_uptime_and_memory()
    {
        var s = RouterInfo.ReadSysInfo("/proc", TimeSpan.Zero);
        Assert.True(s.SysUptime > 0);
        Assert.True(s.SysMemfree > 0);
    }
}
