using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Fleet.Protocol;

/// <summary>The pieces the router dialects share: writing reports and reading gateway auth modes as the firmware does.</summary>
internal static class RouterWire
{
    public static readonly JsonWriterOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Write(Action<Utf8JsonWriter> body, int sizeHint = 512)
    {
        var buffer = new ArrayBufferWriter<byte>(sizeHint);
        using (var w = new Utf8JsonWriter(buffer, Relaxed))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static void WriteReqId(Utf8JsonWriter w, ReqId id)
    {
        w.WritePropertyName("req_id");
        if (id.IsNumber) w.WriteRawValue(id.Value);
        else w.WriteStringValue(id.Value);
    }

    /// <summary>device_info: the five keys, each only if set (build_gateway_report_message; all strings).</summary>
    public static void WriteDeviceInfo(Utf8JsonWriter w, DeviceInfo? info)
    {
        if (info is null) return;
        w.WriteStartObject("device_info");
        if (info.ApDeviceId is not null) w.WriteString("ap_device_id", info.ApDeviceId);
        if (info.ApMacAddress is not null) w.WriteString("ap_mac_address", info.ApMacAddress);
        if (info.ApLongitude is not null) w.WriteString("ap_longitude", info.ApLongitude);
        if (info.ApLatitude is not null) w.WriteString("ap_latitude", info.ApLatitude);
        if (info.LocationId is not null) w.WriteString("location_id", info.LocationId);
        w.WriteEndObject();
    }

    /// <summary>gateway[]: gw_id, gw_channel, gw_address_v4, auth_mode (int), gw_interface, gw_address_v6 (only if set).</summary>
    public static void WriteGateways(Utf8JsonWriter w, IReadOnlyList<GatewayReport>? gateways)
    {
        w.WriteStartArray("gateway");
        foreach (var g in gateways ?? [])
        {
            w.WriteStartObject();
            if (g.GwId is not null) w.WriteString("gw_id", g.GwId);
            if (g.GwChannel is not null) w.WriteString("gw_channel", g.GwChannel);
            if (g.GwAddressV4 is not null) w.WriteString("gw_address_v4", g.GwAddressV4);
            if (g.AuthMode is { } mode) w.WriteNumber("auth_mode", mode);
            if (g.GwInterface is not null) w.WriteString("gw_interface", g.GwInterface);
            if (g.GwAddressV6 is not null) w.WriteString("gw_address_v6", g.GwAddressV6);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>
    /// sys_info, nested, heartbeat only: the nine figures with json-c's kinds (int64, int64, double, int64,
    /// double, int (-1 if unreadable), int64, int, int).
    /// </summary>
    public static void WriteSysInfo(Utf8JsonWriter w, SystemFigures s)
    {
        w.WriteStartObject("sys_info");
        w.WriteNumber("sys_uptime", s.SysUptime ?? 0);
        w.WriteNumber("sys_memfree", s.SysMemfree ?? 0);
        w.WriteNumber("sys_load", s.SysLoad ?? 0);
        w.WriteNumber("nf_conntrack_count", s.NfConntrackCount ?? 0);
        w.WriteNumber("cpu_usage", s.CpuUsage ?? 0);
        w.WriteNumber("cpu_temp", s.CpuTemp is { } t ? (int)t : -1);
        w.WriteNumber("wifidog_uptime", s.WifidogUptime ?? 0);
        w.WriteNumber("online_clients", s.OnlineClients ?? 0);
        w.WriteNumber("offline_clients", s.OfflineClients ?? 0);
        w.WriteEndObject();
    }

    /// <summary>
    /// Reads a reply's or gateway_heartbeat's auth modes. <paramref name="inData"/>: 9.x replies keep them in
    /// <c>data.gateway</c> and name themselves by <c>data.type</c>; otherwise they are top-level. The firmware
    /// (handle_gateway_state_heartbeat_request) reads gw_id with json_object_get_string (any kind) and
    /// auth_mode with json_object_get_int (ints, numeric strings, doubles, booleans); an entry lacking
    /// either is skipped. Returns null for the gateways when there is no array.
    /// </summary>
    public static (string? DataType, List<GatewayAuthMode>? Gateway) ReadModes(ReadOnlySpan<byte> utf8, bool inData)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        string? dataType = null;
        List<GatewayAuthMode>? gateways = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return (null, null);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (inData && reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject) { reader.Skip(); continue; }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        if (reader.ValueTextEquals("type"u8))
                        {
                            reader.Read();
                            dataType = reader.TokenType == JsonTokenType.String ? reader.GetString() : Scalar(ref reader);
                        }
                        else if (reader.ValueTextEquals("gateway"u8)) gateways = Gateways(ref reader);
                        else { reader.Read(); reader.Skip(); }
                    }
                }
                else if (!inData && reader.ValueTextEquals("gateway"u8)) gateways = Gateways(ref reader);
                else { reader.Read(); reader.Skip(); }
            }
        }
        catch (JsonException) { }
        return (dataType, gateways);
    }

    private static List<GatewayAuthMode>? Gateways(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartArray) { reader.Skip(); return null; }
        var list = new List<GatewayAuthMode>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject) { reader.Skip(); continue; }
            string? gwId = null;
            int? mode = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("gw_id"u8))
                {
                    reader.Read();
                    gwId = reader.TokenType == JsonTokenType.String ? reader.GetString() : Scalar(ref reader);
                }
                else if (reader.ValueTextEquals("auth_mode"u8))
                {
                    reader.Read();
                    mode = reader.TokenType switch
                    {
                        JsonTokenType.Number => reader.TryGetInt32(out var i) ? i : (int)reader.GetDouble(),
                        JsonTokenType.True => 1,
                        JsonTokenType.False => 0,
                        JsonTokenType.String => LeadingInt(reader.GetString()!),
                        _ => Skipped(ref reader),
                    };
                }
                else { reader.Read(); reader.Skip(); }
            }
            if (gwId is not null && mode is not null) list.Add(new GatewayAuthMode { GwId = gwId, AuthMode = mode });
        }
        return list;
    }

    private static int? Skipped(ref Utf8JsonReader reader)
    {
        reader.Skip();
        return null; // json_object_object_get_ex finds null as present, but json_object_get_int(NULL) is 0: rare enough to leave out
    }

    /// <summary>A scalar's text as json_object_get_string gives it (numbers as written); objects and arrays: null.</summary>
    private static string? Scalar(ref Utf8JsonReader reader)
    {
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) { reader.Skip(); return null; }
        return reader.TokenType switch
        {
            JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
            JsonTokenType.True => "true",
            JsonTokenType.False => "false",
            _ => null,
        };
    }

    /// <summary>atoi-like, as json-c turns a string into an int: leading digits, else 0.</summary>
    private static int LeadingInt(string s)
    {
        var span = s.AsSpan().TrimStart();
        var end = 0;
        if (end < span.Length && span[end] is '-' or '+') end++;
        while (end < span.Length && char.IsAsciiDigit(span[end])) end++;
        return int.TryParse(span[..end], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n : 0;
    }
}
