using Akka.Actor;
using Akka.Hosting;
using Fleet.Server.Devices;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fleet.Server.Admin;

/// <summary>How the admin API asks device entities: always with a timeout and the request's cancellation.</summary>
public static class EntityAsk
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>The entity did not answer in time (never sent anywhere; only the HTTP layer makes it).</summary>
    public sealed record NoAnswer(string DeviceId) : IAdminReply;

    /// <summary>The wait ended before an answer: this node is stopping (see NodeStopping), or the caller went away.</summary>
    public sealed record Interrupted(string DeviceId) : IAdminReply;

    public static async Task<IAdminReply> Ask(this IRequiredActor<DeviceEntity> region, IToDeviceEntity message, CancellationToken ct,
        TimeSpan? timeout = null)
    {
        try
        {
            return await region.ActorRef.Ask<IAdminReply>(message, timeout ?? Timeout, ct);
        }
        catch (AskTimeoutException)
        {
            return new NoAnswer(message.DeviceId);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return new Interrupted(message.DeviceId);
        }
    }

    public static ProblemHttpResult NeverSeen(string deviceId) =>
        Problems.NotFound($"device '{deviceId}' has never connected to this fleet");

    /// <summary>
    /// A reply the handler has no case of its own for: replies any request may get (no answer in time, a device
    /// pending approval, which takes reads only) or a 500.
    /// </summary>
    public static ProblemHttpResult Unexpected(IAdminReply reply) => reply switch
    {
        NoAnswer n => Problems.Timeout($"device '{n.DeviceId}' did not answer within {Timeout.TotalSeconds:0} s"),
        Interrupted i => Problems.Unavailable($"this node is shutting down; ask again (another node answers for device '{i.DeviceId}')"),
        DevicePending p => Problems.Conflict(
            $"device '{p.DeviceId}' is pending approval (it enrolled with a fleet key): an admin approves it with POST /api/v1/devices/{p.DeviceId}/approve; until then it takes reads only"),
        _ => Problems.Result(500, "Unexpected reply", $"the device entity answered {reply.GetType().Name}"),
    };
}
