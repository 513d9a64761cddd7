using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Connections;

/// <summary>/ws/wifidogx (the real client's default path) and /ws: one DeviceConnection per socket.</summary>
public static class WebSocketEndpoint
{
    public static readonly string[] Paths = ["/ws/wifidogx", "/ws"];

    /// <summary>
    /// Device sockets leave the pipeline before the admin API's middleware (exception pages, authentication,
    /// authorization, the stop guard) and endpoint routing: a WebSocket request lasts as long as its socket, and every
    /// middleware it passes keeps its state for that long — about 2 KB per connected router, allocated again on every
    /// reconnect of a storm (docs/PERFORMANCE.md). The socket's own admission (its key, the cap, the node stopping) is
    /// judged here. With the admin API on listeners of its own, a device path asked on an admin listener goes on to the
    /// main pipeline, which answers 404 (Listeners.UseFleetListeners).
    /// </summary>
    public static WebApplication UseDeviceSockets(this WebApplication app)
    {
        var apart = app.Services.GetService<Listeners.AdminApart>() is not null;
        // Resolved on the first socket, not here: the connection context needs the started actor system. PublicationOnly:
        // a failure then (a socket before the node was ready) is not cached; the next socket resolves them again.
        var services = new Lazy<SocketServices>(() => new SocketServices(app.Services), LazyThreadSafetyMode.PublicationOnly);
        app.MapWhen(ctx => IsDevicePath(ctx.Request.Path) && !(apart && ctx.Features.Get<Listeners.AdminListener>() is not null),
            branch =>
            {
                branch.UseWebSockets();
                branch.Run(ctx => Accept(ctx, services.Value));
            });
        return app;
    }

    /// <summary>One of <see cref="Paths"/>, in any case, with or without a trailing slash (as endpoint routing matched them).</summary>
    public static bool IsDevicePath(PathString path)
    {
        var value = path.Value.AsSpan();
        if (value.Length > 1 && value[^1] == '/') value = value[..^1];
        foreach (var p in Paths)
            if (value.Equals(p, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>The node's singletons a socket needs, taken from the container once instead of per request.</summary>
    private sealed class SocketServices(IServiceProvider sp)
    {
        public ActorSystem System { get; } = sp.GetRequiredService<ActorSystem>();
        public ConnectionContext Shared { get; } = sp.GetRequiredService<ConnectionContext>();
        public SocketParents Parents { get; } = sp.GetRequiredService<SocketParents>();
        public ConnectionGate Gate { get; } = sp.GetRequiredService<ConnectionGate>();
        public ConnectionMetrics Metrics { get; } = sp.GetRequiredService<ConnectionMetrics>();
        public FleetSettings Settings { get; } = sp.GetRequiredService<IOptions<FleetSettings>>().Value;
        public IHostApplicationLifetime Lifetime { get; } = sp.GetRequiredService<IHostApplicationLifetime>();
        public DeviceAdmission Admission { get; } = sp.GetRequiredService<DeviceAdmission>();
        public ILogger Log { get; } = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Fleet.Connections");
    }

    /// <summary>The one <see cref="ConnectionContext"/> of the node, made on first use (after Akka started).</summary>
    public static IServiceCollection AddDeviceSockets(this IServiceCollection services) =>
        services
            .AddSingleton<SilenceWatch>()
            .AddSingleton(sp => new SocketParents(sp.GetRequiredService<ActorSystem>()))
            .AddHostedService(sp => sp.GetRequiredService<SilenceWatch>())
            .AddSingleton(sp =>
            {
                var ws = sp.GetRequiredService<IOptions<FleetSettings>>().Value.WebSocket;
                return new ConnectionContext(
                    sp.GetRequiredService<IRequiredActor<DeviceEntity>>().ActorRef,
                    sp.GetRequiredService<NodeIdentity>().Id,
                    sp.GetRequiredService<ConnectionMetrics>(),
                    ws.MaxMessageBytes,
                    ws.FramePauseMs,
                    sp.GetRequiredService<SilenceWatch>(),
                    Logging.GetLogger(sp.GetRequiredService<ActorSystem>(), "Fleet.Connections"),
                    sp.GetRequiredService<DeviceAdmission>(),
                    sp.GetRequiredService<ActorSystem>());
            });

    /// <summary>
    /// One socket, from its upgrade to its end. One async method (its state lives as long as the socket): an exception
    /// is logged and answered with a 500 problem, what the exception handler did for these paths before they left the
    /// pipeline. The services are read from <paramref name="s"/> where used, not copied into locals that the state
    /// machine would keep for the socket's lifetime.
    /// </summary>
    private static async Task Accept(HttpContext ctx, SocketServices s)
    {
        try
        {
            if (!ctx.WebSockets.IsWebSocketRequest)
            {
                await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status400BadRequest, "Not a WebSocket upgrade",
                    "this endpoint only takes WebSocket upgrades (GET with Upgrade: websocket)");
                return;
            }
            if (NodeStopping.Begun(s.System, s.Lifetime))
            {
                // Kestrel still accepts while the actor system closes the sockets and hands its shards off: a router that
                // reconnects now would be closed again in a moment. 503 lets the load balancer try another node at once.
                ctx.Response.Headers.RetryAfter = "2";
                ctx.Response.Headers.Connection = "close";
                await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status503ServiceUnavailable, "Node shutting down",
                    "this node is leaving the cluster; connect to another node");
                return;
            }
            // The key in the path (?key=…), before any WebSocket exists: no key of ours, no socket (401).
            var (ticket, refusal) = await s.Admission.AtUpgradeAsync(ctx.Request, ctx.RequestAborted);
            if (ticket is null)
            {
                if (refusal == DeviceAdmission.Unavailable)
                {
                    ctx.Response.Headers.RetryAfter = "5";
                    ctx.Response.Headers.Connection = "close";
                    await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status503ServiceUnavailable, "Device keys unavailable", refusal);
                }
                else await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status401Unauthorized, "Device not admitted", refusal!);
                return;
            }
            // Counted from here until the socket is closed (the listener gives it back), not only while this handler runs:
            // a socket being replaced or drained still holds a file descriptor. Without our listener (a test server), here.
            var held = ctx.Features.Get<HeldSocket>();
            if (!(held?.TryCountAsDevice(s.Gate) ?? s.Gate.TryEnter()))
            {
                s.Metrics.RejectedAtCap();
                ctx.Response.Headers.RetryAfter = "30";
                // Closed after the answer: a refused router reconnects on a new socket, and a wave's refused sockets must
                // not stay open as idle keep-alive connections.
                ctx.Response.Headers.Connection = "close";
                await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status503ServiceUnavailable, "Node at its connection cap",
                    $"this node holds its maximum of {s.Gate.Capacity} device connections; retry or connect to another node");
                return;
            }
            try
            {
                // Zero (the default) sends no keep-alive frames at all: see WebSocketSettings.KeepAliveSeconds. No close frame
                // goes to the device unless it began the close (DeviceWebSocket).
                using var socket = await DeviceWebSocket.AcceptAsync(ctx, TimeSpan.FromSeconds(s.Settings.WebSocket.KeepAliveSeconds));
                s.Metrics.Opened();
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var remote = $"{ctx.Connection.RemoteIpAddress}:{ctx.Connection.RemotePort}";
                s.Parents.Start(DeviceConnection.Props(socket, s.Shared, done, remote, ticket));
                await done.Task;
            }
            finally
            {
                if (ctx.WebSockets.IsWebSocketRequest && ctx.Response.StatusCode == StatusCodes.Status101SwitchingProtocols) s.Metrics.Closed();
                if (held is null) s.Gate.Exit();
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
        {
            s.Log.LogError(e, "Device socket {Path} from {Remote} failed", ctx.Request.Path.Value, ctx.Connection.RemoteIpAddress);
            if (!ctx.Response.HasStarted)
                await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status500InternalServerError, "Internal error",
                    "the device socket could not be set up; retry");
        }
    }
}
