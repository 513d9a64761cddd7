using System.Text.Json;
using Fleet.Protocol;
using Fleet.Server.Devices;

namespace Fleet.Server.Commands;

/// <summary>
/// The command lifecycle as persisted by the device entity. Requests are kept as typed protocol records
/// (stored in their canonical JSON), answers as the device sent them.
/// </summary>
public interface ICommandEvent : IDeviceEvent
{
    string CommandId { get; }
}

/// <summary>An accepted request, already carrying the command id as its req_id.</summary>
public sealed record CommandQueued(string CommandId, IControllerRequest Request, DateTimeOffset At,
    DateTimeOffset ExpiresAt, int TimeoutSeconds) : ICommandEvent;
public sealed record CommandSent(string CommandId, DateTimeOffset At) : ICommandEvent;
/// <summary>The frame could not be written (the socket went away): back to the queue.</summary>
public sealed record CommandRequeued(string CommandId) : ICommandEvent;
public sealed record CommandCompleted(string CommandId, CommandStatus Status, JsonElement? Response, string? Error,
    DateTimeOffset At) : ICommandEvent;
