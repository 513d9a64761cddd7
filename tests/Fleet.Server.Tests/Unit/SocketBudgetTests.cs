using System.Net;
using Fleet.Server.Connections;
using Fleet.Server.Hosting;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>How the open-file limit is shared out (listeners, admin reserve, device cap) and how a full listener waits.</summary>
public sealed class SocketBudgetTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_defaults_under_the_machines_limit_leave_the_reserve_and_twice_the_admin_reserve()
    {
        var b = new SocketBudget(20_000, reservedFiles: 1000, adminReserve: 100, configuredCap: 0, adminApart: true);
        Assert.Equal(19_000, b.MaxSockets);
        Assert.Equal(18_900, b.DeviceSideMax);
        Assert.Equal(18_800, b.DeviceCap);
    }

    [Fact]
    public void On_a_shared_address_the_one_listener_may_use_every_socket_and_the_cap_is_the_same()
    {
        var b = new SocketBudget(2048, 1000, 100, 0, adminApart: false);
        Assert.Equal(1048, b.MaxSockets);
        Assert.Equal(1048, b.DeviceSideMax);
        Assert.Equal(848, b.DeviceCap);
    }

    [Fact]
    public void A_configured_cap_is_kept_below_and_lowered_to_what_the_limit_allows()
    {
        Assert.Equal(2, new SocketBudget(20_000, 1000, 100, 2, true).DeviceCap);
        Assert.Equal(848, new SocketBudget(2048, 1000, 100, 50_000, true).DeviceCap);
    }

    [Fact]
    public void An_unknown_limit_bounds_nothing_but_the_cap()
    {
        var b = new SocketBudget(null, 1000, 100, 0, true);
        Assert.Null(b.MaxSockets);
        Assert.Equal(SocketBudget.UnknownLimitCap, b.DeviceCap);
        Assert.Equal(7, new SocketBudget(null, 1000, 100, 7, true).DeviceCap);
    }

    [Theory]
    [InlineData(1024L, 350, 32, 610)] // the common soft limit: a node still starts and holds 610 routers
    [InlineData(2048L, 512, 64, 1408)]
    [InlineData(20_000L, 1000, 100, 18_800)]
    [InlineData(null, 1000, 100, SocketBudget.UnknownLimitCap)]
    public void Default_reserves_scale_with_a_low_limit_and_stop_at_1000_and_100(long? limit, int reserved, int admin, int cap)
    {
        Assert.Equal(reserved, SocketBudget.DefaultReservedFiles(limit));
        Assert.Equal(admin, SocketBudget.DefaultAdminReserve(limit));
        using var b = new SocketBudget(limit, reserved, admin, 0, adminApart: true);
        Assert.Equal(cap, b.DeviceCap);
    }

    [Theory]
    [InlineData(1024, 1000, 100, 0, "open-file limit (1024) leaves no room")]
    [InlineData(20_000, -1, 100, 0, "ReservedFileDescriptors must be 0 or more")]
    [InlineData(20_000, 1000, -5, 0, "Admin:ReservedConnections must be 0 or more")]
    [InlineData(20_000, 1000, 100, -1, "MaxConnections must be 0")]
    public void Settings_that_leave_no_room_stop_the_start_with_what_to_change(long limit, int reserved, int admin, int cap, string says)
    {
        var e = Assert.Throws<InvalidOperationException>(() => new SocketBudget(limit, reserved, admin, cap, true));
        Assert.Contains(says, e.Message);
    }

    [Fact]
    public async Task A_full_device_listener_waits_for_a_socket_to_close_while_the_admin_listener_still_takes_its_reserve()
    {
        // 1010 − 1000 = 10 sockets; the device side stops at 8, the admin side has the last 2.
        using var b = new SocketBudget(1010, 1000, 2, 0, adminApart: true);
        for (var i = 0; i < 8; i++) Assert.True(await b.TakeAsync(admin: false, null, Ct));
        var waiting = b.TakeAsync(admin: false, null, Ct).AsTask();
        Assert.False(waiting.IsCompleted);
        Assert.True(await b.TakeAsync(admin: true, null, Ct));
        Assert.True(await b.TakeAsync(admin: true, null, Ct));
        Assert.Equal(10, b.Held);
        Assert.Equal(2, b.AdminHeld);

        b.Give(admin: false); // a device socket closed: the device listener accepts again
        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(10, b.Held);

        // Every socket taken: the admin listener waits too, until one of its own closes.
        var adminWaiting = b.TakeAsync(admin: true, null, Ct).AsTask();
        Assert.False(adminWaiting.IsCompleted);
        Assert.Equal(2, b.AcceptPaused);
        b.Give(admin: true);
        Assert.True(await adminWaiting.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(10, b.Held);
    }

    [Fact]
    public async Task An_unbound_listener_stops_waiting_without_taking_room()
    {
        using var b = new SocketBudget(1003, 1000, 1, 0, adminApart: true);
        for (var i = 0; i < 2; i++) Assert.True(await b.TakeAsync(false, null, Ct));
        using var unbind = new CancellationTokenSource();
        var waiting = b.TakeAsync(false, null, unbind.Token).AsTask();
        await unbind.CancelAsync();
        Assert.False(await waiting.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(2, b.Held);
        Assert.True(await b.TakeAsync(true, null, Ct)); // the admin reserve is untouched
    }

    [Fact]
    public void A_device_socket_counts_once_against_the_cap_until_it_is_closed()
    {
        var gate = new ConnectionGate(1);
        var held = new HeldSocket();
        Assert.True(held.TryCountAsDevice(gate));
        Assert.True(held.TryCountAsDevice(gate));
        Assert.False(new HeldSocket().TryCountAsDevice(gate));
        Assert.Equal(1, gate.Held);
    }

    [Fact]
    public void Admin_listeners_are_known_by_endpoint_and_localhost_is_both_loopbacks()
    {
        var none = Listeners.AdminEndpoints(new AdminSettings());
        Assert.False(none(new IPEndPoint(IPAddress.Loopback, 9090)));
        var local = Listeners.AdminEndpoints(new AdminSettings { Urls = "http://localhost:9090" });
        Assert.True(local(new IPEndPoint(IPAddress.Loopback, 9090)));
        Assert.True(local(new IPEndPoint(IPAddress.IPv6Loopback, 9090)));
        Assert.False(local(new IPEndPoint(IPAddress.Loopback, 8080)));
        var v4 = Listeners.AdminEndpoints(new AdminSettings { Urls = "http://127.0.0.2:9090;https://0.0.0.0:9443" });
        Assert.True(v4(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 9090)));
        Assert.True(v4(new IPEndPoint(IPAddress.Any, 9443)));
        Assert.False(v4(new IPEndPoint(IPAddress.IPv6Loopback, 9090)));
    }
}
