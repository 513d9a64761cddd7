using Fleet.Edge.Link;

namespace Fleet.Edge.Tests;

public class ReconnectPolicyTests
{
    private static readonly LinkTimings T = LinkTimings.Default(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(300));

    [Theory]
    [InlineData(DropReason.Error, 2)]
    [InlineData(DropReason.Eof, 5)]
    [InlineData(DropReason.ServerClose, 3)]
    public void The_five_quick_tries_use_the_firmware_delay_for_the_reason(DropReason reason, int seconds)
    {
        for (var failures = 1; failures <= 5; failures++)
            Assert.Equal(TimeSpan.FromSeconds(seconds), ReconnectPolicy.Delay(T, reason, failures, 0.5));
    }

    [Fact]
    public void After_the_quick_tries_the_delay_grows_exponentially_within_jitter_bounds()
    {
        // 6th failure after errors: 2 s × 2 = 4 s, jittered into [2, 4].
        Assert.Equal(TimeSpan.FromSeconds(2), ReconnectPolicy.Delay(T, DropReason.Error, 6, 0));
        Assert.Equal(TimeSpan.FromSeconds(4), ReconnectPolicy.Delay(T, DropReason.Error, 6, 1));
        Assert.Equal(TimeSpan.FromSeconds(16), ReconnectPolicy.Delay(T, DropReason.Error, 8, 1));
    }

    [Fact]
    public void The_backoff_is_capped_and_never_gives_up()
    {
        for (var failures = 6; failures < 10_000; failures *= 3)
        {
            var d = ReconnectPolicy.Delay(T, DropReason.Eof, failures, 1);
            Assert.InRange(d, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(300));
        }
        Assert.Equal(TimeSpan.FromSeconds(300), ReconnectPolicy.Delay(T, DropReason.Error, 1000, 1));
        Assert.Equal(TimeSpan.FromSeconds(150), ReconnectPolicy.Delay(T, DropReason.Error, 1000, 0));
    }

    [Fact]
    public void The_cap_is_configurable()
    {
        var t = LinkTimings.Default(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(30));
        Assert.Equal(TimeSpan.FromSeconds(30), ReconnectPolicy.Delay(t, DropReason.Error, 50, 1));
    }
}
