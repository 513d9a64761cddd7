using Akka.Actor;
using Akka.Cluster;
using Fleet.Server.Connections;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fleet.Server.Admin;

/// <summary>/healthz, /readyz and /api/v1/node (this node's member view and socket counters).</summary>
public static class OperationsApi
{
    public static IEndpointRouteBuilder MapOperationsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new { status = "alive" })).WithTags("operations").AllowAnonymous();
        app.MapGet("/readyz", Ready).WithTags("operations").AllowAnonymous();
        app.MapGet("/api/v1/node", Node).WithTags("operations").RequireAuthorization(Policies.Viewer);
        return app;
    }

    private static async Task<Results<Ok<object>, ProblemHttpResult>> Ready(ActorSystem system, DirectoryStore store,
        IHostApplicationLifetime lifetime, CancellationToken ct)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
            return Problems.Unavailable("this node is shutting down");
        var status = Cluster.Get(system).SelfMember.Status;
        if (status != MemberStatus.Up)
            return Problems.Unavailable($"this node's cluster membership is {status}, not Up");
        if (!await store.PingAsync(ct))
            return Problems.Unavailable("the journal database is not reachable");
        return TypedResults.Ok<object>(new { status = "ready" });
    }

    private static Ok<object> Node(ActorSystem system, NodeIdentity node, ConnectionMetrics metrics, ConnectionGate gate,
        SocketBudget sockets, DeviceAdmission admission) =>
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
        });
}
