using System.Text.Json;
using Fleet.Protocol;

namespace Fleet.Server.Commands;

/// <summary>A command as the admin API shows it (snake_case JSON): the request as sent, the device's answer as received.</summary>
public sealed record CommandView(
    string CommandId, string DeviceId, string Type, string Status,
    JsonElement Request, JsonElement? Response, string? Error,
    DateTimeOffset CreatedAt, DateTimeOffset? SentAt, DateTimeOffset? CompletedAt, DateTimeOffset ExpiresAt)
{
    public static CommandView From(CommandRecord c, string deviceId) =>
        new(c.CommandId, deviceId, c.Type, c.Status.ToApi(), ProtocolCodec.EncodeToElement(c.Request), c.Response, c.Error,
            c.CreatedAt, c.SentAt, c.CompletedAt, c.ExpiresAt);

    /// <summary>The view a viewer key gets: client tokens and other secrets masked.</summary>
    public CommandView Redacted() => this with
    {
        Request = Security.Secrets.Redact(Request),
        Response = Response is { } r ? Security.Secrets.Redact(r) : null,
    };
}
