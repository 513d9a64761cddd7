using System.Collections.Concurrent;
using Fleet.Protocol;
using Xunit;

namespace Fleet.Simulator.Tests;

public sealed class SimulatorSmokeTests
{
    private const int Devices = 200;

    /// <summary>Requests sent to each device right after its connect; the ones that expect an answer are counted.</summary>
    private static IControllerRequest[] Script(string deviceId) =>
    [
        new AuthRequest { ReqId = ReqId.Of("1"), Token = "tok", ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-1" },
        new KickoffRequest { ReqId = ReqId.Of("2"), ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:01", DeviceId = deviceId, GwId = "gw-1" },
        new KickoffRequest { ReqId = ReqId.Of("3"), ClientIp = "192.168.1.24", ClientMac = "aa:bb:cc:dd:ee:02", DeviceId = deviceId, GwId = "gw-1" },
        new TmpPassRequest { ReqId = ReqId.Of("4"), ClientMac = "aa:bb:cc:dd:ee:03", Timeout = 60 },
        new SimpleRequest { ReqId = new ReqId("5", true), Type = "get_firmware_info" },
        new FirmwareUpgradeRequest { ReqId = ReqId.Of("6"), Url = "http://fw.example.com/x.bin" },
    ];

    /// <summary>The answer types the script expects, in order (seed-era and 2025 firmware alike).</summary>
    private static readonly string[] ExpectedAnswers = ["kickoff_response", "kickoff_error", "firmware_info_response", "firmware_upgrade_response"];

    /// <summary>
    /// A controller that answers heartbeats and sends <see cref="Script"/> after each connect (after the
    /// second, when the first is answered with reboot_device); <paramref name="scripted"/> collects the
    /// devices that were sent the script.
    /// </summary>
    private static Task<FakeController> Controller(ConcurrentDictionary<string, byte> scripted, bool rebootOnFirstConnect = false) =>
        FakeController.StartAsync(new FakeControllerOptions
        {
            AnswerHeartbeats = true,
            OnConnect = async (socket, connect, n) =>
            {
                if (rebootOnFirstConnect && n == 1)
                {
                    await socket.SendAsync(new SimpleRequest { Type = "reboot_device" });
                    return;
                }
                scripted[connect.DeviceId!] = 0;
                foreach (var request in Script(connect.DeviceId!)) await socket.SendAsync(request);
            },
        });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_hundred_devices_connect_heartbeat_and_answer_every_command(bool seedEra)
    {
        var scripted = new ConcurrentDictionary<string, byte>();
        await using var controller = await Controller(scripted);
        using var runner = new SimulatorRunner(new SimulatorOptions
        {
            Url = controller.Url, Devices = Devices, HeartbeatSeconds = 0.5, Ramp = 2000, SeedEra = seedEra,
            DevicePrefix = seedEra ? "seed" : "up", StatsSeconds = 0, Reconnect = false,
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);

        var expected = ExpectedAnswers.Length;
        await Eventually.True(() => scripted.Count == Devices && controller.Answers.Values.Sum(q => q.Count) == Devices * expected
                          && runner.Stats.RepliesReceived >= Devices,
            "every device connected, answered the script and got a heartbeat reply", TimeSpan.FromSeconds(30),
            () => $"{scripted.Count} connected, {controller.Answers.Values.Sum(q => q.Count)} answers, {runner.Stats.RepliesReceived} heartbeat replies");
        Assert.Equal(Devices, runner.Stats.Connected);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);

        Assert.Equal(0, controller.Undecodable);
        Assert.Equal(0, runner.Stats.ConnectFailures);
        Assert.Equal(0, runner.Stats.SendErrors);
        Assert.Equal(Devices * Script("x").Length, runner.Stats.CommandsReceived);
        Assert.Equal(Devices * expected, runner.Stats.CommandsAnswered);
        Assert.True(runner.Stats.ReplyLatency.Count > 0);
        foreach (var (device, answers) in controller.Answers)
        {
            var list = answers.ToList();
            Assert.Equal(ExpectedAnswers, list.Select(a => a.Type));
            var reqIds = list.Select(a => a.ReqId).ToList();
            if (seedEra) Assert.All(reqIds, id => Assert.Null(id));
            else Assert.Equal([ReqId.Of("2"), ReqId.Of("3"), new ReqId("5", true), ReqId.Of("6")], reqIds.Select(id => id!.Value));
            Assert.StartsWith(seedEra ? "seed-" : "up-", device);
        }
    }

    [Fact]
    public async Task Devices_told_to_reboot_go_down_without_answering_and_reconnect()
    {
        var scripted = new ConcurrentDictionary<string, byte>();
        await using var controller = await Controller(scripted, rebootOnFirstConnect: true);
        using var runner = new SimulatorRunner(new SimulatorOptions
        {
            Url = controller.Url, Devices = 5, HeartbeatSeconds = 30, Ramp = 1000, StatsSeconds = 0,
            ReconnectDelay = TimeSpan.FromMilliseconds(100),
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);

        await Eventually.True(() => scripted.Count == 5 && controller.Answers.Values.Sum(q => q.Count) == 5 * ExpectedAnswers.Length,
            "five devices rebooted, reconnected and answered the script", TimeSpan.FromSeconds(15), () => $"{scripted.Count} reconnected");
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
        await using var controller = await Controller(new ConcurrentDictionary<string, byte>());
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

    [Fact]
    public async Task A_device_driven_frame_by_frame_answers_as_the_firmware_and_reconnects_after_a_close()
    {
        await using var controller = await FakeController.StartAsync();
        using var runner = new SimulatorRunner(new SimulatorOptions
        {
            Url = controller.Url, Devices = 1, HeartbeatSeconds = 30, Ramp = 1000, StatsSeconds = 0,
            ReconnectDelay = TimeSpan.FromMilliseconds(100),
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);

        var device = await controller.NextConnectionAsync();
        var connect = await device.ExpectAsync("connect");
        var id = connect.GetProperty("device_id").GetString()!;
        await device.SendAsync("""{"type":"kickoff","req_id":17,"client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:01","device_id":"other","gw_id":"gw-1"}""");
        var error = await device.ExpectAsync("kickoff_error");
        Assert.Equal(KickoffError.ClientNotFound, error.GetProperty("error").GetString()); // the client first, then device_id
        Assert.Equal(17, error.GetProperty("req_id").GetInt32());
        Assert.Equal(["connect", "kickoff_error"], device.Types);
        Assert.Equal(id, device.DeviceId);

        await device.CloseAsync();
        var again = await controller.NextConnectionAsync();
        await again.ExpectAsync("connect");
        Assert.Equal(2, controller.Connections);
        Assert.Equal(2, controller.Connects[id]);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
    }
}
