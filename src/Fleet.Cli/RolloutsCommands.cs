using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Fleet.Cli;

/// <summary>
/// fleetctl rollouts list|get|devices|create|pause|resume|abort|approve|watch: staged firmware upgrades that verify the
/// new version (/api/v1/rollouts, docs/ADMIN_API.md "Rollouts").
/// </summary>
public static partial class RolloutsCommands
{
    public static Command Build(Session session) => new("rollouts", "staged firmware upgrades: a canary, then waves, each verified")
    {
        List(session), Get(session), Devices(session), Create(session),
        JobsCommands.Control(session, "pause", "start no new device until resumed (exit 5 when not allowed in its status)", Paths.Rollout),
        JobsCommands.Control(session, "resume", "go on (exit 5 when it is not paused)", Paths.Rollout),
        JobsCommands.Control(session, "abort", "send nothing more: the rollout ends aborted (exit 5 when it has finished)", Paths.Rollout),
        JobsCommands.Control(session, "approve", "start the next stage of a rollout awaiting approval (exit 5 when it is not)", Paths.Rollout),
        JobsCommands.Watch(session, "watch", "follow a rollout until it is final: a progress bar for it and for each stage (exit 0 completed, 8 aborted or cancelled)", Paths.Rollout),
    };

    private static Command List(Session session)
    {
        var status = new Option<string?>("--status") { Description = "only rollouts in this status (running, paused, awaiting_approval, completed, aborted, cancelled)" };
        var list = new Command("list", "rollouts, newest first") { status };
        new Listing("rollouts").Act(session, list, _ => "/api/v1/rollouts",
            (parse, query) => Query.Set(query, "status", parse.GetValue(status)), JobViews.ListTable);
        return list;
    }

    private static Command Get(Session session)
    {
        var id = JobsCommands.JobId();
        var get = new Command("get", "one rollout: status, devices per status, its plan and stages") { id };
        session.Act(get, async (parse, api, ct) =>
        {
            session.Show(parse, await api.GetAsync(Paths.Rollout(parse.GetValue(id)!), ct), JobViews.View);
            return ExitCodes.Ok;
        });
        return get;
    }

    private static Command Devices(Session session)
    {
        var id = JobsCommands.JobId();
        var status = new Option<string?>("--status")
        {
            Description = "only devices in this status (pending, waiting, checking, upgrading, rebooting, verifying, upgraded, already, failed, skipped)",
        };
        var stage = new Option<int?>("--stage") { Description = "only the devices of this stage (0: the canary)", HelpName = "INDEX" };
        var devices = new Command("devices", "each device's progress in a rollout") { id, status, stage };
        new Listing("devices").Act(session, devices, parse => Paths.Rollout(parse.GetValue(id)!) + "/devices", (parse, query) =>
        {
            Query.Set(query, "status", parse.GetValue(status));
            Query.Set(query, "stage", parse.GetValue(stage)?.ToString(CultureInfo.InvariantCulture));
        }, JobViews.DevicesTable);
        return devices;
    }

    [GeneratedRegex(@"^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")]
    private static partial Regex WindowPattern();

    private static Command Create(Session session)
    {
        var selection = new SelectionOptions("--from-release");
        var name = new Option<string?>("--name") { Description = "what the rollout is for, in words" };
        // Not --url: that is the node's address, on every command.
        var url = new Option<string>("--firmware-url") { Description = "the firmware image (an absolute http(s) URL; the URL policy applies)", Required = true, HelpName = "URL" };
        var release = new Option<string>("--release") { Description = "the DISTRIB_RELEASE the image installs: a device already on it is 'already', one that comes back on another 'failed'", Required = true };
        var revision = new Option<string?>("--revision") { Description = "the DISTRIB_REVISION it installs too, if given" };
        var force = new Option<bool>("--force") { Description = "firmware_upgrade with force" };
        var canary = new Option<int?>("--canary") { Description = "devices in the first stage", HelpName = "N" };
        var canaryPercent = new Option<double?>("--canary-percent") { Description = "the first stage as a percentage of the devices (at least 1 device)", HelpName = "P" };
        var waveFactor = new Option<double?>("--wave-factor") { Description = "each wave is this many times the stage before", HelpName = "F" };
        var rate = new Option<int?>("--rate") { Description = "devices started per minute", HelpName = "N" };
        var abortPercent = new Option<double?>("--abort-percent") { Description = "abort when more than this percentage of a stage's finished devices failed", HelpName = "P" };
        var abortMin = new Option<int?>("--abort-min") { Description = "... once at least this many of the stage finished", HelpName = "N" };
        var deviceTimeout = new Option<int?>("--device-timeout") { Description = "seconds a device may take to come back verified after the upgrade was accepted", HelpName = "SECONDS" };
        var retries = new Option<int?>("--retries") { Description = "times an upgrade that did not reach a device (or that it refused) is sent again", HelpName = "N" };
        var windows = new Option<string[]>("--window") { Description = "a maintenance window in the device's zone (repeatable); none: any time", HelpName = "HH:MM-HH:MM" };
        var zone = new Option<string?>("--zone") { Description = "the windows' time zone (IANA, e.g. Europe/Paris; API default UTC)" };
        var zoneTag = new Option<string?>("--zone-tag") { Description = "a device's tag that names its own zone (over --zone)" };
        var approval = new Option<bool>("--approval") { Description = "wait for 'rollouts approve' before each stage after the canary" };
        var deadline = new Option<int?>("--deadline-seconds") { Description = "devices not started by then are skipped (API default 604800)", HelpName = "SECONDS" };
        var dryRun = new Option<bool>("--dry-run") { Description = "only count and list the devices the selection names; nothing is created" };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "makes a retry of this create return the same rollout" };
        var watch = new Option<bool>("--watch") { Description = "then follow the rollout until it is final (exit codes as for rollouts watch)" };
        var create = new Command("create", "create a rollout, e.g. create --tag site=paris --firmware-url https://fw.example.com/24.10.1.bin --release 24.10.1 --canary 3 --window 01:00-05:00")
        {
            name, url, release, revision, force, canary, canaryPercent, waveFactor, rate, abortPercent, abortMin, deviceTimeout, retries,
            windows, zone, zoneTag, approval, deadline, dryRun, idempotencyKey, watch,
        };
        foreach (var option in selection.Options) create.Options.Add(option);
        session.Act(create, async (parse, api, ct) =>
        {
            if (parse.GetValue(canary) is not null && parse.GetValue(canaryPercent) is not null)
                throw new FleetctlException(ExitCodes.Usage, "give --canary or --canary-percent, not both");
            var body = new JsonObject
            {
                ["selection"] = selection.Read(parse), ["url"] = parse.GetValue(url), ["release"] = parse.GetValue(release),
            };
            if (parse.GetValue(name) is { } n) body["name"] = n;
            if (parse.GetValue(revision) is { } rev) body["revision"] = rev;
            if (parse.GetValue(force)) body["force"] = true;
            if (parse.GetValue(canary) is { } c) body["canary"] = c;
            if (parse.GetValue(canaryPercent) is { } cp) body["canary_percent"] = cp;
            if (parse.GetValue(waveFactor) is { } wf) body["wave_factor"] = wf;
            if (parse.GetValue(rate) is { } r) body["rate_per_minute"] = r;
            if (parse.GetValue(abortPercent) is not null || parse.GetValue(abortMin) is not null)
            {
                var abort = new JsonObject();
                if (parse.GetValue(abortPercent) is { } ap) abort["failure_percent"] = ap;
                if (parse.GetValue(abortMin) is { } am) abort["min_finished"] = am;
                body["abort"] = abort;
            }
            if (parse.GetValue(deviceTimeout) is { } dt) body["device_timeout_seconds"] = dt;
            if (parse.GetValue(retries) is { } re) body["retries"] = re;
            if (parse.GetValue(windows) is { Length: > 0 } ws) body["windows"] = new JsonArray(ws.Select(Window).ToArray());
            if (parse.GetValue(zone) is { } z) body["zone"] = z;
            if (parse.GetValue(zoneTag) is { } zt) body["zone_tag"] = zt;
            if (parse.GetValue(approval)) body["approval"] = true;
            if (parse.GetValue(deadline) is { } d) body["deadline_seconds"] = d;
            if (parse.GetValue(dryRun)) body["dry_run"] = true;
            return await JobsCommands.Created(session, parse, api, "/api/v1/rollouts", body, parse.GetValue(idempotencyKey), parse.GetValue(watch),
                Paths.Rollout, ct);
        });
        return create;
    }

    /// <summary>"01:00-05:00" as {"start":"01:00","end":"05:00"}; the API checks the times themselves.</summary>
    private static JsonNode Window(string text)
    {
        var m = WindowPattern().Match(text.Trim());
        if (!m.Success) throw new FleetctlException(ExitCodes.Usage, $"--window '{text}' must be HH:MM-HH:MM, e.g. 01:00-05:00");
        return new JsonObject { ["start"] = m.Groups[1].Value, ["end"] = m.Groups[2].Value };
    }
}
