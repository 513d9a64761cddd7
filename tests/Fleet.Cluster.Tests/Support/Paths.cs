using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace Fleet.Cluster.Tests.Support;

/// <summary>Where the repository, the built server and the deploy files are, seen from the test assembly.</summary>
public static class Paths
{
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>Release or Debug: the test assembly's own configuration (the server is built with it).</summary>
    public static string Configuration { get; } =
        typeof(Paths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    public static string ServerDll
    {
        get
        {
            var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Name; // net10.0
            var dll = Path.Combine(RepoRoot, "src", "Fleet.Server", "bin", Configuration, tfm, "Fleet.Server.dll");
            if (!File.Exists(dll))
                throw new FileNotFoundException($"Fleet.Server is not built for {Configuration}: no {dll}. Run `dotnet build tests/Fleet.Cluster.Tests -c {Configuration}`.", dll);
            return dll;
        }
    }

    public static string NginxConf => Path.Combine(RepoRoot, "deploy", "nginx", "fleet.conf");
    public static string ThreeNodeConfig => Path.Combine(RepoRoot, "cluster-config", "three-node.json");

    /// <summary>Logs and generated files of this run; kept after a failure to read.</summary>
    public static string NewWorkDir(string name)
    {
        var unique = $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{name}-{Guid.NewGuid():N}";
        // At most 60 characters (a short test name makes fewer: "ChaosTests" did, and the cut threw).
        var dir = Path.Combine(Path.GetTempPath(), "fleet-cluster-tests", unique[..Math.Min(60, unique.Length)]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Fleet.sln"))) return d.FullName;
        throw new InvalidOperationException($"no Fleet.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>Free loopback TCP ports, each handed out once per test run.</summary>
public static class Ports
{
    private static readonly HashSet<int> Given = [];

    public static int Free()
    {
        lock (Given)
        {
            while (true)
            {
                using var l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                var port = ((IPEndPoint)l.LocalEndpoint).Port;
                l.Stop();
                if (Given.Add(port)) return port;
            }
        }
    }
}
