using System.Globalization;
using System.Text;
using Fleet.Protocol;

namespace Fleet.Edge.Firewall;

/// <summary>
/// Renders a <see cref="FirewallSpec"/> as one nft script. Layout (family inet, so it sees routed
/// IPv4 and IPv6 alike; the forward hook is where client traffic leaves the gateway interface):
/// <code>
/// table inet fleet {
///   set allow_0 { type ether_addr; flags timeout; elements = { aa:..:01, aa:..:02 timeout 300000ms } }
///   chain forward { type filter hook forward priority filter; policy accept;
///     iifname "br-lan" ether saddr @allow_0 accept
///     iifname "br-lan" drop }
/// }
/// </code>
/// Sets are named by gateway position because gw_ids may hold characters nft names may not; the
/// gw_id goes into the set's comment. The script first creates-then-deletes the table so that the
/// whole replacement is one transaction whether or not the table exists.
/// </summary>
public static class NftScript
{
    public static string Render(string table, FirewallSpec spec)
    {
        if (!IsTableName(table))
            throw new ArgumentException($"table '{table}' is not a valid nft table name", nameof(table));
        var sb = new StringBuilder();
        sb.Append("table inet ").Append(table).Append(" {}\n");
        sb.Append("delete table inet ").Append(table).Append('\n');
        sb.Append("table inet ").Append(table).Append(" {\n");
        sb.Append("  comment \"managed by fleet-edge\"\n");
        for (var i = 0; i < spec.Gateways.Count; i++)
        {
            var g = spec.Gateways[i];
            Require(FieldRules.IsGwId(g.GwId), $"gw_id '{g.GwId}'");
            Require(FieldRules.IsInterfaceName(g.Interface), $"interface '{g.Interface}'");
            sb.Append("  set ").Append(SetName(i)).Append(" {\n");
            sb.Append("    type ether_addr\n    flags timeout\n");
            sb.Append("    comment \"").Append(g.GwId).Append("\"\n");
            if (g.Allowed.Count > 0)
            {
                sb.Append("    elements = { ");
                for (var j = 0; j < g.Allowed.Count; j++)
                {
                    var a = g.Allowed[j];
                    Require(FieldRules.IsMac(a.Mac), $"MAC '{a.Mac}'");
                    if (j > 0) sb.Append(", ");
                    sb.Append(FieldRules.NormalizeMac(a.Mac));
                    if (a.Timeout is { } t)
                        sb.Append(" timeout ").Append(Math.Max(1, (long)Math.Ceiling(t.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture)).Append("ms");
                }
                sb.Append(" }\n");
            }
            sb.Append("  }\n");
        }
        sb.Append("  chain forward {\n");
        sb.Append("    type filter hook forward priority filter; policy accept;\n");
        for (var i = 0; i < spec.Gateways.Count; i++)
        {
            var g = spec.Gateways[i];
            if (g.Open)
            {
                sb.Append("    iifname \"").Append(g.Interface).Append("\" accept comment \"").Append(g.GwId).Append(": open\"\n");
                continue;
            }
            sb.Append("    iifname \"").Append(g.Interface).Append("\" ether saddr @").Append(SetName(i)).Append(" accept\n");
            sb.Append("    iifname \"").Append(g.Interface).Append("\" counter drop comment \"").Append(g.GwId).Append(": not authorised\"\n");
        }
        sb.Append("  }\n}\n");
        return sb.ToString();
    }

    public static string SetName(int gatewayIndex) => "allow_" + gatewayIndex.ToString(CultureInfo.InvariantCulture);

    public static bool IsTableName(string? t) =>
        !string.IsNullOrEmpty(t) && t.Length <= 32 && (char.IsAsciiLetter(t[0]) || t[0] == '_') && t.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    // Values were validated on the way in; this is the last line before text reaches nft.
    private static void Require(bool ok, string what)
    {
        if (!ok) throw new ArgumentException($"{what} is not safe to put into an nft script");
    }
}
