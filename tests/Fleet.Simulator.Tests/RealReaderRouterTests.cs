using Fleet.Protocol;
using Xunit;

namespace Fleet.Simulator.Tests;

/// <summary>
/// RealReaderRouter in the scenarios the server's end-to-end tests run, against the FakeController speaking
/// each router's dialect through Fleet.Protocol's OpDialect/TypeDialect, paced on what the router read.
/// </summary>
public sealed class RealReaderRouterTests
{
    private static readonly ReconnectDelays Quick = ReconnectDelays.All(TimeSpan.FromMilliseconds(100));

    private static Task<FakeController> PacedController(Func<RealReaderRouter> router, Func<DeviceSocket, ConnectMessage, int, Task>? onConnect = null,
        Func<string, GatewayReport, int?>? modes = null) =>
        FakeController.StartAsync(new FakeControllerOptions
        {
            AnswerHeartbeats = true,
            ModesFor = modes,
            OnConnect = onConnect,
            AwaitRead = (_, sent) => router().WaitForAsync(r => r.FramesHandled >= sent, $"frame {sent} read", TimeSpan.FromSeconds(10)),
        });

    private static FirmwareEra Era(string name) => RouterDialects.Parse(name)!.Value;

    public static TheoryData<string> Dialects => ["seed", "2025", "9"];

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Three_commands_waiting_for_the_router_are_each_received_and_answered_after_it_connects_without_loss(string name)
    {
        RealReaderRouter? routerRef = null;
        await using var controller = await PacedController(() => routerRef!, async (socket, _, n) =>
        {
            if (n > 1) return;
            await socket.SendAsync(new SimpleRequest { Type = "get_firmware_info", ReqId = new ReqId("11", true) });
            await socket.SendAsync(new KickoffRequest { ReqId = new ReqId("12", true), ClientIp = "10.0.0.9", ClientMac = "aa:bb:cc:dd:ee:09", DeviceId = "r-q", GwId = "gw-1" });
            await socket.SendAsync(new FirmwareUpgradeRequest { ReqId = new ReqId("13", true), Url = "http://fw.example/x.bin" });
        });
        await using var router = routerRef = new RealReaderRouter(controller.Url, "r-q", Era(name)) { Delays = Quick }.Start();

        var answers = await router.WaitForAnswersAsync(3);
        Assert.Equal(["get_firmware_info", "kickoff", "firmware_upgrade"], router.Requests.Select(r => r.Name));
        // A type router sees the command's req_id; a 9 router the integers the controller's OpDialect hands out per connection.
        Assert.Equal(Era(name) == FirmwareEra.V9 ? ["1", "2", "3"] : ["11", "12", "13"], router.Requests.Select(r => r.ReqId!.Value.Value));
        Assert.Equal(Era(name) == FirmwareEra.V9
            ? ["firmware_info_response", "kickoff_response", "firmware_upgrade_response"]
            : ["firmware_info_response", "kickoff_error", "firmware_upgrade_response"], answers.Select(a => a.Type));
        Assert.Equal([null, KickoffError.ClientNotFound, null], answers.Select(a => a.Error));
        await Eventually.True(() => controller.AnswersFrom("r-q").Count == 3, "the controller read the three answers");
        Assert.Equal(["get_firmware_info", "kickoff", "firmware_upgrade"], controller.AnswersFrom("r-q").Select(a => a.RequestType));
        Assert.Empty(controller.Failures);
        router.AssertClean();
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Five_auth_commands_in_a_burst_are_all_received(string name)
    {
        RealReaderRouter? routerRef = null;
        await using var controller = await PacedController(() => routerRef!, async (socket, _, n) =>
        {
            if (n > 1) return;
            for (var i = 1; i <= 5; i++)
                await socket.SendAsync(new AuthRequest
                {
                    ReqId = new ReqId($"{i}", true), Token = $"t{i}", ClientIp = $"10.0.0.{i}", ClientMac = $"aa:bb:cc:dd:ee:0{i}", GwId = "gw-1", OnceAuth = false,
                });
        });
        await using var router = routerRef = new RealReaderRouter(controller.Url, "r-auth", Era(name)) { Delays = Quick }.Start();

        var requests = await router.WaitForRequestsAsync(5);
        Assert.All(requests, r => Assert.Equal("auth", r.Name));
        await router.WaitForAsync(r => r.Clients.Count == 5, "five clients let through");
        if (Era(name) == FirmwareEra.V9)
        {
            var answers = await router.WaitForAnswersAsync(5);
            Assert.All(answers, a => Assert.Equal(("auth_response", null), (a.Type, a.Error)));
        }
        else Assert.Empty(router.Answers); // one-way in the type dialect
        router.AssertClean();
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("2025")]
    public async Task An_operator_auth_mode_change_reaches_a_type_router_in_a_heartbeat_reply(string name)
    {
        var desired = 1;
        RealReaderRouter? routerRef = null;
        await using var controller = await PacedController(() => routerRef!, modes: (_, _) => Volatile.Read(ref desired));
        await using var router = routerRef = new RealReaderRouter(controller.Url, "r-mode", Era(name)) { Delays = Quick }.Start();
        await router.WaitForRepliesAsync(1); // the reply to connect
        Assert.Equal(1, router.GatewayModes["gw-1"]);

        Volatile.Write(ref desired, 0);
        Assert.True(await router.HeartbeatNowAsync());
        await router.WaitForModeAsync("gw-1", 0);
        Assert.Equal(("heartbeat", true, true), (router.Replies[^1].Name, router.Replies[^1].Applied, router.Replies[^1].Changed));

        // Pushed outside a reply: the type dialect sends a heartbeat-type frame, which the router takes the same way.
        await controller.SocketOf("r-mode")!.SendModesAsync(new GatewayAuthMode { GwId = "gw-1", AuthMode = 2 });
        await router.WaitForModeAsync("gw-1", 2);
        router.AssertClean();
    }

    [Fact]
    public async Task An_operator_auth_mode_change_reaches_a_9_router_by_gateway_heartbeat_or_a_connect_reply_never_by_a_heartbeat_reply()
    {
        var desired = 1;
        RealReaderRouter? routerRef = null;
        await using var controller = await PacedController(() => routerRef!, modes: (_, _) => Volatile.Read(ref desired));
        await using var router = routerRef = new RealReaderRouter(controller.Url, "r-mode9", FirmwareEra.V9) { Delays = Quick }.Start();
        await router.WaitForRepliesAsync(1);
        Assert.Equal(("connect", true), (router.Replies[0].Name, router.Replies[0].Applied));

        // 9.07 ignores whatever a heartbeat reply carries (process_ws_msg: data.type "heartbeat" → nothing).
        Volatile.Write(ref desired, 0);
        Assert.True(await router.HeartbeatNowAsync());
        await router.WaitForRepliesAsync(2);
        Assert.Equal(("heartbeat", false, 0), (router.Replies[1].Name, router.Replies[1].Applied, router.Replies[1].Modes[0].AuthMode));
        Assert.Equal(1, router.GatewayModes["gw-1"]);

        // OpDialect.EncodeModes: gateway_heartbeat, taken and never answered.
        await controller.SocketOf("r-mode9")!.SendModesAsync(new GatewayAuthMode { GwId = "gw-1", AuthMode = 0 });
        await router.WaitForModeAsync("gw-1", 0);
        Assert.Equal(("gateway_heartbeat", true), (router.Replies[^1].Name, router.Replies[^1].Applied));

        // After a reconnect, the reply to connect carries the modes and is taken.
        Volatile.Write(ref desired, 2);
        router.Drop();
        await router.WaitConnectedAsync(connections: 2);
        await router.WaitForModeAsync("gw-1", 2);
        Assert.Empty(router.Answers); // nothing of this is ever answered
        router.AssertClean();
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Held_requests_are_received_but_answered_only_when_released(string name)
    {
        RealReaderRouter? routerRef = null;
        await using var controller = await PacedController(() => routerRef!);
        await using var router = routerRef = new RealReaderRouter(controller.Url, "r-hold", Era(name)) { Delays = Quick, Hold = true }.Start();
        var socket = await controller.NextConnectionAsync();
        await socket.ExpectAsync("connect");

        await socket.SendAsync(new SimpleRequest { Type = "get_firmware_info", ReqId = new ReqId("1", true) });
        await socket.SendAsync(new KickoffRequest { ReqId = new ReqId("2", true), ClientIp = "10.0.0.9", ClientMac = "aa:bb:cc:dd:ee:09", DeviceId = "r-hold", GwId = "gw-1" });
        await router.WaitForRequestsAsync(2);
        Assert.Equal(2, router.HeldCount);
        Assert.Empty(router.Answers);

        await router.ReleaseAsync();
        var answers = await router.WaitForAnswersAsync(2);
        Assert.Equal(["get_firmware_info", "kickoff"], answers.Select(a => a.RequestName));
        await Eventually.True(() => controller.AnswersFrom("r-hold").Count == 2, "both answers at the controller");
        router.AssertClean();
    }

    [Fact]
    public async Task A_9_router_refuses_an_auth_without_once_auth_as_the_firmware_does()
    {
        RealReaderRouter? routerRef = null;
        await using var controller = await PacedController(() => routerRef!);
        await using var router = routerRef = new RealReaderRouter(controller.Url, "r-once", FirmwareEra.V9) { Delays = Quick }.Start();
        var socket = await controller.NextConnectionAsync();
        await socket.ExpectAsync("connect");

        // What the controller's OpDialect writes for an auth whose once_auth is unset: no once_auth key at all.
        var answer = await socket.RequestAsync(new AuthRequest { Token = "t", ClientIp = "10.0.0.5", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1" });
        Assert.Equal($"{FirmwareAnswers.AuthMissingFields} (code 1000)", answer!.Error);
        Assert.Empty(router.Clients);
        var ok = await socket.RequestAsync(new AuthRequest { Token = "t", ClientIp = "10.0.0.5", ClientMac = "aa:bb:cc:dd:ee:ff", GwId = "gw-1", OnceAuth = false });
        Assert.Null(ok!.Error);
        Assert.Single(router.Clients);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task A_dropped_router_comes_back_and_reports_connect_again(string name)
    {
        RealReaderRouter? routerRef = null;
        await using var controller = await PacedController(() => routerRef!);
        await using var router = routerRef = new RealReaderRouter(controller.Url, "r-drop", Era(name))
        {
            Delays = Quick, HeartbeatEvery = TimeSpan.FromMilliseconds(200),
        }.Start();
        await router.WaitConnectedAsync();
        await router.WaitForAsync(r => r.HeartbeatsSent >= 2, "two heartbeats on the timer");
        router.Drop();
        await router.WaitConnectedAsync(connections: 2);
        await Eventually.True(() => controller.Connects.GetValueOrDefault("r-drop") == 2, "two connects at the controller");
        router.AssertClean();
    }
}
