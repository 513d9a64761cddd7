using System.Diagnostics;
using Xunit;

namespace Fleet.Testing;

/// <summary>
/// The one way the tests wait: poll a condition until it holds or a deadline passes, never a fixed
/// sleep. Linked into every test project that waits (see the test .csproj files).
/// <para>
/// "Not yet" is <c>false</c>, or one of the failures the thing under test shows while it is still
/// coming up: a node not listening yet or answering 4xx/5xx (<see cref="HttpRequestException"/>, which
/// the nodes' <c>GetJson</c> helpers throw for a status that is not 2xx), a socket refused or reset, a
/// request timing out, a half-written JSON document, or a <see cref="NotYetException"/> that a condition
/// throws itself. These are retried and the last one is named if the deadline passes. Anything else —
/// a <see cref="NullReferenceException"/>, an <see cref="InvalidOperationException"/>, a failed assertion —
/// is a fault of the test's own code or a real failure, and ends the wait at once.
/// </para>
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
            catch (Exception ex) when (NotYet(ex))
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

    /// <summary>
    /// Whether an exception from a condition means "the system under test is not there yet" (retry) rather
    /// than a fault of the test's own code or a real failure (end the wait with it).
    /// </summary>
    public static bool NotYet(Exception ex) => ex switch
    {
        NotYetException => true,
        HttpRequestException => true,
        System.Text.Json.JsonException => true,
        System.Net.Sockets.SocketException => true,
        System.Net.WebSockets.WebSocketException => true,
        IOException => true,
        // A request's own timeout, not the test being cancelled.
        OperationCanceledException => !TestContext.Current.CancellationToken.IsCancellationRequested,
        AggregateException { InnerExceptions.Count: > 0 } a => a.InnerExceptions.All(NotYet),
        _ => false,
    };
}

/// <summary>Thrown by a polled condition to say "not yet, and here is why" (retried by <see cref="Eventually"/>).</summary>
public class NotYetException(string message) : Exception(message);
