using System.Data.Common;
using System.Globalization;
using System.Net;
using Fleet.Protocol;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;

namespace Fleet.Server.Clients;

/// <summary>
/// One router's client, as the client plane shows it: the router's own client_ip and gw_id for it (what a kickoff on
/// that router needs). <see cref="ExpiresAt"/> null: in the router's client list (an auth); set: on a pass only, until then.
/// </summary>
public sealed record ClientLocation(string DeviceId, string ClientMac, string? ClientIp, string? GwId, DateTimeOffset AuthorizedAt,
    DateTimeOffset? ExpiresAt);

/// <summary>A router a client kickoff addressed, as remembered under the request's Idempotency-Key.</summary>
public sealed record KickoffTarget(string DeviceId, string? ClientIp, string? GwId);

/// <summary>
/// The client plane: where each client is, fleet-wide. The client_location table beside the directory (same database,
/// so every node reads it) holds one row per (router, client) as the router's entity holds it in
/// <see cref="DeviceState.Clients"/>. Only the directory's projection writes it, with <see cref="ApplyAsync"/>, in the
/// transaction of the directory's batch, so it is exactly as far behind the entities as the directory is.
/// <para>
/// The client_kickoff table remembers which routers a kickoff carrying an Idempotency-Key addressed: a retry addresses
/// the same routers even once the first kickoff has taken the client off their lists (and so out of client_location).
/// </para>
/// </summary>
public sealed class ClientStore(DirectoryStore store, TimeProvider clock) : IStoreTables, Jobs.IClientPlaces
{
    /// <summary>Most rows one query returns: an IP from a private LAN range can be on every router of a fleet.</summary>
    public const int MaxItems = 1000;

    /// <summary>How long the routers a kickoff with an Idempotency-Key addressed are remembered.</summary>
    public static readonly TimeSpan KickoffKeyRetention = TimeSpan.FromHours(24);

    public async Task CreateAsync(DbConnection c, DbTransaction tx, PersistenceProvider provider, CancellationToken ct)
    {
        await DirectoryStore.Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS client_location (
              device_id TEXT NOT NULL, client_mac TEXT NOT NULL, client_ip TEXT, gw_id TEXT,
              authorized_at TEXT NOT NULL, expires_at TEXT,
              PRIMARY KEY (device_id, client_mac));
            """);
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS client_location_mac ON client_location (client_mac);");
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS client_location_ip ON client_location (client_ip);");
        await DirectoryStore.Exec(c, tx, """
            CREATE TABLE IF NOT EXISTS client_kickoff (
              request_key TEXT NOT NULL, device_id TEXT NOT NULL, client_mac TEXT NOT NULL, client_ip TEXT, gw_id TEXT,
              created_at TEXT NOT NULL,
              PRIMARY KEY (request_key, device_id));
            """);
        await DirectoryStore.Exec(c, tx, "CREATE INDEX IF NOT EXISTS client_kickoff_created ON client_kickoff (created_at);");
    }

    // ------------------------------------------------------------------ the projection's side

    /// <summary>Whether an event changes a router's client list (and so client_location).</summary>
    public static bool Affects(IDeviceEvent e) => e is ClientAuthorized or ClientRemoved or ClientsCleared;

    /// <summary>
    /// Applies one device event to client_location, the way <see cref="DeviceState.Apply"/> applies it to the entity's
    /// clients, inside the directory's batch transaction (<see cref="DirectoryStore.ApplyAsync"/>). A batch applied again
    /// (a crash before its offset was stored) yields the same rows: each statement sets a row whole, deletes it, or does
    /// one of those unless the client is authorised (no expiry), which it leaves as it is. A run of such steps is, per
    /// row, again either a constant or "authorised rows stay, any other becomes one fixed value": running it a second
    /// time changes nothing.
    /// </summary>
    public static async Task ApplyAsync(DbConnection c, DbTransaction tx, DirectoryEvent e)
    {
        switch (e.Event)
        {
            case ClientAuthorized { Client: var client }:
                // ClientState.Merge: a pass recorded by an earlier release (ExpiresAt, no PassUntil) beside an
                // authorisation leaves the authorisation as it is; anything else replaces the row.
                var legacyPassBeside = client is { ExpiresAt: not null, PassUntil: null };
                await DirectoryStore.Exec(c, tx,
                    "INSERT INTO client_location (device_id, client_mac, client_ip, gw_id, authorized_at, expires_at) " +
                    "VALUES (@d, @m, @ip, @gw, @at, @exp) " +
                    "ON CONFLICT (device_id, client_mac) DO UPDATE SET client_ip = excluded.client_ip, gw_id = excluded.gw_id, " +
                    "authorized_at = excluded.authorized_at, expires_at = excluded.expires_at" +
                    (legacyPassBeside ? " WHERE client_location.expires_at IS NOT NULL" : ""),
                    ("d", e.DeviceId), ("m", NormalizeMac(client.ClientMac)), ("ip", NormalizeIp(client.ClientIp)), ("gw", client.GwId),
                    ("at", DirectoryStore.Ts(client.AuthorizedAt)), ("exp", client.ExpiresAt is { } x ? DirectoryStore.Ts(x) : null));
                break;
            // Earlier releases removed an authorised client when a pass given to it ended; the router kept it.
            case ClientRemoved { Reason: ClientRemoved.PassExpired } r:
                await DirectoryStore.Exec(c, tx,
                    "DELETE FROM client_location WHERE device_id = @d AND client_mac = @m AND expires_at IS NOT NULL",
                    ("d", e.DeviceId), ("m", NormalizeMac(r.ClientMac)));
                break;
            case ClientRemoved r:
                await DirectoryStore.Exec(c, tx, "DELETE FROM client_location WHERE device_id = @d AND client_mac = @m",
                    ("d", e.DeviceId), ("m", NormalizeMac(r.ClientMac)));
                break;
            // The router restarted: its passes are gone, its authorised clients too unless it restores its list.
            case ClientsCleared { KeepAuthorized: true }:
                await DirectoryStore.Exec(c, tx, "DELETE FROM client_location WHERE device_id = @d AND expires_at IS NOT NULL",
                    ("d", e.DeviceId));
                break;
            case ClientsCleared:
                await DirectoryStore.Exec(c, tx, "DELETE FROM client_location WHERE device_id = @d", ("d", e.DeviceId));
                break;
        }
    }

    /// <summary>MACs are kept lower-case with ':' (the form requests are normalised to).</summary>
    public static string NormalizeMac(string mac) => FieldRules.IsMac(mac) ? FieldRules.NormalizeMac(mac) : mac.ToLowerInvariant();

    /// <summary>IPv6 in its canonical text (lower case, zeros compressed) so that a query finds it however it was written.</summary>
    public static string? NormalizeIp(string? ip) =>
        FieldRules.IsIPv6(ip) && IPAddress.TryParse(ip, out var a) ? a.ToString() : ip;

    // ------------------------------------------------------------------ queries

    /// <summary>The routers that hold a client, by MAC, by IP, or both (both must match), in device_id order; at most <paramref name="limit"/>.</summary>
    /// <summary>For a job's selection by client_mac: the routers that hold the client, with its address and gateway there.</summary>
    public async Task<IReadOnlyList<Jobs.ClientPlace>> WhereAsync(string clientMac, CancellationToken ct) =>
        (await FindAsync(clientMac, null, ct)).Select(l => new Jobs.ClientPlace(l.DeviceId, l.GwId, l.ClientIp)).ToList();

    public async Task<IReadOnlyList<ClientLocation>> FindAsync(string? mac, string? ip, CancellationToken ct, int limit = MaxItems)
    {
        if (mac is null && ip is null) throw new ArgumentException("a MAC or an IP is required");
        var where = new List<string>();
        var args = new List<(string, object?)>();
        if (mac is not null) { where.Add("client_mac = @m"); args.Add(("m", NormalizeMac(mac))); }
        if (ip is not null) { where.Add("client_ip = @ip"); args.Add(("ip", NormalizeIp(ip))); }
        args.Add(("limit", limit));
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null,
            "SELECT device_id, client_mac, client_ip, gw_id, authorized_at, expires_at FROM client_location WHERE "
            + string.Join(" AND ", where) + " ORDER BY device_id, client_mac LIMIT @limit", args.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var items = new List<ClientLocation>();
        while (await r.ReadAsync(ct))
            items.Add(new ClientLocation(r.GetString(0), r.GetString(1), Str(r, 2), Str(r, 3), Time(r, 4)!.Value, Time(r, 5)));
        return items;
    }

    /// <summary>
    /// The routers a kickoff under <paramref name="requestKey"/> addresses: those remembered for it, or, the first time,
    /// <paramref name="targets"/>, remembered from now on. Two first attempts at once both end up with the union of what
    /// they found (each insert keeps the rows already there).
    /// </summary>
    public async Task<IReadOnlyList<KickoffTarget>> KickoffTargetsAsync(string requestKey, string clientMac,
        Func<Task<IReadOnlyList<KickoffTarget>>> targets, CancellationToken ct)
    {
        var remembered = await ReadKickoffAsync(requestKey, ct);
        if (remembered.Count > 0) return remembered;
        var found = await targets();
        if (found.Count == 0) return found;
        var now = clock.GetUtcNow();
        await using (var c = await store.OpenAsync(ct))
        {
            await using var tx = await c.BeginTransactionAsync(ct);
            await DirectoryStore.Exec(c, tx, "DELETE FROM client_kickoff WHERE created_at < @before",
                ("before", DirectoryStore.Ts(now - KickoffKeyRetention)));
            foreach (var t in found)
                await DirectoryStore.Exec(c, tx,
                    "INSERT INTO client_kickoff (request_key, device_id, client_mac, client_ip, gw_id, created_at) " +
                    "VALUES (@k, @d, @m, @ip, @gw, @at) ON CONFLICT (request_key, device_id) DO NOTHING",
                    ("k", requestKey), ("d", t.DeviceId), ("m", clientMac), ("ip", t.ClientIp), ("gw", t.GwId), ("at", DirectoryStore.Ts(now)));
            await tx.CommitAsync(ct);
        }
        return await ReadKickoffAsync(requestKey, ct);
    }

    private async Task<IReadOnlyList<KickoffTarget>> ReadKickoffAsync(string requestKey, CancellationToken ct)
    {
        await using var c = await store.OpenAsync(ct);
        await using var cmd = DirectoryStore.Command(c, null,
            "SELECT device_id, client_ip, gw_id FROM client_kickoff WHERE request_key = @k AND created_at >= @since ORDER BY device_id",
            ("k", requestKey), ("since", DirectoryStore.Ts(clock.GetUtcNow() - KickoffKeyRetention)));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var items = new List<KickoffTarget>();
        while (await r.ReadAsync(ct)) items.Add(new KickoffTarget(r.GetString(0), Str(r, 1), Str(r, 2)));
        return items;
    }

    private static string? Str(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static DateTimeOffset? Time(DbDataReader r, int i) =>
        r.IsDBNull(i) ? null : DateTimeOffset.Parse(r.GetString(i), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
