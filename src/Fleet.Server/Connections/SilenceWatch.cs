using System.Collections.Concurrent;
using Fleet.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Connections;

/// <summary>
/// Closes device sockets that sent nothing for <see cref="WebSocketSettings.SilenceCloseSeconds"/>. Real
/// firmware never sends a WebSocket ping and must not get one (a ping can share a read with a request and
/// swallow it), so its heartbeat (every 60 s) is the only sign of life; a socket that stays silent for
/// several heartbeats is dead, and its device offline. One sweep for the whole node, not a timer per socket.
/// </summary>
public sealed class SilenceWatch(IOptions<FleetSettings> options) : BackgroundService
{
    private readonly ConcurrentDictionary<DeviceConnection, byte> _connections = new(ReferenceEqualityComparer.Instance);

    public void Add(DeviceConnection c) => _connections.TryAdd(c, 0);
    public void Remove(DeviceConnection c) => _connections.TryRemove(c, out _);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var limit = options.Value.WebSocket.SilenceCloseSeconds;
        if (limit <= 0) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Clamp(limit / 6.0, 1, 30)));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = Environment.TickCount64;
            foreach (var c in _connections.Keys)
            {
                var silent = now - c.LastFrameAt;
                if (silent > limit * 1000L) c.TellSilent(TimeSpan.FromMilliseconds(silent));
            }
        }
    }
}
