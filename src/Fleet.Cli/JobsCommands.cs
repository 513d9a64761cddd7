using System.CommandLine;
using System.Text.Json.Nodes;

namespace Fleet.Cli;

/// <summary>
/// fleetctl jobs list|get|devices|create|pause|resume|cancel|watch: bulk commands (/api/v1/jobs, docs/ADMIN_API.md
/// "Jobs"). A job sends one command to every device of a selection at a controlled rate and records each result.
/// </summary>
public static class JobsCommands
{
    public static Command Build(Session session) => new("jobs", "bulk commands: one command to every device of a selection (and rollouts, as jobs)")
    {
        List(session), Get(session), Devices(session), Create(session),
        Control(session, "pause", "stop sending until resumed (exit 5 when the job has finished)", Paths.Job),
        Control(session, "resume", "go on sending (exit 5 when the job is not paused)", Paths.Job),
        Control(session, "cancel", "stop sending and cancel the commands still queued on devices (exit 5 when it has finished)", Paths.Job),
        Watch(session, "watch", "follow a job until it is final: a progress bar of finished/total (exit 0 completed, 8 cancelled or aborted)", Paths.Job),
    };

    public static Argument<string> JobId() => new("job_id") { Description = "the job (job_id in its view)" };

    private static Command List(Session session)
    {
        var kind = new Option<string?>("--kind") { Description = "only jobs of this kind" }.AcceptOnlyFromAmong("command", "rollout");
        var status = new Option<string?>("--status") { Description = "only jobs in this status (running, paused, completed, cancelled, awaiting_approval, aborted)" };
        var list = new Command("list", "jobs and rollouts, newest first") { kind, status };
        new Listing("jobs").Act(session, list, _ => "/api/v1/jobs", (parse, query) =>
        {
            Query.Set(query, "kind", parse.GetValue(kind));
            Query.Set(query, "status", parse.GetValue(status));
        }, JobViews.ListTable);
        return list;
    }

    private static Command Get(Session session)
    {
        var id = JobId();
        var get = new Command("get", "one job: status, devices per status (a rollout: its stages too)") { id };
        session.Act(get, async (parse, api, ct) =>
        {
            session.Show(parse, await api.GetAsync(Paths.Job(parse.GetValue(id)!), ct), JobViews.View);
            return ExitCodes.Ok;
        });
        return get;
    }

    private static Command Devices(Session session)
    {
        var id = JobId();
        var status = new Option<string?>("--status") { Description = "only devices in this status (pending, offline, skipped, queued, sent, succeeded, failed, …)" };
        var devices = new Command("devices", "each device's result in a job") { id, status };
        new Listing("devices").Act(session, devices, parse => Paths.Job(parse.GetValue(id)!) + "/devices",
            (parse, query) => Query.Set(query, "status", parse.GetValue(status)), JobViews.DevicesTable);
        return devices;
    }

    private static Command Create(Session session)
    {
        var selection = new SelectionOptions();
        var name = new Option<string?>("--name") { Description = "what the job is for, in words" };
        var commandJson = new Option<string?>("--command-json")
        {
            Description = "the command as the API takes it on one device, e.g. '{\"type\":\"tmp_pass\",\"client_mac\":\"aa:bb:cc:dd:ee:ff\"}'", HelpName = "JSON",
        };
        var type = new Option<string?>("--type") { Description = "the command's type (over --command-json's)" };
        var fields = new Option<string[]>("--field")
        {
            Description = "a command field, name=value (repeatable); the value is read as JSON if it is JSON, else as a string", HelpName = "NAME=VALUE",
        };
        var rate = new Option<int?>("--rate") { Description = "commands sent per minute, 1-60000 (API default 600)", HelpName = "N" };
        var deadline = new Option<int?>("--deadline-seconds") { Description = "after this long nothing more is sent and the job completes (API default 86400)", HelpName = "SECONDS" };
        var noWaitOffline = new Option<bool>("--no-wait-offline") { Description = "record a device offline at its turn as offline and skip it (by default its command waits in its queue until the deadline)" };
        var timeout = new Option<int?>("--timeout") { Description = "seconds each sent command waits for its answer (API default 30)", HelpName = "SECONDS" };
        var dryRun = new Option<bool>("--dry-run") { Description = "only count and list the devices the selection names; nothing is created" };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "makes a retry of this create return the same job" };
        var watch = new Option<bool>("--watch") { Description = "then follow the job until it is final (exit codes as for jobs watch)" };
        var create = new Command("create", "create a job, e.g. create --tag site=paris --type tmp_pass --field client_mac=aa:bb:cc:dd:ee:ff --field timeout=300")
        {
            name, commandJson, type, fields, rate, deadline, noWaitOffline, timeout, dryRun, idempotencyKey, watch,
        };
        foreach (var option in selection.Options) create.Options.Add(option);
        session.Act(create, async (parse, api, ct) =>
        {
            var command = SelectionOptions.Object(parse.GetValue(commandJson), "--command-json");
            if (parse.GetValue(type) is { } t) command["type"] = t;
            foreach (var field in parse.GetValue(fields) ?? [])
            {
                var at = field.IndexOf('=');
                if (at < 1) throw new FleetctlException(ExitCodes.Usage, $"--field '{field}' must be name=value");
                command[field[..at]] = CommandsCommands.Value(field[(at + 1)..]);
            }
            if (command["type"] is null) throw new FleetctlException(ExitCodes.Usage, "the command has no type: give --command-json '{\"type\":…}' or --type");
            var body = new JsonObject { ["selection"] = selection.Read(parse), ["command"] = command };
            if (parse.GetValue(name) is { } n) body["name"] = n;
            if (parse.GetValue(rate) is { } r) body["rate_per_minute"] = r;
            if (parse.GetValue(deadline) is { } d) body["deadline_seconds"] = d;
            if (parse.GetValue(noWaitOffline)) body["wait_offline"] = false;
            if (parse.GetValue(timeout) is { } s) body["timeout_seconds"] = s;
            if (parse.GetValue(dryRun)) body["dry_run"] = true;
            return await Created(session, parse, api, "/api/v1/jobs", body, parse.GetValue(idempotencyKey), parse.GetValue(watch), Paths.Job, ct);
        });
        return create;
    }

    /// <summary>POSTs a job or rollout: a dry run's devices, or the view created (then followed with --watch).</summary>
    internal static async Task<int> Created(Session session, ParseResult parse, FleetApi api, string path, JsonObject body, string? idempotencyKey,
        bool watch, Func<string, string> viewPath, CancellationToken ct)
    {
        var answer = await api.SendAsync(HttpMethod.Post, path, body, ct, idempotencyKey: idempotencyKey);
        var view = answer.Json;
        if (view["dry_run"] is JsonValue dry && dry.TryGetValue<bool>(out var isDry) && isDry)
        {
            session.Show(parse, answer, JobViews.DryRun);
            return ExitCodes.Ok;
        }
        if (!watch)
        {
            session.Show(parse, answer, JobViews.View);
            return ExitCodes.Ok;
        }
        var id = Tables.Text(view["job_id"]);
        return await JobViews.Watch(session, parse, api, viewPath(id), null, null, ct, answer);
    }

    /// <summary>POST {view}/{action} on a job or rollout: the view it answers, 409 (exit 5) when its status does not allow it.</summary>
    internal static Command Control(Session session, string action, string description, Func<string, string> viewPath)
    {
        var id = JobId();
        var command = new Command(action, description) { id };
        session.Act(command, async (parse, api, ct) =>
        {
            session.Show(parse, await api.SendAsync(HttpMethod.Post, $"{viewPath(parse.GetValue(id)!)}/{action}", null, ct), JobViews.View);
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static Command Watch(Session session, string name, string description, Func<string, string> viewPath)
    {
        var id = JobId();
        var wait = JobViews.WatchWait();
        var interval = JobViews.WatchInterval();
        var watch = new Command(name, description) { id, wait, interval };
        session.Act(watch, (parse, api, ct) =>
            JobViews.Watch(session, parse, api, viewPath(parse.GetValue(id)!), parse.GetValue(wait), parse.GetValue(interval), ct));
        return watch;
    }
}
