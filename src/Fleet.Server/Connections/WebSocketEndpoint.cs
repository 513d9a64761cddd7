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

    public static IEndpointRouteBuilder MapDeviceSockets(this IEndpointRouteBuilder app)
    {
        foreach (var path in Paths) app.Map(path, Accept).ExcludeFromDescription().AllowAnonymous();
        return app;
    }

    /// <summary>The one <see cref="ConnectionContext"/> of the node, made on first use (after Akka started).</summary>
    public static IServiceCollection AddDeviceSockets(this IServiceCollection services) =>
        services
            .AddSingleton<SilenceWatch>()
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
                    sp.GetRequiredService<DeviceAdmission>());
            });

    private static async Task Accept(HttpContext ctx, ActorSystem system, ConnectionContext shared,
        ConnectionGate gate, ConnectionMetrics metrics, IOptions<FleetSettings> settings,
        IHostApplicationLifetime lifetime, DeviceAdmission admission)
    {
        if (!ctx.WebSockets.IsWebSocketRequest)
        {
            await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status400BadRequest, "Not a WebSocket upgrade",
                "this endpoint only takes WebSocket upgrades (GET with Upgrade: websocket)");
            return;
        }
        if (NodeStopping.Begun(system, lifetime))
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
        var (ticket, refusal) = await admission.AtUpgradeAsync(ctx.Request, ctx.RequestAborted);
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
        if (!(held?.TryCountAsDevice(gate) ?? gate.TryEnter()))
        {
            metrics.RejectedAtCap();
            ctx.Response.Headers.RetryAfter = "30";
            // Closed after the answer: a refused router reconnects on a new socket, and a wave's refused sockets must
            // not stay open as idle keep-alive connections.
            ctx.Response.Headers.Connection = "close";
            await Fleet.Server.Admin.Problems.Write(ctx, StatusCodes.Status503ServiceUnavailable, "Node at its connection cap",
                $"this node holds its maximum of {gate.Capacity} device connections; retry or connect to another node");
            return;
        }
        try
        {
            // Zero (the default) sends no keep-alive frames at all: see WebSocketSettings.KeepAliveSeconds. No close frame
            // goes to the device unless it began the close (DeviceWebSocket).
            using var socket = await DeviceWebSocket.AcceptAsync(ctx, TimeSpan.FromSeconds(settings.Value.WebSocket.KeepAliveSeconds));
            metrics.Opened();
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var remote = $"{ctx.Connection.RemoteIpAddress}:{ctx.Connection.RemotePort}";
            system.ActorOf(DeviceConnection.Props(socket, shared, done, remote, ticket));
            await done.Task;
        }
        finally
        {
            if (ctx.WebSockets.IsWebSocketRequest && ctx.Response.StatusCode == StatusCodes.Status101SwitchingProtocols) metrics.Closed();
            if (held is null) gate.Exit();
        }
    }
}
