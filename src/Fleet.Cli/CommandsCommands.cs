using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Web;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Fleet.Cli;

/// <summary>fleetctl commands send|list|get|cancel: a device's commands (POST/GET/DELETE /api/v1/devices/{id}/commands).</summary>
public static class CommandsCommands
{
    /// <summary>The longest ?wait= one call asks for: the API's default Fleet:Commands:MaxWaitSeconds. A longer --wait asks again.</summary>
    public const int MaxWaitPerCall = 120;

    public static Command Build(Session session) => new("commands", "commands sent to a device, their status and answers")
    {
        Send(session), List(session), Get(session), Cancel(session),
    };

    private static Argument<string> DeviceId() => new("device_id") { Description = "the device" };
    private static Argument<string> CommandId() => new("command_id") { Description = "the command (command_id in its view)" };
    private static Option<int?> Wait(string what) => new("--wait") { Description = what, HelpName = "SECONDS" };

    private static Command Send(Session session)
    {
        var deviceId = DeviceId();
        var type = new Option<string?>("--type") { Description = "kickoff, auth, tmp_pass, get_firmware_info, firmware_upgrade, reboot_device, …" };
        var clientIp = new Option<string?>("--client-ip") { Description = "client_ip" };
        var clientMac = new Option<string?>("--client-mac") { Description = "client_mac (aa:bb:cc:dd:ee:ff)" };
        var gwId = new Option<string?>("--gw-id") { Description = "gw_id" };
        var fields = new Option<string[]>("--field")
        {
            Description = "a body field, name=value (repeatable); the value is read as JSON if it is JSON, else as a string",
            HelpName = "NAME=VALUE",
        };
        var body = new Option<string?>("--body") { Description = "the request body as a JSON object (options and --field go over it)", HelpName = "JSON" };
        var ttl = new Option<int?>("--ttl") { Description = "seconds a queued command waits for an offline device (API default 86400)", HelpName = "SECONDS" };
        var timeout = new Option<int?>("--timeout") { Description = "seconds a sent command waits for its answer (API default 30)", HelpName = "SECONDS" };
        var wait = Wait("wait up to this long for a final status (exit 6 if not succeeded/delivered, 7 if still pending)");
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "makes a retry of this send return the same command" };
        var send = new Command("send", "send a command to a device, e.g. send r1 --type kickoff --client-ip 192.168.1.23 --client-mac aa:bb:cc:dd:ee:ff --gw-id gw-1")
        {
            deviceId, type, clientIp, clientMac, gwId, fields, body, ttl, timeout, wait, idempotencyKey,
        };
        session.Act(send, async (parse, api, ct) =>
        {
            var request = Body(parse.GetValue(body), ("type", parse.GetValue(type)), ("client_ip", parse.GetValue(clientIp)),
                ("client_mac", parse.GetValue(clientMac)), ("gw_id", parse.GetValue(gwId)));
            foreach (var field in parse.GetValue(fields) ?? [])
            {
                var at = field.IndexOf('=');
                if (at < 1) throw new FleetctlException(ExitCodes.Usage, $"--field '{field}' must be name=value");
                request[field[..at]] = Value(field[(at + 1)..]);
            }
            var query = HttpUtility.ParseQueryString("");
            if (parse.GetValue(ttl) is { } t) query["ttl"] = t.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (parse.GetValue(timeout) is { } s) query["timeout"] = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var path = Paths.Commands(parse.GetValue(deviceId)!);
            var waitFor = parse.GetValue(wait);
            if (waitFor is null)
            {
                var answer = await api.SendAsync(HttpMethod.Post, $"{path}?{query}", request, ct, idempotencyKey: parse.GetValue(idempotencyKey));
                session.Show(parse, answer, CommandView);
                return ExitCodes.Ok;
            }
            // A wait longer than one call allows asks again with the same Idempotency-Key: the API answers
            // with the same command and waits on it, so no second command is ever queued.
            var key = parse.GetValue(idempotencyKey) ?? "fleetctl-" + Guid.NewGuid().ToString("N");
            return await Waited(session, parse, waitFor.Value, $"{Tables.Text(request["type"])} → {parse.GetValue(deviceId)}",
                seconds =>
                {
                    query["wait"] = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    return api.SendAsync(HttpMethod.Post, $"{path}?{query}", request, ct, TimeSpan.FromSeconds(seconds), key);
                }, ct);
        });
        return send;
    }

    /// <summary>The request body: --body's object, then the named options that were given.</summary>
    private static JsonObject Body(string? json, params (string Name, string? Value)[] named)
    {
        JsonObject request;
        try
        {
            request = json is null ? new JsonObject() : JsonNode.Parse(json) as JsonObject
                ?? throw new FleetctlException(ExitCodes.Usage, "--body must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new FleetctlException(ExitCodes.Usage, $"--body is not valid JSON: {e.Message}");
        }
        foreach (var (name, value) in named)
            if (value is not null) request[name] = value;
        return request;
    }

    /// <summary>--field's value: JSON when it parses as JSON (true, 300, {"a":1}), else the text itself.</summary>
    internal static JsonNode? Value(string text)
    {
        try { return JsonNode.Parse(text); }
        catch (JsonException) { return JsonValue.Create(text); }
    }

    private static Command List(Session session)
    {
        var deviceId = DeviceId();
        var list = new Command("list", "a device's commands, newest first") { deviceId };
        session.Act(list, async (parse, api, ct) =>
        {
            session.Show(parse, await api.GetAsync(Paths.Commands(parse.GetValue(deviceId)!), ct), page => Tables.Of(
                ["COMMAND_ID", "TYPE", "STATUS", "CREATED", "COMPLETED", "ERROR"],
                Tables.Items(page).Select(c => new[]
                {
                    Tables.Text(c["command_id"]), Tables.Text(c["type"]), Tables.Text(c["status"]), Tables.Time(c["created_at"]),
                    Tables.Time(c["completed_at"]), Tables.Text(c["error"]),
                })));
            return ExitCodes.Ok;
        });
        return list;
    }

    private static Command Get(Session session)
    {
        var deviceId = DeviceId();
        var commandId = CommandId();
        var wait = Wait("poll up to this long for a final status (exit codes as for send --wait)");
        var get = new Command("get", "one command: status, request, the device's answer") { deviceId, commandId, wait };
        session.Act(get, async (parse, api, ct) =>
        {
            var path = Paths.Command(parse.GetValue(deviceId)!, parse.GetValue(commandId)!);
            if (parse.GetValue(wait) is not { } waitFor)
            {
                session.Show(parse, await api.GetAsync(path, ct), CommandView);
                return ExitCodes.Ok;
            }
            // GET has no long poll: read again every second.
            var first = true;
            return await Waited(session, parse, waitFor, parse.GetValue(commandId)!, async seconds =>
            {
                if (!first) await Task.Delay(TimeSpan.FromSeconds(Math.Min(1, seconds)), ct);
                first = false;
                return await api.GetAsync(path, ct);
            }, ct);
        });
        return get;
    }

    private static Command Cancel(Session session)
    {
        var deviceId = DeviceId();
        var commandId = CommandId();
        var cancel = new Command("cancel", "cancel a queued command (exit 5 when it is no longer queued)") { deviceId, commandId };
        session.Act(cancel, async (parse, api, ct) =>
        {
            session.Show(parse, await api.SendAsync(HttpMethod.Delete, Paths.Command(parse.GetValue(deviceId)!, parse.GetValue(commandId)!), null, ct),
                CommandView);
            return ExitCodes.Ok;
        });
        return cancel;
    }

    private static bool Pending(JsonNode view) => Tables.Text(view["status"]) is "queued" or "sent";

    /// <summary>
    /// Calls <paramref name="poll"/> (given the seconds left, at most <see cref="MaxWaitPerCall"/>) until the command's status is
    /// final or <paramref name="seconds"/> have passed, with a spinner on stderr when it is a terminal; prints the last view.
    /// </summary>
    private static async Task<int> Waited(Session session, ParseResult parse, int seconds, string what,
        Func<int, Task<FleetApi.Answer>> poll, CancellationToken ct)
    {
        if (seconds < 0) throw new FleetctlException(ExitCodes.Usage, "--wait must not be negative");
        var clock = Stopwatch.StartNew();
        int Left() => Math.Max(0, seconds - (int)clock.Elapsed.TotalSeconds);
        async Task<FleetApi.Answer> Loop(Action<string> show)
        {
            var answer = await poll(Math.Min(seconds, MaxWaitPerCall));
            while (Pending(answer.Json) && Left() > 0)
            {
                show($"{what}: {Tables.Text(answer.Json["status"])}, waiting up to {Left()} s");
                answer = await poll(Math.Min(Left(), MaxWaitPerCall));
            }
            return answer;
        }
        var last = session.Progress is { } progress
            ? await progress.Status().Spinner(Spinner.Known.Dots).StartAsync($"{what}: waiting up to {seconds} s", ctx => Loop(text => ctx.Status(text)))
            : await Loop(_ => { });
        session.Show(parse, last, CommandView);
        var view = last.Json;
        var status = Tables.Text(view["status"]);
        var id = Tables.Text(view["command_id"]);
        switch (status)
        {
            case "succeeded" or "delivered":
                return ExitCodes.Ok;
            case "queued" or "sent":
                session.Err.WriteLine($"fleetctl: command {id} is still {status} after {seconds} s");
                return ExitCodes.StillPending;
            default:
                session.Err.WriteLine($"fleetctl: command {id} ended {status}{(view["error"] is { } e ? ": " + Tables.Text(e) : "")}");
                return ExitCodes.CommandNotSucceeded;
        }
    }

    public static IRenderable CommandView(JsonNode c) => Tables.Fields(
        ("command_id", Tables.Text(c["command_id"])), ("device_id", Tables.Text(c["device_id"])), ("type", Tables.Text(c["type"])),
        ("status", Tables.Text(c["status"])), ("error", Tables.Text(c["error"])), ("created_at", Tables.Time(c["created_at"])),
        ("sent_at", Tables.Time(c["sent_at"])), ("completed_at", Tables.Time(c["completed_at"])),
        ("request", Tables.Text(c["request"])), ("response", Tables.Text(c["response"])));
}
