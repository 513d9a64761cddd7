using System.Collections.Immutable;
using Fleet.Protocol;

namespace Fleet.Edge;

// The messages more than one of the agent's actors know. Each actor's own messages stay beside it;
// these live here so that no actor's folder depends on another's just to talk to it.

/// <summary>
/// Asks the link actor to send a frame to the controller: the answer of whichever actor handled a request
/// (the firewall and router actors reply with it to the link, which forwards every request to them).
/// </summary>
public sealed record SendToController(IDeviceFrame Frame);

/// <summary>
/// Published on the event stream by the firewall actor whenever gateways' auth modes change;
/// the link actor reports them in its heartbeats.
/// </summary>
public sealed record AuthModesChanged(ImmutableSortedDictionary<string, int> AuthModes);

/// <summary>
/// Sent by the router actor to the firewall actor just before the router reboots or flashes new firmware:
/// the seed firmware forgets its clients and passes then (they live in memory and nft), so the agent forgets
/// them too instead of restoring them from state_directory when it starts again. Answered with <see cref="ClientsForgotten"/>.
/// </summary>
public sealed record ForgetClients(string Why);

public sealed record ClientsForgotten
{
    public static readonly ClientsForgotten Instance = new();
}
