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
                AppendElements(sb, g.Allowed);
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

    /// <summary>
    /// The element changes that turn <paramref name="from"/> into <paramref name="to"/> (same layout, see
    /// <see cref="FirewallSpec.SameLayout"/>), as one nft script (one transaction), or "" when nothing changed.
    /// A MAC whose timeout changed is deleted and added again (adding an element that exists changes nothing).
    /// Elements of passes that have ended by <paramref name="now"/> are not deleted: the kernel already did.
    /// </summary>
    public static string RenderChanges(string table, FirewallSpec from, FirewallSpec to, DateTimeOffset now)
    {
        if (!IsTableName(table))
            throw new ArgumentException($"table '{table}' is not a valid nft table name", nameof(table));
        if (!from.SameLayout(to)) throw new ArgumentException("the layouts differ: render the whole table");
        var sb = new StringBuilder();
        for (var i = 0; i < to.Gateways.Count; i++)
        {
            var before = from.Gateways[i].Allowed.ToDictionary(a => a.Mac, StringComparer.Ordinal);
            var after = to.Gateways[i].Allowed.ToDictionary(a => a.Mac, StringComparer.Ordinal);
            var delete = before.Values
                .Where(a => (!after.TryGetValue(a.Mac, out var b) || b.ExpiresAt != a.ExpiresAt) && !(a.ExpiresAt is { } end && end <= now))
                .Select(a => a.Mac).Order(StringComparer.Ordinal).ToList();
            var add = after.Values
                .Where(a => !before.TryGetValue(a.Mac, out var b) || b.ExpiresAt != a.ExpiresAt || (b.ExpiresAt is { } end && end <= now))
                .OrderBy(a => a.Mac, StringComparer.Ordinal).ToList();
            if (delete.Count > 0)
            {
                sb.Append("delete element inet ").Append(table).Append(' ').Append(SetName(i)).Append(" { ");
                for (var j = 0; j < delete.Count; j++)
                {
                    Require(FieldRules.IsMac(delete[j]), $"MAC '{delete[j]}'");
                    if (j > 0) sb.Append(", ");
                    sb.Append(FieldRules.NormalizeMac(delete[j]));
                }
                sb.Append(" }\n");
            }
            if (add.Count > 0)
            {
                sb.Append("add element inet ").Append(table).Append(' ').Append(SetName(i)).Append(" { ");
                AppendElements(sb, add);
                sb.Append(" }\n");
            }
        }
        return sb.ToString();
    }

    private static void AppendElements(StringBuilder sb, IReadOnlyList<AllowedMac> allowed)
    {
        for (var j = 0; j < allowed.Count; j++)
        {
            var a = allowed[j];
            Require(FieldRules.IsMac(a.Mac), $"MAC '{a.Mac}'");
            if (j > 0) sb.Append(", ");
            sb.Append(FieldRules.NormalizeMac(a.Mac));
            if (a.Timeout is { } t)
                sb.Append(" timeout ").Append(Math.Max(1, (long)Math.Ceiling(t.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture)).Append("ms");
        }
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
