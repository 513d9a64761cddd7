using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Fleet.Server.Devices;
using Fleet.Server.Hosting;

namespace Fleet.Server.Directory;

/// <summary>
/// A directory row as stored: the columns as text, the way both databases keep them. <see cref="SeqNr"/> is the row's
/// version (the device's sequence number of the last event the row shows).
/// </summary>
public sealed record DirectoryRow(string DeviceId, bool Online, string? Node, string? ConnectedAt, string? LastSeen,
    string? LocationId, string? ApMacAddress, string Gateways, string? Firmware, string? Protocol, string? Admission, long? SeqNr,
    string Tags = ",", string? Release = null)
{
    public static DirectoryRow Empty(string deviceId) => new(deviceId, false, null, null, null, null, null, ",", null, null, null, null);

    /// <summary>Same columns, whatever the versions.</summary>
    public bool SameAs(DirectoryRow other) => this with { SeqNr = null } == other with { SeqNr = null };

    /// <summary>The row after one event: the very columns the projection writes for it (<see cref="DirectoryStore.Columns"/>).</summary>
    public DirectoryRow Apply(IDeviceEvent e)
    {
        var (columns, values) = DirectoryStore.Columns(e);
        var row = this;
        for (var i = 0; i < columns.Length; i++)
        {
            var v = values[i] is string text ? DirectoryStore.Stored(text) : values[i];
            row = columns[i] switch
            {
                "online" => row with { Online = Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture) == 1 },
                "node" => row with { Node = (string?)v },
                "connected_at" => row with { ConnectedAt = (string?)v },
                "last_seen" => row with { LastSeen = (string?)v },
                "location_id" => row with { LocationId = (string?)v },
                "ap_mac_address" => row with { ApMacAddress = (string?)v },
                "gateways" => row with { Gateways = (string?)v ?? "," },
                "firmware" => row with { Firmware = (string?)v },
                "tags" => row with { Tags = (string?)v ?? "," },
                "release" => row with { Release = (string?)v },
                "protocol" => row with { Protocol = (string?)v },
                "admission" => row with { Admission = (string?)v },
                var other => throw new InvalidOperationException($"directory column '{other}' has no place in {nameof(DirectoryRow)}"),
            };
        }
        return row;
    }

    /// <summary>
    /// The row the projection would have written from the events a snapshot sums up. Online and last_seen follow the
    /// later of the last connect and disconnect (a snapshot taken just after a restart shows the device offline before
    /// its disconnect is persisted; the projection only ever saw the events).
    /// </summary>
    public static DirectoryRow FromState(string deviceId, DeviceState s, long seqNr)
    {
        var connectedLast = s.ConnectedAt is { } c && (s.DisconnectedAt is not { } d || c > d || (c == d && s.Online));
        static string? T(string? text) => DirectoryStore.Stored(text);
        return new DirectoryRow(deviceId, connectedLast, T(s.Node),
            s.ConnectedAt is { } at ? DirectoryStore.Ts(at) : null,
            connectedLast ? DirectoryStore.Ts(s.ConnectedAt!.Value) : s.DisconnectedAt is { } gone ? DirectoryStore.Ts(gone) : null,
            T(s.Info?.LocationId), T(s.Info?.ApMacAddress),
            DirectoryStore.Stored("," + string.Concat(s.Gateways.Select(g => g.GwId + ","))),
            T(s.Firmware.GetValueOrDefault("DISTRIB_DESCRIPTION") ?? s.Firmware.GetValueOrDefault("DISTRIB_RELEASE")),
            T(s.Protocol), T(s.Admission), seqNr, DirectoryStore.Stored(Devices.DeviceTags.Column(s.Tags)), T(s.Firmware.GetValueOrDefault("DISTRIB_RELEASE")));
    }
}

/// <summary>The projection's epoch (fencing token) and the offset stored with it.</summary>
public sealed record DirectoryFence(long Epoch, long Offset);

/// <summary>A row to write (<see cref="Row"/>) or to delete (null: the journal has no such device), and the row as it was read.</summary>
public sealed record DirectoryRepair(string DeviceId, DirectoryRow? Row, DirectoryRow? Stored);

/// <summary>
/// The reconciliation's figures: passes so far, the current or last pass (when it started and finished, devices checked,
/// rows repaired, of which missing rows added) and rows repaired over all passes.
/// </summary>
public sealed record ReconciliationFigures(long Passes, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, long Checked,
    long Repaired, long Missing, long TotalRepaired)
{
    public static readonly ReconciliationFigures None = new(0, null, null, 0, 0, 0, 0);
}

/// <summary>
/// One pass of the directory's reconciliation: every row is compared with its device's state as the journal holds it (the
/// latest snapshot and the events after it: what the entity itself recovers from, read without waking it), then every
/// device in the journal without a row is added. Rows that differ are set to the journal's state, rows of devices the
/// journal does not know are deleted — both in the projection's fenced transactions, never over a newer row. Devices
/// whose latest events the projection has not reached yet are left to it. Paced: at most
/// <see cref="DirectorySettings.ReconcileDevicesPerSecond"/>, in batches of <see cref="DirectorySettings.ReconcileBatchSize"/>.
/// </summary>
public sealed class DirectoryReconciliation(ActorSystem system, DirectoryStore store, DirectorySettings settings, IMaterializer materializer)
{
    private static readonly TimeSpan SnapshotTimeout = TimeSpan.FromSeconds(30);

    private readonly SqlReadJournal _journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(FleetNames.QueryJournal);
    private readonly IActorRef _snapshots = Akka.Persistence.Persistence.Instance.Apply(system).SnapshotStoreFor(null);

    /// <summary>Runs one pass for the projection of <paramref name="epoch"/>; its figures are stored as it goes.</summary>
    /// <exception cref="DirectoryFencedException">a newer projection owns the directory: the pass stopped</exception>
    public async Task<ReconciliationFigures> RunAsync(long epoch, CancellationToken ct)
    {
        var before = await store.ReadReconciliationAsync(ct);
        var figures = new ReconciliationFigures(before.Passes + 1, DateTimeOffset.UtcNow, null, 0, 0, 0, before.TotalRepaired);
        await store.RepairAsync(epoch, [], figures, ct);
        var batch = Math.Max(1, settings.ReconcileBatchSize);

        // 1. Every row against the journal.
        string? after = null;
        while (true)
        {
            var started = Environment.TickCount64;
            var page = await store.ReadRowPageAsync(after, batch, ct);
            if (page.Count == 0) break;
            after = page[^1].DeviceId;
            var offset = (await store.ReadFenceAsync(ct)).Offset;
            var repairs = new List<DirectoryRepair>();
            foreach (var row in page)
            {
                var truth = await ReadJournalAsync(row.DeviceId, ct);
                if (truth.LastOrdering > offset) continue; // the projection has not got there yet: its business
                if (truth.Row is { } r && !r.SameAs(row)) repairs.Add(new DirectoryRepair(row.DeviceId, r, row));
                else if (truth is { Row: null, Known: false }) repairs.Add(new DirectoryRepair(row.DeviceId, null, row));
            }
            figures = figures with { Checked = figures.Checked + page.Count };
            var changed = await store.RepairAsync(epoch, repairs, figures, ct);
            figures = figures with { Repaired = figures.Repaired + changed, TotalRepaired = figures.TotalRepaired + changed };
            await Pace(page.Count, started, ct);
        }

        // 2. Devices in the journal without a row.
        await _journal.CurrentPersistenceIds()
            .Where(id => id.StartsWith(FleetNames.PersistenceIdPrefix, StringComparison.Ordinal))
            .Select(id => id[FleetNames.PersistenceIdPrefix.Length..])
            .Grouped(batch)
            .SelectAsync(1, async next =>
            {
                ct.ThrowIfCancellationRequested();
                var started = Environment.TickCount64;
                var group = new List<string>(next);
                var rows = await store.ReadRowsAsync(group, ct);
                var offset = (await store.ReadFenceAsync(ct)).Offset;
                var repairs = new List<DirectoryRepair>();
                foreach (var id in group.Where(id => !rows.ContainsKey(id)))
                {
                    var truth = await ReadJournalAsync(id, ct);
                    if (truth.Row is { } r && truth.LastOrdering <= offset) repairs.Add(new DirectoryRepair(id, r, null));
                }
                figures = figures with { Checked = figures.Checked + group.Count - rows.Count };
                var added = await store.RepairAsync(epoch, repairs, figures, ct, missing: true);
                figures = figures with
                {
                    Repaired = figures.Repaired + added, Missing = figures.Missing + added, TotalRepaired = figures.TotalRepaired + added,
                };
                await Pace(group.Count - rows.Count, started, ct);
                return added;
            })
            .RunWith(Sink.Ignore<int>(), materializer);

        figures = figures with { FinishedAt = DateTimeOffset.UtcNow };
        await store.RepairAsync(epoch, [], figures, ct);
        return figures;
    }

    private async Task Pace(int devices, long startedTicks, CancellationToken ct)
    {
        if (settings.ReconcileDevicesPerSecond <= 0 || devices == 0) return;
        var due = TimeSpan.FromSeconds(devices / settings.ReconcileDevicesPerSecond) - TimeSpan.FromMilliseconds(Environment.TickCount64 - startedTicks);
        if (due > TimeSpan.Zero) await Task.Delay(due, ct);
    }

    /// <summary>A device as its journal holds it: the row it makes (null: no event touched the directory), whether the journal
    /// knows the device at all, and the journal position of its latest event.</summary>
    private sealed record JournalTruth(DirectoryRow? Row, bool Known, long LastOrdering);

    private async Task<JournalTruth> ReadJournalAsync(string deviceId, CancellationToken ct)
    {
        var pid = FleetNames.PersistenceIdPrefix + deviceId;
        DirectoryRow? row = null;
        long seq = 0;
        var loaded = await _snapshots.Ask<object>(new LoadSnapshot(pid, SnapshotSelectionCriteria.Latest, long.MaxValue), SnapshotTimeout, ct);
        switch (loaded)
        {
            case LoadSnapshotResult { Snapshot: { Snapshot: DeviceState s, Metadata: var m } }:
                seq = m.SequenceNr;
                if (s.Exists) row = DirectoryRow.FromState(deviceId, s, seq);
                break;
            case LoadSnapshotFailed f:
                throw new InvalidOperationException($"loading the snapshot of {pid} failed", f.Cause);
        }
        var known = seq > 0;
        long lastOrdering = 0, lastSeq = seq;
        // From the snapshot's own event on: its journal position says whether the projection has passed it.
        await _journal.CurrentEventsByPersistenceId(pid, Math.Max(seq, 0), long.MaxValue)
            .RunForeach(env =>
            {
                known = true;
                if (env.Offset is Sequence o) lastOrdering = Math.Max(lastOrdering, o.Value);
                if (env.SequenceNr <= seq) return;
                lastSeq = env.SequenceNr;
                if (env.Event is IDeviceEvent e && DirectoryStore.Affects(e)) row = (row ?? DirectoryRow.Empty(deviceId)).Apply(e);
            }, materializer);
        return new JournalTruth(row is null ? null : row with { SeqNr = lastSeq }, known, lastOrdering);
    }
}
