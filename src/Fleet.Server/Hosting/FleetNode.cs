using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;
using Fleet.Server.Admin;
using Fleet.Server.Alerts;
using Fleet.Server.Clients;
using Fleet.Server.Events;
using Fleet.Server.Metrics;
using Fleet.Server.Commands;
using Fleet.Server.Devices;
using Fleet.Server.Connections;
using Fleet.Server.Dashboard;
using Fleet.Server.Directory;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace Fleet.Server.Hosting;

/// <summary>Composition of a node: settings, Kestrel limits, Akka, the endpoints.</summary>
public static class FleetNode
{
    public const string DefaultUrls = "http://0.0.0.0:8080";

    /// <summary>A ready-to-run node (tests start several of these in one process).</summary>
    public static async Task<WebApplication> CreateAsync(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });
        configure?.Invoke(builder);
        builder.AddFleetNode();
        var app = builder.Build();
        await app.InitializeFleetStoreAsync();
        app.UseFleetNode();
        return app;
    }

    public static WebApplicationBuilder AddFleetNode(this WebApplicationBuilder builder)
    {
        // --config <file.json>: a node configuration such as cluster-config/single-node.json. It goes
        // under environment variables and the command line, which still override it.
        if (builder.Configuration["config"] is { Length: > 0 } file)
        {
            var path = Path.GetFullPath(file, Environment.CurrentDirectory);
            if (!File.Exists(path)) throw new FileNotFoundException($"--config: no such file '{path}'", path);
            var sources = builder.Configuration.Sources;
            var json = new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource { Path = path, Optional = false };
            json.ResolveFileProvider();
            // Right above appsettings*.json: before the unprefixed environment variables (the ASPNETCORE_/DOTNET_
            // prefixed ones come before appsettings.json and must not be taken for them).
            var overrides = sources.ToList().FindLastIndex(src =>
                src is Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationSource e
                && string.IsNullOrEmpty(e.Prefix));
            sources.Insert(overrides < 0 ? sources.Count : overrides, json);
        }

        var settings = builder.Configuration.GetSection("Fleet").Get<FleetSettings>() ?? new FleetSettings();
        builder.AddFleetListeners(settings.Admin);
        _ = FrameRate.From(settings.WebSocket); // a bad limit stops the start, not the first router
        if (settings.WebSocket.ConnectWithinSeconds < 0)
            throw new InvalidOperationException($"Fleet:WebSocket:ConnectWithinSeconds must be 0 (never) or more, not {settings.WebSocket.ConnectWithinSeconds}");
        foreach (var seed in settings.Cluster.SeedNodes)
            if (!Akka.Actor.Address.TryParse(seed, out _))
                throw new InvalidOperationException(
                    $"Fleet:Cluster:SeedNodes: '{seed}' is not an Akka address such as akka.tcp://fleet@10.0.0.1:4053");
        settings.Security.Validate();
        settings.Directory.Validate();
        settings.Alerts.Validate();
        settings.Jobs.Validate();
        var connectionString = ResolveConnectionString(settings.Persistence);
        builder.Services.AddSingleton(Options.Create(settings));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new DirectoryStore(settings.Persistence.Provider, connectionString));
        builder.Services.AddSingleton<ConnectionMetrics>();
        builder.Services.AddFleetOperations();
        builder.Services.AddSingleton<Jobs.JobStore>();
        builder.Services.AddSingleton<IStoreTables>(sp => sp.GetRequiredService<Jobs.JobStore>());
        builder.Services.AddSingleton<Jobs.SelectionResolver>();
        builder.Services.AddClientPlane();
        // Every socket the listeners hold counts against the open-file limit, from accept until it is closed
        // (SocketBudget); device WebSockets have their own cap below that (ConnectionGate, 503 past it).
        var openFiles = SocketBudget.ReadOpenFileLimit();
        var budget = new SocketBudget(openFiles, settings.WebSocket.ReservedFileDescriptors ?? SocketBudget.DefaultReservedFiles(openFiles),
            settings.Admin.ReservedConnections ?? SocketBudget.DefaultAdminReserve(openFiles), settings.WebSocket.MaxConnections,
            adminApart: !string.IsNullOrWhiteSpace(settings.Admin.Urls));
        builder.Services.AddSingleton(_ => budget); // made by a factory: the container disposes it (its meter) with the node
        builder.Services.AddSingleton(new ConnectionGate(budget.DeviceCap));
        var isAdmin = Listeners.AdminEndpoints(settings.Admin);
        // After Kestrel's own transports: Kestrel asks the last registered first.
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(sp => new CountingTransportFactory(
            sp.GetRequiredService<IOptions<Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions>>(),
            sp.GetRequiredService<ILoggerFactory>(), budget, isAdmin));
        builder.Services.AddSingleton<NodeIdentity>();
        builder.Services.AddSingleton<NodeStopping>();
        builder.Services.AddDeviceSockets();
        // No Kestrel MaxConcurrentConnections: it does not count upgraded connections (every device's WebSocket),
        // and the listeners above already stop accepting at the budget.
        builder.Services.Configure<KestrelServerOptions>(k => k.AddServerHeader = false);
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        });
        builder.Services.AddProblemDetails();
        builder.Services.AddFleetSecurity();
        builder.Services.AddDeviceAdmission(settings.Security);
        builder.Services.AddOpenApi("v1", o => o.AddDocumentTransformer((doc, _, _) =>
        {
            // Tools generated from the document send the key: every /api/v1 call needs one (README, Security).
            doc.Components ??= new Microsoft.OpenApi.OpenApiComponents();
            doc.Components.SecuritySchemes ??= new Dictionary<string, Microsoft.OpenApi.IOpenApiSecurityScheme>();
            doc.Components.SecuritySchemes["bearer"] = new Microsoft.OpenApi.OpenApiSecurityScheme
            {
                Type = Microsoft.OpenApi.SecuritySchemeType.Http, Scheme = "bearer",
                Description = "An admin API key (roles viewer, operator, admin): Authorization: Bearer <key>",
            };
            doc.Security = [new Microsoft.OpenApi.OpenApiSecurityRequirement { [new Microsoft.OpenApi.OpenApiSecuritySchemeReference("bearer", doc)] = [] }];
            return Task.CompletedTask;
        }));
        builder.Services.AddFleetAkka(settings, builder.Configuration, connectionString);
        return builder;
    }

    /// <summary>
    /// Creates the directory tables. A database that is still starting (a container started beside the
    /// nodes, a PostgreSQL fail-over) answers with transient errors: those are retried with backoff for
    /// about a minute, each logged, before the node gives up.
    /// </summary>
    public static async Task InitializeFleetStoreAsync(this WebApplication app)
    {
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Fleet.Startup");
        var pipeline = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<DbException>(e => e.IsTransient),
                BackoffType = DelayBackoffType.Exponential,
                Delay = TimeSpan.FromMilliseconds(500),
                MaxDelay = TimeSpan.FromSeconds(10),
                MaxRetryAttempts = 10,
                UseJitter = true,
                OnRetry = a =>
                {
                    log.LogWarning("Database not ready ({Error}); attempt {Attempt}, retrying in {Delay}",
                        a.Outcome.Exception?.Message, a.AttemptNumber + 1, a.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
        var store = app.Services.GetRequiredService<DirectoryStore>();
        var others = app.Services.GetServices<IStoreTables>().ToList();
        await pipeline.ExecuteAsync(async ct => await store.InitializeAsync(others, ct), app.Lifetime.ApplicationStopping);
        var settings = app.Services.GetRequiredService<IOptions<FleetSettings>>().Value;
        await app.Services.GetRequiredService<ApiKeyStore>().EnsureAdminKeyAsync(
            GeneratedKeyFile(settings, store), app.Lifetime.ApplicationStopping);
    }

    public static WebApplication UseFleetNode(this WebApplication app)
    {
        app.UseDeviceSockets(); // first: a device socket passes none of the admin API's middleware
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseFleetListeners();
        app.UseDashboard(); // static files before authorization: the login page needs no key
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseNodeStopping();
        app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous();
        app.MapDevicesApi();
        app.MapCommandsApi();
        app.MapDeviceAdmissionApi();
        app.MapOperationsApi();
        app.MapSecurityApi();
        app.MapEventsApi();
        app.MapAlertsApi();
        Jobs.JobsApi.MapJobsApi(app);
        app.MapClientsApi();
        app.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous();
        app.MapDashboard();
        // The instruments exist from the start (a scrape before the first router still shows fleet_devices_connected 0).
        _ = app.Services.GetRequiredService<ConnectionMetrics>();
        _ = app.Services.GetRequiredService<FleetMetrics>();
        return app;
    }

    /// <summary>Where a generated admin key goes: Fleet:Security:GeneratedKeyFile, else admin.key beside the SQLite file (data/ for PostgreSQL).</summary>
    public static string GeneratedKeyFile(FleetSettings settings, DirectoryStore store)
    {
        if (settings.Security.GeneratedKeyFile is { Length: > 0 } configured) return Path.GetFullPath(configured);
        if (store.Provider == PersistenceProvider.Sqlite)
        {
            var db = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(ResolveConnectionString(settings.Persistence)).DataSource;
            return Path.Combine(Path.GetDirectoryName(db)!, "admin.key");
        }
        return Path.GetFullPath("data/admin.key");
    }

    /// <summary>SQLite paths are made absolute (against the working directory) and their folder created.</summary>
    public static string ResolveConnectionString(PersistenceSettings p)
    {
        if (p.Provider == PersistenceProvider.PostgreSql)
        {
            const string help = "Fleet:Persistence:Provider is PostgreSql: Fleet:Persistence:ConnectionString must be a " +
                                "PostgreSQL connection string such as \"Host=db;Username=fleet;Password=…;Database=fleet\"";
            try
            {
                var pg = new Npgsql.NpgsqlConnectionStringBuilder(p.ConnectionString);
                if (string.IsNullOrEmpty(pg.Host)) throw new InvalidOperationException(help + " (no Host)");
                return pg.ConnectionString;
            }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException($"{help} ({e.Message})", e);
            }
        }
        var csb = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(p.ConnectionString ?? "Data Source=data/fleet.db");
        if (string.IsNullOrEmpty(csb.DataSource) || csb.DataSource == ":memory:")
            throw new InvalidOperationException("Fleet:Persistence:ConnectionString must name a SQLite file (Data Source=…)");
        csb.DataSource = Path.GetFullPath(csb.DataSource);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(csb.DataSource)!);
        return csb.ToString();
    }
}
