namespace Fleet.Server.Hosting;

/// <summary>
/// The moment a stopping node's actor system is about to end (the last phase of its coordinated shutdown). Admin
/// requests still waiting on a device entity then end at once with 503 (or 202 for a command already accepted)
/// instead of waiting out their ask timeout on a region that is gone — which held every SIGTERM exit for 10 s.
/// </summary>
public sealed class NodeStopping : IDisposable
{
    private readonly CancellationTokenSource _cts = new();

    public CancellationToken Token => _cts.Token;
    public bool IsStopping => _cts.IsCancellationRequested;

    public void Begin() => _cts.Cancel();

    /// <summary>
    /// The node has begun to stop: the host is stopping, or the actor system's coordinated shutdown has started (a
    /// SIGTERM starts that before the host's own stop). New work should go to another node from here on.
    /// </summary>
    public static bool Begun(Akka.Actor.ActorSystem system, IHostApplicationLifetime lifetime) =>
        lifetime.ApplicationStopping.IsCancellationRequested || Akka.Actor.CoordinatedShutdown.Get(system).ShutdownReason is not null;

    public void Dispose() => _cts.Dispose();
}

public static class NodeStoppingMiddleware
{
    /// <summary>
    /// The admin API's requests are aborted (their <see cref="HttpContext.RequestAborted"/>, which handlers take as
    /// their cancellation token) when the node stops. Device sockets are not touched: they close on their own (see
    /// FleetAkka's close-device-sockets).
    /// </summary>
    public static IApplicationBuilder UseNodeStopping(this IApplicationBuilder app) => app.Use(async (ctx, next) =>
    {
        if (!ctx.Request.Path.StartsWithSegments("/api"))
        {
            await next(ctx);
            return;
        }
        var stopping = ctx.RequestServices.GetRequiredService<NodeStopping>();
        var client = ctx.RequestAborted;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(client, stopping.Token);
        ctx.RequestAborted = linked.Token;
        try
        {
            await next(ctx);
        }
        catch (OperationCanceledException) when (stopping.IsStopping && !client.IsCancellationRequested && !ctx.Response.HasStarted)
        {
            // Cancelled by the stop wherever the request was (reading its body, a key lookup, an ask): a clear 503, not
            // the framework's empty 499 for a request the client aborted.
            ctx.Response.Clear();
            ctx.Response.Headers.RetryAfter = "1";
            ctx.Response.Headers.Connection = "close";
            await Admin.Problems.Write(ctx, StatusCodes.Status503ServiceUnavailable, "Unavailable",
                "this node is shutting down; ask again (another node answers)");
        }
    });
}
