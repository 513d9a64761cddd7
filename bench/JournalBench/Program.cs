// The bare ceiling for journal writes: a batched INSERT loop into a table shaped like
// Akka.Persistence.Sql's journal, on SQLite (WAL) or PostgreSQL, N rows per transaction.
//   JournalBench insert sqlite "Data Source=/tmp/bare.db" [seconds] [batch]
//   JournalBench insert pg "Host=127.0.0.1;Username=postgres;Password=postgres;Database=fleet_bench" [seconds] [batch]
//   JournalBench count sqlite|pg "<connection string>" [table]   (rows in the node's journal, for rate sampling)
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

if (args.Length < 3) { Console.Error.WriteLine("usage: JournalBench insert|count sqlite|pg <connection string> [seconds|table] [batch]"); return 2; }
var (mode, db, cs) = (args[0], args[1], args[2]);
DbConnection Open()
{
    DbConnection c = db == "pg" ? new NpgsqlConnection(cs) : new SqliteConnection(cs);
    c.Open();
    return c;
}
using var conn = Open();
void Exec(string sql) { using var cmd = conn.CreateCommand(); cmd.CommandText = sql; cmd.ExecuteNonQuery(); }

if (mode == "count")
{
    var table = args.Length > 3 ? args[3] : "journal";
    using var cmd = conn.CreateCommand();
    cmd.CommandText = $"SELECT COUNT(*) FROM {table}";
    Console.WriteLine(Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture));
    return 0;
}

var seconds = args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 10;
var batch = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 100;
if (db == "pg")
{
    Exec("DROP TABLE IF EXISTS bare_journal");
    Exec("""
        CREATE TABLE bare_journal (ordering BIGSERIAL PRIMARY KEY, persistence_id VARCHAR(255) NOT NULL, sequence_number BIGINT NOT NULL,
          deleted BOOLEAN NOT NULL DEFAULT FALSE, created BIGINT NOT NULL, manifest VARCHAR(500) NOT NULL, payload BYTEA NOT NULL,
          identifier INT, writer_uuid VARCHAR(128), UNIQUE (persistence_id, sequence_number))
        """);
}
else
{
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=NORMAL");
    Exec("DROP TABLE IF EXISTS bare_journal");
    Exec("""
        CREATE TABLE bare_journal (ordering INTEGER PRIMARY KEY AUTOINCREMENT, persistence_id TEXT NOT NULL, sequence_number INTEGER NOT NULL,
          deleted INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, manifest TEXT NOT NULL, payload BLOB NOT NULL,
          identifier INTEGER, writer_uuid TEXT, UNIQUE (persistence_id, sequence_number))
        """);
}

var payload = new byte[160];
new Random(3).NextBytes(payload);
var seq = new Dictionary<int, long>();
var sw = Stopwatch.StartNew();
long rows = 0, batches = 0;
var writer = Guid.NewGuid().ToString();
var multi = Environment.GetEnvironmentVariable("MULTI_ROW") == "1";
while (sw.Elapsed.TotalSeconds < seconds && multi)
{
    // One statement per batch: INSERT … VALUES (…), (…), … — what a batching journal can do at best.
    using var tx = conn.BeginTransaction();
    using var cmd = conn.CreateCommand();
    cmd.Transaction = tx;
    var sql = new System.Text.StringBuilder("INSERT INTO bare_journal (persistence_id, sequence_number, created, manifest, payload, identifier, writer_uuid) VALUES ");
    for (var i = 0; i < batch; i++)
    {
        var entity = (int)((rows + i) % 10_000);
        var next = seq.TryGetValue(entity, out var n) ? n + 1 : 1;
        seq[entity] = next;
        sql.Append(i == 0 ? "" : ",").Append(CultureInfo.InvariantCulture, $"(@p{i}, @s{i}, @c{i}, 'gateway-changed', @b, 1, @w)");
        void Add(string name, object value) { var x = cmd.CreateParameter(); x.ParameterName = name; x.Value = value; cmd.Parameters.Add(x); }
        Add($"@p{i}", $"device-sim-{entity:D6}");
        Add($"@s{i}", next);
        Add($"@c{i}", DateTime.UtcNow.Ticks);
    }
    { var x = cmd.CreateParameter(); x.ParameterName = "@b"; x.Value = payload; cmd.Parameters.Add(x); }
    { var x = cmd.CreateParameter(); x.ParameterName = "@w"; x.Value = writer; cmd.Parameters.Add(x); }
    cmd.CommandText = sql.ToString();
    cmd.ExecuteNonQuery();
    tx.Commit();
    rows += batch;
    batches++;
}
while (sw.Elapsed.TotalSeconds < seconds && !multi)
{
    using var tx = conn.BeginTransaction();
    using var cmd = conn.CreateCommand();
    cmd.Transaction = tx;
    cmd.CommandText = "INSERT INTO bare_journal (persistence_id, sequence_number, created, manifest, payload, identifier, writer_uuid) VALUES (@p, @s, @c, @m, @b, 1, @w)";
    var p = cmd.CreateParameter(); p.ParameterName = "@p"; p.Value = ""; cmd.Parameters.Add(p);
    var s = cmd.CreateParameter(); s.ParameterName = "@s"; s.Value = 0L; cmd.Parameters.Add(s);
    var c = cmd.CreateParameter(); c.ParameterName = "@c"; c.Value = 0L; cmd.Parameters.Add(c);
    var m = cmd.CreateParameter(); m.ParameterName = "@m"; m.Value = "gateway-changed"; cmd.Parameters.Add(m);
    var b = cmd.CreateParameter(); b.ParameterName = "@b"; b.Value = payload; cmd.Parameters.Add(b);
    var w = cmd.CreateParameter(); w.ParameterName = "@w"; w.Value = writer; cmd.Parameters.Add(w);
    cmd.Prepare();
    for (var i = 0; i < batch; i++)
    {
        var entity = (int)((rows + i) % 10_000);
        var next = seq.TryGetValue(entity, out var n) ? n + 1 : 1;
        seq[entity] = next;
        p.Value = $"device-sim-{entity:D6}";
        s.Value = next;
        c.Value = DateTime.UtcNow.Ticks;
        cmd.ExecuteNonQuery();
    }
    tx.Commit();
    rows += batch;
    batches++;
}
var rate = rows / sw.Elapsed.TotalSeconds;
// One line of JSON: bench/scripts/journal.sh splices it into its result line.
Console.WriteLine(new System.Text.Json.Nodes.JsonObject
{
    ["db"] = db,
    ["mode"] = multi ? "multi-row" : "row-per-statement",
    ["batch"] = batch,
    ["rows"] = rows,
    ["seconds"] = Math.Round(sw.Elapsed.TotalSeconds, 2),
    ["rows_per_s"] = (long)Math.Round(rate),
}.ToJsonString());
Exec("DROP TABLE IF EXISTS bare_journal");
return 0;
