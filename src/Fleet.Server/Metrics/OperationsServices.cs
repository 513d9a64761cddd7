using Fleet.Server.Alerts;
using Fleet.Server.Connections;
using Fleet.Server.Directory;
using Fleet.Server.Events;
using Fleet.Server.Hosting;
using OpenTelemetry.Metrics;

namespace Fleet.Server.Metrics;

/// <summary>What operators watch a node with: the event stream, alerts and webhooks, metrics for Prometheus.</summary>
public static class OperationsServices
{
    public static IServiceCollection AddFleetOperations(this IServiceCollection services)
    {
        services.AddSingleton<EventHub>();
        services.AddSingleton<FleetMetrics>();
        services.AddSingleton<AlertStore>();
        services.AddSingleton<IStoreTables>(sp => sp.GetRequiredService<AlertStore>());
        services.AddHttpClient(nameof(WebhookSender));
        services.AddSingleton<WebhookSender>();
        services.AddHostedService(sp => sp.GetRequiredService<WebhookSender>());
        services.AddHostedService<KnownDevicesGauge>();
        services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter(ConnectionMetrics.MeterName)
            // The runtime's and ASP.NET Core's own meters (GC, thread pool, requests, Kestrel connections).
            .AddMeter("System.Runtime", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http")
            .AddPrometheusExporter());
        return services;
    }
}

/// <summary>fleet_devices_known: the directory's count, read every 30 s (a gauge's callback must not query a database).</summary>
public sealed class KnownDevicesGauge(DirectoryStore store, NodeIdentity node, FleetMetrics metrics, ILogger<KnownDevicesGauge> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(30));
        do
        {
            try { metrics.Known((await store.CountAsync(node.LiveNodes(), stoppingToken)).Known); }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
            {
                log.LogDebug("fleet_devices_known not refreshed: {Error}", e.Message);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
