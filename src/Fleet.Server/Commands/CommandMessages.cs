using Fleet.Protocol;
using Fleet.Server.Devices;

namespace Fleet.Server.Commands;

// ---- from the admin API to a device entity

/// <summary>
/// A request decoded and checked at the API edge (Request), or why it could not be (Problem). The API
/// names the command; the entity answers 404 for a device it never saw before looking at the request.
/// </summary>
public sealed record SubmitCommand(string DeviceId, string CommandId, IControllerRequest? Request, string? Problem,
    int TtlSeconds, int TimeoutSeconds) : IToDeviceEntity;
public sealed record GetCommands(string DeviceId) : IToDeviceEntity;
public sealed record GetCommand(string DeviceId, string CommandId) : IToDeviceEntity;
public sealed record CancelCommand(string DeviceId, string CommandId) : IToDeviceEntity;
/// <summary>Replies with the command view once it is final (or now, if it already is).</summary>
public sealed record AwaitCommand(string DeviceId, string CommandId) : IToDeviceEntity;

// ---- replies

public sealed record CommandInvalid(string Problem) : IAdminReply;
public sealed record CommandNotFound(string CommandId) : IAdminReply;
public sealed record CommandConflict(string Problem, CommandView View) : IAdminReply;
/// <summary>The command; <see cref="Replayed"/> when a submit named a command that already exists with the same request (Idempotency-Key).</summary>
public sealed record CommandFound(CommandView View, bool Replayed = false) : IAdminReply;
/// <summary>A submit the device cannot take now, with the HTTP status that says why (429: its queue is full).</summary>
public sealed record CommandRefused(int Status, string Title, string Problem) : IAdminReply;
public sealed record CommandList(IReadOnlyList<CommandView> Items) : IAdminReply;
