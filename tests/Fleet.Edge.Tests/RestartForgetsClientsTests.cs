using Akka.Actor;
using Fleet.Edge.Firewall;
using Fleet.Edge.Hosting;
using Fleet.Edge.Portal;
using Fleet.Protocol;

namespace Fleet.Edge.Tests;

/// <summary>
/// Like the seed firmware, the agent forgets its clients and passes when the router reboots or flashes new
/// firmware (the controller clears its view then), instead of restoring them from state_directory.
/// </summary>
public sealed class RestartForgetsClientsTests : IAsyncLifetime
{
    private readonly Workspace _ws = new();
    private readonly MemoryFirewallBackend _backend = new();
    private FakeController _controller = null!;
    private EdgeAgent? _agent;

    public async ValueTask InitializeAsync() => _controller = await FakeController.StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_agent is not null) await _agent.DisposeAsync();
        await _controller.DisposeAsync();
        _ws.Dispose();
    }

    private async Task<DeviceSocket> StartWithAClientAndAPass()
    {
        _agent = EdgeAgent.Start(_ws.Config(_controller.Url), new EdgeOverrides
        {
            Backend = _backend, Timings = LinkTests.Fast, FirewallCheckInterval = TimeSpan.FromMilliseconds(100),
        });
        var device = await _controller.NextConnectionAsync();
        await device.SendAsync(ProtocolCodec.EncodeToString(new AuthRequest { Token = "t", ClientIp = "10.231.1.10", ClientMac = "aa:bb:cc:dd:ee:01", GwId = "gw-1", OnceAuth = false }));
        await device.SendAsync("""{"type":"tmp_pass","client_mac":"aa:bb:cc:dd:ee:05","timeout":120}""");
        await Eventually.True(() => _backend.Installed?.Gateways[0].Allowed.Count == 2, "the client and the pass are installed");
        return device;
    }

    private Task<PortalState> State() => _agent!.Firewall.Ask<PortalState>(GetPortalState.Instance, TimeSpan.FromSeconds(5));

    [Fact]
    public async Task A_reboot_forgets_clients_and_passes_before_the_reboot_command_runs()
    {
        var device = await StartWithAClientAndAPass();
        await device.SendAsync("""{"type":"reboot_device","req_id":8}""");
        await Eventually.True(() => File.Exists(_ws.RebootLog), "reboot ran");
        var state = await State();
        Assert.Empty(state.Clients);
        Assert.Empty(state.TmpPasses);
        Assert.Empty(_backend.Installed!.Gateways[0].Allowed);
        Assert.Equal(1, state.AuthModeOf("gw-1"));
        Assert.Empty(new StateStore(_ws.StateDir).Load()!.Clients);
    }

    [Fact]
    public async Task A_firmware_upgrade_forgets_them_before_it_answers()
    {
        var device = await StartWithAClientAndAPass();
        await device.SendAsync("""{"type":"firmware_upgrade","url":"http://fw.example/x.bin"}""");
        await device.ExpectAsync("firmware_upgrade_response");
        Assert.Empty((await State()).Clients);
        Assert.Empty(_backend.Installed!.Gateways[0].Allowed);
    }

    [Fact]
    public async Task A_refused_upgrade_forgets_nothing()
    {
        var device = await StartWithAClientAndAPass();
        await device.SendAsync("""{"type":"firmware_upgrade","url":"ftp://fw.example/x.bin"}""");
        await device.ExpectAsync("firmware_upgrade_error");
        Assert.Single((await State()).Clients);
    }
}
