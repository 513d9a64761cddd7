using Fleet.Edge.Link;
using Fleet.Edge.Router;
using Fleet.Protocol;

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

    [Theory]
    [InlineData("""{"type":"kickoff","req_id":7,"client_ip":"10.0.0.1"}""", "kickoff_error", "Missing required fields in request")]
    [InlineData("""{"type":"firmware_upgrade","req_id":7}""", "firmware_upgrade_error", "Missing or invalid 'url' field")]
    [InlineData("""{"type":"firmware_upgrade","req_id":7,"url":42}""", "firmware_upgrade_error", "Missing or invalid 'url' field")]
    [InlineData("""{"type":"no_such_thing","req_id":7}""", "request_error", "Unknown request type 'no_such_thing'")]
    [InlineData("""{"req_id":7}""", "request_error", "Missing 'type' field")]
    public void Undecodable_requests_get_the_firmwares_error_with_req_id(string frame, string type, string error)
    {
        var e = ProtocolCodec.DecodeFromController(frame).Error!;
        var reply = Requests.AnswerToBadFrame(e);
        using var doc = System.Text.Json.JsonDocument.Parse(ProtocolCodec.Encode(reply!));
        var root = doc.RootElement;
        Assert.Equal(type, root.GetProperty("type").GetString());
        Assert.Equal(7, root.GetProperty("req_id").GetInt32());
        Assert.Equal(error, root.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("[1,2,3]")]
    [InlineData("""{"type":"auth","req_id":1}""")]
    [InlineData("""{"type":"tmp_pass"}""")]
    public void Garbage_and_broken_one_way_requests_get_no_answer(string frame) =>
        Assert.Null(Requests.AnswerToBadFrame(ProtocolCodec.DecodeFromController(frame).Error!));
}
