using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using TransportConnection = Microsoft.AspNetCore.Connections.ConnectionContext;

namespace Fleet.Server.Connections;

/// <summary>
/// The one socket of a connection as the listener holds it, on the connection's features: a device upgrade counts
/// it against the device cap (<see cref="TryCountAsDevice"/>), and both counts are given back when Kestrel has
/// closed its file descriptor.
/// </summary>
public sealed class HeldSocket
{
    private ConnectionGate? _gate;

    /// <summary>Counts this socket as a device socket until it is closed; false at the cap.</summary>
    public bool TryCountAsDevice(ConnectionGate gate)
    {
        if (_gate is not null) return true;
        if (!gate.TryEnter()) return false;
        _gate = gate;
        return true;
    }

    internal void Closed() => Interlocked.Exchange(ref _gate, null)?.Exit();
}

/// <summary>
/// Kestrel's socket transport with every accepted socket counted in the <see cref="SocketBudget"/> from accept until
/// its file descriptor is closed, and no accept while the budget has no room for one more. Registered after
/// Kestrel's own transports, so Kestrel asks this one first (it binds what the socket transport binds).
/// </summary>
public sealed class CountingTransportFactory(
    IOptions<SocketTransportOptions> options, ILoggerFactory loggers, SocketBudget budget, Func<EndPoint, bool> isAdmin)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly SocketTransportFactory _sockets = new(options, loggers);
    private readonly ILogger _log = loggers.CreateLogger("Fleet.Sockets");

    public bool CanBind(EndPoint endpoint) => _sockets.CanBind(endpoint);

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        new Listener(await _sockets.BindAsync(endpoint, cancellationToken), budget, isAdmin(endpoint), _log);

    private sealed class Listener(IConnectionListener inner, SocketBudget budget, bool admin, ILogger log) : IConnectionListener
    {
        private readonly CancellationTokenSource _unbound = new();
        private readonly Action<string> _onPause = m => log.LogWarning("{Message}", m);
        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<TransportConnection?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
            if (!await budget.TakeAsync(admin, _onPause, linked.Token)) return null;
            TransportConnection? connection;
            try
            {
                connection = await inner.AcceptAsync(cancellationToken);
            }
            catch
            {
                budget.Give(admin);
                throw;
            }
            if (connection is null)
            {
                budget.Give(admin);
                return null;
            }
            var held = new HeldSocket();
            connection.Features.Set(held);
            return new Counted(connection, () =>
            {
                held.Closed();
                budget.Give(admin);
            });
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound.Cancel();
            return inner.UnbindAsync(cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            _unbound.Cancel();
            await inner.DisposeAsync();
            _unbound.Dispose();
        }
    }

    /// <summary>The transport's connection, giving its room back once disposing it has closed the socket.</summary>
    private sealed class Counted(TransportConnection inner, Action closed) : TransportConnection
    {
        private int _disposed;

        public override string ConnectionId { get => inner.ConnectionId; set => inner.ConnectionId = value; }
        public override IFeatureCollection Features => inner.Features;
        public override IDictionary<object, object?> Items { get => inner.Items; set => inner.Items = value; }
        public override IDuplexPipe Transport { get => inner.Transport; set => inner.Transport = value; }
        public override CancellationToken ConnectionClosed { get => inner.ConnectionClosed; set => inner.ConnectionClosed = value; }
        public override EndPoint? LocalEndPoint { get => inner.LocalEndPoint; set => inner.LocalEndPoint = value; }
        public override EndPoint? RemoteEndPoint { get => inner.RemoteEndPoint; set => inner.RemoteEndPoint = value; }
        public override void Abort() => inner.Abort();
        public override void Abort(ConnectionAbortedException abortReason) => inner.Abort(abortReason);

        public override async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            try
            {
                await inner.DisposeAsync();
            }
            finally
            {
                closed();
            }
        }
    }
}
