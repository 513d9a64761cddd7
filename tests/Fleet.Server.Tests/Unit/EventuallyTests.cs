using System.Diagnostics;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>The polling helper tells "not yet" (retried) from a fault of the test's own code (ends the wait at once).</summary>
public class EventuallyTests
{
    [Fact]
    public async Task An_exception_from_the_tests_own_code_ends_the_wait_at_once()
    {
        var clock = Stopwatch.StartNew();
        string? missing = null;
        await Assert.ThrowsAsync<NullReferenceException>(() => Eventually.True(() => missing!.Length > 0, "a bug in the condition", TimeSpan.FromSeconds(10)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => Eventually.True(() => new int[0].Single() == 1, "another bug", TimeSpan.FromSeconds(10)));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => Eventually.True(() => new Dictionary<string, int>()["x"] == 1, "a missing key", TimeSpan.FromSeconds(10)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}: the wait went on to its deadline");
    }

    [Fact]
    public async Task Not_yet_is_retried_until_the_condition_holds()
    {
        var tries = 0;
        await Eventually.True(() => ++tries switch
        {
            1 => throw new HttpRequestException("503 from a node still starting"),
            2 => throw new NotYetException("the set is not installed yet"),
            3 => throw new System.Text.Json.JsonException("half-written document"),
            4 => throw new TaskCanceledException("a request timed out"),
            5 => false,
            _ => true,
        }, "ready after five tries");
        Assert.Equal(6, tries);
    }

    [Fact]
    public async Task A_wait_that_never_holds_names_the_last_not_yet()
    {
        var e = await Assert.ThrowsAsync<TimeoutException>(() =>
            Eventually.True(bool () => throw new NotYetException("no table inet fleet"), "the table", TimeSpan.FromMilliseconds(300)));
        Assert.Contains("no table inet fleet", e.Message);
    }
}
