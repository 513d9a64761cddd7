namespace Fleet.Server.Tests.Support;

/// <summary>Waits for a condition with a deadline, polling; never a fixed sleep.</summary>
public static class Eventually
{
    public static async Task True(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(20));
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or NullReferenceException or TaskCanceledException)
            {
                last = ex;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"'{what}' did not become true within {(within ?? TimeSpan.FromSeconds(20)).TotalSeconds} s. {last?.Message}");
    }

    public static async Task<T> Value<T>(Func<Task<T?>> get, Func<T, bool> ok, string what, TimeSpan? within = null) where T : class
    {
        T? value = null;
        await True(async () => (value = await get()) is not null && ok(value), what, within);
        return value!;
    }
}
