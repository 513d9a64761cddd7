using System.Collections.Immutable;
using Fleet.Protocol;

namespace Fleet.Server.Devices;

/// <summary>
/// The decisions of a device entity as pure functions: (state, input, now) → events (+ what to say).
/// The actor persists the events, applies them with <see cref="DeviceState.Apply"/>, and talks.
/// </summary>
public static class DeviceLogic
{
    public static DeviceInfoState ToState(DeviceInfo i) =>
        new(i.ApDeviceId, i.ApMacAddress, i.ApLongitude, i.ApLatitude, i.LocationId);

    public static GatewayState ToState(GatewayReport g) =>
        new(g.GwId!, g.GwChannel, g.GwAddressV4, g.GwAddressV6, g.GwInterface, g.AuthMode);

    /// <summary>Events for a connect or heartbeat: the connection (when new) and whatever changed.</summary>
    public static ImmutableList<IDeviceEvent> OnReport(DeviceState state, DeviceReport report, bool newConnection,
        DateTimeOffset now, string node)
    {
        var events = ImmutableList.CreateBuilder<IDeviceEvent>();
        if (newConnection) events.Add(new DeviceConnected(now, node));
        if (report.DeviceInfo is { } info && ToState(info) is var i && i != state.Info)
            events.Add(new DeviceInfoReported(i));
        if (report.Gateway is { } gws)
        {
            var reported = gws.Select(ToState).ToImmutableList();
            if (!reported.SequenceEqual(state.Gateways)) events.Add(new GatewaysReported(reported));
        }
        else if (!state.Exists)
        {
            events.Add(new GatewaysReported([]));
        }
        return events.ToImmutable();
    }

    /// <summary>The heartbeat reply: every reported gateway with the desired auth_mode where one is set.</summary>
    public static ReportReply ReportReply(DeviceState state) => new()
    {
        Gateway = state.Gateways
            .Select(g => new GatewayAuthMode
            {
                GwId = g.GwId,
                AuthMode = state.DesiredAuthModes.TryGetValue(g.GwId, out var d) ? d : g.AuthMode ?? 0,
            })
            .ToList(),
    };

    public sealed record SubmitResult(CommandQueued? Queued, string? Problem);

    /// <summary>Accepts a validated request as a queued command, or says why not.</summary>
    public static SubmitResult Submit(DeviceState state, string commandId, IControllerRequest request, int ttlSeconds,
        int timeoutSeconds, DateTimeOffset now)
    {
        var known = state.Gateways.Select(g => g.GwId).ToArray();
        var problem = FieldRules.CheckRequest(request, known);
        if (problem is not null) return new(null, problem);
        var json = ProtocolCodec.EncodeToString(request switch
        {
            // The device sees the command id as req_id; the entity correlates by it.
            AuthRequest a => a with { ReqId = ReqId.Of(commandId), ClientMac = FieldRules.NormalizeMac(a.ClientMac!) },
            KickoffRequest k => k with { ReqId = ReqId.Of(commandId), ClientMac = FieldRules.NormalizeMac(k.ClientMac!) },
            TmpPassRequest t => t with { ReqId = ReqId.Of(commandId), ClientMac = FieldRules.NormalizeMac(t.ClientMac!), Timeout = t.Timeout ?? TmpPassRequest.DefaultTimeoutSeconds },
            FirmwareUpgradeRequest f => f with { ReqId = ReqId.Of(commandId), Force = f.Force ?? false },
            _ => WithReqId(request, commandId),
        });
        return new(new CommandQueued(commandId, request.Type, json, now, now.AddSeconds(ttlSeconds), timeoutSeconds), null);
    }

    private static IControllerRequest WithReqId(IControllerRequest r, string id) => r switch
    {
        UpdateDeviceInfoRequest u => u with { ReqId = ReqId.Of(id) },
        SetWifiInfoRequest s => s with { ReqId = ReqId.Of(id) },
        SyncDomainsRequest s => s with { ReqId = ReqId.Of(id) },
        GetClientInfoRequest g => g with { ReqId = ReqId.Of(id) },
        SimpleRequest s => s with { ReqId = ReqId.Of(id) },
        _ => r,
    };

    /// <summary>
    /// Queued commands to send now, oldest first: at most one request of a kind in flight per device,
    /// because seed-era firmware does not echo req_id and answers are then matched by kind.
    /// </summary>
    public static IReadOnlyList<CommandRecord> ToSend(DeviceState state, DateTimeOffset now)
    {
        var busy = state.Commands.Where(c => c.Status == CommandStatus.Sent).Select(c => c.Type).ToHashSet();
        var result = new List<CommandRecord>();
        foreach (var c in state.Commands)
        {
            if (c.Status != CommandStatus.Queued || c.ExpiresAt <= now || busy.Contains(c.Type)) continue;
            busy.Add(c.Type);
            result.Add(c);
        }
        return result;
    }

    /// <summary>The frame for a command was written to the device's socket.</summary>
    public static ImmutableList<IDeviceEvent> OnWritten(DeviceState state, string commandId, DateTimeOffset now)
    {
        var c = state.FindCommand(commandId);
        var kind = c is null ? null : RequestKinds.Find(c.Type);
        if (c is not { Status: CommandStatus.Sent } || kind is not { OneWay: true }) return [];
        var events = ImmutableList.Create<IDeviceEvent>(new CommandCompleted(commandId, CommandStatus.Delivered, null, null, now));
        switch (ProtocolCodec.DecodeFromController(c.RequestJson).Message)
        {
            case AuthRequest { OnceAuth: true } a:
                events = events.Add(new DesiredAuthModeSet(a.GwId!, 0));
                break;
            case AuthRequest a:
                events = events.Add(new ClientAuthorized(new ClientState(a.ClientMac!, a.ClientIp, a.ClientName, a.GwId, now, null)));
                break;
            case TmpPassRequest t:
                var previous = state.Clients.GetValueOrDefault(t.ClientMac!);
                events = events.Add(new ClientAuthorized(new ClientState(t.ClientMac!, previous?.ClientIp, previous?.ClientName,
                    previous?.GwId, now, now.AddSeconds(t.Timeout ?? TmpPassRequest.DefaultTimeoutSeconds))));
                break;
        }
        return events;
    }

    public sealed record AnswerResult(ImmutableList<IDeviceEvent> Events, string? Dropped);

    /// <summary>
    /// Correlates a device's answer with a command: by echoed req_id, else by kind (one in flight per
    /// kind), with a kickoff answer's client_mac as a cross-check. Unmatched answers are dropped with a reason.
    /// </summary>
    public static AnswerResult OnAnswer(DeviceState state, IAnswerFrame answer, string answerJson, DateTimeOffset now)
    {
        CommandRecord? command;
        if (answer.ReqId is { } reqId)
        {
            command = state.FindCommand(reqId.Value);
            if (command is null) return Drop($"req_id '{reqId}' matches no command");
            if (command.Status.IsFinal() && !(command.Status == CommandStatus.Delivered && answer.ErrorText is not null))
                return Drop($"req_id '{reqId}' answers a command already {command.Status.ToApi()} (late answer)");
        }
        else
        {
            if (answer.Type == RequestKinds.RequestError) return Drop("request_error without req_id cannot be matched");
            var kind = RequestKinds.ForAnswer(answer.Type);
            if (kind is null) return Drop($"'{answer.Type}' is not an answer to any request");
            command = kind.OneWay
                // reboot_device_error: the reboot was handed over (delivered) but failed after all.
                ? state.Commands.LastOrDefault(c => c.Type == kind.Type && c.Status == CommandStatus.Delivered)
                : state.Commands.FirstOrDefault(c => c.Type == kind.Type && c.Status == CommandStatus.Sent);
            if (command is null) return Drop($"no {kind.Type} command awaits '{answer.Type}'");
        }

        var commandKind = RequestKinds.Find(command.Type)!;
        if (answer.Type != commandKind.SuccessType && answer.Type != commandKind.ErrorType && answer.Type != RequestKinds.RequestError)
            return Drop($"'{answer.Type}' does not answer a {command.Type} command");
        if (answer is KickoffResponse or KickoffError && MacOf(answer) is { } mac
            && ProtocolCodec.DecodeFromController(command.RequestJson).Message is KickoffRequest k
            && FieldRules.IsMac(mac) && FieldRules.NormalizeMac(mac) != k.ClientMac)
            return Drop($"kickoff answer for {mac} does not match the command's client_mac {k.ClientMac}");

        var error = answer.ErrorText;
        var events = ImmutableList.Create<IDeviceEvent>(new CommandCompleted(command.CommandId,
            error is null ? CommandStatus.Succeeded : CommandStatus.Failed, answerJson, error, now));
        if (error is null)
        {
            switch (answer)
            {
                case KickoffResponse:
                    if (ProtocolCodec.DecodeFromController(command.RequestJson).Message is KickoffRequest kr && state.Clients.ContainsKey(kr.ClientMac!))
                        events = events.Add(new ClientRemoved(kr.ClientMac!, "kicked off"));
                    break;
                case FirmwareInfoResponse f:
                    var firmware = f.DataAsStrings().ToImmutableSortedDictionary();
                    if (!firmware.SequenceEqual(state.Firmware)) events = events.Add(new FirmwareReported(firmware));
                    break;
            }
        }
        return new(events, null);

        static AnswerResult Drop(string why) => new([], why);
    }

    private static string? MacOf(IAnswerFrame r) => r switch
    {
        KickoffResponse k => k.ClientMac,
        KickoffError e => e.ClientMac,
        _ => null,
    };

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
                events.Add(new ClientRemoved(client.ClientMac, "pass expired"));
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

    public enum CancelOutcome { Cancelled, NotFound, NotQueued }

    public static (CancelOutcome Outcome, CommandCompleted? Event) Cancel(DeviceState state, string commandId, DateTimeOffset now)
    {
        var c = state.FindCommand(commandId);
        if (c is null) return (CancelOutcome.NotFound, null);
        if (c.Status != CommandStatus.Queued) return (CancelOutcome.NotQueued, null);
        return (CancelOutcome.Cancelled, new CommandCompleted(commandId, CommandStatus.Cancelled, null, null, now));
    }
}
