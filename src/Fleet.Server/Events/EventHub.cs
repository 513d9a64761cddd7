using System.Collections.Concurrent;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;

namespace Fleet.Server.Events;

/// <summary>
/// The cluster's event topic. Every node publishes what happened there and relays what it hears to its own
/// subscribers (<see cref="EventHub"/>): an event from any node reaches an SSE stream on any node.
/// </summary>
public static class FleetEvents
{
    public const string Topic = "fleet-events";

    /// <summary>To every node's subscribers. Nowhere in an actor system that is not a cluster (unit specs).</summary>
    public static void Publish(ActorSystem system, FleetEvent e)
    {
        if (((ExtendedActorSystem)system).Provider is not Akka.Cluster.ClusterActorRefProvider) return;
        DistributedPubSub.Get(system).Mediator.Tell(new Publish(Topic, e));
    }
}

/// <summary>
/// This node's listeners of the event stream (SSE requests, tests). Each gets its own bounded queue: one that
/// falls <see cref="QueueLimit"/> events behind is ended rather than silently skipping events (the browser's
/// EventSource reconnects and the page rereads the state from the API).
/// </summary>
public sealed class EventHub
{
    public const int QueueLimit = 4096;
    private readonly ConcurrentDictionary<Subscription, byte> _subscribers = new();

    public int Subscribers => _subscribers.Count;

    public Subscription Subscribe(Func<FleetEvent, bool> filter)
    {
        var s = new Subscription(this, filter, Channel.CreateBounded<FleetEvent>(new BoundedChannelOptions(QueueLimit)
        {
            SingleReader = true, SingleWriter = false, FullMode = BoundedChannelFullMode.Wait,
        }));
        _subscribers[s] = 0;
        return s;
    }

    public void Deliver(FleetEvent e)
    {
        foreach (var s in _subscribers.Keys)
        {
            if (!s.Filter(e)) continue;
            if (!s.Queue.Writer.TryWrite(e))
            {
                s.Queue.Writer.TryComplete(new ChannelClosedException($"the subscriber fell {QueueLimit} events behind"));
                _subscribers.TryRemove(s, out _);
            }
        }
    }

    public sealed class Subscription(EventHub hub, Func<FleetEvent, bool> filter, Channel<FleetEvent> queue) : IDisposable
    {
        internal Func<FleetEvent, bool> Filter => filter;
        internal Channel<FleetEvent> Queue => queue;
        public ChannelReader<FleetEvent> Events => queue.Reader;

        public void Dispose()
        {
            hub._subscribers.TryRemove(this, out _);
            queue.Writer.TryComplete();
        }
    }
}

/// <summary>One per node: subscribed to the cluster's topic, hands every event to this node's <see cref="EventHub"/>.</summary>
public sealed class EventRelay : ReceiveActor
{
    public EventRelay(EventHub hub)
    {
        DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(FleetEvents.Topic, Self));
        Receive<FleetEvent>(hub.Deliver);
        Receive<SubscribeAck>(_ => { });
    }

    public static Props Props(EventHub hub) => Akka.Actor.Props.Create(() => new EventRelay(hub));
}
