using System.ComponentModel;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Fleet.Edge.Tests;

/// <summary>
/// A network namespace a test creates and always deletes. Sockets can be opened inside it without
/// any helper program: a throwaway thread enters the namespace with setns(2), creates the socket and
/// ends; the socket stays bound to that namespace wherever it is used from.
/// </summary>
public sealed partial class NetNs : IAsyncDisposable
{
    private const int CloneNewNet = 0x40000000;

    public string Name { get; }

    private NetNs(string name) => Name = name;

    /// <summary>Fails with a clear message when the machine cannot run these tests (CI always can).</summary>
    public static async Task RequireRootAndTools()
    {
        if (Environment.UserName != "root" && geteuid() != 0)
            throw new InvalidOperationException("The nftables tests need root (network namespaces): run them as root, as CI does.");
        foreach (var tool in new[] { "nft", "ip" })
        {
            try { await Sh.Try(tool, "--version"); }
            catch (Win32Exception)
            {
                throw new InvalidOperationException($"'{tool}' is not installed: apt-get install -y nftables iproute2");
            }
        }
    }

    public static async Task<NetNs> CreateAsync(string role)
    {
        await RequireRootAndTools();
        var ns = new NetNs($"fe{Guid.NewGuid().ToString("N")[..8]}{role}");
        await Sh.Run("ip", "netns", "add", ns.Name);
        await ns.Exec("ip", "link", "set", "lo", "up");
        return ns;
    }

    public Task<string> Exec(params string[] command) => Sh.Run(["ip", "netns", "exec", Name, .. command]);

    public Task<string> Nft(params string[] args) => Exec(["nft", .. args]);

    /// <summary>The prefix that makes the agent's nft run in here.</summary>
    public IReadOnlyList<string> Prefix => ["ip", "netns", "exec", Name];

    public Socket Socket(AddressFamily family, SocketType type, ProtocolType protocol)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{Name}");
                if (setns((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new Win32Exception(Marshal.GetLastPInvokeError(), $"setns into {Name}");
                socket = new Socket(family, type, protocol);
            }
            catch (Exception ex) { error = ex; }
        });
        thread.Start();
        thread.Join();
        return socket ?? throw new InvalidOperationException($"cannot open a socket in {Name}", error);
    }

    public async ValueTask DisposeAsync() => await Sh.Try("ip", "netns", "del", Name);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
