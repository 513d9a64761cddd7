using Akka.Actor;
using Fleet.Server.Hosting;
using Xunit;

namespace Fleet.Server.Tests.Unit;

public sealed class LightMailboxTests
{
    private static Envelope E(int i) => new(i, ActorRefs.NoSender);

    private static List<object> Drain(LightMessageQueue q)
    {
        var seen = new List<object>();
        while (q.TryDequeue(out var e)) seen.Add(e.Message);
        return seen;
    }

    [Fact]
    public void Messages_come_out_in_order_and_unstashed_ones_first_in_their_own_order()
    {
        var q = new LightMessageQueue();
        Assert.False(q.HasMessages);
        for (var i = 1; i <= 3; i++) q.Enqueue(ActorRefs.Nobody, E(i));
        // Akka unstashes by putting the stash in front, last one first.
        q.EnqueueFirst(E(-2));
        q.EnqueueFirst(E(-1));
        Assert.True(q.HasMessages);
        Assert.Equal(5, q.Count);
        Assert.Equal([-1, -2, 1, 2, 3], Drain(q));
        Assert.Equal(0, q.Count);
        Assert.False(q.TryDequeue(out _));
    }

    [Fact]
    public void After_a_burst_the_queue_keeps_working()
    {
        var q = new LightMessageQueue();
        for (var i = 0; i < 1000; i++) q.Enqueue(ActorRefs.Nobody, E(i));
        Assert.Equal(Enumerable.Range(0, 1000).Cast<object>(), Drain(q));
        q.Enqueue(ActorRefs.Nobody, E(7));
        Assert.Equal([7], Drain(q));
    }

    [Fact]
    public async Task Concurrent_senders_lose_nothing()
    {
        var q = new LightMessageQueue();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 10_000; i++) q.Enqueue(ActorRefs.Nobody, E(t * 10_000 + i));
        }, TestContext.Current.CancellationToken)));
        var seen = Drain(q).Cast<int>().ToList();
        Assert.Equal(40_000, seen.Count);
        Assert.Equal(40_000, seen.Distinct().Count());
        // each sender's messages stay in its order
        for (var t = 0; t < 4; t++)
        {
            var mine = seen.Where(v => v / 10_000 == t).ToList();
            Assert.Equal(mine.OrderBy(v => v), mine);
        }
    }

    [Fact]
    public void Clean_up_hands_what_is_left_to_dead_letters()
    {
        var q = new LightMessageQueue();
        var dead = new LightMessageQueue();
        q.Enqueue(ActorRefs.Nobody, E(1));
        q.EnqueueFirst(E(0));
        q.CleanUp(ActorRefs.Nobody, dead);
        Assert.False(q.HasMessages);
        Assert.Equal([0, 1], Drain(dead));
    }
}
