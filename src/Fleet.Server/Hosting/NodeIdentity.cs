using Akka.Actor;
using Akka.Cluster;

namespace Fleet.Server.Hosting;

/// <summary>
/// This node as devices and the directory name it: address plus incarnation uid, so a restarted
/// node on the same address is a different node and leaves no device "online" behind it.
/// </summary>
public sealed class NodeIdentity(ActorSystem system)
{
    private string? _id;

    public string Id => _id ??= Of(Cluster.Get(system).SelfUniqueAddress);

    public static string Of(UniqueAddress a) => $"{a.Address}#{a.Uid}";

    /// <summary>Members that can hold sockets right now.</summary>
    public IReadOnlyCollection<string> LiveNodes() => LiveNodes(system);

    /// <summary>The members whose sockets may be up (Up, WeaklyUp, Leaving, Joining, and reachable), as address#uid.</summary>
    public static IReadOnlyCollection<string> LiveNodes(ActorSystem system) =>
        Cluster.Get(system).State.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving or MemberStatus.Joining)
            .Where(m => !Cluster.Get(system).State.Unreachable.Contains(m))
            .Select(m => Of(m.UniqueAddress))
            .ToList();
}
