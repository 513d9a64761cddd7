using System.Collections.Concurrent;
using Fleet.Protocol;
using Xunit;

namespace Fleet.Simulator.Tests;

/// <summary>
/// The simulator against the FakeController, every firmware era reading like the real client. The
/// controller paces its frames as the firmware's reader needs (one at a time: it waits until the router
/// has read each before sending the next), so nothing may be lost.
/// </summary>
public sealed class SimulatorSmokeTests
{
    /// <summary>Requests sent to each device right after its connect; the ones that expect an answer are counted.</summary>
    private static IControllerRequest[] Script(string deviceId) =>
    [
        new AuthRequest { ReqId = ReqId.Of("1"), Token = "tok", ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-1", OnceAuth = false },
        new KickoffRequest { ReqId = ReqId.Of("2"), ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:01", DeviceId = deviceId, GwId = "gw-1" },
        new KickoffRequest { ReqId = ReqId.Of("3"), ClientIp = "192.168.1.24", ClientMac = "aa:bb:cc:dd:ee:02", DeviceId = deviceId, GwId = "gw-1" },
        new TmpPassRequest { ReqId = ReqId.Of("4"), ClientMac = "aa:bb:cc:dd:ee:03", Timeout = 60 },
        new SimpleRequest { ReqId = new ReqId("5", true), Type = "get_firmware_info" },
        new FirmwareUpgradeRequest { ReqId = ReqId.Of("6"), Url = "http://fw.example.com/x.bin" },
    ];

    /// <summary>The answers each era gives to the script, in order: type, and whether it reports an error.</summary>
    private static (string Type, bool Error)[] ExpectedAnswers(FirmwareEra era) => era == FirmwareEra.V9
        ?
        [
            ("auth_response", false), ("kickoff_response", false), ("kickoff_response", true), ("tmp_pass_response", false),
            ("firmware_info_response", false), ("firmware_upgrade_response", false),
        ]
        : [("kickoff_response", false), ("kickoff_error", true), ("firmware_info_response", false), ("firmware_upgrade_response", false)];

    private static string[] AnsweredIds(FirmwareEra era) => era == FirmwareEra.V9 ? ["1", "2", "3", "4", "5", "6"] : ["2", "3", "5", "6"];

    /// <summary>
    /// A controller that answers every report, sends <see cref="Script"/> after each connect (after the second,
    /// when the first is answered with reboot_device), and paces every frame on what the router has read.
    /// </summary>
    private static Task<FakeController> Controller(ConcurrentDictionary<string, byte> scripted, Func<SimulatorRunner> runner, bool rebootOnFirstConnect = false) =>
        FakeController.StartAsync(new FakeControllerOptions
        {
            AnswerHeartbeats = true,
            AwaitRead = (socket, sent) => Eventually.True(() => runner().Client(socket.DeviceId!).FramesHandledTotal >= sent,
                $"{socket.DeviceId} read frame {sent}", TimeSpan.FromSeconds(15),
                () => $"it handled {runner().Client(socket.DeviceId!).FramesHandledTotal}, lost {runner().Client(socket.DeviceId!).FramesLostTotal}",
                every: TimeSpan.FromMilliseconds(5)),
            OnConnect = async (socket, connect, n) =>
            {
                if (rebootOnFirstConnect && n == 1)
                {
                    await socket.SendAsync(new SimpleRequest { Type = "reboot_device", ReqId = ReqId.Of("r") });
                    return;
                }
                scripted[connect.DeviceId!] = 0;
                foreach (var request in Script(connect.DeviceId!)) await socket.SendAsync(request);
            },
        });

    [Theory]
    [InlineData("seed", 60)]
    [InlineData("2025", 60)]
    [InlineData("9", 60)]
    [InlineData("mix", 90)]
    public async Task Every_firmware_connects_heartbeats_and_answers_every_paced_command_without_loss(string firmware, int devices)
    {
        var scripted = new ConcurrentDictionary<string, byte>();
        SimulatorRunner? runnerRef = null;
        await using var controller = await Controller(scripted, () => runnerRef!);
        var options = SimulatorOptions.Parse(["--firmware", firmware]).Options! with
        {
            Url = controller.Url, Devices = devices, HeartbeatSeconds = 0.5, Ramp = 2000, DevicePrefix = "fw" + firmware, StatsSeconds = 0, Reconnect = false,
        };
        using var runner = runnerRef = new SimulatorRunner(options);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);

        var expected = runner.Devices.Sum(d => ExpectedAnswers(d.Era).Length);
        // A 2025 router shows itself by the sys_info of its first heartbeat (its connect looks like seed's).
        await Eventually.True(() => scripted.Count == devices && controller.DeviceAnswers.Values.Sum(q => q.Count) == expected
                          && runner.Stats.RepliesReceived >= 2 * devices
                          && runner.Devices.All(d => controller.Protocols.GetValueOrDefault(d.DeviceId) == RouterDialects.NameOf(d.Era)),
            "every device connected, answered the script, heartbeat and got replies", TimeSpan.FromSeconds(60),
            () => $"{scripted.Count} scripted, {controller.DeviceAnswers.Values.Sum(q => q.Count)} of {expected} answers, " +
                  $"{runner.Stats.RepliesReceived} replies, lost {runner.Stats.LostFrames}, failures: {string.Join("; ", controller.Failures.Take(3))}");
        Assert.Equal(devices, runner.Stats.Connected);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);

        Assert.Empty(controller.Failures);
        Assert.Empty(controller.Complaints);
        Assert.Equal(0, controller.Undecodable);
        Assert.Equal(0, runner.Stats.ConnectFailures);
        Assert.Equal(0, runner.Stats.SendErrors);
        Assert.Equal(0, runner.Stats.DecodeErrors);
        Assert.False(runner.Stats.AnyLoss, string.Join("\n", runner.Stats.Summary()));
        Assert.Equal(devices * Script("x").Length, runner.Stats.CommandsReceived);
        Assert.Equal(expected, runner.Stats.CommandsAnswered);
        Assert.True(runner.Stats.ReplyLatency.Count > 0);
        foreach (var device in runner.Devices)
        {
            var answers = controller.AnswersFrom(device.DeviceId).ToList();
            Assert.Equal(ExpectedAnswers(device.Era), answers.Select(a => (a.Type, a.Error is not null)));
            var reqIds = answers.Select(a => a.ReqId?.Value).ToList();
            if (device.Era == FirmwareEra.Seed) Assert.All(reqIds, Assert.Null);
            else Assert.Equal(AnsweredIds(device.Era), reqIds);
            Assert.Equal(RouterDialects.NameOf(device.Era), controller.Protocols[device.DeviceId]);
            // What the script did to the router: auth added a client, the first kickoff removed it; tmp_pass added one.
            Assert.Equal(["aa:bb:cc:dd:ee:03"], device.Clients.Keys);
        }
        var byFirmware = runner.Stats.ByFirmware.ToDictionary(p => p.Era, p => p.Counters);
        Assert.Equal(firmware == "mix" ? 3 : 1, byFirmware.Count);
        Assert.All(byFirmware.Values, c => Assert.Equal(c.Devices * Script("x").Length, c.CommandsReceived));
    }

    [Fact]
    public async Task The_device_log_has_a_line_per_request_each_router_executed_with_its_req_id_and_content_and_none_lost()
    {
        var scripted = new ConcurrentDictionary<string, byte>();
        SimulatorRunner? runnerRef = null;
        await using var controller = await Controller(scripted, () => runnerRef!);
        var path = Path.Combine(Path.GetTempPath(), $"fleet-device-log-{Guid.NewGuid():N}.jsonl");
        try
        {
            var options = SimulatorOptions.Parse(["--firmware", "mix", "--device-log", path]).Options! with
            {
                Url = controller.Url, Devices = 3, HeartbeatSeconds = 30, Ramp = 1000, DevicePrefix = "log", StatsSeconds = 0, Reconnect = false,
            };
            using (var runner = runnerRef = new SimulatorRunner(options))
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
                var run = runner.RunAsync(cts.Token);
                await Eventually.True(() => runner.Stats.CommandsReceived == 3 * Script("x").Length, "every device handled the script", TimeSpan.FromSeconds(30));
                await cts.CancelAsync();
                await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
            }
            var lines = File.ReadAllLines(path).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
            foreach (var device in runnerRef!.Devices)
            {
                // Stall lines (the simulator's own, "ev":"stall") name no device.
                var mine = lines.Where(l => l.TryGetProperty("device", out var d) && d.GetString() == device.DeviceId).ToList();
                Assert.All(mine, l => Assert.Equal(DeviceLog.EraName(device.Era), l.GetProperty("era").GetString()));
                Assert.Equal(["up", .. Enumerable.Repeat("request", Script("x").Length), "down"], mine.Select(l => l.GetProperty("ev").GetString()));
                var requests = mine.Where(l => l.GetProperty("ev").GetString() == "request").ToList();
                Assert.Equal(Script(device.DeviceId).Select(r => r.Type), requests.Select(l => l.GetProperty("kind").GetString()));
                // The content is the request without req_id and device_id, whichever dialect carried it.
                Assert.Equal(Script(device.DeviceId).Select(r => DeviceLog.ContentKey(r)), requests.Select(l => l.GetProperty("content").GetString()));
                Assert.Equal(DeviceLog.ContentKey("""{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:03","timeout":60}"""), requests[3].GetProperty("content").GetString());
                // Seed and 2025 frames carry the req_id as the controller wrote it; 9.x ones the connection's integers.
                Assert.Equal(Script(device.DeviceId).Select(r => device.Era == FirmwareEra.V9 ? "" : r.ReqId!.Value.Value),
                    requests.Select(l => device.Era == FirmwareEra.V9 ? "" : l.GetProperty("req_id").ToString()));
                if (device.Era == FirmwareEra.V9)
                    Assert.All(requests, l => Assert.Equal(System.Text.Json.JsonValueKind.Number, l.GetProperty("req_id").ValueKind));
                // What the router answered (seed/2025 answer neither auth nor tmp_pass).
                Assert.Equal(ExpectedAnswers(device.Era).Length, requests.Count(l => l.GetProperty("answer").ValueKind == System.Text.Json.JsonValueKind.String));
            }
            Assert.DoesNotContain(lines, l => l.GetProperty("ev").GetString() is "loss" or "wedged");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("2025")]
    [InlineData("9")]
    public async Task Devices_told_to_reboot_go_down_and_reconnect_answering_as_their_firmware(string firmware)
    {
        var scripted = new ConcurrentDictionary<string, byte>();
        SimulatorRunner? runnerRef = null;
        await using var controller = await Controller(scripted, () => runnerRef!, rebootOnFirstConnect: true);
        using var runner = runnerRef = new SimulatorRunner(SimulatorOptions.Parse(["--firmware", firmware]).Options! with
        {
            Url = controller.Url, Devices = 5, HeartbeatSeconds = 30, Ramp = 1000, StatsSeconds = 0, ReconnectDelay = TimeSpan.FromMilliseconds(100),
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);
        var era = runner.Devices[0].Era;

        await Eventually.True(() => scripted.Count == 5 && controller.DeviceAnswers.Values.Sum(q => q.Count) == 5 * (ExpectedAnswers(era).Length + (era == FirmwareEra.V9 ? 1 : 0)),
            "five devices rebooted, reconnected and answered the script", TimeSpan.FromSeconds(20),
            () => $"{scripted.Count} reconnected; failures: {string.Join("; ", controller.Failures.Take(3))}");
        Assert.All(controller.Connects.Values, n => Assert.Equal(2, n));
        Assert.Equal(5, runner.Stats.Reboots);
        foreach (var answers in controller.DeviceAnswers.Values)
            if (era == FirmwareEra.V9) Assert.Equal(("reboot_device_response", "r"), (answers.First().Type, answers.First().ReqId!.Value.Value)); // 9.07 answers, then reboots
            else Assert.Equal("kickoff_response", answers.First().Type); // 2025: silent
        Assert.Equal(era == FirmwareEra.V9 ? 0 : 5 * 3, runner.Stats.OneWayReceived); // reboot_device, auth, tmp_pass

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
        Assert.Equal(0, runner.Stats.Connected);
        Assert.Equal(10, runner.Stats.Disconnects);
        Assert.False(runner.Stats.AnyLoss, string.Join("\n", runner.Stats.Summary()));
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

    [Fact]
    public async Task A_2025_device_driven_frame_by_frame_answers_as_the_firmware_and_never_comes_back_after_a_close_frame()
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
        await Eventually.True(() => runner.Stats.OfflineForGood == 1, "the router gave up its link for good");
        Assert.Equal(1, runner.Stats.CloseFramesReceived);
        Assert.True(runner.Client(id).OfflineForGood);
        Assert.Contains(runner.Stats.Summary(), l => l.Contains("LOSS", StringComparison.Ordinal) && l.Contains("1 router(s) offline for good", StringComparison.Ordinal));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => controller.NextConnectionAsync(TimeSpan.FromMilliseconds(500)));
        Assert.Equal(1, controller.Connections);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("9")]
    public async Task Seed_and_9_devices_come_back_after_a_close_frame(string firmware)
    {
        await using var controller = await FakeController.StartAsync();
        using var runner = new SimulatorRunner(SimulatorOptions.Parse(["--firmware", firmware]).Options! with
        {
            Url = controller.Url, Devices = 1, HeartbeatSeconds = 30, Ramp = 1000, StatsSeconds = 0, ReconnectDelay = TimeSpan.FromMilliseconds(100),
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = runner.RunAsync(cts.Token);

        var first = await controller.NextConnectionAsync();
        await first.ExpectAsync("connect");
        // The fake ends its request after the close frame, so the TCP connection closes too: seed, which
        // ignores the frame, comes back on the EOF (5 s on the router, 100 ms here); 9.07 on the frame (3 s).
        await first.CloseAsync();
        var second = await controller.NextConnectionAsync();
        await second.ExpectAsync("connect");
        Assert.Equal(1, runner.Stats.CloseFramesReceived);
        Assert.Equal(0, runner.Stats.OfflineForGood);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
    }
}
