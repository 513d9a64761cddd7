using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Fleet.Server.Devices;
using Fleet.Server.Tests.Support;
using Fleet.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>
/// Sharding stops entities for a handoff (after every rolling restart) and for passivation. An entity stopped while
/// its journal write is pending must still finish it and answer: an accepted command answered 504 is retried by the
/// operator and runs twice.
/// </summary>
public sealed class HandoffTests(ITestOutputHelper output)
{
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private void Log(string what) => output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0}s] {what}");

    [Fact]
    public async Task A_handoff_during_a_slow_journal_write_still_answers_the_accepted_command()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var db = await TestDatabase.CreateAsync();
        await using var node = await Node.StartAsync(null, testKeys: true, configure: null,
            "--Fleet:Persistence:Provider", "PostgreSql", "--Fleet:Persistence:ConnectionString", db.ConnectionString);
        await using var router = await PretendRouter.ConnectAsync(node.WebSocketUri(), "slow-1");

        // A slow journal, for real: another session holds the journal table so that the entity's insert waits.
        await using var holder = new NpgsqlConnection(db.ConnectionString);
        await holder.OpenAsync(ct);
        await using var tx = await holder.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand("LOCK TABLE journal IN EXCLUSIVE MODE", holder, tx))
            await lockCmd.ExecuteNonQueryAsync(ct);

        Log("journal locked");
        var post = node.Post("/api/v1/devices/slow-1/commands", """{"type":"get_firmware_info"}""");
        await Eventually.True(async () => await InsertsWaiting(db.ConnectionString, ct) > 0, "the command's journal write waits on the lock");

        Log("insert waiting");
        // The region hands off its shards: each entity gets sharding's hand-off stop message now, mid-write.
        var system = node.App.Services.GetRequiredService<ActorSystem>();
        var entity = (await system.ActorSelection("/system/sharding/device/*/slow-1").Ask<ActorIdentity>(new Identify(1), TimeSpan.FromSeconds(10), ct)).Subject;
        Assert.NotNull(entity);
        var entityGone = entity.WatchAsync(ct);
        node.App.Services.GetRequiredService<ActorRegistry>().Get<DeviceEntity>().Tell(GracefulShutdown.Instance);
        // An entity that stops only after its write is still there; one killed mid-write is gone at once (the wait
        // only gives that defect its chance to show: the fixed entity cannot stop before the commit below).
        var stoppedEarly = await Task.WhenAny(entityGone, Task.Delay(TimeSpan.FromSeconds(2), ct)) == entityGone;
        Log($"handoff begun; entity stopped mid-write: {stoppedEarly}");
        await tx.CommitAsync(ct);
        var (status, body, _) = await post.WaitAsync(TimeSpan.FromSeconds(90), ct);
        Log($"post: {status}");
        Assert.False(stoppedEarly, "the entity stopped for the handoff while its write was still pending");
        Assert.True(status is 201 or 202, $"accepted command answered {status}: {body}");
        Assert.True(await entityGone.WaitAsync(TimeSpan.FromSeconds(30), ct), "the entity stops for the handoff once its write is done");
        Assert.Equal(1, await CommandEventsIn(db.ConnectionString, ct));
    }

    private static async Task<long> InsertsWaiting(string cs, CancellationToken ct)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%INSERT%journal%'", c);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static async Task<long> CommandEventsIn(string cs, CancellationToken ct)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT COUNT(*) FROM journal WHERE persistence_id = 'device-slow-1' AND manifest = 'cq2'", c);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
