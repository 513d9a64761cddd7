namespace Fleet.Cluster.Tests.Support;

/// <summary>Waits for a condition with a deadline, polling; never a fixed sleep.</summary>
public static class Eventually
{
    public static async Task True(Func<Task<bool>> condition, string what, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
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
            await Task.Delay(100);
        }
        throw new TimeoutException($"'{what}' did not become true within {within.TotalSeconds:0} s. {last?.Message}");
    }

    public static Task True(Func<bool> condition, string what, TimeSpan within) =>
        True(() => Task.FromResult(condition()), what, within);
}
