using Xunit;

namespace Fleet.Protocol.Tests;

public class RulesTests
{
    [Theory]
    [InlineData("aa:bb:cc:dd:ee:ff", true)]
    [InlineData("AA-BB-CC-DD-EE-FF", true)]
    [InlineData("aa:bb:cc:dd:ee", false)]
    [InlineData("aa:bb:cc:dd:ee:fg", false)]
    [InlineData("aa:bb-cc:dd:ee:ff", false)]
    [InlineData("aabbccddeeff", false)]
    [InlineData("zz", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    [InlineData("aa:bb:cc:dd:ee:ff;reboot", false)]
    public void Mac(string? value, bool ok) => Assert.Equal(ok, FieldRules.IsMac(value));

    [Fact]
    public void Mac_normalises_to_lower_case_colons() => Assert.Equal("aa:bb:cc:dd:ee:ff", FieldRules.NormalizeMac("AA-BB-CC-DD-EE-FF"));

    [Theory]
    [InlineData("192.168.1.23", true)]
    [InlineData("0.0.0.0", true)]
    [InlineData("255.255.255.255", true)]
    [InlineData("256.1.1.1", false)]
    [InlineData("1", false)]
    [InlineData("0x1.1.1.1", false)]
    [InlineData("01.1.1.1", false)]
    [InlineData("1.1.1", false)]
    [InlineData("1.1.1.1 ", false)]
    [InlineData("fe80::1", true)]
    [InlineData("2001:db8::8a2e:370:7334", true)]
    [InlineData("::ffff:192.168.1.1", true)]
    [InlineData("fe80::1%eth0", false)]
    [InlineData("gg::1", false)]
    [InlineData("", false)]
    public void Ip(string value, bool ok) => Assert.Equal(ok, FieldRules.IsIp(value));

    [Theory]
    [InlineData("gw-1", true)]
    [InlineData("8C:DE:F9:5E:F7:06", true)]
    [InlineData("a_b.c@d", true)]
    [InlineData("", false)]
    [InlineData("gw 1", false)]
    [InlineData("gw;rm", false)]
    [InlineData("gw\"1", false)]
    public void Gateway_id(string value, bool ok) => Assert.Equal(ok, FieldRules.IsGwId(value));

    [Fact]
    public void Gateway_id_has_a_length_limit() => Assert.False(FieldRules.IsGwId(new string('a', 65)));

    [Theory]
    [InlineData("br-lan", true)]
    [InlineData("eth0.2", true)]
    [InlineData("wlan1_guest", true)]
    [InlineData("abcdefghijklmno", true)] // 15, the most Linux allows
    [InlineData("abcdefghijklmnop", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    [InlineData("br lan", false)]
    [InlineData("br-lan\" accept", false)]
    [InlineData("br-lan;reboot", false)]
    [InlineData("br-lan\n", false)]
    [InlineData("wlan@1", false)]
    public void Interface_name(string? value, bool ok) => Assert.Equal(ok, FieldRules.IsInterfaceName(value));

    [Theory]
    [InlineData("http://fw.example.com/openwrt-sysupgrade.bin", true)]
    [InlineData("https://fw.example.com:8443/a/b/c_1.2-3%20x.bin", true)]
    [InlineData("ftp://fw.example.com/x.bin", false)]
    [InlineData("/local/path.bin", false)]
    [InlineData("http://", false)]
    [InlineData("http://x/a.bin; reboot", false)]
    [InlineData("http://x/a.bin|sh", false)]
    [InlineData("http://x/$(id).bin", false)]
    [InlineData("http://x/`id`.bin", false)]
    [InlineData("http://x/a.bin?x=1&y=2", false)]
    [InlineData("http://x/a b.bin", false)]
    [InlineData("http://x/a.bin\n", false)]
    [InlineData("", false)]
    public void Firmware_url(string value, bool ok) => Assert.Equal(ok, FieldRules.IsFirmwareUrl(value));

    [Theory]
    [InlineData("example.com", false, true)]
    [InlineData("*.example.com", true, true)]
    [InlineData("*.example.com", false, false)]
    [InlineData("-bad.com", false, false)]
    [InlineData("a..b", false, false)]
    public void Domain(string value, bool wildcard, bool ok) => Assert.Equal(ok, FieldRules.IsDomain(value, wildcard));

    [Fact]
    public void Check_messages_name_the_field_and_the_value()
    {
        Assert.Equal("client_mac 'zz' is not a MAC address (expected aa:bb:cc:dd:ee:ff)", FieldRules.CheckMac("client_mac", "zz"));
        Assert.Null(FieldRules.CheckMac("client_mac", "aa:bb:cc:dd:ee:ff"));
        Assert.Contains("url", FieldRules.CheckFirmwareUrl("url", "x")!);
    }

    [Fact]
    public void CheckRequest_limits_gw_id_to_the_device_gateways()
    {
        var k = new KickoffRequest { ClientIp = "1.2.3.4", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "d", GwId = "gw-9" };
        Assert.Contains("gw-9", FieldRules.CheckRequest(k, ["gw-1"])!);
        Assert.Null(FieldRules.CheckRequest(k with { GwId = "gw-1" }, ["gw-1"]));
        Assert.Contains("timeout", FieldRules.CheckRequest(new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:ff", Timeout = 0 })!);
    }
}
