namespace Fleet.Server.Connections;

/// <summary>
/// The node's cap on device sockets (<see cref="SocketBudget.DeviceCap"/>): past it an upgrade gets a clean 503 and
/// nobody already connected notices. A device socket counts from its upgrade until its file descriptor is closed
/// (<see cref="HeldSocket"/>), not only while its handler runs: one replaced or dropped by the node is still open
/// while it drains.
/// </summary>
public sealed class ConnectionGate
{
    private int _count;
    public int Capacity { get; }

    public ConnectionGate(int capacity) => Capacity = capacity;

    /// <summary>Device sockets counted now.</summary>
    public int Held => Volatile.Read(ref _count);

    public bool TryEnter()
    {
        if (Interlocked.Increment(ref _count) <= Capacity) return true;
        Interlocked.Decrement(ref _count);
        return false;
    }

    public void Exit() => Interlocked.Decrement(ref _count);
}
