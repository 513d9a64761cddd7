using Fleet.Server.Connections;
using Fleet.Server.Hosting;
using Microsoft.AspNetCore.Http;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>The frame budget (a token bucket with a memory of how long refusals lasted) and which side a path is served on.</summary>
public sealed class SocketLimitRulesTests
{
    private static readonly FrameRate TenPerSecond = new(PerSecond: 10, Burst: 5, CloseAfterMs: 3000);
    private const long T0 = 1_000_000;

    private static FrameVerdict[] Frames(ref FrameBudget b, long at, int n)
    {
        var verdicts = new FrameVerdict[n];
        for (var i = 0; i < n; i++) verdicts[i] = b.Take(at, TenPerSecond);
        return verdicts;
    }

    [Fact]
    public void A_burst_is_taken_up_to_the_bucket_and_the_rest_refused()
    {
        var b = new FrameBudget();
        var v = Frames(ref b, T0, 8);
        Assert.Equal(5, v.Count(x => x == FrameVerdict.Take));
        Assert.Equal(3, v.Count(x => x == FrameVerdict.Refuse));
        Assert.Equal(3, b.RefusedSinceLog);
    }

    [Fact]
    public void The_bucket_refills_at_the_rate_and_never_beyond_its_size()
    {
        var b = new FrameBudget();
        Frames(ref b, T0, 5);
        Assert.Equal(FrameVerdict.Refuse, b.Take(T0 + 50, TenPerSecond));  // half a token
        Assert.Equal(FrameVerdict.Take, b.Take(T0 + 100, TenPerSecond));   // one token after 100 ms at 10/s
        Assert.Equal(FrameVerdict.Refuse, b.Take(T0 + 100, TenPerSecond));
        // An hour of quiet fills the bucket, not more.
        var later = Frames(ref b, T0 + 3_600_000, 7);
        Assert.Equal(5, later.Count(x => x == FrameVerdict.Take));
    }

    [Fact]
    public void Refusals_lasting_the_close_time_without_a_quiet_second_say_close()
    {
        var b = new FrameBudget();
        Frames(ref b, T0, 5);
        // A flood: 100 frames a second for 3 s. Ten a second still get through; the rest are refused, and after 3 s: close.
        var verdict = FrameVerdict.Take;
        long t;
        for (t = T0; verdict != FrameVerdict.Close && t < T0 + 10_000; t += 10) verdict = b.Take(t, TenPerSecond);
        Assert.Equal(FrameVerdict.Close, verdict);
        Assert.InRange(t - T0, 3000, 3100);
        Assert.InRange(b.ExcessFor(t), 3000, 3100);
    }

    [Fact]
    public void A_quiet_second_ends_a_stretch_of_excess()
    {
        var b = new FrameBudget();
        // Bursts of 8 every 1.5 s: each overflows the bucket, but a refusal-free second lies between them.
        for (var round = 0; round < 10; round++)
        {
            var v = Frames(ref b, T0 + round * 1500, 8);
            Assert.DoesNotContain(FrameVerdict.Close, v);
            Assert.Contains(FrameVerdict.Refuse, v);
        }
    }

    [Fact]
    public void Without_a_close_time_a_flood_is_only_refused()
    {
        var rate = TenPerSecond with { CloseAfterMs = 0 };
        var b = new FrameBudget();
        for (long t = T0; t < T0 + 60_000; t += 5) Assert.NotEqual(FrameVerdict.Close, b.Take(t, rate));
    }

    [Fact]
    public void No_limit_takes_everything()
    {
        var b = new FrameBudget();
        for (var i = 0; i < 10_000; i++) Assert.Equal(FrameVerdict.Take, b.Take(T0, FrameRate.Unlimited));
    }

    [Fact]
    public void Refusals_are_logged_at_most_once_a_minute()
    {
        var b = new FrameBudget();
        Assert.True(b.ShouldLog(T0));
        Assert.False(b.ShouldLog(T0 + 59_999));
        Assert.True(b.ShouldLog(T0 + 60_000));
    }

    [Theory]
    [InlineData(-1, 5, 0, "MaxFramesPerSecond")]
    [InlineData(10, 0, 0, "MaxFrameBurst")]
    [InlineData(10, 5, -1, "CloseAfterExcessSeconds")]
    public void Bad_rate_settings_are_refused_with_the_key(double perSecond, int burst, int closeAfter, string key)
    {
        var ex = Assert.Throws<InvalidOperationException>(() => FrameRate.From(new WebSocketSettings
        {
            MaxFramesPerSecond = perSecond, MaxFrameBurst = burst, CloseAfterExcessSeconds = closeAfter,
        }));
        Assert.Contains("Fleet:WebSocket:" + key, ex.Message);
    }

    [Fact]
    public void Defaults_leave_a_real_router_far_inside_the_limit()
    {
        // A router heartbeats once a minute; its answers ride on our requests. The defaults allow 20/s, 50 at once.
        var rate = FrameRate.From(new WebSocketSettings());
        Assert.Equal(20, rate.PerSecond);
        Assert.Equal(50, rate.Burst);
        Assert.Equal(10_000, rate.CloseAfterMs);
    }

    [Theory]
    [InlineData("/ws/wifidogx", Listeners.Side.Devices)]
    [InlineData("/ws", Listeners.Side.Devices)]
    [InlineData("/WS/WifiDogX", Listeners.Side.Devices)]
    [InlineData("/ws/wifidogx/anything", Listeners.Side.Devices)]
    [InlineData("/healthz", Listeners.Side.Both)]
    [InlineData("/readyz", Listeners.Side.Both)]
    [InlineData("/api/v1/devices", Listeners.Side.Admin)]
    [InlineData("/openapi/v1.json", Listeners.Side.Admin)]
    [InlineData("/wsx", Listeners.Side.Admin)]
    [InlineData("/", Listeners.Side.Admin)]
    public void Each_path_has_its_side(string path, Listeners.Side side) =>
        Assert.Equal(side, Listeners.SideOf(new PathString(path)));

    // The paths that take a device socket, matched before the admin pipeline as endpoint routing matched them before.
    [Theory]
    [InlineData("/ws/wifidogx", true)]
    [InlineData("/ws", true)]
    [InlineData("/ws/", true)]
    [InlineData("/ws/wifidogx/", true)]
    [InlineData("/WS/WifiDogX", true)]
    [InlineData("/ws/wifidogx/anything", false)]
    [InlineData("/ws/wifidogx//", false)]
    [InlineData("/wsx", false)]
    [InlineData("/", false)]
    [InlineData("", false)]
    [InlineData("/api/v1/devices", false)]
    public void Device_socket_paths(string path, bool device) =>
        Assert.Equal(device, WebSocketEndpoint.IsDevicePath(new PathString(path)));

    [Theory]
    [InlineData("http://127.0.0.2:9090", "127.0.0.2:9090")]
    [InlineData("http://0.0.0.0:9090/", "0.0.0.0:9090")]
    [InlineData("https://[::1]:9443", "[::1]:9443")]
    [InlineData("http://*:9090", "[::]:9090")]
    [InlineData("http://+:9090", "[::]:9090")]
    [InlineData("http://admin.example:9090", "[::]:9090")]
    [InlineData("http://localhost:9090", "127.0.0.1:9090")]
    [InlineData("https://10.0.0.1", "10.0.0.1:443")]
    [InlineData("http://127.0.0.1:0", "127.0.0.1:0")]
    public void An_admin_url_names_the_endpoint_kestrel_binds_for_it(string url, string endpoint) =>
        Assert.Equal(endpoint, Listeners.EndpointOf(url).ToString());
}
