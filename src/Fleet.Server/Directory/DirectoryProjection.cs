using Akka;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Event;
using Akka.Hosting;
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

public static class DirectoryProjectionHosting
{
    /// <summary>One projection per cluster: a singleton on the oldest node.</summary>
    public static AkkaConfigurationBuilder WithDirectoryProjection(this AkkaConfigurationBuilder builder, DirectoryStore store) =>
        builder.WithSingleton<DirectoryProjection>(FleetNames.DirectoryProjection, DirectoryProjection.Props(store),
            new ClusterSingletonOptions(), createProxyToo: false);
}

/// <summary>
/// Feeds the device directory from the journal: every device event, in journal order, applied
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
        long lastOffsetWrite = 0;
        var journal = PersistenceQuery.Get(Context.System).ReadJournalFor<SqlReadJournal>(FleetNames.QueryJournal);
        var materializer = Context.Materializer();
        // The stream restarts itself with backoff (database blips); it resumes from the stored offset.
        RestartSource.OnFailuresWithBackoff(() =>
                Source.FromTask(store.ReadOffsetAsync())
                    // All events in journal order, not EventsByTag: tags cost a second row per event, and
                    // the tag query scans every "device" row on each poll (the tags index is on tag alone).
                    // Device entities are the only event-sourced actors, so this is the same stream.
                    .ConcatMany(offset => journal.AllEvents(Offset.Sequence(offset)))
                    .Where(env => env.Event is IDeviceEvent && env.PersistenceId.StartsWith(FleetNames.PersistenceIdPrefix, StringComparison.Ordinal))
                    .Select(env => new DirectoryEvent(
                        env.PersistenceId[FleetNames.PersistenceIdPrefix.Length..], (IDeviceEvent)env.Event,
                        ((Sequence)env.Offset).Value))
                    .GroupedWithin(1000, TimeSpan.FromMilliseconds(200))
                    .SelectAsync(1, async batch =>
                    {
                        // Every write competes with the journal (SQLite has one writer): batches that
                        // change no row only move the offset, and that can wait a few seconds — replaying
                        // them after a crash changes nothing.
                        var list = batch.ToList();
                        var now = Environment.TickCount64;
                        if (list.Exists(e => DirectoryStore.Affects(e.Event)) || now - lastOffsetWrite > 5000)
                        {
                            await store.ApplyAsync(list);
                            lastOffsetWrite = now;
                        }
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
