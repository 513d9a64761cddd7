using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Admin;
using Fleet.Server.Commands;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Fleet.Server.Clients;

/// <summary>
/// /api/v1/clients: the client plane (ADMIN_API.md, "The client plane"). Where a client is, fleet-wide, and a kickoff
/// sent to every router that holds it, each with that router's own client_ip and gw_id: what a portal backend needs to
/// end a subscriber's session without knowing which routers the subscriber went through.
/// </summary>
public static class ClientsApi
{
    public const int DefaultWaitSeconds = 10;

    /// <summary>A kickoff that was not submitted (the error says why).</summary>
    public const string NotSent = "not_sent";

    /// <summary>The device entity did not answer the submit in time: the kickoff may or may not be queued.</summary>
    public const string Unknown = "unknown";

    public static IServiceCollection AddClientPlane(this IServiceCollection services)
    {
        services.AddSingleton<ClientStore>();
        services.AddSingleton<IStoreTables>(sp => sp.GetRequiredService<ClientStore>());
        services.AddSingleton<Jobs.IClientPlaces>(sp => sp.GetRequiredService<ClientStore>());
        return services;
    }

    public static IEndpointRouteBuilder MapClientsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/clients").WithTags("clients");
        api.MapGet("/", Find).WithName("FindClients").RequireAuthorization(Policies.Viewer);
        api.MapPost("/{mac}/kickoff", Kickoff).WithName("KickoffClient").RequireAuthorization(Policies.Operator)
            .Audited("client.kickoff");
        return app;
    }

    /// <summary>One router's client, in the contract's field order.</summary>
    public sealed record ClientView(string ClientMac, string? ClientIp, string DeviceId, string? GwId, DateTimeOffset AuthorizedAt,
        DateTimeOffset? ExpiresAt);

    public sealed record ClientList(IReadOnlyList<ClientView> Items);

    /// <summary>One router's kickoff: the command's id and status (or <see cref="NotSent"/>, <see cref="Unknown"/>) and its error.</summary>
    public sealed record KickoffResult(string DeviceId, string? GwId, string? ClientIp, string? CommandId, string Status, string? Error);

    public sealed record KickoffAnswer(string ClientMac, IReadOnlyList<KickoffResult> Results);

    private static async Task<Results<Ok<ClientList>, ProblemHttpResult>> Find([FromQuery(Name = "mac")] string? mac,
        [FromQuery(Name = "ip")] string? ip, ClientStore store, CancellationToken ct)
    {
        mac = string.IsNullOrEmpty(mac) ? null : mac;
        ip = string.IsNullOrEmpty(ip) ? null : ip;
        if (mac is null && ip is null)
            return Problems.BadRequest("mac or ip is required: GET /api/v1/clients?mac=aa:bb:cc:dd:ee:ff or ?ip=192.168.1.23");
        if (mac is not null && FieldRules.CheckMac("mac", mac) is { } badMac) return Problems.BadRequest(badMac);
        if (ip is not null && FieldRules.CheckIp("ip", ip) is { } badIp) return Problems.BadRequest(badIp);
        var rows = await store.FindAsync(mac, ip, ct);
        return TypedResults.Ok(new ClientList(rows.Select(r =>
            new ClientView(r.ClientMac, r.ClientIp, r.DeviceId, r.GwId, r.AuthorizedAt, r.ExpiresAt)).ToList()));
    }

    private static async Task<Results<Ok<KickoffAnswer>, ProblemHttpResult>> Kickoff(string mac, [FromQuery(Name = "wait")] string? wait,
        HttpContext ctx, ClientStore store, IRequiredActor<DeviceEntity> region, IOptions<FleetSettings> options, CancellationToken ct)
    {
        if (FieldRules.CheckMac("mac", mac) is { } badMac) return Problems.BadRequest(badMac);
        mac = ClientStore.NormalizeMac(mac);
        var settings = options.Value.Commands;
        var maxWait = settings.MaxWaitSeconds;
        var waitSeconds = Math.Min(DefaultWaitSeconds, maxWait);
        if (!string.IsNullOrEmpty(wait) && (!int.TryParse(wait, NumberStyles.None, CultureInfo.InvariantCulture, out waitSeconds)
                                            || waitSeconds > maxWait))
            return Problems.BadRequest($"wait '{wait}' must be a whole number of seconds from 0 to {maxWait}");
        var key = ctx.Request.Headers["Idempotency-Key"].FirstOrDefault();
        if (CommandsApi.CommandIdFor(mac, key).Problem is { } keyProblem) return Problems.BadRequest(keyProblem);
        ctx.AddDetail($"client={mac}");

        async Task<IReadOnlyList<KickoffTarget>> Known() =>
            (await store.FindAsync(mac, null, ct)).Select(r => new KickoffTarget(r.DeviceId, r.ClientIp, r.GwId)).ToList();
        // With a key, a retry addresses the routers the first attempt did, even once that kickoff took the client off
        // their lists; each router's command id comes from (router, key), so none of them is sent a second kickoff.
        var targets = key is null ? await Known() : await store.KickoffTargetsAsync(RequestKey(mac, key), mac, Known, ct);
        if (targets.Count == 0)
            return Problems.NotFound($"no router knows client {mac} (the client plane is a few seconds behind the routers' entities)");

        var deadline = DateTimeOffset.UtcNow.AddSeconds(waitSeconds);
        var results = await Task.WhenAll(targets.Select(t => KickOne(t, mac, key, deadline, region, settings, ct)));
        ctx.AddDetail($"routers={results.Length} not_sent={results.Count(r => r.Status == NotSent)}");
        return TypedResults.Ok(new KickoffAnswer(mac, results));
    }

    /// <summary>What the remembered routers of a kickoff are kept under: the client and the caller's key.</summary>
    private static string RequestKey(string mac, string key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(mac + "\n" + key)).AsSpan(0, 16));

    private static async Task<KickoffResult> KickOne(KickoffTarget t, string mac, string? key, DateTimeOffset deadline,
        IRequiredActor<DeviceEntity> region, CommandSettings settings, CancellationToken ct)
    {
        KickoffResult Result(string? commandId, string status, string? error) => new(t.DeviceId, t.GwId, t.ClientIp, commandId, status, error);

        // The firmware looks the client up by IP and MAC on the gateway named: without either it cannot kick it.
        if (t.ClientIp is null)
            return Result(null, NotSent, "the router reported no IP address for this client (it is only on a pass), and a kickoff needs the client's IP");
        if (t.GwId is null)
            return Result(null, NotSent, "the router reported no gateway for this client (it is only on a pass), and a kickoff needs the gw_id");
        var commandId = CommandsApi.CommandIdFor(t.DeviceId, key).CommandId!;
        var request = new KickoffRequest { ClientIp = t.ClientIp, ClientMac = mac, DeviceId = t.DeviceId, GwId = t.GwId };
        var reply = await region.Ask(new SubmitCommand(t.DeviceId, commandId, request, null, settings.DefaultTtlSeconds,
            settings.DefaultTimeoutSeconds), ct);
        switch (reply)
        {
            case CommandFound { View.Status: "queued" or "sent" } accepted when deadline > DateTimeOffset.UtcNow:
                var view = accepted.View;
                try
                {
                    var left = deadline - DateTimeOffset.UtcNow;
                    if (left > TimeSpan.Zero
                        && await region.ActorRef.Ask<IAdminReply>(new AwaitCommand(t.DeviceId, commandId), left, ct) is CommandFound f)
                        return Result(commandId, f.View.Status, f.View.Error);
                }
                catch (AskTimeoutException)
                {
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return Result(commandId, view.Status, view.Error);
                }
                // Not final within the wait: where it stands now.
                return await region.Ask(new GetCommand(t.DeviceId, commandId), ct) is CommandFound now
                    ? Result(commandId, now.View.Status, now.View.Error)
                    : Result(commandId, view.Status, view.Error);
            case CommandFound found:
                return Result(commandId, found.View.Status, found.View.Error);
            case EntityAsk.NoAnswer or EntityAsk.Interrupted:
                return Result(commandId, Unknown,
                    $"device '{t.DeviceId}' did not answer within {EntityAsk.Timeout.TotalSeconds:0} s; the kickoff may still have been " +
                    "queued: retry with the same Idempotency-Key, which returns it if it was");
            case CommandInvalid invalid:
                return Result(null, NotSent, invalid.Problem);
            case CommandRefused refused:
                return Result(null, NotSent, refused.Problem);
            case CommandConflict conflict:
                return Result(commandId, NotSent, conflict.Problem);
            case DeviceNotFound:
                return Result(null, NotSent, $"device '{t.DeviceId}' has never connected to this fleet");
            case DevicePending:
                return Result(null, NotSent, $"device '{t.DeviceId}' is pending approval: it takes reads only");
            default:
                return Result(null, NotSent, $"the device entity answered {reply.GetType().Name}");
        }
    }
}
