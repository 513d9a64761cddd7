using System.Collections.Concurrent;
using System.Diagnostics;

namespace Fleet.Simulator;

/// <summary>
/// One timer for every device's heartbeats: a wheel of 10 ms slots. A device is queued in the slot
/// of its next beat; one loop wakes every slot, fires the due beats and queues each for its next.
/// Cheaper than a Task.Delay per device per beat when tens of thousands of routers beat at once.
/// </summary>
internal sealed class HeartbeatWheel
{
    private static readonly long SlotTicks = Stopwatch.Frequency / 100; // 10 ms
    private readonly ConcurrentQueue<(IBeating Who, long Epoch, long Slot)>[] _slots;
    private readonly long _origin = Stopwatch.GetTimestamp();
    private readonly long _intervalSlots;
    private long _processed;

    public HeartbeatWheel(TimeSpan interval)
    {
        _intervalSlots = Math.Max(1, (long)(interval.TotalSeconds * Stopwatch.Frequency / SlotTicks));
        _slots = new ConcurrentQueue<(IBeating, long, long)>[_intervalSlots + 64];
        for (var i = 0; i < _slots.Length; i++) _slots[i] = new();
    }

    /// <summary>Queues a first beat <paramref name="delay"/> from now for this epoch of the device.</summary>
    public void Start(IBeating who, long epoch, TimeSpan delay)
    {
        var slot = (Stopwatch.GetTimestamp() - _origin + (long)(delay.TotalSeconds * Stopwatch.Frequency)) / SlotTicks;
        Enqueue(who, epoch, slot);
    }

    private void Enqueue(IBeating who, long epoch, long slot)
    {
        var min = Interlocked.Read(ref _processed) + 1;
        if (slot < min) slot = min;
        _slots[slot % _slots.Length].Enqueue((who, epoch, slot));
    }

    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(10, ct).ConfigureAwait(false);
                var now = (Stopwatch.GetTimestamp() - _origin) / SlotTicks;
                for (var s = Interlocked.Read(ref _processed) + 1; s <= now; s++)
                {
                    var queue = _slots[s % _slots.Length];
                    var n = queue.Count;
                    for (var i = 0; i < n && queue.TryDequeue(out var e); i++)
                    {
                        if (e.Slot > s) { queue.Enqueue(e); continue; } // a later lap of the wheel
                        if (!e.Who.Beat(e.Epoch)) continue;         // that connection is gone
                        // Next beat one interval after this one was due; far behind → skip ahead.
                        var next = e.Slot + _intervalSlots;
                        if (next <= now) next = now + _intervalSlots;
                        _slots[next % _slots.Length].Enqueue((e.Who, e.Epoch, next));
                    }
                    Interlocked.Exchange(ref _processed, s);
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}

internal interface IBeating
{
    /// <summary>Sends a heartbeat if this epoch's connection is still up; false when it is gone.</summary>
    bool Beat(long epoch);
}
