using Akka.Actor;
using Fleet.Server.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Fleet.Server.Tests.Integration;

/// <summary>The Akka settings appsettings.json promises are the ones the running node uses.</summary>
public sealed class AkkaSettingsTests
{
    [Fact]
    public async Task A_node_runs_with_the_journal_settings_from_appsettings()
    {
        await using var node = await Node.StartAsync();
        var config = node.App.Services.GetRequiredService<ActorSystem>().Settings.Config;

        Assert.Equal(1, config.GetInt("akka.persistence.max-concurrent-recoveries"));
        Assert.Equal(1, config.GetInt("akka.persistence.journal.sql.parallelism"));
        // A write queued behind a reconnect storm waits instead of failing (and stopping its entity).
        Assert.Equal(TimeSpan.FromSeconds(60), config.GetTimeSpan("akka.persistence.journal.sql.circuit-breaker.call-timeout"));
        Assert.Equal(TimeSpan.FromSeconds(60), config.GetTimeSpan("akka.persistence.snapshot-store.sql.circuit-breaker.call-timeout"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.0.0.1:4053")]
    [InlineData("http://fleet@10.0.0.1:4053")]
    public async Task A_seed_node_that_is_not_an_Akka_address_stops_startup_with_its_name(string seed)
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Fleet.Server.Hosting.FleetNode.CreateAsync([
            "--urls", "http://127.0.0.1:0", "--Fleet:Persistence:ConnectionString", $"Data Source={Node.NewDbPath()}",
            "--Fleet:Cluster:SeedNodes:0", seed]));
        Assert.Contains($"'{seed}'", e.Message);
        Assert.Contains("Fleet:Cluster:SeedNodes", e.Message);
    }
}
