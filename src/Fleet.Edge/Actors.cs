using Akka.Actor;

namespace Fleet.Edge;

/// <summary>
/// Props for the agent's actors made from a plain constructor call. <c>Props.Create(() => new X(…))</c> takes an
/// expression tree and evaluates its arguments by compiling them: System.Linq.Expressions loaded and run (interpreted
/// under Native AOT) for three actors, and a reflection path trimming cannot see (docs/EDGE.md, "Footprint").
/// </summary>
public static class Actors
{
    public static Props Of<T>(Func<T> create) where T : ActorBase => Props.CreateBy(new Producer<T>(create));

    private sealed class Producer<T>(Func<T> create) : IIndirectActorProducer where T : ActorBase
    {
        public Type ActorType => typeof(T);
        public ActorBase Produce() => create();
        public void Release(ActorBase actor) { }
    }
}
