using System.Collections.Immutable;
using Fleet.Server.Serialization;

namespace Fleet.Server.Devices;

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

public sealed record DeviceInfoState(string? ApDeviceId, string? ApMacAddress, string? ApLongitude, string? ApLatitude, string? LocationId);

/// <summary>A gateway as the device last reported it (auth_mode is the reported one).</summary>
public sealed record GatewayState(string GwId, string? GwChannel, string? GwAddressV4, string? GwAddressV6, string? GwInterface, int? AuthMode);

/// <summary>A client the controller authorised (auth delivered) or let through for a while (tmp_pass).</summary>
public sealed record ClientState(string ClientMac, string? ClientIp, string? ClientName, string? GwId, DateTimeOffset AuthorizedAt, DateTimeOffset? ExpiresAt);

public sealed record CommandRecord(
    string CommandId, string Type, string RequestJson, CommandStatus Status,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, int TimeoutSeconds,
    DateTimeOffset? SentAt = null, DateTimeOffset? CompletedAt = null,
    string? ResponseJson = null, string? Error = null)
{
    public DateTimeOffset? AnswerDeadline => Status == CommandStatus.Sent ? SentAt!.Value.AddSeconds(TimeoutSeconds) : null;
}

/// <summary>
/// Everything a device entity persists, as one immutable value. <see cref="Apply"/> is the only way
/// it changes; it is also the snapshot.
/// </summary>
public sealed record DeviceState : IFleetSerializable
{
    public bool Exists { get; init; }
    public bool Online { get; init; }
    public DateTimeOffset? ConnectedAt { get; init; }
    public DateTimeOffset? DisconnectedAt { get; init; }
    public string? Node { get; init; }
    public DeviceInfoState? Info { get; init; }
    public ImmutableList<GatewayState> Gateways { get; init; } = [];
    public ImmutableSortedDictionary<string, int> DesiredAuthModes { get; init; } = ImmutableSortedDictionary<string, int>.Empty;
    public ImmutableSortedDictionary<string, ClientState> Clients { get; init; } = ImmutableSortedDictionary<string, ClientState>.Empty;
    public ImmutableSortedDictionary<string, string> Firmware { get; init; } = ImmutableSortedDictionary<string, string>.Empty;
    /// <summary>Oldest first. Finished commands beyond <see cref="HistoryLimit"/> are dropped.</summary>
    public ImmutableList<CommandRecord> Commands { get; init; } = [];
    public int HistoryLimit { get; init; } = 200;

    public static readonly DeviceState Empty = new();

    public CommandRecord? FindCommand(string id) => Commands.Find(c => c.CommandId == id);

    public DeviceState Apply(IDeviceEvent e) => e switch
    {
        DeviceConnected c => this with { Exists = true, Online = true, ConnectedAt = c.At, Node = c.Node },
        DeviceDisconnected d => this with { Online = false, DisconnectedAt = d.At },
        DeviceInfoReported i => this with { Exists = true, Info = i.Info },
        GatewaysReported g => this with { Exists = true, Gateways = g.Gateways },
        DesiredAuthModeSet m => this with { DesiredAuthModes = DesiredAuthModes.SetItem(m.GwId, m.AuthMode) },
        ClientAuthorized a => this with { Clients = Clients.SetItem(a.Client.ClientMac, a.Client) },
        ClientRemoved r => this with { Clients = Clients.Remove(r.ClientMac) },
        FirmwareReported f => this with { Firmware = f.Firmware },
        CommandQueued q => this with
        {
            Commands = Prune(Commands.Add(new CommandRecord(q.CommandId, q.Type, q.RequestJson, CommandStatus.Queued,
                q.At, q.ExpiresAt, q.TimeoutSeconds))),
        },
        CommandSent s => Update(s.CommandId, c => c with { Status = CommandStatus.Sent, SentAt = s.At }),
        CommandRequeued r => Update(r.CommandId, c => c with { Status = CommandStatus.Queued, SentAt = null }),
        CommandCompleted done => Update(done.CommandId, c => c with
        {
            Status = done.Status, CompletedAt = done.At, ResponseJson = done.ResponseJson ?? c.ResponseJson,
            Error = done.Error,
        }) is var s2 ? s2 with { Commands = Prune(s2.Commands) } : this,
        _ => this,
    };

    private DeviceState Update(string id, Func<CommandRecord, CommandRecord> f)
    {
        var i = Commands.FindIndex(c => c.CommandId == id);
        return i < 0 ? this : this with { Commands = Commands.SetItem(i, f(Commands[i])) };
    }

    private ImmutableList<CommandRecord> Prune(ImmutableList<CommandRecord> commands)
    {
        var finished = commands.Count(c => c.Status.IsFinal());
        if (finished <= HistoryLimit) return commands;
        var drop = finished - HistoryLimit;
        return commands.RemoveAll(c => c.Status.IsFinal() && drop-- > 0);
    }
}
