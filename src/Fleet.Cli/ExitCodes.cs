namespace Fleet.Cli;

/// <summary>What fleetctl's exit code says, for scripts (README "Operate", fleetctl --help).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Anything else: an API 5xx, the node unreachable, an answer that is not what the API documents.</summary>
    public const int Error = 1;
    /// <summary>The command line is wrong, or the API said 400.</summary>
    public const int Usage = 2;
    public const int NotFound = 3;
    /// <summary>401 (no key, unknown key) or 403 (the key's role is too low).</summary>
    public const int Unauthorized = 4;
    public const int Conflict = 5;
    /// <summary>A waited command ended in a final status other than succeeded or delivered.</summary>
    public const int CommandNotSucceeded = 6;
    /// <summary>--wait ran out while the command was still queued or sent (a watched job or rollout: still not final).</summary>
    public const int StillPending = 7;
    /// <summary>A watched job or rollout ended cancelled or aborted (not completed).</summary>
    public const int JobNotCompleted = 8;

    public static int ForStatus(int httpStatus) => httpStatus switch
    {
        400 => Usage,
        401 or 403 => Unauthorized,
        404 => NotFound,
        409 => Conflict,
        _ => Error,
    };

    public const string Help = """
        Exit codes:
          0  ok
          1  error (API 5xx, network, anything else)
          2  usage error, or the API said 400
          3  not found (404)
          4  unauthorized or forbidden (401/403)
          5  conflict (409)
          6  a waited command ended failed, timed_out, expired or cancelled
             (clients kickoff: a router's kickoff did)
          7  --wait ran out while the command was still queued or sent
             (jobs/rollouts watch: while the job was still running, paused or awaiting approval)
          8  a watched job or rollout ended cancelled or aborted

        Environment: FLEET_URL (default http://localhost:8080), FLEET_KEY (the API key).
        """;
}

/// <summary>A failure that ends fleetctl with <see cref="ExitCode"/>; its message goes to stderr as "fleetctl: …".</summary>
public sealed class FleetctlException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
