using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Fleet.Server.Hosting;

/// <summary>
/// The mailbox of the two actors every router has (its connection and its device entity). Akka's default
/// queue is a ConcurrentQueue whose first segment is 32 slots: about 2 KB per actor before any message
/// arrives, the largest single cost per router in the heap. These actors are idle nearly always and see
/// a few messages a minute, so a plain queue under a lock, allocated on first use and dropped again after
/// a burst, costs a few dozen bytes instead. It is double-ended (EnqueueFirst) so persistent actors can
/// stash. Chosen in appsettings.json (<c>akka.fleet-light-mailbox</c>).
/// </summary>
public sealed class LightMailbox(Settings settings, Config config)
    : MailboxType(settings, config), IProducesMessageQueue<LightMessageQueue>
{
    public const string ConfigPath = "akka.fleet-light-mailbox";

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new LightMessageQueue();
}

public sealed class LightMessageQueue : IMessageQueue, IUnboundedDequeBasedMessageQueueSemantics
{
    /// <summary>A queue that grew past this during a burst is released once it is empty again.</summary>
    private const int KeepUpTo = 16;

    // A plain object: System.Threading.Lock is 120 B, and there are two of these queues per router.
    private readonly object _lock = new();
    private Queue<Envelope>? _queue;
    private Stack<Envelope>? _front; // unstashed messages, ahead of the queue
    private int _count;
    private int _peak;

    public bool HasMessages => Volatile.Read(ref _count) > 0;
    public int Count => Volatile.Read(ref _count);

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        lock (_lock)
        {
            _queue ??= new Queue<Envelope>(4);
            _queue.Enqueue(envelope);
            if (_queue.Count > _peak) _peak = _queue.Count;
            Volatile.Write(ref _count, _count + 1);
        }
    }

    public void EnqueueFirst(Envelope envelope)
    {
        lock (_lock)
        {
            (_front ??= new Stack<Envelope>()).Push(envelope);
            Volatile.Write(ref _count, _count + 1);
        }
    }

    public bool TryDequeue(out Envelope envelope)
    {
        lock (_lock)
        {
            if (_front is { Count: > 0 })
            {
                envelope = _front.Pop();
                if (_front.Count == 0) _front = null;
            }
            else if (_queue is { Count: > 0 })
            {
                envelope = _queue.Dequeue();
                if (_queue.Count == 0 && _peak > KeepUpTo) { _queue = null; _peak = 0; }
            }
            else
            {
                envelope = default;
                return false;
            }
            Volatile.Write(ref _count, _count - 1);
            return true;
        }
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope)) deadletters.Enqueue(owner, envelope);
    }
}
