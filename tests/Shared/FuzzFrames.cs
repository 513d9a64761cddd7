using System.Globalization;
using System.Text;
using System.Text.Json;
using Fleet.Protocol;

namespace Fleet.Testing;

// The fuzzers' frames: valid seeds of every dialect and direction, and a seeded mutation engine over them.
// Shared by the codec and connection fuzzers (tests/Shared/CodecFuzz.cs, ConnectionFuzz.cs), the tests that run
// them briefly, and bench/Fuzz that runs them long. Nothing here is random without a seed: case i of seed s is
// the same bytes on every machine and every run (System.Random with a seed is a fixed algorithm).

/// <summary>Who sends a frame of this shape.</summary>
public enum FuzzDirection { FromDevice, FromController }

/// <summary>One valid frame the mutations start from: what it is (<see cref="Name"/>), who sends it, in which dialect.</summary>
public sealed record FuzzSeed(string Name, FuzzDirection Direction, string Dialect, byte[] Bytes)
{
    public string Text => Encoding.UTF8.GetString(Bytes);
}

/// <summary>
/// Valid frames of every dialect (seed, 2025, 9) and both directions: reports, every answer type (flat and in
/// the 9.x envelope, json-c's spaced output included), generic_response and request_error, the controller's
/// replies and every request (type- and op-named, as the admin API takes them and as the node sends them).
/// </summary>
public static class FuzzSeeds
{
    /// <summary>Every seed; device frames name <paramref name="deviceId"/>.</summary>
    public static IReadOnlyList<FuzzSeed> All(string deviceId = "fuzz-dev") => [.. FromDevice(deviceId), .. FromController(deviceId)];

    /// <summary>
    /// Every seed, the reports (connect, heartbeat) four times: they are few beside the answers, and the path a report
    /// takes (binding, gateways, the entity) is the one every router uses all the time.
    /// </summary>
    public static IReadOnlyList<FuzzSeed> Weighted(string deviceId = "fuzz-dev")
    {
        var all = All(deviceId);
        var reports = all.Where(IsReport).ToList();
        return [.. all, .. reports, .. reports, .. reports];
    }

    public static bool IsReport(FuzzSeed s) =>
        s.Direction == FuzzDirection.FromDevice && (s.Name.Contains("connect", StringComparison.Ordinal) || s.Name.Contains("heartbeat", StringComparison.Ordinal));

    private static readonly GatewayReport Gw1 = new()
    {
        GwId = "gw-1", GwChannel = "apfree", GwAddressV4 = "192.168.1.1", AuthMode = 1, GwInterface = "br-lan",
    };

    private static readonly GatewayReport Gw2 = new()
    {
        GwId = "gw-2", GwChannel = "guest", GwAddressV4 = "192.168.2.1", GwAddressV6 = "fd00::1", AuthMode = 0, GwInterface = "br-guest",
    };

    private static readonly SystemFigures Figures = new()
    {
        SysUptime = 3600, SysMemfree = 51200, SysLoad = 0.25, NfConntrackCount = 120, CpuUsage = 3.5, CpuTemp = 48.5,
        WifidogUptime = 3500, OnlineClients = 3, OfflineClients = 1,
    };

    private static DeviceInfo Info(string deviceId) => new()
    {
        ApDeviceId = deviceId, ApMacAddress = "8c:de:f9:5e:f7:06", ApLongitude = "113.94", ApLatitude = "22.54", LocationId = "lobby",
    };

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    public static IReadOnlyList<FuzzSeed> FromDevice(string deviceId)
    {
        var seeds = new List<FuzzSeed>();
        void Add(string name, string dialect, byte[] bytes) => seeds.Add(new FuzzSeed(name, FuzzDirection.FromDevice, dialect, bytes));
        var d = deviceId;

        // Reports as each era's firmware writes them (Fleet.Protocol's router dialects hold the key order and what each leaves out).
        var connect = new ConnectMessage { DeviceId = d, DeviceInfo = Info(d), Gateway = [Gw1], Mode = 0 };
        var heartbeat = new HeartbeatMessage { DeviceId = d, DeviceInfo = Info(d), Gateway = [Gw1, Gw2], Mode = 0, SysInfo = Figures };
        foreach (var era in new[] { FirmwareEra.Seed, FirmwareEra.V2025, FirmwareEra.V9 })
        {
            var dialect = RouterDialects.For(era);
            Add($"{dialect.Name}-connect", dialect.Name, dialect.EncodeReport(connect));
            Add($"{dialect.Name}-heartbeat", dialect.Name, dialect.EncodeReport(heartbeat));
        }
        Add("seed-connect-bare", "seed", U($$"""{"type":"connect","device_id":"{{d}}","gateway":[{"gw_id":"gw-1","gw_channel":"apfree","gw_address_v4":"192.168.1.1","auth_mode":1,"gw_interface":"br-lan"}]}"""));
        Add("2025-heartbeat-strings", "2025", U($$$"""{"type":"heartbeat","device_id":"{{{d}}}","gateway":[{"gw_id":"gw-1","auth_mode":1}],"sys_info":{"sys_uptime":"3600","sys_memfree":"51200","sys_load":"0.25","cpu_usage":"3.5","cpu_temp":"48.5","online_clients":"3"}}"""));
        Add("2025-heartbeat-req_id", "2025", U($$"""{"type":"heartbeat","device_id":"{{d}}","req_id":"r-17","gateway":[{"gw_id":"gw-1","auth_mode":0}]}"""));
        Add("9-connect-int-req_id", "9", U($$"""{"op":"connect","device_id":"{{d}}","mode":1,"gateway":[{"gw_id":"gw-1","gw_channel":"apfree","gw_address_v4":"192.168.1.1","auth_mode":1,"gw_interface":"br-lan"}],"req_id":42}"""));
        Add("9-connect-unknown", "9", U("""{"op":"connect","device_id":"UNKNOWN","mode":0,"gateway":[{"gw_id":"gw-1","auth_mode":1}],"req_id":"00000000000000ff"}"""));
        // json-c's spaced output with escaped slashes, as the real firmware writes (FIRMWARE_FACTS.md E).
        Add("9-heartbeat-json-c", "9", U($$"""{ "op": "heartbeat", "device_id": "{{d}}", "mode": 0, "device_info": { "ap_device_id": "{{d}}", "location_id": "a\/b" }, "gateway": [ { "gw_id": "gw-1", "gw_channel": "apfree", "gw_address_v4": "192.168.1.1", "auth_mode": 1, "gw_interface": "br-lan" } ], "sys_info": { "sys_uptime": 3600, "sys_memfree": 51200, "sys_load": 0.25, "nf_conntrack_count": 120, "cpu_usage": 3.5, "cpu_temp": 48.5, "wifidog_uptime": 3500, "online_clients": 3, "offline_clients": 1 }, "req_id": "0123456789abcdef" }"""));

        // Flat answers (seed, 2025): every success and error type of every request kind.
        var reqId = ReqId.Of("c0199aa00000000000000000000000001");
        Add("seed-kickoff_response", "seed", U($$"""{"type":"kickoff_response","status":"success","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","message":"Client kicked off successfully"}"""));
        Add("2025-kickoff_response-req_id", "2025", U($$"""{"type":"kickoff_response","req_id":"{{reqId}}","status":"success","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff","message":"Client kicked off successfully"}"""));
        Add("seed-kickoff_error-missing", "seed", U("""{"type":"kickoff_error","error":"Missing required fields in request"}"""));
        Add("seed-kickoff_error-not-found", "seed", U("""{"type":"kickoff_error","error":"Client not found","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff"}"""));
        Add("seed-kickoff_error-device", "seed", U($$"""{"type":"kickoff_error","error":"Device ID mismatch","expected_device_id":"{{d}}","actual_device_id":"other"}"""));
        Add("seed-kickoff_error-gateway", "seed", U("""{"type":"kickoff_error","error":"Gateway ID mismatch","expected_gw_id":"gw-1","actual_gw_id":"gw-9"}"""));
        Add("seed-firmware_info_response", "seed", U("""{"type":"firmware_info_response","data":{"DISTRIB_ID":"OpenWrt","DISTRIB_RELEASE":"24.10-SNAPSHOT","DISTRIB_REVISION":"r28790-abc123","DISTRIB_TARGET":"x86\/64","DISTRIB_DESCRIPTION":"OpenWrt 24.10"}}"""));
        Add("2025-get_trusted_domains_response", "2025", U("""{"type":"get_trusted_domains_response","domains":["example.com","portal.example.org"]}"""));
        Add("2025-request_error", "2025", U($$"""{"type":"request_error","req_id":"{{reqId}}","error":"Unknown WebSocket message type","requested_type":"get_status"}"""));
        Add("2025-get_sys_info_response-unasked", "2025", U("""{"type":"get_sys_info_response","data":{"sys_uptime":3600,"sys_memfree":51200}}"""));
        foreach (var kind in RequestKinds.All)
        {
            if (kind.SuccessType is { } ok && ok is not (KickoffResponse.TypeName or FirmwareInfoResponse.TypeName))
                Add($"2025-{ok}", "2025", ProtocolCodec.Encode(new GenericResponse
                {
                    Type = ok, ReqId = reqId, Status = "success", Message = "OK", Data = JsonElement.Parse("""{"value":1,"name":"x"}"""),
                }));
            if (kind.ErrorType is { } error && error != KickoffError.TypeName)
                Add($"2025-{error}", "2025", ProtocolCodec.Encode(FirmwareAnswers.Error(kind, null, $"Missing or invalid '{kind.Type}' field")));
        }

        // 9.x envelopes: every answer type as OpRouterDialect writes it, with the integer req_ids the node's OpDialect hands out (1, 2, 3).
        var op = OpRouterDialect.Instance;
        var n = 0;
        foreach (var kind in RequestKinds.All)
        {
            var id = new ReqId(((n++ % 3) + 1).ToString(CultureInfo.InvariantCulture), true);
            var type = FirmwareAnswers.ResponseTypeV9(kind.Type);
            Add($"9-{type}", "9", op.EncodeAnswer(OpAnswer.Ok(type, "OK", JsonElement.Parse("""{"client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:ff"}""")) with { ReqId = id }));
            Add($"9-{type}-error", "9", op.EncodeAnswer(OpAnswer.Fail(type, FirmwareAnswers.Codes.NotFound, "Client not found") with { ReqId = id }));
        }
        Add("9-firmware_info_response", "9", op.EncodeAnswer(OpAnswer.Ok(FirmwareInfoResponse.TypeName, "OK",
            JsonElement.Parse("""{"DISTRIB_ID":"OpenWrt","DISTRIB_RELEASE":"24.10-SNAPSHOT","DISTRIB_DESCRIPTION":"OpenWrt 24.10"}""")) with { ReqId = new ReqId("2", true) }));
        Add("9-unknown-operation", "9", op.EncodeAnswer(FirmwareAnswers.UnknownOperationAnswer("set_websocket_serv", new ReqId("3", true))));
        Add("9-generic_response-no-req_id", "9", U("""{ "response": "200", "data": { "type": "generic_response", "data": { }, "status": "error", "code": 400, "message": "Missing or invalid req_id", "field_descriptions": { } } }"""));
        Add("9-kickoff_response-json-c", "9", U("""{ "req_id": 1, "response": "200", "data": { "type": "kickoff_response", "data": { "client_ip": "10.0.0.5", "client_mac": "aa:bb:cc:dd:ee:ff" }, "status": "success", "code": 0, "message": "Client kicked off successfully", "req_id": 1, "field_descriptions": { "client_ip": "Auto-generated: key 'client_ip' of type string", "client_mac": "Auto-generated: key 'client_mac' of type string" } } }"""));
        Add("9-string-req_id-answer", "9", U("""{"req_id":"c0199aa","response":"200","data":{"type":"get_status_response","status":"success","code":0,"message":"OK","data":{"uptime":1}}}"""));
        return seeds;
    }

    public static IReadOnlyList<FuzzSeed> FromController(string deviceId)
    {
        var seeds = new List<FuzzSeed>();
        void Add(string name, string dialect, byte[] bytes) => seeds.Add(new FuzzSeed(name, FuzzDirection.FromController, dialect, bytes));
        var reply = new ReportReply { Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 1 }, new GatewayAuthMode { GwId = "gw-2", AuthMode = 0 }] };
        Add("seed-heartbeat-reply", "seed", ProtocolCodec.Encode(reply));
        var opDialect = new OpDialect();
        Add("9-connect-reply", "9", opDialect.EncodeReply(ConnectMessage.TypeName, ReqId.Of("0123456789abcdef"), reply));
        Add("9-heartbeat-reply", "9", opDialect.EncodeReply(HeartbeatMessage.TypeName, new ReqId("42", true), reply));
        Add("9-gateway_heartbeat", "9", opDialect.EncodeModes(reply));
        Add("9-shell", "9", U("""{"op":"shell","req_id":7,"command":"uptime","timeout":5}"""));
        Add("9-set_websocket_serv", "9", U("""{"op":"set_websocket_serv","req_id":8,"hostname":"example.com","port":443,"path":"/ws","use_ssl":true}"""));

        foreach (var request in Requests(deviceId))
        {
            // As the admin API takes it (no req_id), and as the node writes it in each dialect.
            var body = ProtocolCodec.EncodeToElement(request);
            using (var ms = new MemoryStream())
            {
                using (var w = new Utf8JsonWriter(ms))
                {
                    w.WriteStartObject();
                    foreach (var p in body.EnumerateObject())
                        if (p.Name != "req_id") p.WriteTo(w);
                    w.WriteEndObject();
                }
                Add($"api-{request.Type}", "api", ms.ToArray());
            }
            var withId = request.WithReqId(ReqId.Of("c0199aa00000000000000000000000001"));
            Add($"seed-{request.Type}", "seed", TypeDialect.Seed.EncodeRequest(withId));
            Add($"9-{request.Type}", "9", opDialect.EncodeRequest(withId));
        }
        return seeds;
    }

    /// <summary>One valid request of every kind the node sends.</summary>
    public static IReadOnlyList<IControllerRequest> Requests(string deviceId) =>
    [
        new AuthRequest { Token = "t-1", ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:ff", ClientName = "phone", GwId = "gw-1", OnceAuth = false },
        new KickoffRequest { ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = deviceId, GwId = "gw-1" },
        new TmpPassRequest { ClientMac = "aa:bb:cc:dd:ee:ff", Timeout = 300 },
        new FirmwareUpgradeRequest { Url = "http://fw.example.com/openwrt-sysupgrade.bin", Force = false },
        new UpdateDeviceInfoRequest { DeviceInfo = new DeviceInfo { LocationId = "hall", ApMacAddress = "8c:de:f9:5e:f7:06" } },
        new SetWifiInfoRequest { Data = JsonElement.Parse("""{"radio0":{"channel":6,"htmode":"HT20","interfaces":[{"ssid":"guest","key":"secret"}]}}""") },
        new SyncDomainsRequest { Type = SyncDomainsRequest.TrustedTypeName, Domains = ["example.com", "portal.example.org"] },
        new SyncDomainsRequest { Type = SyncDomainsRequest.WildcardTypeName, Domains = ["*.example.com"] },
        new SyncMacsRequest { Macs = ["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"] },
        new GetClientInfoRequest { Mac = "aa:bb:cc:dd:ee:ff" },
        .. RequestKinds.All.Where(k => k.Type is "get_firmware_info" or "get_status" or "reboot_device" or "get_wifi_info" or "get_sys_info"
                or "get_trusted_domains" or "get_trusted_wildcard_domains" or "get_clients" or "get_device_info" or "get_trusted_mac")
            .Select(k => (IControllerRequest)new SimpleRequest { Type = k.Type }),
    ];
}

/// <summary>
/// The mutation engine: from the seeds, one case at a time, a frame that is valid, slightly wrong, badly wrong or
/// random bytes. Structure-aware mutations work on a JSON tree that keeps what a parser would not (duplicate keys,
/// escapes as written, numbers as written): type confusion in any field, huge numbers, deep nesting, very long
/// strings, escapes that decode to NUL or lone surrogates, duplicate and renamed keys, unknown and look-alike
/// op/type names, req_id of every JSON kind, arrays emptied or repeated, answers wrapped in or pulled out of the
/// 9.x envelope, one dialect's key in another's frame. Byte mutations then flip bits, cut, splice, insert JSON
/// tokens and invalid UTF-8. One instance per thread (it keeps scratch state).
/// </summary>
public sealed class FrameMutator
{
    private readonly FuzzSeed[] _seeds;
    private readonly JNode?[] _trees;

    public FrameMutator(IEnumerable<FuzzSeed> seeds)
    {
        _seeds = seeds.ToArray();
        if (_seeds.Length == 0) throw new ArgumentException("no seeds", nameof(seeds));
        _trees = _seeds.Select(s => JNode.TryParse(s.Bytes)).ToArray();
    }

    public IReadOnlyList<FuzzSeed> Seeds => _seeds;

    /// <summary>The random source of case <paramref name="index"/> of a run with <paramref name="seed"/>: any case can be made again alone.</summary>
    public static Random CaseRandom(long seed, long index)
    {
        // SplitMix64 of (seed, index): neighbouring cases get unrelated streams.
        var z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index + 0x632BE59BD9B4E019UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return new Random(unchecked((int)z ^ (int)(z >> 32)));
    }

    /// <summary>The frame of case <paramref name="index"/> of <paramref name="seed"/>, and how it was made.</summary>
    public byte[] Case(long seed, long index, out string recipe) => Next(CaseRandom(seed, index), out recipe);

    /// <summary>The next frame from <paramref name="rng"/>: a seed, a mutation of one or two seeds, or random bytes.</summary>
    public byte[] Next(Random rng, out string recipe)
    {
        var how = new StringBuilder();
        var roll = rng.Next(100);
        var s = rng.Next(_seeds.Length);
        how.Append(_seeds[s].Name);
        byte[] bytes;
        if (roll < 6)
        {
            bytes = _trees[s] is { } t && rng.Next(2) == 0 ? Write(t, rng, how) : _seeds[s].Bytes;
        }
        else if (roll < 64 && _trees[s] is { } tree)
        {
            var root = tree.Clone();
            var count = 1 + rng.Next(rng.Next(4) == 0 ? 6 : 2);
            for (var i = 0; i < count; i++) root = MutateTree(root, rng, how);
            bytes = Write(root, rng, how);
        }
        else if (roll < 82)
        {
            var root = _trees[s] is { } t ? t.Clone() : null;
            if (root is not null)
                for (var i = rng.Next(3); i > 0; i--) root = MutateTree(root, rng, how);
            bytes = root is null ? _seeds[s].Bytes : Write(root, rng, how);
            var count = 1 + rng.Next(rng.Next(3) == 0 ? 3 : 1);
            for (var i = 0; i < count; i++) bytes = MutateBytes(bytes, rng, how);
        }
        else if (roll < 91)
        {
            var other = rng.Next(_seeds.Length);
            how.Append(" + ").Append(_seeds[other].Name);
            if (_trees[s] is { } a && _trees[other] is { } b && rng.Next(2) == 0)
            {
                var root = a.Clone();
                var slots = root.Slots();
                var donor = b.Clone().AllNodes();
                if (slots.Count > 0)
                {
                    var (parent, index) = slots[rng.Next(slots.Count)];
                    parent.Set(index, donor[rng.Next(donor.Count)]);
                }
                how.Append(" [graft]");
                bytes = Write(root, rng, how);
            }
            else
            {
                var x = _seeds[s].Bytes;
                var y = _seeds[other].Bytes;
                var cutX = rng.Next(x.Length + 1);
                var cutY = rng.Next(y.Length + 1);
                how.Append($" [splice {cutX}/{cutY}]");
                bytes = [.. x.AsSpan(0, cutX), .. y.AsSpan(cutY)];
            }
        }
        else
        {
            bytes = RandomBytes(rng, how);
        }
        if (bytes.Length > MaxCaseBytes)
        {
            // Twice the node's frame limit is as large as a case needs to be; beyond it a case only costs time.
            bytes = bytes[..MaxCaseBytes];
            how.Append(" capped");
        }
        recipe = how.ToString();
        return bytes;
    }

    public const int MaxCaseBytes = 128 * 1024;

    // ------------------------------------------------------------------ values

    private static readonly string[] Names =
    [
        "connect", "heartbeat", "bootstrap", "auth", "kickoff", "tmp_pass", "get_firmware_info", "firmware_upgrade", "ota", "get_status",
        "reboot_device", "update_device_info", "get_wifi_info", "set_wifi_info", "get_sys_info", "sync_trusted_domain",
        "get_trusted_domains", "sync_trusted_wildcard_domains", "get_trusted_wildcard_domains", "get_client_info", "get_clients",
        "get_device_info", "sync_trusted_mac", "get_trusted_mac", "gateway_heartbeat", "shell", "set_websocket_serv", "set_auth_serv",
        "kickoff_response", "kickoff_error", "firmware_info_response", "firmware_info_error", "firmware_upgrade_response",
        "firmware_upgrade_error", "get_status_response", "reboot_device_error", "get_sys_info_response", "request_error",
        "generic_response", "get_trusted_domains_response", "tmp_pass_response", "auth_response", "response", "data",
        "", " ", "CONNECT", "Connect", " connect", "connect ", "heartbeat\\n", "connect\\u0000", "kickoff_response\\u0000x",
        "kickoff_", "_response", "_error", "x_error", "__proto__", "constructor", "null", "undefined", "type", "op",
    ];

    private static readonly string[] Keys =
    [
        "type", "op", "req_id", "response", "data", "device_id", "device_info", "gateway", "gw_id", "gw_channel", "gw_address_v4",
        "gw_address_v6", "auth_mode", "gw_interface", "sys_info", "sys_uptime", "sys_load", "mode", "status", "code", "message",
        "error", "client_ip", "client_mac", "token", "once_auth", "timeout", "url", "force", "domains", "macs", "mac",
        "requested_type", "requested_op", "field_descriptions", "ap_device_id", "ap_mac_address", "location_id",
        "expected_device_id", "DISTRIB_DESCRIPTION", "DISTRIB_RELEASE", "", "TYPE", "Type", "type ", "req-id", "\\u0074ype", "o\\u0070",
    ];

    private static readonly string[] Numbers =
    [
        "0", "-1", "1", "2", "3", "42", "255", "256", "65535", "2147483647", "2147483648", "-2147483648", "-2147483649",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
        "123456789012345678901234567890123456789", "1e308", "1e309", "-1e309", "1E+2", "1e-400", "1.5", "-0", "0.0", "-0.0",
        "3.141592653589793238462643383279", "4.9e-324", "1.7976931348623157e308",
    ];

    private static readonly string[] BadNumbers = ["01", "+1", ".5", "1.", "0x10", "NaN", "Infinity", "-Infinity", "-", "1e", "--1", "1e+", "0.e1"];

    private static readonly string[] Strings =
    [
        "", "a", "UNKNOWN", "gw-1", "gw-2", "fuzz-dev", "aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF", "zz:zz:zz:zz:zz:zz", "192.168.1.1",
        "256.1.1.1", "::1", "fd00::1%eth0", "http://fw.example.com/fw.bin", "http://x/'; reboot; '", "ftp://x/y", "200", "500",
        "success", "error", "OK", "Client not found", "\\u0000", "a\\u0000b", "\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud83d\\ude00",
        "\U0001F600", "é", "\\/", "\\\"", "\\\\", "\\n\\t\\r\\b\\f", "\\u00e9", "'; reboot; '", "$(reboot)", "`id`", "a b", "../../etc/passwd",
        "%s%n%x", "null", "true", "1", "-1", "1e309", "{}", "[]", "<script>", "\\u001f", "\\u007f", "\\uffff", "\\ufeff",
    ];

    private static readonly string[] BadStrings = ["\\x41", "\\u12", "\\u", "\\", "\\ud800\\", "\u0001", "\n", "\t", "\\U0041", "\\'"];

    private static string Str(string raw) => "\"" + raw + "\"";

    private static JNode RandomValue(Random rng, int depth = 0)
    {
        switch (rng.Next(depth > 2 ? 9 : 12))
        {
            case 0: case 1: return new JRaw(Numbers[rng.Next(Numbers.Length)]);
            case 2: return new JRaw(rng.Next(4) == 0 ? BadNumbers[rng.Next(BadNumbers.Length)] : rng.Next(-1000, 100000).ToString(CultureInfo.InvariantCulture));
            case 3: case 4: return new JRaw(Str(Strings[rng.Next(Strings.Length)]));
            case 5: return new JRaw(Str(rng.Next(4) == 0 ? BadStrings[rng.Next(BadStrings.Length)] : Names[rng.Next(Names.Length)]));
            case 6: return new JRaw(Str(rng.Next(3) == 0 ? LongString(rng) : Strings[rng.Next(Strings.Length)]));
            case 7: return new JRaw(rng.Next(3) switch { 0 => "null", 1 => "true", _ => "false" });
            case 8: return rng.Next(2) == 0 ? new JObj() : new JArr();
            case 9:
            case 10:
            {
                var o = new JObj();
                for (var i = rng.Next(4); i > 0; i--) o.Pairs.Add((Keys[rng.Next(Keys.Length)], RandomValue(rng, depth + 1)));
                return o;
            }
            default:
            {
                var a = new JArr();
                for (var i = rng.Next(5); i > 0; i--) a.Items.Add(RandomValue(rng, depth + 1));
                return a;
            }
        }
    }

    private static string LongString(Random rng)
    {
        // Around the reader's limits (1,019 bytes of payload, 1,024 with the header) and now and then past the node's
        // frame limit (64 KiB), which makes for slow cases: rarely.
        var length = rng.Next(20) switch { < 4 => 200, < 7 => 1019, < 10 => 1024, < 12 => 4096, < 19 => rng.Next(1, 2000), _ => rng.Next(10, 70_000) };
        var unit = rng.Next(4) switch { 0 => "a", 1 => "\\u0000", 2 => "é", _ => "gw-1," };
        var sb = new StringBuilder(length + unit.Length);
        while (sb.Length < length) sb.Append(unit);
        return sb.ToString();
    }

    // ------------------------------------------------------------------ tree mutations

    private static JNode MutateTree(JNode root, Random rng, StringBuilder how)
    {
        var slots = root.Slots();
        var objects = root.AllNodes().OfType<JObj>().ToList();
        switch (rng.Next(17))
        {
            case 0 when slots.Count > 0: // type confusion: any value becomes another kind
            {
                var (p, i) = slots[rng.Next(slots.Count)];
                p.Set(i, RandomValue(rng));
                how.Append(" confuse");
                return root;
            }
            case 1 when slots.Count > 0: // huge / odd numbers
            {
                var (p, i) = slots[rng.Next(slots.Count)];
                p.Set(i, new JRaw(Numbers[rng.Next(Numbers.Length)]));
                how.Append(" number");
                return root;
            }
            case 2: // deep nesting, around the parser's depth limit (64) and far past it
            {
                var depth = rng.Next(6) switch { 0 => 2, 1 => 10, 2 => 63, 3 => 64, 4 => 65, _ => rng.Next(100, 2000) };
                var (p, i) = slots.Count > 0 ? slots[rng.Next(slots.Count)] : (null, 0);
                JNode inner = p is null ? root : p.Get(i);
                for (var d = 0; d < depth; d++)
                    inner = rng.Next(2) == 0 ? new JArr { Items = { inner } } : new JObj { Pairs = { (Keys[rng.Next(Keys.Length)], inner) } };
                how.Append(" nest").Append(depth);
                if (p is null) return inner;
                p.Set(i, inner);
                return root;
            }
            case 3 when slots.Count > 0: // very long string
            {
                var (p, i) = slots[rng.Next(slots.Count)];
                p.Set(i, new JRaw(Str(LongString(rng))));
                how.Append(" long");
                return root;
            }
            case 4 when slots.Count > 0: // odd strings: escapes to NUL and lone surrogates, shell metacharacters, invalid escapes
            {
                var (p, i) = slots[rng.Next(slots.Count)];
                p.Set(i, new JRaw(Str(rng.Next(5) == 0 ? BadStrings[rng.Next(BadStrings.Length)] : Strings[rng.Next(Strings.Length)])));
                how.Append(" string");
                return root;
            }
            case 5 when objects.Count > 0: // duplicate key, same or other value, before or after
            {
                var o = objects[rng.Next(objects.Count)];
                if (o.Pairs.Count == 0) break;
                var (k, v) = o.Pairs[rng.Next(o.Pairs.Count)];
                o.Pairs.Insert(rng.Next(o.Pairs.Count + 1), (k, rng.Next(2) == 0 ? v.Clone() : RandomValue(rng)));
                how.Append(" dup:").Append(k);
                return root;
            }
            case 6 when objects.Count > 0: // remove a key
            {
                var o = objects[rng.Next(objects.Count)];
                if (o.Pairs.Count == 0) break;
                var at = rng.Next(o.Pairs.Count);
                how.Append(" remove:").Append(o.Pairs[at].Key);
                o.Pairs.RemoveAt(at);
                return root;
            }
            case 7 when objects.Count > 0: // add a key the protocol knows, with any value
            {
                var o = objects[rng.Next(objects.Count)];
                var k = Keys[rng.Next(Keys.Length)];
                o.Pairs.Insert(rng.Next(o.Pairs.Count + 1), (k, RandomValue(rng)));
                how.Append(" add:").Append(k);
                return root;
            }
            case 8 when objects.Count > 0: // rename a key
            {
                var o = objects[rng.Next(objects.Count)];
                if (o.Pairs.Count == 0) break;
                var at = rng.Next(o.Pairs.Count);
                var k = Keys[rng.Next(Keys.Length)];
                how.Append(" rename:").Append(o.Pairs[at].Key).Append("->").Append(k);
                o.Pairs[at] = (k, o.Pairs[at].Value);
                return root;
            }
            case 9: // the frame's name: unknown, look-alike, another direction's or dialect's
            case 10:
            {
                if (root is not JObj top) break;
                var key = top.Has("op") && (!top.Has("type") || rng.Next(2) == 0) ? "op" : top.Has("type") ? "type" : rng.Next(2) == 0 ? "op" : "type";
                var name = Names[rng.Next(Names.Length)];
                top.Put(key, new JRaw(Str(name)));
                how.Append(' ').Append(key).Append('=').Append(name);
                return root;
            }
            case 11: // req_id of every JSON kind, at the top or inside an envelope's data
            {
                var target = root is JObj top && top.Get("data") is JObj inner && rng.Next(2) == 0 ? inner : root as JObj;
                if (target is null) break;
                if (rng.Next(8) == 0)
                {
                    target.Pairs.RemoveAll(p => p.Key == "req_id");
                    how.Append(" req_id:none");
                    return root;
                }
                JNode id = rng.Next(6) switch
                {
                    0 => new JRaw(Numbers[rng.Next(Numbers.Length)]),
                    1 => new JRaw(rng.Next(1, 5).ToString(CultureInfo.InvariantCulture)),
                    2 => new JRaw(Str(Strings[rng.Next(Strings.Length)])),
                    _ => RandomValue(rng),
                };
                target.Put("req_id", id);
                how.Append(" req_id");
                return root;
            }
            case 12: // arrays: emptied, repeated (many gateways), nulls, shuffled
            {
                var arrays = root.AllNodes().OfType<JArr>().ToList();
                if (arrays.Count == 0) break;
                var a = arrays[rng.Next(arrays.Count)];
                switch (rng.Next(4))
                {
                    case 0: a.Items.Clear(); how.Append(" array:empty"); break;
                    case 1 when a.Items.Count > 0:
                        var one = a.Items[rng.Next(a.Items.Count)];
                        var times = rng.Next(3) == 0 ? rng.Next(30, 200) : rng.Next(1, 4);
                        for (var i = 0; i < times; i++) a.Items.Add(one.Clone());
                        how.Append(" array:x").Append(times);
                        break;
                    case 2: a.Items.Insert(rng.Next(a.Items.Count + 1), new JRaw("null")); how.Append(" array:null"); break;
                    default:
                        for (var i = a.Items.Count - 1; i > 0; i--) { var j = rng.Next(i + 1); (a.Items[i], a.Items[j]) = (a.Items[j], a.Items[i]); }
                        how.Append(" array:shuffle");
                        break;
                }
                return root;
            }
            case 13: // into the 9.x answer envelope, or out of it
            {
                if (root is JObj top && top.Get("data") is { } data && top.Has("response") && rng.Next(2) == 0)
                {
                    how.Append(" unwrap");
                    return data;
                }
                how.Append(" wrap");
                return new JObj { Pairs = { ("req_id", new JRaw(rng.Next(1, 5).ToString(CultureInfo.InvariantCulture))), ("response", new JRaw("\"200\"")), ("data", root) } };
            }
            case 14: // one dialect's name key in the other's frame, or both
            {
                if (root is not JObj top) break;
                var from = top.Has("type") ? "type" : "op";
                var to = from == "type" ? "op" : "type";
                if (top.Get(from) is not { } name) break;
                if (rng.Next(2) == 0) top.Pairs.RemoveAll(p => p.Key == from);
                top.Put(to, name.Clone());
                how.Append(' ').Append(from).Append("->").Append(to);
                return root;
            }
            case 15 when slots.Count > 0: // a part becomes the whole
            {
                var (p, i) = slots[rng.Next(slots.Count)];
                how.Append(" subtree");
                return p.Get(i);
            }
            default: // the device_id: the node binds sockets by it
            {
                if (root is not JObj top) break;
                var id = rng.Next(4) switch
                {
                    0 => Strings[rng.Next(Strings.Length)],
                    1 => LongString(rng),
                    2 => "fuzz-dev" + Strings[rng.Next(Strings.Length)],
                    _ => "",
                };
                top.Put("device_id", new JRaw(Str(id)));
                how.Append(" device_id");
                return root;
            }
        }
        how.Append(" noop");
        return root;
    }

    // ------------------------------------------------------------------ writing a tree

    private static byte[] Write(JNode root, Random rng, StringBuilder how)
    {
        var style = rng.Next(10) switch { < 6 => JStyle.Compact, < 9 => JStyle.JsonC, _ => JStyle.Pretty };
        if (style != JStyle.Compact) how.Append(" style:").Append(style);
        var sb = new StringBuilder(256);
        root.Write(sb, style, 0);
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    // ------------------------------------------------------------------ byte mutations

    private static readonly byte[][] Tokens =
    [
        "{"u8.ToArray(), "}"u8.ToArray(), "["u8.ToArray(), "]"u8.ToArray(), "\""u8.ToArray(), "\\"u8.ToArray(), ","u8.ToArray(),
        ":"u8.ToArray(), "null"u8.ToArray(), "true"u8.ToArray(), "1e999"u8.ToArray(), "-"u8.ToArray(), "/*x*/"u8.ToArray(),
        "//x\n"u8.ToArray(), "\\u0000"u8.ToArray(), "\\ud800"u8.ToArray(), ",,"u8.ToArray(), "\n"u8.ToArray(), " "u8.ToArray(),
        "\"type\":\"connect\","u8.ToArray(), "\"op\":\"heartbeat\","u8.ToArray(), "\"response\":\"200\","u8.ToArray(),
        "\"req_id\":1,"u8.ToArray(), "\"req_id\":\"x\","u8.ToArray(), "{\"a\":"u8.ToArray(), "}}}}"u8.ToArray(), "]]]]"u8.ToArray(),
        [0xEF, 0xBB, 0xBF], // BOM
        [0xC0, 0x80], [0xFF], [0xFE], [0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0x00],
    ];

    private static byte[] MutateBytes(byte[] input, Random rng, StringBuilder how)
    {
        var b = new List<byte>(input);
        switch (rng.Next(12))
        {
            case 0 when b.Count > 0:
            {
                var i = rng.Next(b.Count);
                b[i] ^= (byte)(1 << rng.Next(8));
                how.Append(" flip@").Append(i);
                break;
            }
            case 1 when b.Count > 0:
            {
                var i = rng.Next(b.Count);
                b[i] = (byte)rng.Next(256);
                how.Append(" byte@").Append(i);
                break;
            }
            case 2:
            {
                var at = rng.Next(b.Count + 1);
                var extra = new byte[rng.Next(1, 8)];
                rng.NextBytes(extra);
                b.InsertRange(at, extra);
                how.Append(" insert@").Append(at);
                break;
            }
            case 3 when b.Count > 0:
            {
                var at = rng.Next(b.Count);
                var len = Math.Min(b.Count - at, rng.Next(1, 16));
                b.RemoveRange(at, len);
                how.Append(" delete@").Append(at);
                break;
            }
            case 4 when b.Count > 0:
            {
                var at = rng.Next(b.Count);
                var len = Math.Min(b.Count - at, rng.Next(1, 64));
                b.InsertRange(rng.Next(b.Count + 1), b.GetRange(at, len));
                how.Append(" repeat@").Append(at);
                break;
            }
            case 5:
            case 6:
            {
                var at = rng.Next(b.Count + 1);
                var token = Tokens[rng.Next(Tokens.Length)];
                b.InsertRange(at, token);
                how.Append(" token@").Append(at);
                break;
            }
            case 7:
            {
                var at = rng.Next(b.Count + 1);
                how.Append(" cut@").Append(at);
                b.RemoveRange(at, b.Count - at);
                break;
            }
            case 8:
                b.AddRange(rng.Next(3) switch { 0 => "{}"u8.ToArray(), 1 => " x"u8.ToArray(), _ => input });
                how.Append(" trailing");
                break;
            case 9 when b.Count > 0: // a quote or bracket somewhere else
            {
                var i = rng.Next(b.Count);
                b[i] = "\"{}[],:\\"u8[rng.Next(8)];
                how.Append(" syntax@").Append(i);
                break;
            }
            case 10: // a trailing comma before a closing brace
            {
                var closing = b.LastIndexOf((byte)'}');
                if (closing > 0) b.Insert(closing, (byte)',');
                how.Append(" trailing-comma");
                break;
            }
            default:
            {
                var at = rng.Next(b.Count + 1);
                b.InsertRange(at, "/* a comment */"u8.ToArray());
                how.Append(" comment@").Append(at);
                break;
            }
        }
        return b.ToArray();
    }

    private static byte[] RandomBytes(Random rng, StringBuilder how)
    {
        var length = rng.Next(10) == 0 ? rng.Next(2000) : rng.Next(64);
        var bytes = new byte[length];
        if (rng.Next(2) == 0)
        {
            rng.NextBytes(bytes);
            how.Append(" random");
        }
        else
        {
            const string soup = "{}[]\":,0123456789-+.eEtruefalsn \\u/*typeopreq_id";
            for (var i = 0; i < length; i++) bytes[i] = (byte)soup[rng.Next(soup.Length)];
            how.Append(" soup");
        }
        return bytes;
    }
}

internal enum JStyle { Compact, JsonC, Pretty }

/// <summary>
/// A JSON tree that keeps what the mutations need and a parser would normalise: object members as a list (duplicate
/// keys), keys and string tokens as written (escapes intact), numbers as written. Scalars are raw tokens.
/// </summary>
internal abstract class JNode
{
    public abstract JNode Clone();
    public abstract void Write(StringBuilder sb, JStyle style, int depth);

    public static JNode? TryParse(byte[] json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            return reader.Read() ? Parse(ref reader) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static JNode Parse(ref Utf8JsonReader r)
    {
        switch (r.TokenType)
        {
            case JsonTokenType.StartObject:
            {
                var o = new JObj();
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    var key = Encoding.UTF8.GetString(r.ValueSpan);
                    r.Read();
                    o.Pairs.Add((key, Parse(ref r)));
                }
                return o;
            }
            case JsonTokenType.StartArray:
            {
                var a = new JArr();
                while (r.Read() && r.TokenType != JsonTokenType.EndArray) a.Items.Add(Parse(ref r));
                return a;
            }
            case JsonTokenType.String:
                return new JRaw("\"" + Encoding.UTF8.GetString(r.ValueSpan) + "\"");
            default:
                return new JRaw(Encoding.UTF8.GetString(r.ValueSpan));
        }
    }

    /// <summary>Every place a value sits (a container and the index in it), depth first.</summary>
    public List<(JContainer Parent, int Index)> Slots()
    {
        var slots = new List<(JContainer, int)>();
        void Walk(JNode n)
        {
            if (n is not JContainer c) return;
            for (var i = 0; i < c.Count; i++)
            {
                slots.Add((c, i));
                Walk(c.Get(i));
            }
        }
        Walk(this);
        return slots;
    }

    public List<JNode> AllNodes()
    {
        var all = new List<JNode> { this };
        foreach (var (p, i) in Slots()) all.Add(p.Get(i));
        return all;
    }

    protected static void Newline(StringBuilder sb, JStyle style, int depth)
    {
        if (style == JStyle.Pretty) sb.Append('\n').Append(' ', depth * 2);
        else if (style == JStyle.JsonC) sb.Append(' ');
    }
}

internal abstract class JContainer : JNode
{
    public abstract int Count { get; }
    public abstract JNode Get(int index);
    public abstract void Set(int index, JNode value);
}

internal sealed class JObj : JContainer
{
    public List<(string Key, JNode Value)> Pairs { get; } = [];
    public override int Count => Pairs.Count;
    public override JNode Get(int index) => Pairs[index].Value;
    public override void Set(int index, JNode value) => Pairs[index] = (Pairs[index].Key, value);
    public bool Has(string key) => Pairs.Exists(p => p.Key == key);
    public JNode? Get(string key) => Pairs.FindLast(p => p.Key == key).Value;

    /// <summary>Sets the last member named <paramref name="key"/>, or adds one.</summary>
    public void Put(string key, JNode value)
    {
        var i = Pairs.FindLastIndex(p => p.Key == key);
        if (i >= 0) Pairs[i] = (key, value);
        else Pairs.Insert(0, (key, value));
    }

    public override JNode Clone()
    {
        var o = new JObj();
        foreach (var (k, v) in Pairs) o.Pairs.Add((k, v.Clone()));
        return o;
    }

    public override void Write(StringBuilder sb, JStyle style, int depth)
    {
        sb.Append('{');
        for (var i = 0; i < Pairs.Count; i++)
        {
            if (i > 0) sb.Append(',');
            Newline(sb, style, depth + 1);
            sb.Append('"').Append(Pairs[i].Key).Append('"').Append(style == JStyle.Compact ? ":" : ": ");
            Pairs[i].Value.Write(sb, style, depth + 1);
        }
        if (Pairs.Count > 0 || style == JStyle.JsonC) Newline(sb, style, depth);
        sb.Append('}');
    }
}

internal sealed class JArr : JContainer
{
    public List<JNode> Items { get; } = [];
    public override int Count => Items.Count;
    public override JNode Get(int index) => Items[index];
    public override void Set(int index, JNode value) => Items[index] = value;

    public override JNode Clone()
    {
        var a = new JArr();
        foreach (var i in Items) a.Items.Add(i.Clone());
        return a;
    }

    public override void Write(StringBuilder sb, JStyle style, int depth)
    {
        sb.Append('[');
        for (var i = 0; i < Items.Count; i++)
        {
            if (i > 0) sb.Append(',');
            Newline(sb, style, depth + 1);
            Items[i].Write(sb, style, depth + 1);
        }
        if (Items.Count > 0) Newline(sb, style, depth);
        sb.Append(']');
    }
}

/// <summary>A scalar token as written: a string with its quotes and escapes, a number, true, false, null, or anything else.</summary>
internal sealed class JRaw(string text) : JNode
{
    public string Text { get; } = text;
    public override JNode Clone() => this; // immutable
    public override void Write(StringBuilder sb, JStyle style, int depth) => sb.Append(Text);
}
