using Akka.Actor;
using Akka.Cluster;
using Fleet.Server.Connections;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Admin;

/// <summary>/healthz, /readyz and /api/v1/node (this node's member view and socket counters).</summary>
public static class OperationsApi
{
    public static IEndpointRouteBuilder MapOperationsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new { status = "alive" })).WithTags("operations").AllowAnonymous();
        app.MapGet("/readyz", Ready).WithTags("operations").AllowAnonymous();
        app.MapGet("/api/v1/node", Node).WithTags("operations").RequireAuthorization(Policies.Viewer);
        app.MapGet("/api/v1/stats", Stats).WithTags("operations").WithName("FleetStats").RequireAuthorization(Policies.Viewer);
        return app;
    }

    /// <summary>The fleet at a glance: device counts from the directory, open alerts.</summary>
    private static async Task<Ok<object>> Stats(DirectoryStore store, Alerts.AlertStore alerts, NodeIdentity node,
        Metrics.FleetMetrics metrics, CancellationToken ct)
    {
        var counts = await store.CountAsync(node.LiveNodes(), ct);
        metrics.Known(counts.Known);
        return TypedResults.Ok<object>(new
        {
            devices = new
            {
                known = counts.Known, online = counts.Online, offline = counts.Offline, pending = counts.Pending,
                by_protocol = counts.ByProtocol,
            },
            alerts = new { open = await alerts.CountOpenAsync(ct) },
        });
    }

    private static async Task<Results<Ok<object>, ProblemHttpResult>> Ready(ActorSystem system, DirectoryStore store,
        IHostApplicationLifetime lifetime, CancellationToken ct)
    {
        if (NodeStopping.Begun(system, lifetime))
            return Problems.Unavailable("this node is shutting down");
        var status = Cluster.Get(system).SelfMember.Status;
        if (status != MemberStatus.Up)
            return Problems.Unavailable($"this node's cluster membership is {status}, not Up");
        if (!await store.PingAsync(ct))
            return Problems.Unavailable("the journal database is not reachable");
        return TypedResults.Ok<object>(new { status = "ready" });
    }

    private static async Task<Ok<object>> Node(ActorSystem system, NodeIdentity node, ConnectionMetrics metrics, ConnectionGate gate,
        SocketBudget sockets, DeviceAdmission admission, DirectoryStore store, IOptions<FleetSettings> settings, CancellationToken ct) =>
        TypedResults.Ok<object>(new
        {
            node = node.Id,
            status = Cluster.Get(system).SelfMember.Status.ToString(),
            members = node.LiveNodes(),
            connection_cap = gate.Capacity,
            connections = metrics.Snapshot(),
            sockets = sockets.Snapshot(gate),
            device_admission = DeviceAdmission.Name(admission.Mode),
            admission = admission.Metrics.Snapshot(),
            directory = await DirectoryFigures(store, settings.Value.Directory, ct),
        });

    /// <summary>The directory's projection and reconciliation, as stored (the same on every node; null while the database is unreachable).</summary>
    private static async Task<object?> DirectoryFigures(DirectoryStore store, DirectorySettings settings, CancellationToken ct)
    {
        try
        {
            var fence = await store.ReadFenceAsync(ct);
            var r = await store.ReadReconciliationAsync(ct);
            return new
            {
                offset = fence.Offset,
                projection_epoch = fence.Epoch,
                reconciliation = new
                {
                    every_seconds = settings.ReconcileEverySeconds,
                    passes = r.Passes,
                    last_started_at = r.StartedAt,
                    last_finished_at = r.FinishedAt,
                    devices_checked = r.Checked,
                    rows_repaired = r.Repaired,
                    rows_missing = r.Missing,
                    total_rows_repaired = r.TotalRepaired,
                },
            };
        }
        catch (System.Data.Common.DbException)
        {
            return null;
        }
    }
}
