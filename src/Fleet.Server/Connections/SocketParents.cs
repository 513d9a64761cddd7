using Akka.Actor;

namespace Fleet.Server.Connections;

/// <summary>
/// The parents of the node's device connection actors: <see cref="Count"/> actors under /user, each the parent of its
/// share of the sockets, instead of every socket directly under /user. Akka keeps an actor's children in an immutable
/// dictionary, so adding or removing a child copies a path of the tree: under one parent of 19,000 children a reconnect
/// storm spent about 2 KB per socket on those copies (docs/PERFORMANCE.md); under 64 parents of ~300 each, half that.
/// A socket's actor needs no address of its own (its HTTP request waits on the socket's end, not on the actor).
/// </summary>
public sealed class SocketParents
{
    public const int Count = 64;
    private readonly IActorRef[] _parents;
    private int _next = -1;

    /// <summary>Creation of one device connection actor, told to a parent.</summary>
    private sealed record Spawn(Props Props);

    public SocketParents(ActorSystem system)
    {
        _parents = new IActorRef[Count];
        for (var i = 0; i < Count; i++) _parents[i] = system.ActorOf(Props.Create<Parent>(), $"device-sockets-{i}");
    }

    /// <summary>Starts the actor under the next parent in turn.</summary>
    public void Start(Props props) => _parents[(uint)Interlocked.Increment(ref _next) % Count].Tell(new Spawn(props));

    /// <summary>Makes the children it is told to; supervises them as /user did (the default strategy).</summary>
    private sealed class Parent : UntypedActor
    {
        protected override void OnReceive(object message)
        {
            if (message is Spawn spawn) Context.ActorOf(spawn.Props);
            else Unhandled(message);
        }
    }
}
