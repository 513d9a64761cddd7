using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Hosting;
using Fleet.Protocol;
using Fleet.Server.Commands;
using Fleet.Server.Connections;
using Fleet.Server.Devices;
using Fleet.Server.Directory;
using Fleet.Server.Hosting;
using Fleet.Server.Jobs;
using Fleet.Server.Serialization;
using Xunit;

namespace Fleet.Server.Tests.Unit;

/// <summary>
/// The stored formats, pinned: for every type <see cref="FleetSerializer"/> handles (events, the snapshot,
/// messages between nodes) a canonical instance with every field set is serialized and compared with the
/// expected JSON checked in under <c>tests/Fleet.Server.Tests/Samples/&lt;manifest&gt;.json</c>. A field the
/// serializer drops on write, renames or starts writing differently fails here; so does a new type registered
/// without a sample, and a sample that no longer reads back to the same value. Round trips alone cannot see a
/// field dropped on write (it is missing on both sides).
/// <para>
/// A deliberate format change: set FLEET_WRITE_SAMPLES=1, run these tests once, review the diff of Samples/,
/// and add a <see cref="FleetSerializer.Legacy"/> upcaster (with a sample under Samples/legacy/) when journals
/// of the released format must still be read. A type that gains fields its earlier writes lack (read as the defaults)
/// keeps its manifest: its earlier sample moves to Samples/legacy/&lt;manifest&gt;.&lt;what changed&gt;.json, listed in
/// <see cref="A_sample_written_before_its_type_gained_fields_reads_as_todays_format"/>.
/// </para>
/// </summary>
public class StoredFormatTests : Akka.Hosting.TestKit.TestKit
{
    public StoredFormatTests() : base(nameof(StoredFormatTests)) { }

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider) =>
        builder.WithFleetSerialization();

    private static readonly bool Write = Environment.GetEnvironmentVariable("FLEET_WRITE_SAMPLES") == "1";
    internal static string SamplesDir => Path.Combine(Paths.Repo, "tests", "Fleet.Server.Tests", "Samples");

    private static readonly DateTimeOffset T = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private static readonly JsonElement Json = JsonElement.Parse("""{"type":"get_status_response","req_id":"c1","data":{"uptime":5}}""");
    private static readonly KickoffRequest Kickoff = new()
    {
        ReqId = ReqId.Of("c1"), ClientIp = "192.168.1.23", ClientMac = "aa:bb:cc:dd:ee:ff", DeviceId = "r1", GwId = "gw-1",
    };
    private static readonly ReportReply Reply = new() { Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 0 }] };
    private static readonly DeviceAnswer Answer = new()
    {
        Type = "firmware_info_response", ReqId = new ReqId("7", true), RequestType = "get_firmware_info", Error = "none",
        Unsupported = true, ClientMac = "aa:bb:cc:dd:ee:ff",
        Firmware = new Dictionary<string, string> { ["DISTRIB_RELEASE"] = "24.10" }, Body = Json,
    };
    private static readonly SystemFigures Figures = new()
    {
        SysUptime = 5, SysMemfree = 1000, SysLoad = 0.5, NfConntrackCount = 7, CpuUsage = 1.5, CpuTemp = 40.5,
        WifidogUptime = 4, OnlineClients = 2, OfflineClients = 1,
    };
    private static readonly GatewayState Gw = new("gw-1", "apfree", "192.168.1.1", "fd00::1", "br-lan", 1);
    private static readonly ClientState Client = new("aa:bb:cc:dd:ee:ff", "192.168.1.23", "phone", "gw-1", T, T.AddMinutes(5), T.AddMinutes(10));
    private static readonly DeviceInfoState Info = new("r1", "8c:de:f9:5e:f7:06", "116.39", "39.90", "lobby");
    private static readonly CommandView Cmd = new("c1", "r1", "kickoff", "succeeded", ProtocolCodec.EncodeToElement(Kickoff), Json,
        "no error", T, T.AddSeconds(1), T.AddSeconds(2), T.AddDays(1));
    private static readonly GatewayView GwView = new("gw-1", "apfree", "192.168.1.1", "fd00::1", "br-lan", 1, 0);
    private static readonly ImmutableSortedDictionary<string, string> OperatorTags = ImmutableSortedDictionary<string, string>.Empty.Add("site", "paris");
    private static readonly ImmutableSortedDictionary<string, string> Tags = OperatorTags.Add("location", "lobby");

    // jobs and rollouts
    private static readonly Selection Sel = new(["r1"], new Dictionary<string, string> { ["site"] = "paris" }, "gw-1", Online: true, "9", "24.10",
        "lobby", "aa:bb:cc:dd:ee:ff", All: true);
    private static readonly RolloutSpec Rollout = new("https://fw.example.com/24.10.1.bin", Force: true, "24.10.1", "r28790", Canary: 3,
        CanaryPercent: 5, WaveFactor: 4, AbortFailurePercent: 10, AbortMinFinished: 3, DeviceTimeoutSeconds: 900, Retries: 2,
        [new MaintenanceWindow(new TimeOnly(1, 0), new TimeOnly(5, 0))], "UTC", "tz", Approval: true);
    private static readonly JobSpec Spec = new(JobSpec.RolloutKind, "24.10.1 for paris", Sel, Kickoff, 60, T.AddDays(7), WaitOffline: true, 30,
        "ops-key", T, Rollout);
    private static readonly JobView JobV = new("j1", JobSpec.RolloutKind, "24.10.1 for paris", JobStatus.Aborted, "1 of 1 failed", T, "ops-key",
        T.AddDays(7), T.AddHours(1), Sel, ProtocolCodec.EncodeToElement(Kickoff), 60, WaitOffline: true, 1,
        new Dictionary<string, int> { [JobStatus.Failed] = 1 },
        new RolloutView("https://fw.example.com/24.10.1.bin", Force: true, "24.10.1", "r28790",
            [new StageView(0, 1, JobStatus.Aborted, new Dictionary<string, int> { [JobStatus.Failed] = 1 })], 0, new AbortView(10, 3),
            [new WindowView("01:00", "05:00")], "UTC", "tz",
            Approval: true, 900, 2, 3, 5, 4));

    private static DeviceReport Report(DeviceReport r) => r with
    {
        DeviceId = "r1",
        DeviceInfo = new DeviceInfo { ApDeviceId = "r1", ApMacAddress = "8c:de:f9:5e:f7:06", ApLongitude = "116.39", ApLatitude = "39.90", LocationId = "lobby" },
        Gateway = [new GatewayReport { GwId = "gw-1", GwChannel = "apfree", GwAddressV4 = "192.168.1.1", GwAddressV6 = "fd00::1", AuthMode = 1, GwInterface = "br-lan" }],
        Mode = 0, SysInfo = Figures, ReqId = new ReqId("42", true),
    };

    /// <summary>One canonical instance per registered type, every field set (checked by <see cref="Every_field_of_a_canonical_instance_is_set"/>).</summary>
    private IEnumerable<object> Canonical(IActorRef connection)
    {
        // persisted events and snapshot
        yield return new DeviceConnected(T, "akka.tcp://fleet@10.0.0.1:4053#1954855502");
        yield return new DeviceDisconnected(T);
        yield return new DeviceInfoReported(Info);
        yield return new GatewaysReported([Gw]);
        yield return new DesiredAuthModeSet("gw-1", 0);
        yield return new ClientAuthorized(Client);
        yield return new ClientRemoved("aa:bb:cc:dd:ee:ff", "kicked off");
        yield return new ClientsCleared("reboot confirmed", KeepAuthorized: true, T);
        yield return new ProtocolReported("2025");
        yield return new FirmwareReported(ImmutableSortedDictionary<string, string>.Empty.Add("DISTRIB_RELEASE", "24.10"));
        yield return new CommandQueued("c1", Kickoff, T, T.AddDays(1), 30);
        yield return new CommandSent("c1", T);
        yield return new CommandRequeued("c1");
        yield return new CommandCompleted("c1", CommandStatus.TimedOut, Json, "no answer", T);
        yield return new AdmissionChanged("pending", "fleet key", T);
        yield return new TagsChanged(Tags, OperatorTags);
        yield return DeviceState.Empty with
        {
            Exists = true, Online = true, ConnectedAt = T, DisconnectedAt = T.AddMinutes(-1), Node = "akka.tcp://fleet@10.0.0.1:4053#1954855502",
            Protocol = "9", Info = Info, Gateways = [Gw],
            DesiredAuthModes = ImmutableSortedDictionary<string, int>.Empty.Add("gw-1", 0),
            Clients = ImmutableSortedDictionary<string, ClientState>.Empty.Add(Client.ClientMac, Client),
            Firmware = ImmutableSortedDictionary<string, string>.Empty.Add("DISTRIB_RELEASE", "24.10"),
            Admission = "approved", AdmissionBy = "test-admin", AdmissionAt = T, Tags = Tags, OperatorTags = OperatorTags,
            Commands = [new CommandRecord("c1", Kickoff, CommandStatus.Sent, T, T.AddDays(1), 30, T, T.AddSeconds(2), Json, "no error")],
            HistoryLimit = 50,
        };
        // messages between nodes
        var grant = new AdmissionGrant("fleet-key", AdmissionEffect.Enrol, "fleet key", "/ws/wifidogx");
        yield return new DeviceConnect("r1", (ConnectMessage)Report(new ConnectMessage()), connection, "node#1", "9", grant);
        yield return new DeviceHeartbeat("r1", (HeartbeatMessage)Report(new HeartbeatMessage()), connection, "node#1", ReplyWanted: false, "2025");
        yield return new AnswerReceived("r1", Answer, connection);
        yield return new ConnectionClosed("r1", connection);
        yield return new FrameWritten("r1", "c1", AnswerExpected: true, connection);
        yield return new FrameNotWritten("r1", "c1", connection);
        yield return new ConnectionDraining("r1", connection);
        yield return new FrameTooLarge("r1", "c1", 1400, connection);
        yield return new FrameExpired("r1", "c1", connection);
        yield return new ReplyToReport("r1", Reply, "heartbeat", new ReqId("42", true), Routine: true);
        yield return new AuthModesChanged("r1", Reply);
        yield return new DeliverRequest("r1", Kickoff, T.AddSeconds(30));
        yield return new CloseConnection("replaced");
        yield return new GetDevice("r1");
        yield return new SetDesiredAuthMode("r1", "gw-1", 0);
        yield return new SubmitCommand("r1", "c1", Kickoff, "no problem", 10, 20);
        yield return new GetCommands("r1");
        yield return new GetCommand("r1", "c1");
        yield return new CancelCommand("r1", "c1");
        yield return new AwaitCommand("r1", "c1");
        var handOver = new HandOverKey("r1", "fdk_k", "a1", "test-admin", 3600, 30, "/ws/wifidogx");
        yield return handOver;
        yield return new ApproveDevice("r1", "test-admin", handOver);
        yield return new RevokeDeviceKeys("r1");
        yield return new SetTags("r1", OperatorTags);
        yield return new TagsUpdated("r1", Tags, OperatorTags);
        yield return new DevicePending("r1");
        yield return new KeyHandedOver("approved", "9", new HandOverView("a1", "sent"), "not a 9.x router");
        yield return new KeysRevoked(true);
        yield return new DeviceNotFound("r1");
        yield return new DeviceFound(new DeviceView("r1", true, T, T.AddSeconds(30), "node#1", new DeviceInfoView("r1", "8c:de:f9:5e:f7:06", "116.39", "39.90", "lobby"),
            [GwView], [new ClientView("aa:bb:cc:dd:ee:ff", "192.168.1.23", "phone", "gw-1", T, T.AddMinutes(5), T.AddMinutes(10))],
            new Dictionary<string, string> { ["DISTRIB_RELEASE"] = "24.10" }, 1, Figures, "9",
            "approved", "test-admin", T, "device-key", Cloned: true, ClonedSince: T, Tags, Tags));
        yield return new GatewayNotFound("r1", "gw-9");
        yield return new GatewayUpdated(GwView);
        yield return new CommandInvalid("bad");
        yield return new CommandNotFound("c1");
        yield return new CommandConflict("no", Cmd);
        yield return new CommandFound(Cmd, Replayed: true);
        yield return new CommandRefused(429, "Too many queued commands", "the device already has 100 unfinished commands");
        yield return new CommandList([Cmd]);
        yield return GetProjectionStatus.Instance;
        yield return new ProjectionStatus(42);
        // the event topic and the alert manager
        var alert = new Fleet.Server.Alerts.AlertView("a1", "command_failed", "r1", "127.0.0.1:4053", "resolved", "kickoff command c1 failed: Client not found",
            T, T.AddMinutes(5));
        yield return new Fleet.Server.Events.FleetEvent("alert.resolved", T, "r1", "node#1", "9", "device_id_mismatch", "c1", "kickoff", "failed",
            "Client not found", "detail", alert, "j1");
        yield return alert;
        yield return new Fleet.Server.Alerts.ResolveAlert("a1");
        yield return new Fleet.Server.Alerts.AlertResolvedByHand(alert);
        yield return new Fleet.Server.Alerts.AlertNotOpen("a1");
        // jobs and rollouts: persisted events and snapshot, messages to a job and its replies
        yield return new JobCreated("j1", Spec, [new JobTarget("r1", "Europe/Paris", "192.168.1.23", "gw-1")], [1], T);
        yield return new JobDeviceChanged("r1", JobStatus.Failed, "c1", 1, "came back on release 24.10", T, T.AddMinutes(-5), "24.10", Checks: 2);
        yield return new JobStatusChanged(JobStatus.Aborted, "1 of 1 failed", T);
        yield return new JobStageStarted(1, T);
        yield return JobState.Empty with
        {
            JobId = "j1", Spec = Spec, Status = JobStatus.Aborted, Reason = "1 of 1 failed", FinishedAt = T.AddHours(1), Order = ["r1"],
            Devices = ImmutableDictionary<string, JobDevice>.Empty.Add("r1", new JobDevice("r1", 0, 0, JobStatus.Failed, "c1", 1,
                "came back on release 24.10", T, T.AddMinutes(-5), "Europe/Paris", "192.168.1.23", "gw-1", "24.10", Checks: 2)),
            StageSizes = [1], Stage = 0,
        };
        yield return new CreateJob("j1", Spec);
        yield return new GetJob("j1");
        yield return new GetJobDevices("j1", JobStatus.Failed, 0, 10, 100);
        yield return new ControlJob("j1", "abort", "ops-key", JobSpec.RolloutKind);
        yield return new WakeJob("j1");
        yield return new JobFound(JobV, Replayed: true);
        yield return new JobNotFound("j1");
        yield return new JobConflict("the job has finished", JobV);
        yield return new JobDevicesPage([new JobDeviceView("r1", JobStatus.Failed, 0, "c1", 1, "came back on release 24.10", T, "24.10")], 100);
    }

    private FleetSerializer Serializer => (FleetSerializer)Sys.Serialization.FindSerializerForType(typeof(ProjectionStatus));

    /// <summary>An actor reference with a fixed path; its uid (random per run) is written as 0 in samples.</summary>
    private IActorRef Connection() => Sys.ActorOf(Props.Empty, "connection-1");

    /// <summary>An actor path's uid (random per run), written as 0 in the samples.</summary>
    private static readonly Regex Uid = new("(\"akka://[^\"#]*/(?:user|system|temp)/[^\"#]*)#-?[0-9]+\"", RegexOptions.Compiled);
    private static string Text(byte[] bytes) => Uid.Replace(System.Text.Encoding.UTF8.GetString(bytes), "$1#0\"");
    private static string Pretty(string json) => JsonNode.Parse(json)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    [Fact]
    public void Every_registered_type_has_a_canonical_instance_and_a_checked_in_sample()
    {
        var canonical = Canonical(Connection()).Select(o => Serializer.Manifest(o)).ToList();
        Assert.Equal(canonical.Count, canonical.Distinct().Count());
        Assert.Equal(FleetSerializer.Manifests.Keys.Order(), canonical.Order());
        if (Write) return;
        var files = System.IO.Directory.GetFiles(SamplesDir, "*.json").Select(f => Path.GetFileNameWithoutExtension(f)).Order();
        Assert.Equal(FleetSerializer.Manifests.Keys.Order(), files);
    }

    [Fact]
    public void Every_type_is_written_exactly_as_its_sample()
    {
        var wrong = new List<string>();
        foreach (var o in Canonical(Connection()))
        {
            var manifest = Serializer.Manifest(o);
            var file = Path.Combine(SamplesDir, manifest + ".json");
            var written = Text(Serializer.ToBinary(o));
            if (Write)
            {
                System.IO.Directory.CreateDirectory(SamplesDir);
                File.WriteAllText(file, Pretty(written));
                continue;
            }
            Assert.True(File.Exists(file), $"no sample {file} for {o.GetType().Name}");
            var expected = JsonNode.Parse(File.ReadAllText(file));
            if (!JsonNode.DeepEquals(expected, JsonNode.Parse(written)))
                wrong.Add($"{manifest} ({o.GetType().Name}):\n  expected {expected!.ToJsonString()}\n  written  {written}");
        }
        Assert.True(wrong.Count == 0, "written differently from the samples in tests/Fleet.Server.Tests/Samples:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void Every_sample_reads_back_to_a_value_written_the_same()
    {
        Connection(); // the path the samples name resolves
        foreach (var manifest in FleetSerializer.Manifests.Keys)
        {
            var file = Path.Combine(SamplesDir, manifest + ".json");
            if (Write || !File.Exists(file)) continue; // the test above names a missing sample
            var text = File.ReadAllText(file);
            var read = Serializer.FromBinary(System.Text.Encoding.UTF8.GetBytes(text), manifest);
            Assert.IsType(FleetSerializer.Manifests[manifest], read);
            var again = Text(Serializer.ToBinary(read));
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(text), JsonNode.Parse(again)), $"{manifest}: read and written again\n  sample {JsonNode.Parse(text)!.ToJsonString()}\n  again  {again}");
        }
    }

    /// <summary>
    /// Guards the samples themselves: a canonical instance with a field left null would pin nothing about that
    /// field (null is not written). Every property of our records (Fleet.Server types, nested ones too) is set in
    /// the canonical instance and present in what is written — so a field added to a persisted record must be
    /// set here, and lands in its sample.
    /// </summary>
    [Fact]
    public void Every_field_of_a_canonical_instance_is_set()
    {
        var missing = new List<string>();
        foreach (var o in Canonical(Connection()))
        {
            var json = JsonNode.Parse(Serializer.ToBinary(o));
            Check(o, json, Serializer.Manifest(o), missing);
        }
        Assert.True(missing.Count == 0, "fields not set in the canonical instance or not written:\n" + string.Join("\n", missing));
    }

    private static void Check(object value, JsonNode? json, string path, List<string> missing)
    {
        var type = value.GetType();
        if (type.Namespace?.StartsWith("Fleet.Server", StringComparison.Ordinal) != true || type.IsEnum) return;
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetIndexParameters().Length > 0 || p.GetCustomAttribute<JsonIgnoreAttribute>() is not null) continue;
            if (p.DeclaringType == typeof(object) || p.Name == "EqualityContract") continue;
            var name = p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? p.Name;
            var v = p.GetValue(value);
            var j = json is JsonObject obj ? obj[name] : null;
            if (v is null || j is null) { missing.Add($"{path}.{name}"); continue; }
            if (v is string || v is JsonElement) continue;
            if (v is IDictionary dict)
            {
                foreach (DictionaryEntry e in dict)
                    if (e.Value is not null) Check(e.Value, j[e.Key.ToString()!], $"{path}.{name}[{e.Key}]", missing);
            }
            else if (v is IEnumerable list)
            {
                var i = 0;
                foreach (var e in list)
                {
                    if (e is not null) Check(e, j is JsonArray a && i < a.Count ? a[i] : null, $"{path}.{name}[{i}]", missing);
                    i++;
                }
            }
            else Check(v, j, $"{path}.{name}", missing);
        }
    }

    /// <summary>
    /// Formats of earlier releases (<see cref="FleetSerializer.Legacy"/>): each has what that release wrote under
    /// Samples/legacy/&lt;manifest&gt;.json and what it must read as today (&lt;manifest&gt;.today.json, today's format).
    /// </summary>
    [Fact]
    public void Every_legacy_manifest_has_a_sample_that_reads_as_todays_format()
    {
        var dir = Path.Combine(SamplesDir, "legacy");
        foreach (var (manifest, (type, _)) in FleetSerializer.Legacy)
        {
            var old = Path.Combine(dir, manifest + ".json");
            Assert.True(File.Exists(old), $"no sample of the earlier format '{manifest}' ({type.Name}) in {dir}");
            var read = Serializer.FromBinary(File.ReadAllBytes(old), manifest);
            Assert.IsType(type, read);
            var today = Text(Serializer.ToBinary(read));
            var file = Path.Combine(dir, manifest + ".today.json");
            if (Write) { File.WriteAllText(file, Pretty(today)); continue; }
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(File.ReadAllText(file)), JsonNode.Parse(today)),
                $"{manifest} of the earlier release reads as\n  {today}\nnot as {file}");
        }
    }

    /// <summary>
    /// Types that gained fields without a new manifest: what they wrote before (Samples/legacy/&lt;manifest&gt;.&lt;change&gt;.json)
    /// still reads, as today's format with the new fields at their defaults (&lt;manifest&gt;.&lt;change&gt;.today.json).
    /// </summary>
    [Theory]
    [InlineData("ds2", "before-tags")] // DeviceState gained Tags and OperatorTags: a snapshot without them reads with none
    public void A_sample_written_before_its_type_gained_fields_reads_as_todays_format(string manifest, string change)
    {
        var dir = Path.Combine(SamplesDir, "legacy");
        var old = Path.Combine(dir, $"{manifest}.{change}.json");
        Assert.True(File.Exists(old), $"no sample {old}");
        Connection(); // the path a sample names resolves
        var read = Serializer.FromBinary(File.ReadAllBytes(old), manifest);
        Assert.IsType(FleetSerializer.Manifests[manifest], read);
        var today = Text(Serializer.ToBinary(read));
        var file = Path.Combine(dir, $"{manifest}.{change}.today.json");
        if (Write) { File.WriteAllText(file, Pretty(today)); return; }
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(File.ReadAllText(file)), JsonNode.Parse(today)),
            $"{manifest} written before '{change}' reads as\n  {today}\nnot as {file}");
    }
}

/// <summary>Where the repository is (the samples are read from the source tree, so that FLEET_WRITE_SAMPLES can write them).</summary>
internal static class Paths
{
    public static string Repo { get; } = Find();

    private static string Find()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Fleet.sln"))) return d.FullName;
        throw new InvalidOperationException($"no Fleet.sln above {AppContext.BaseDirectory}");
    }
}
