using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using Akka.Event;
using Fleet.Edge.Platform;
using Fleet.Protocol;

namespace Fleet.Edge.Router;

/// <summary>Where the router actor finds the system: executables, files, and how long a launch may fail fast.</summary>
public sealed record RouterOptions(
    string SysupgradeCommand,
    string RebootCommand,
    string ReleaseFile,
    string ProcRoot = "/proc",
    double LaunchGraceSeconds = 1.0);

/// <summary>
/// Answers the requests about the router itself: get_firmware_info, firmware_upgrade,
/// reboot_device and get_sys_info. Executables are started with argument lists only; a URL reaches
/// sysupgrade only after <see cref="FieldRules.IsFirmwareUrl"/> accepted it.
/// </summary>
public sealed class RouterActor : UntypedActor
{
    public const string FirmwareInfoFailed = "Failed to execute command";
    public const string SysupgradeFailed = "Failed to execute sysupgrade command";
    public const string RebootFailed = "Failed to execute reboot command";
    public const string SysInfoFailed = "Failed to read system information";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RouterOptions _options;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();

    private readonly IActorRef? _firewall;

    /// <param name="firewall">Told to forget the clients before a reboot or an upgrade (<see cref="ForgetClients"/>); null in tests of this actor alone.</param>
    public RouterActor(RouterOptions options, IActorRef? firewall = null)
    {
        _options = options;
        _firewall = firewall;
    }

    protected override void OnReceive(object message)
    {
        var sender = Sender;
        void Reply(IDeviceFrame m) => sender.Tell(new SendToController(m));
        switch (message)
        {
            case SimpleRequest r when r.Type == RequestKinds.GetFirmwareInfo.Type: Reply(FirmwareInfo(r.ReqId)); break;
            case SimpleRequest r when r.Type == RequestKinds.GetSysInfo.Type: Reply(SysInfo(r.ReqId)); break;
            case SimpleRequest r when r.Type == RequestKinds.RebootDevice.Type:
                RunTask(async () =>
                {
                    _log.Warning("Reboot requested by the controller");
                    // Before the reboot: once it runs, the agent may not get to save anything.
                    await Forget("reboot");
                    // Success has no answer: the router goes down (EXTENSIONS.md).
                    if (!await Launch([_options.RebootCommand], []))
                        Reply(FirmwareAnswers.Error(RequestKinds.RebootDevice, r.ReqId, RebootFailed));
                });
                break;
            case FirmwareUpgradeRequest r: RunTask(async () => Reply(await Upgrade(r))); break;
            default: Unhandled(message); break;
        }
    }

    private IDeviceFrame FirmwareInfo(ReqId? reqId) =>
        RouterInfo.ReadRelease(_options.ReleaseFile) is { } data
            ? new FirmwareInfoResponse { ReqId = reqId, Data = data }
            : FirmwareAnswers.Error(RequestKinds.GetFirmwareInfo, reqId, FirmwareInfoFailed);

    private IDeviceFrame SysInfo(ReqId? reqId)
    {
        var info = RouterInfo.ReadSysInfo(_options.ProcRoot, _uptime.Elapsed);
        if (info.SysUptime is null && info.SysMemfree is null && info.SysLoad is null)
            return FirmwareAnswers.Error(RequestKinds.GetSysInfo, reqId, SysInfoFailed);
        return new GenericResponse
        {
            Type = RequestKinds.GetSysInfo.SuccessType!, ReqId = reqId,
            Data = JsonSerializer.SerializeToElement(info, RouterJsonContext.Default.SysInfo),
        };
    }

    private async Task<IDeviceFrame> Upgrade(FirmwareUpgradeRequest r)
    {
        // The firmware's URL check (FieldRules.IsFirmwareUrl): nothing else reaches sysupgrade's argument list.
        if (FirmwareAnswers.RefuseUpgrade(r) is { } refusal) return refusal;
        string[] args = r.Force == true ? ["-F", r.Url!] : [r.Url!];
        _log.Warning("Firmware upgrade from {0} (force: {1})", r.Url, r.Force == true);
        // Answered as soon as sysupgrade runs: it reboots the router, and the seed answers before that.
        if (!await Launch([_options.SysupgradeCommand], args))
            return FirmwareAnswers.Error(RequestKinds.FirmwareUpgrade, r.ReqId, SysupgradeFailed);
        await Forget("firmware upgrade");
        return FirmwareAnswers.UpgradeAccepted(r.ReqId);
    }

    private async Task Forget(string why)
    {
        if (_firewall is null) return;
        try { await _firewall.Ask<ClientsForgotten>(new ForgetClients(why), TimeSpan.FromSeconds(10)); }
        catch (Exception ex) when (ex is AskTimeoutException or TaskCanceledException)
        {
            _log.Error("The firewall did not forget the clients before the {0} in time", why);
        }
    }

    /// <summary>
    /// Starts a command and leaves it running. It counts as failed when it cannot be started or
    /// exits non-zero within the grace period (a missing image, a bad option): those the controller
    /// should hear about, while a long download must not hold the answer back.
    /// </summary>
    private async Task<bool> Launch(IReadOnlyList<string> command, IEnumerable<string> args)
    {
        Process? p;
        try
        {
            var psi = ProcessRunner.StartInfo(command, args, redirectStdin: false);
            // Its output goes where ours goes (syslog under procd); a pipe nobody reads would block it.
            psi.RedirectStandardOutput = false;
            psi.RedirectStandardError = false;
            p = Process.Start(psi);
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            _log.Error(ex, "Cannot start {0}", command[0]);
            return false;
        }
        if (p is null) return false;
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(_options.LaunchGraceSeconds));
        try
        {
            await p.WaitForExitAsync(grace.Token);
            var ok = p.ExitCode == 0;
            if (!ok) _log.Error("{0} exited with {1}", command[0], p.ExitCode);
            p.Dispose();
            return ok;
        }
        catch (OperationCanceledException)
        {
            _ = p.WaitForExitAsync().ContinueWith(_ => p.Dispose(), TaskScheduler.Default);
            return true;
        }
    }

    public static Props Props(RouterOptions options, IActorRef? firewall = null) => Actors.Of(() => new RouterActor(options, firewall));
}
