using Npgsql;

namespace Fleet.Testing;

/// <summary>
/// A database of the test's own on the PostgreSQL named by FLEET_TEST_POSTGRES (tests/run.sh starts
/// PostgreSQL and sets it), dropped afterwards. Linked into the test projects that need PostgreSQL.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string Variable = "FLEET_TEST_POSTGRES";

    private readonly string _admin;
    public string Name { get; }
    public string ConnectionString { get; }

    private TestDatabase(string admin, string name)
    {
        _admin = admin;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true }.ToString();
    }

    public static async Task<TestDatabase> CreateAsync()
    {
        var admin = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(admin))
            throw new InvalidOperationException(
                $"{Variable} is not set. The tests that use PostgreSQL need a superuser connection, e.g. " +
                $"{Variable}=\"Host=127.0.0.1;Port=5432;Username=fleet;Password=fleet;Database=postgres\"; tests/run.sh starts PostgreSQL and sets it.");
        var name = "fleet_" + Guid.NewGuid().ToString("N")[..12];
        await using var c = new NpgsqlConnection(admin);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
        await cmd.ExecuteNonQueryAsync();
        return new TestDatabase(admin, name);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await using var c = new NpgsqlConnection(_admin);
            await c.OpenAsync();
            // WITH (FORCE): nodes that were killed may leave sessions behind for a moment.
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", c);
            await cmd.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // best effort: a leftover test database is harmless
        }
    }
}
