using System.Diagnostics;
using Xunit;

namespace Fleet.Testing;

/// <summary>
/// The one way the tests wait: poll a condition until it holds or a deadline passes, never a fixed
/// sleep. Linked into every test project that waits (see the test .csproj files). Failures the thing
/// under test shows while it is still coming up (a node not listening yet, a 5xx, a half-written JSON
/// document) are retried and the last one is named if the deadline passes.
/// </summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultWithin = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <param name="every">Time between tries (default 50 ms); longer where each try is a request to a system under load.</param>
    public static async Task True(Func<Task<bool>> condition, string what, TimeSpan? within = null, Func<string>? detail = null,
        TimeSpan? every = null)
    {
        var limit = within ?? DefaultWithin;
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or TaskCanceledException
                                           or System.Text.Json.JsonException or NullReferenceException)
            {
                last = ex;
            }
            if (clock.Elapsed > limit)
                throw new TimeoutException($"'{what}' did not become true within {limit.TotalSeconds:0.#} s." +
                                           (detail is null ? "" : $" {detail()}.") + (last is null ? "" : $" Last error: {last.Message}"));
            await Task.Delay(every ?? Poll, TestContext.Current.CancellationToken);
        }
    }

    public static Task True(Func<bool> condition, string what, TimeSpan? within = null, Func<string>? detail = null,
        TimeSpan? every = null) =>
        True(() => Task.FromResult(condition()), what, within, detail, every);

    /// <summary>Polls <paramref name="get"/> until its value passes <paramref name="ok"/>, and returns that value.</summary>
    public static async Task<T> Value<T>(Func<Task<T?>> get, Func<T, bool> ok, string what, TimeSpan? within = null) where T : class
    {
        T? value = null;
        await True(async () => (value = await get()) is not null && ok(value), what, within);
        return value!;
    }
}
