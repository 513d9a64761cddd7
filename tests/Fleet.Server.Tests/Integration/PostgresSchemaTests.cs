using System.Net;
using System.Net.Sockets;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Npgsql;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// Nodes of a cluster start together against one empty PostgreSQL database (docker compose up, a rolling
/// deploy of a fresh cluster). Concurrent CREATE TABLE IF NOT EXISTS is not safe in PostgreSQL (it can fail
/// with 23505 on pg_type), and a node that failed there used to exit at startup.
/// </summary>
public sealed class PostgresSchemaTests
{
    [Fact]
    public async Task Many_nodes_creating_the_directory_schema_at_once_all_succeed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var db = await TestDatabase.CreateAsync();
        for (var round = 0; round < 5; round++)
        {
            // A fresh schema each round so every round races on creation, not on "already exists".
            await using (var c = new NpgsqlConnection(db.ConnectionString))
            {
                await c.OpenAsync(ct);
                await using var drop = new NpgsqlCommand("DROP TABLE IF EXISTS device_summary, device_summary_offset, device_summary_reconcile", c);
                await drop.ExecuteNonQueryAsync(ct);
            }
            var stores = Enumerable.Range(0, 12).Select(_ => new DirectoryStore(PersistenceProvider.PostgreSql, db.ConnectionString));
            await Task.WhenAll(stores.Select(s => Task.Run(() => s.InitializeAsync(ct), ct)));

            var store = new DirectoryStore(PersistenceProvider.PostgreSql, db.ConnectionString);
            Assert.Equal(0, await store.ReadOffsetAsync(ct));
        }
    }

    [Fact]
    public async Task A_node_waits_for_a_database_that_is_still_starting()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var db = await TestDatabase.CreateAsync();
        var real = new NpgsqlConnectionStringBuilder(db.ConnectionString);
        // Stands in for PostgreSQL during its start: the first connections are cut at once.
        await using var proxy = new StartingDatabase(real.Host!, real.Port, refuseFirst: 8);
        var viaProxy = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Host = "127.0.0.1", Port = proxy.Port }.ToString();

        await using var app = await FleetNode.CreateAsync([
            "--urls", "http://127.0.0.1:0", "--Fleet:Cluster:Port", "0", "--Logging:LogLevel:Default", "Warning",
            "--Fleet:Persistence:Provider", "PostgreSql", "--Fleet:Persistence:ConnectionString", viaProxy]);

        Assert.Equal(8, proxy.Refused);
        Assert.Equal(0, await new DirectoryStore(PersistenceProvider.PostgreSql, db.ConnectionString).ReadOffsetAsync(ct));
    }

    /// <summary>A TCP forwarder to the real database that drops its first connections unanswered.</summary>
    private sealed class StartingDatabase : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private int _refused;
        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
        public int Refused => Volatile.Read(ref _refused);

        public StartingDatabase(string host, int port, int refuseFirst)
        {
            _listener.Start();
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    if (_refused < refuseFirst)
                    {
                        Interlocked.Increment(ref _refused);
                        client.Dispose();
                        continue;
                    }
                    _ = Forward(client, host, port);
                }
            });
        }

        private async Task Forward(TcpClient client, string host, int port)
        {
            using (client)
            using (var upstream = new TcpClient())
            {
                await upstream.ConnectAsync(host, port, _stop.Token);
                var a = client.GetStream().CopyToAsync(upstream.GetStream(), _stop.Token);
                var b = upstream.GetStream().CopyToAsync(client.GetStream(), _stop.Token);
                try { await Task.WhenAny(a, b); } catch (OperationCanceledException) { }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            try { await _loop; } catch (OperationCanceledException) { } catch (SocketException) { }
        }
    }
}
