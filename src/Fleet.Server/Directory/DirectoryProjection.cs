using Akka;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;
using Fleet.Server.Serialization;

namespace Fleet.Server.Directory;

public sealed record GetProjectionStatus : IFleetSerializable
{
    public static readonly GetProjectionStatus Instance = new();
}

public sealed record ProjectionStatus(long Offset) : IFleetSerializable;

/// <summary>
/// Feeds the device directory from the journal: events tagged "device", in journal order, applied
/// in batches together with the offset. Runs as a cluster singleton, so there is one writer.
/// </summary>
public sealed class DirectoryProjection : ReceiveActor
{
    private sealed record Progress(long Offset);
    private sealed record Failed(Exception Cause);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private long _offset;

    public static Props Props(DirectoryStore store) => Akka.Actor.Props.Create(() => new DirectoryProjection(store));

    public DirectoryProjection(DirectoryStore store)
    {
        Receive<Progress>(p => _offset = p.Offset);
        Receive<GetProjectionStatus>(_ => Sender.Tell(new ProjectionStatus(_offset)));
        Receive<Failed>(f => throw new InvalidOperationException("directory projection stream failed", f.Cause));

        var self = Self;
        var journal = PersistenceQuery.Get(Context.System).ReadJournalFor<SqlReadJournal>(FleetNames.QueryJournal);
        var materializer = Context.Materializer();
        // The stream restarts itself with backoff (database blips); it resumes from the stored offset.
        RestartSource.OnFailuresWithBackoff(() =>
                Source.FromTask(store.ReadOffsetAsync())
                    .ConcatMany(offset => journal.EventsByTag(FleetNames.DeviceTag, Offset.Sequence(offset)))
                    .Where(env => env.Event is IDeviceEvent)
                    .Select(env => new DirectoryEvent(
                        env.PersistenceId[FleetNames.PersistenceIdPrefix.Length..], (IDeviceEvent)env.Event,
                        ((Sequence)env.Offset).Value))
                    .GroupedWithin(500, TimeSpan.FromMilliseconds(50))
                    .SelectAsync(1, async batch =>
                    {
                        var list = batch.ToList();
                        await store.ApplyAsync(list);
                        return list[^1].Ordering;
                    }),
                RestartSettings.Create(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), 0.2))
            .RunForeach(o => self.Tell(new Progress(o)), materializer)
            .ContinueWith(t =>
            {
                if (t.IsFaulted) self.Tell(new Failed(t.Exception!));
            }, TaskScheduler.Default);
    }
}
