using System.Collections.Immutable;
using System.Text.Json;
using Fleet.Protocol;
using Fleet.Server.Devices;

namespace Fleet.Server.Commands;

public enum CommandStatus { Queued, Sent, Delivered, Succeeded, Failed, TimedOut, Expired, Cancelled }

public static class CommandStatusExtensions
{
    public static bool IsFinal(this CommandStatus s) => s is not (CommandStatus.Queued or CommandStatus.Sent);

    /// <summary>The API's spelling: queued, sent, delivered, succeeded, failed, timed_out, expired, cancelled.</summary>
    public static string ToApi(this CommandStatus s) => s switch
    {
        CommandStatus.TimedOut => "timed_out",
        _ => s.ToString().ToLowerInvariant(),
    };
}

/// <summary>One command of a device: the typed request (its req_id is the command id), where it is, and how it ended.</summary>
public sealed record CommandRecord(
    string CommandId, IControllerRequest Request, CommandStatus Status,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, int TimeoutSeconds,
    DateTimeOffset? SentAt = null, DateTimeOffset? CompletedAt = null,
    JsonElement? Response = null, string? Error = null)
{
    public string Type => Request.Type;
    public DateTimeOffset? AnswerDeadline => Status == CommandStatus.Sent ? SentAt!.Value.AddSeconds(TimeoutSeconds) : null;
}

/// <summary>
/// The command lifecycle as pure functions of the device's state: accept, pick what to send, settle by
/// write confirmation, answer or deadline, cancel — and how each event changes the command list.
/// <c>queued → sent → succeeded | failed | timed_out</c>, <c>queued → expired | cancelled</c>, and
/// requests the device's dialect does not answer <c>queued → sent → delivered</c>. A command is sent when
/// it is handed to the device's connection, persisted before: a crash can lose a command's frame but never
/// send it twice. The connection may hold the frame until the device's reader can take it, but never
/// past the command's answer deadline.
/// </summary>
public static class CommandLifecycle
{
    /// <summary>Accepts a request as a queued command (req_id = command id, MACs in canonical form), or says why not.</summary>
    public static (CommandQueued? Queued, string? Problem) Submit(DeviceState state, string commandId, IControllerRequest request,
        int ttlSeconds, int timeoutSeconds, DateTimeOffset now)
    {
        var known = state.Gateways.Select(g => g.GwId).ToArray();
        var problem = FieldRules.CheckRequest(request, known);
        if (problem is not null) return (null, problem);
        // The device sees the command id as req_id.
        var normalised = FieldRules.Normalize(request, ReqId.Of(commandId));
        if (FieldRules.CheckWireSize(normalised) is { } tooLarge) return (null, tooLarge);
        return (new CommandQueued(commandId, normalised, now, now.AddSeconds(ttlSeconds), timeoutSeconds), null);
    }

    /// <summary>Whether a resubmitted request is the one a command already holds (both normalised, compared as sent).</summary>
    public static bool SameRequest(IControllerRequest a, IControllerRequest b) =>
        ProtocolCodec.EncodeToString(a) == ProtocolCodec.EncodeToString(b);

    /// <summary>Why another command cannot be queued: the device already has <see cref="DeviceState.QueueLimit"/> unfinished ones.</summary>
    public static string? QueueFull(DeviceState state)
    {
        var open = 0;
        foreach (var c in state.Commands)
            if (!c.Status.IsFinal()) open++;
        return open < state.QueueLimit ? null
            : $"the device already has {open} unfinished commands (Fleet:Devices:MaxQueuedCommands is {state.QueueLimit}); wait for them or cancel some";
    }

    /// <summary>
    /// The command to send now, if any: the oldest queued one, and only when none is in flight. The real
    /// client reads one frame at a time and seed-era firmware echoes no req_id (its answers are matched by
    /// kind), so a device has at most one command in flight; the connection holds nothing else back for
    /// long, and a command lost with a dying connection is the one in flight, no more.
    /// </summary>
    public static IReadOnlyList<CommandRecord> ToSend(DeviceState state, DateTimeOffset now)
    {
        CommandRecord? next = null;
        foreach (var c in state.Commands)
        {
            if (c.Status == CommandStatus.Sent) return [];
            if (next is null && c.Status == CommandStatus.Queued && c.ExpiresAt > now) next = c;
        }
        return next is null ? [] : [next];
    }

    /// <summary>
    /// The frame of a command reached the device's socket. A request the device will not answer is
    /// delivered now, with what it means for the device's clients and gateways.
    /// </summary>
    public static ImmutableList<IDeviceEvent> OnWritten(DeviceState state, string commandId, bool answerExpected, DateTimeOffset now)
    {
        if (answerExpected || state.FindCommand(commandId) is not { Status: CommandStatus.Sent } c) return [];
        var events = ImmutableList.Create<IDeviceEvent>(new CommandCompleted(commandId, CommandStatus.Delivered, null, null, now));
        return events.AddRange(Effects(state, c.Request, now));
    }

    /// <summary>The connection would not write a command's frame: the device's reader could not take it.</summary>
    public static ImmutableList<IDeviceEvent> OnTooLarge(DeviceState state, string commandId, int bytes, DateTimeOffset now) =>
        state.FindCommand(commandId) is { Status: CommandStatus.Sent }
            ? [new CommandCompleted(commandId, CommandStatus.Failed, null,
                $"the request is {bytes} bytes on the wire in this device's dialect; its reader takes at most {ReaderLimits.MaxPayloadBytes}", now)]
            : [];

    /// <summary>The connection held a command's frame until its deadline (the device was still answering earlier ones): never written.</summary>
    public static ImmutableList<IDeviceEvent> OnExpired(DeviceState state, string commandId, DateTimeOffset now) =>
        state.FindCommand(commandId) is { Status: CommandStatus.Sent } c
            ? [new CommandCompleted(commandId, CommandStatus.TimedOut, null,
                $"not written within {c.TimeoutSeconds} s: the router had not yet answered the requests before it", now)]
            : [];

    /// <summary>
    /// What a request that went through (answered with success, or delivered when its dialect does not
    /// answer it) does to the device's clients and gateways as the controller sees them. Modelled on the
    /// firmware (docs/FIRMWARE.md, "Clients"): an auth puts the client in the router's client list, with no
    /// end of its own; a tmp_pass adds a timed element to a separate nft set, so it neither shortens nor
    /// replaces an authorisation; a kickoff takes the client out of the list but leaves a running pass;
    /// a reboot or an upgrade forgets the passes (and, except where the firmware restores it, the list).
    /// </summary>
    private static IEnumerable<IDeviceEvent> Effects(DeviceState state, IControllerRequest request, DateTimeOffset now)
    {
        switch (request)
        {
            case AuthRequest { OnceAuth: true } a:
                yield return new DesiredAuthModeSet(a.GwId!, 0);
                break;
            case AuthRequest a:
                var before = state.Clients.GetValueOrDefault(a.ClientMac!);
                yield return new ClientAuthorized(new ClientState(a.ClientMac!, a.ClientIp, a.ClientName, a.GwId, now, null,
                    before?.PassUntil is { } p && p > now ? p : null));
                break;
            case TmpPassRequest t:
                var until = now.AddSeconds(Math.Min(t.Timeout ?? TmpPassRequest.DefaultTimeoutSeconds, MaxPassSeconds(state.Protocol)));
                var previous = state.Clients.GetValueOrDefault(t.ClientMac!);
                yield return new ClientAuthorized(previous is { Authorized: true }
                    ? previous with { PassUntil = until }
                    : new ClientState(t.ClientMac!, previous?.ClientIp, previous?.ClientName, previous?.GwId, now, until, until));
                break;
            case KickoffRequest k when state.Clients.GetValueOrDefault(k.ClientMac!) is { } kicked:
                foreach (var e in LeftTheList(kicked, ClientRemoved.KickedOff, now)) yield return e;
                break;
            case SimpleRequest { Type: RebootDevice }:
                // 9.x and the 2025 builds since 2026-02-04 save their client list to /etc/client_snapshot.json when
                // stopped and load it when started; only the 9 dialect says for sure that a router has that.
                yield return new ClientsCleared("reboot", KeepAuthorized: state.Protocol == "9", now);
                break;
            case FirmwareUpgradeRequest:
                // sysupgrade keeps configuration files only: the snapshot, if any, does not survive.
                yield return new ClientsCleared("firmware upgrade", KeepAuthorized: false, now);
                break;
        }
    }

    private const string RebootDevice = "reboot_device";

    /// <summary>
    /// The firmware caps a pass's nft element timeout: 300 s up to 2025 (fw_nft.c nft_fw_set_mac_temporary),
    /// 600 s on 9.x. A longer timeout in the request lets the client through only that long.
    /// </summary>
    public static int MaxPassSeconds(string? protocol) => protocol == "9" ? 600 : 300;

    /// <summary>A client that is no longer in the router's client list: gone, or still let through by a running pass.</summary>
    private static IEnumerable<IDeviceEvent> LeftTheList(ClientState c, string reason, DateTimeOffset now)
    {
        if ((c.PassUntil ?? c.ExpiresAt) is not { } pass || pass <= now)
            yield return new ClientRemoved(c.ClientMac, reason);
        else if (c.Authorized)
            yield return new ClientAuthorized(c with { ExpiresAt = pass, PassUntil = pass });
        // else: only on a pass already, which the kickoff leaves running (it is not in the router's client list).
    }

    /// <summary>
    /// What an answer tells about the router's client list beyond the request's own effect: get_clients lists
    /// every client it holds; get_client_info and kickoff answer "Client not found" for one it does not.
    /// The heartbeat carries only counts, so these (and kickoff, reboot, upgrade) are how an authorised client
    /// leaves the view when the router dropped it by itself (its idle timeout).
    /// </summary>
    private static IEnumerable<IDeviceEvent> ClientReport(DeviceState state, CommandRecord command, DeviceAnswer answer, DateTimeOffset now)
    {
        switch (command.Request)
        {
            case SimpleRequest { Type: "get_clients" } when answer.Succeeded && ListedMacs(answer.Body) is { } listed:
                foreach (var c in state.Clients.Values)
                    if (c.Authorized && !listed.Contains(c.ClientMac))
                        foreach (var e in LeftTheList(c, ClientRemoved.RouterHasNone, now)) yield return e;
                break;
            // 9.x refuses an auth for a client it holds (1002 "Client already authenticated"): it is there.
            case AuthRequest { OnceAuth: not true, ClientMac: { } mac } a when !answer.Succeeded
                && answer.Error!.Contains("already authenticated", StringComparison.OrdinalIgnoreCase)
                && state.Clients.GetValueOrDefault(mac) is not { Authorized: true }:
                var had = state.Clients.GetValueOrDefault(mac);
                yield return new ClientAuthorized(new ClientState(mac, a.ClientIp, a.ClientName, a.GwId, now, null,
                    had?.PassUntil is { } p && p > now ? p : null));
                break;
            case GetClientInfoRequest { Mac: { } mac } when NotFound(answer)
                && FieldRules.IsMac(mac) && state.Clients.GetValueOrDefault(FieldRules.NormalizeMac(mac)) is { Authorized: true } c:
                foreach (var e in LeftTheList(c, ClientRemoved.RouterHasNone, now)) yield return e;
                break;
            // The router looks a kickoff's client up by IP and MAC: not found says something only about the IP we hold.
            case KickoffRequest { ClientMac: { } mac, ClientIp: { } ip } when NotFound(answer)
                && state.Clients.GetValueOrDefault(mac) is { Authorized: true } c && c.ClientIp == ip:
                foreach (var e in LeftTheList(c, ClientRemoved.RouterHasNone, now)) yield return e;
                break;
        }

        static bool NotFound(DeviceAnswer a) =>
            !a.Succeeded && a.Error!.Contains(KickoffError.ClientNotFound, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The MACs of a get_clients answer (data.clients[].mac; inside the 9 dialect's envelope, data.data.clients), or null if it has no list.</summary>
    public static HashSet<string>? ListedMacs(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object) return null;
        if (!data.TryGetProperty("clients", out var clients) && !(data.TryGetProperty("data", out var inner)
                && inner.ValueKind == JsonValueKind.Object && inner.TryGetProperty("clients", out clients)))
            return null;
        if (clients.ValueKind != JsonValueKind.Array) return null;
        var macs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in clients.EnumerateArray())
            if (c.ValueKind == JsonValueKind.Object && c.TryGetProperty("mac", out var m) && m.ValueKind == JsonValueKind.String
                && m.GetString() is { } mac && FieldRules.IsMac(mac))
                macs.Add(FieldRules.NormalizeMac(mac));
        return macs;
    }

    /// <summary>
    /// Settles the command a device's answer belongs to: by echoed req_id, else by kind (one in flight per
    /// kind) with a kickoff answer's client_mac as a cross-check. An answer that matches nothing is
    /// dropped, with the reason.
    /// </summary>
    public static (ImmutableList<IDeviceEvent> Events, string? Dropped) OnAnswer(DeviceState state, DeviceAnswer answer, DateTimeOffset now)
    {
        CommandRecord? command;
        if (answer.ReqId is { } reqId)
        {
            command = state.FindCommand(reqId.Value);
            if (command is null) return Drop($"req_id '{reqId}' matches no command");
            if (command.Status == CommandStatus.Queued) return Drop($"req_id '{reqId}' answers a command that was never sent");
            if (command.Status.IsFinal() && !(command.Status == CommandStatus.Delivered && !answer.Succeeded))
                return Drop($"req_id '{reqId}' answers a command already {command.Status.ToApi()} (late answer)");
        }
        else
        {
            if (answer.Unsupported) return Drop($"{answer.Type} without req_id cannot be matched");
            if (answer.RequestType is not { } kind) return Drop($"'{answer.Type}' is not an answer to any request");
            // A request delivered without an answer may still fail later (reboot_device_error).
            command = state.Commands.FirstOrDefault(c => c.Type == kind && c.Status == CommandStatus.Sent)
                ?? (answer.Succeeded ? null : state.Commands.LastOrDefault(c => c.Type == kind && c.Status == CommandStatus.Delivered));
            if (command is null) return Drop($"no {kind} command awaits '{answer.Type}'");
        }

        if (answer.RequestType != command.Type && !answer.Unsupported)
            return Drop($"'{answer.Type}' does not answer a {command.Type} command");
        if (answer.ClientMac is { } mac && command.Request is KickoffRequest k
            && FieldRules.IsMac(mac) && FieldRules.NormalizeMac(mac) != k.ClientMac)
            return Drop($"kickoff answer for {mac} does not match the command's client_mac {k.ClientMac}");

        var events = ImmutableList.Create<IDeviceEvent>(new CommandCompleted(command.CommandId,
            answer.Succeeded ? CommandStatus.Succeeded : CommandStatus.Failed, answer.Body, answer.Error, now));
        events = events.AddRange(ClientReport(state, command, answer, now));
        if (!answer.Succeeded) return (events, null);
        events = events.AddRange(Effects(state, command.Request, now));
        if (answer.Firmware is { } data && data.ToImmutableSortedDictionary() is var firmware && !firmware.SequenceEqual(state.Firmware))
            events = events.Add(new FirmwareReported(firmware));
        return (events, null);

        static (ImmutableList<IDeviceEvent>, string?) Drop(string why) => ([], why);
    }

    /// <summary>Deadlines that passed: queued commands expire, sent ones time out, passes end.</summary>
    public static ImmutableList<IDeviceEvent> OnTick(DeviceState state, DateTimeOffset now)
    {
        var events = ImmutableList.CreateBuilder<IDeviceEvent>();
        foreach (var c in state.Commands)
        {
            if (c.Status == CommandStatus.Queued && c.ExpiresAt <= now)
                events.Add(new CommandCompleted(c.CommandId, CommandStatus.Expired, null, "ttl passed before the device was reachable", now));
            else if (c.AnswerDeadline is { } d && d <= now)
                events.Add(new CommandCompleted(c.CommandId, CommandStatus.TimedOut, null, $"no answer within {c.TimeoutSeconds} s", now));
        }
        foreach (var client in state.Clients.Values)
            if (client.ExpiresAt is { } e && e <= now)
                events.Add(new ClientRemoved(client.ClientMac, ClientRemoved.PassExpired));
        return events.ToImmutable();
    }

    /// <summary>When <see cref="OnTick"/> next has something to do, or null.</summary>
    public static DateTimeOffset? NextDeadline(DeviceState state)
    {
        DateTimeOffset? next = null;
        void Consider(DateTimeOffset? t) { if (t is { } v && (next is null || v < next)) next = v; }
        foreach (var c in state.Commands)
        {
            if (c.Status == CommandStatus.Queued) Consider(c.ExpiresAt);
            Consider(c.AnswerDeadline);
        }
        foreach (var client in state.Clients.Values) Consider(client.ExpiresAt);
        return next;
    }

    /// <summary>Only a queued command can be cancelled.</summary>
    public static (CommandCompleted? Cancelled, string? Conflict) Cancel(CommandRecord c, DateTimeOffset now) =>
        c.Status == CommandStatus.Queued
            ? (new CommandCompleted(c.CommandId, CommandStatus.Cancelled, null, null, now), null)
            : (null, $"command {c.CommandId} is {c.Status.ToApi()}, only a queued command can be cancelled");

    /// <summary>How a command event changes the list (oldest first; finished commands beyond the limit are dropped).</summary>
    public static ImmutableList<CommandRecord> Apply(ImmutableList<CommandRecord> commands, ICommandEvent e, int historyLimit) => e switch
    {
        CommandQueued q => Prune(commands.Add(new CommandRecord(q.CommandId, q.Request, CommandStatus.Queued,
            q.At, q.ExpiresAt, q.TimeoutSeconds)), historyLimit),
        CommandSent s => Update(commands, s.CommandId, c => c with { Status = CommandStatus.Sent, SentAt = s.At }),
        CommandRequeued r => Update(commands, r.CommandId, c => c with { Status = CommandStatus.Queued, SentAt = null }),
        CommandCompleted done => Prune(Update(commands, done.CommandId, c => c with
        {
            Status = done.Status, CompletedAt = done.At, Response = done.Response ?? c.Response, Error = done.Error,
        }), historyLimit),
        _ => commands,
    };

    private static ImmutableList<CommandRecord> Update(ImmutableList<CommandRecord> commands, string id, Func<CommandRecord, CommandRecord> f)
    {
        var i = commands.FindIndex(c => c.CommandId == id);
        return i < 0 ? commands : commands.SetItem(i, f(commands[i]));
    }

    private static ImmutableList<CommandRecord> Prune(ImmutableList<CommandRecord> commands, int historyLimit)
    {
        var finished = commands.Count(c => c.Status.IsFinal());
        if (finished <= historyLimit) return commands;
        var drop = finished - historyLimit;
        return commands.RemoveAll(c => c.Status.IsFinal() && drop-- > 0);
    }
}
