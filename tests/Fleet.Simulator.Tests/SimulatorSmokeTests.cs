using Fleet.Protocol;
using Xunit;

namespace Fleet.Simulator.Tests;

public sealed class SimulatorSmokeTests
{
    private const int Devices = 200;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_hundred_devices_connect_heartbeat_and_answer_every_command(bool seedEra)
    {
        await using var controller = await FakeController.StartAsync();
        using var runner = new SimulatorRunner(new SimulatorOptions
        {
            Url = controller.Url, Devices = Devices, HeartbeatSeconds = 0.5, Ramp = 2000, SeedEra = seedEra,
            DevicePrefix = seedEra ? "seed" : "up", StatsSeconds = 0, Reconnect = false,
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);

        var expected = FakeController.ExpectedAnswers.Length;
        await Eventually.True(() => controller.Connected.Count == Devices && controller.Answers.Values.Sum(q => q.Count) == Devices * expected
                          && runner.Stats.RepliesReceived >= Devices,
            "every device connected, answered the script and got a heartbeat reply", TimeSpan.FromSeconds(30),
            () => $"{controller.Connected.Count} connected, {controller.Answers.Values.Sum(q => q.Count)} answers, {runner.Stats.RepliesReceived} heartbeat replies");
        Assert.Equal(Devices, runner.Stats.Connected);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);

        Assert.Equal(0, controller.Undecodable);
        Assert.Equal(0, runner.Stats.ConnectFailures);
        Assert.Equal(0, runner.Stats.SendErrors);
        Assert.Equal(Devices * FakeController.Script("x").Length, runner.Stats.CommandsReceived);
        Assert.Equal(Devices * expected, runner.Stats.CommandsAnswered);
        Assert.True(runner.Stats.ReplyLatency.Count > 0);
        foreach (var (device, answers) in controller.Answers)
        {
            var list = answers.ToList();
            Assert.Equal(FakeController.ExpectedAnswers, list.Select(a => a.Type));
            var reqIds = list.Cast<IAnswerFrame>().Select(a => a.ReqId).ToList();
            if (seedEra) Assert.All(reqIds, id => Assert.Null(id));
            else Assert.Equal([ReqId.Of("2"), ReqId.Of("3"), new ReqId("5", true), ReqId.Of("6")], reqIds.Select(id => id!.Value));
            Assert.StartsWith(seedEra ? "seed-" : "up-", device);
        }
    }

    [Fact]
    public async Task Devices_told_to_reboot_go_down_without_answering_and_reconnect()
    {
        await using var controller = await FakeController.StartAsync(rebootOnFirstConnect: true);
        using var runner = new SimulatorRunner(new SimulatorOptions
        {
            Url = controller.Url, Devices = 5, HeartbeatSeconds = 30, Ramp = 1000, StatsSeconds = 0,
            ReconnectDelay = TimeSpan.FromMilliseconds(100),
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);

        await Eventually.True(() => controller.Connected.Count == 5 && controller.Answers.Values.Sum(q => q.Count) == 5 * FakeController.ExpectedAnswers.Length,
            "five devices rebooted, reconnected and answered the script", TimeSpan.FromSeconds(15), () => $"{controller.Connected.Count} reconnected");
        Assert.All(controller.Connects.Values, n => Assert.Equal(2, n));
        Assert.Equal(5, runner.Stats.Reboots);
        Assert.Equal(5 * 3, runner.Stats.OneWayReceived); // reboot_device, then auth and tmp_pass, per device

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
        Assert.Equal(0, runner.Stats.Connected);
        Assert.Equal(10, runner.Stats.Disconnects);
    }

    [Fact]
    public async Task Connections_are_spread_over_the_chosen_loopback_source_addresses()
    {
        await using var controller = await FakeController.StartAsync();
        using var runner = new SimulatorRunner(new SimulatorOptions
        {
            Url = controller.Url, Devices = 30, HeartbeatSeconds = 30, Ramp = 1000, StatsSeconds = 0,
            SourceAddresses = 3, SourceAddressBase = 2,
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);
        await runner.WaitConnectedAsync(30, TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);

        Assert.Equal(0, runner.Stats.ConnectFailures);
        Assert.Equal(new Dictionary<string, int> { ["127.0.0.2"] = 10, ["127.0.0.3"] = 10, ["127.0.0.4"] = 10 },
            controller.RemoteAddresses.OrderBy(p => p.Key).ToDictionary());
    }
}
