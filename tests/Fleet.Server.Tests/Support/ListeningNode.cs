using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Fleet.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Fleet.Server.Tests.Support;

/// <summary>
/// A real node started with the listen settings a test gives (no --urls added, unlike <see cref="Node"/>):
/// Kestrel endpoints, certificates, Fleet:Admin:Urls. Knows every address it bound and keeps the warnings it
/// logged. Clients made here pin the test's certificate, if any.
/// </summary>
public sealed class ListeningNode : IAsyncDisposable
{
    public WebApplication App { get; }
    public IReadOnlyList<Uri> Addresses { get; }
    public X509Certificate2? Certificate { get; }
    private readonly WarningLog _warnings;
    private readonly List<HttpClient> _clients = [];

    private ListeningNode(WebApplication app, IReadOnlyList<Uri> addresses, X509Certificate2? certificate, WarningLog warnings)
    {
        App = app;
        Addresses = addresses;
        Certificate = certificate;
        _warnings = warnings;
    }

    /// <summary>What the node logged at Warning or above.</summary>
    public IReadOnlyList<string> Warnings => [.. _warnings.Lines];

    public static async Task<ListeningNode> StartAsync(X509Certificate2? certificate, params string[] listenArgs)
    {
        var args = new List<string>
        {
            "--Fleet:Persistence:ConnectionString", $"Data Source={Node.NewDbPath()}",
            "--Fleet:Cluster:Port", "0",
            "--Logging:LogLevel:Default", "Warning",
        };
        args.AddRange(TestKeys.Arguments());
        args.AddRange(listenArgs);
        var warnings = new WarningLog();
        var app = await FleetNode.CreateAsync(args.ToArray(), b => b.Logging.AddProvider(warnings));
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Select(a => new Uri(a)).ToList();
        var node = new ListeningNode(app, addresses, certificate, warnings);
        var probe = node.Client(addresses[0]);
        await Eventually.True(async () => (await probe.GetAsync("/readyz")).IsSuccessStatusCode, "node ready");
        return node;
    }

    /// <summary>The one address bound on this host (tests give each side its own loopback address).</summary>
    public Uri On(string host) => Addresses.Single(a => a.Host == host);

    /// <summary>An HTTP client for one address, with the admin key, trusting exactly the test's certificate.</summary>
    public HttpClient Client(Uri address, string key = TestKeys.Admin)
    {
        var handler = new SocketsHttpHandler();
        if (Certificate is { } pinned) handler.SslOptions.RemoteCertificateValidationCallback = (_, c, _, _) => Pins(pinned, c);
        var http = new HttpClient(handler) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) }.Authorize(key);
        lock (_clients) _clients.Add(http);
        return http;
    }

    /// <summary>ws:// or wss:// for a path on one address.</summary>
    public static Uri SocketUri(Uri address, string path = "/ws/wifidogx") =>
        new($"{(address.Scheme == "https" ? "wss" : "ws")}://{address.Authority}{path}");

    /// <summary>A WebSocket client that trusts exactly the test's certificate.</summary>
    public ClientWebSocket Socket()
    {
        var ws = new ClientWebSocket();
        if (Certificate is { } pinned) ws.Options.RemoteCertificateValidationCallback = (_, c, _, _) => Pins(pinned, c);
        return ws;
    }

    private static bool Pins(X509Certificate2 pinned, X509Certificate? presented) =>
        presented is not null && presented.GetCertHash(HashAlgorithmName.SHA256).AsSpan().SequenceEqual(pinned.GetCertHash(HashAlgorithmName.SHA256));

    /// <summary>
    /// A self-signed server certificate for 127.0.0.1, 127.0.0.2 and localhost, written as a password-protected
    /// .pfx into a fresh temp folder. Returns the certificate (public part) and the file.
    /// </summary>
    public static (X509Certificate2 Certificate, string PfxPath, string Password) SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=fleet-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.Parse("127.0.0.2"));
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false)); // server auth
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var dir = Path.Combine(Path.GetTempPath(), "fleet-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        var path = Path.Combine(dir, "fleet.pfx");
        File.WriteAllBytes(path, cert.Export(X509ContentType.Pfx, password));
        return (X509CertificateLoader.LoadCertificate(cert.RawData), path, password);
    }

    public async ValueTask DisposeAsync()
    {
        lock (_clients) foreach (var c in _clients) c.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }

    private sealed class WarningLog : ILoggerProvider
    {
        public ConcurrentQueue<string> Lines { get; } = new();
        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
        public void Dispose() { }

        private sealed class Logger(WarningLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) log.Lines.Enqueue($"{category}: {formatter(state, exception)}");
            }
        }
    }
}
