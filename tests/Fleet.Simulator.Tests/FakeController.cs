using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using Fleet.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fleet.Simulator.Tests;

/// <summary>
/// A tiny in-test controller on Kestrel: answers heartbeats, and right after a device's connect
/// sends it a fixed script of commands, recording every answer by device.
/// </summary>
internal sealed class FakeController : IAsyncDisposable
{
    private readonly WebApplication _app;

    /// <summary>Requests sent to each device after connect; the ones that expect an answer are counted.</summary>
    public static IControllerRequest[] Script(string deviceId) =>
    [
        new AuthRequest { ReqId = ReqId.Of("1"), Token = "tok", ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-1" },
        new KickoffRequest { ReqId = ReqId.Of("2"), ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:01", DeviceId = deviceId, GwId = "gw-1" },
        new KickoffRequest { ReqId = ReqId.Of("3"), ClientIp = "192.168.1.24", ClientMac = "aa:bb:cc:dd:ee:02", DeviceId = deviceId, GwId = "gw-1" },
        new TmpPassRequest { ReqId = ReqId.Of("4"), ClientMac = "aa:bb:cc:dd:ee:03", Timeout = 60 },
        new SimpleRequest { ReqId = new ReqId("5", true), Type = "get_firmware_info" },
        new FirmwareUpgradeRequest { ReqId = ReqId.Of("6"), Url = "http://fw.example.com/x.bin" },
    ];

    /// <summary>The answer types the script expects, in order (seed-era and upstream firmware alike).</summary>
    public static readonly string[] ExpectedAnswers = ["kickoff_response", "kickoff_error", "firmware_info_response", "firmware_upgrade_response"];

    public ConcurrentDictionary<string, byte> Connected { get; } = new();
    /// <summary>How many times each device sent connect.</summary>
    public ConcurrentDictionary<string, int> Connects { get; } = new();
    /// <summary>The source addresses devices connected from.</summary>
    public ConcurrentDictionary<string, int> RemoteAddresses { get; } = new();
    /// <summary>Send reboot_device instead of the script on a device's first connection.</summary>
    public bool RebootOnFirstConnect { get; init; }
    public ConcurrentDictionary<string, ConcurrentQueue<IDeviceFrame>> Answers { get; } = new();
    public long HeartbeatsAnswered => Interlocked.Read(ref _heartbeats);
    public long Undecodable => Interlocked.Read(ref _undecodable);
    private long _heartbeats, _undecodable;

    private FakeController(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = null!;

    public static async Task<FakeController> StartAsync(bool rebootOnFirstConnect = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var controller = new FakeController(app) { RebootOnFirstConnect = rebootOnFirstConnect };
        app.UseWebSockets();
        app.Map("/ws/wifidogx", controller.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        controller.Url = new Uri(address.Replace("http://", "ws://") + "/ws/wifidogx");
        return controller;
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest) { context.Response.StatusCode = 400; return; }
        using var ws = await context.WebSockets.AcceptWebSocketAsync();
        RemoteAddresses.AddOrUpdate(context.Connection.RemoteIpAddress?.MapToIPv4().ToString() ?? "?", 1, (_, n) => n + 1);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        string? deviceId = null;
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    r = await ws.ReceiveAsync(buffer.AsMemory(length), context.RequestAborted);
                    length += r.Count;
                } while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);
                if (r.MessageType == WebSocketMessageType.Close) break;

                var decoded = ProtocolCodec.DecodeFromDevice(buffer.AsSpan(0, length));
                switch (decoded.Message)
                {
                    case ConnectMessage c:
                        deviceId = c.DeviceId!;
                        if (Connects.AddOrUpdate(deviceId, 1, (_, n) => n + 1) == 1 && RebootOnFirstConnect)
                        {
                            await ws.SendAsync(ProtocolCodec.Encode(new SimpleRequest { Type = "reboot_device" }), WebSocketMessageType.Text, true, context.RequestAborted);
                            break;
                        }
                        Connected[deviceId] = 0;
                        Answers.TryAdd(deviceId, new ConcurrentQueue<IDeviceFrame>());
                        foreach (var request in Script(deviceId))
                            await ws.SendAsync(ProtocolCodec.Encode(request), WebSocketMessageType.Text, true, context.RequestAborted);
                        break;
                    case HeartbeatMessage h:
                        var reply = new ReportReply { Gateway = h.Gateway!.Select(g => new GatewayAuthMode { GwId = g.GwId, AuthMode = g.AuthMode }).ToList() };
                        await ws.SendAsync(ProtocolCodec.Encode(reply), WebSocketMessageType.Text, true, context.RequestAborted);
                        Interlocked.Increment(ref _heartbeats);
                        break;
                    case { } answer when deviceId is not null:
                        Answers[deviceId].Enqueue(answer);
                        break;
                    default:
                        Interlocked.Increment(ref _undecodable);
                        break;
                }
            }
            if (ws.State == WebSocketState.CloseReceived)
                await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
