using System.Diagnostics;

namespace Fleet.Edge.Platform;

public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public bool Ok => ExitCode == 0;
}

/// <summary>
/// Runs an executable with an argument list (never a shell line), optionally feeding stdin.
/// Arguments are passed to execve one by one, so no value can be read as shell syntax.
/// </summary>
public static class ProcessRunner
{
    public static ProcessStartInfo StartInfo(IReadOnlyList<string> command, IEnumerable<string> args, bool redirectStdin)
    {
        if (command.Count == 0) throw new ArgumentException("empty command", nameof(command));
        var psi = new ProcessStartInfo(command[0])
        {
            UseShellExecute = false,
            RedirectStandardInput = redirectStdin,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Runs to completion. Throws only when the executable cannot be started.</summary>
    public static async Task<ProcessResult> RunAsync(IReadOnlyList<string> command, IEnumerable<string> args, string? stdin = null,
        CancellationToken ct = default)
    {
        using var p = Process.Start(StartInfo(command, args, stdin is not null))
            ?? throw new InvalidOperationException($"{command[0]} did not start");
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin.AsMemory(), ct);
            p.StandardInput.Close();
        }
        try { await p.WaitForExitAsync(ct); }
        catch (OperationCanceledException) { TryKill(p); throw; }
        return new(p.ExitCode, await stdout, await stderr);
    }

    private static void TryKill(Process p)
    {
        try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } catch (System.ComponentModel.Win32Exception) { }
    }
}
