// The codec hot path: decode a heartbeat as the node does, encode the reply. Time and allocations.
//   dotnet run -c Release --project bench/Codec -- --filter '*'            (full run)
//   dotnet run -c Release --project bench/Codec -- --filter '*' --job short (quicker)
using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Fleet.Protocol;

BenchmarkSwitcher.FromAssembly(typeof(CodecBenchmarks).Assembly).Run(args);

[MemoryDiagnoser]
public class CodecBenchmarks
{
    // A seed-era heartbeat with one gateway, and an upstream one with three gateways and system figures.
    private static readonly byte[] SeedHeartbeat = Encoding.UTF8.GetBytes("""
        {"type":"heartbeat","device_id":"sim-000042","device_info":{"ap_device_id":"sim-000042","ap_mac_address":"02:00:00:00:00:2a","ap_longitude":"116.042","ap_latitude":"39.042","location_id":"loc-42"},"gateway":[{"gw_id":"gw-1","gw_channel":"ch1","gw_address_v4":"192.168.1.1","auth_mode":1,"gw_interface":"br-lan"}]}
        """);
    private static readonly byte[] UpstreamHeartbeat = Encoding.UTF8.GetBytes("""
        {"type":"heartbeat","device_id":"sim-000042","device_info":{"ap_device_id":"sim-000042","ap_mac_address":"02:00:00:00:00:2a","ap_longitude":"116.042","ap_latitude":"39.042","location_id":"loc-42"},"gateway":[{"gw_id":"gw-1","gw_channel":"ch1","gw_address_v4":"192.168.1.1","auth_mode":1,"gw_interface":"br-lan"},{"gw_id":"gw-2","gw_channel":"ch2","gw_address_v4":"192.168.2.1","auth_mode":1,"gw_interface":"br-lan1"},{"gw_id":"gw-3","gw_channel":"ch3","gw_address_v4":"192.168.3.1","auth_mode":1,"gw_interface":"br-lan2"}],"mode":0,"sys_uptime":3600,"sys_memfree":61440,"sys_load":0.08,"nf_conntrack_count":120,"cpu_usage":3.5,"cpu_temp":48,"wifidog_uptime":3600,"online_clients":3,"offline_clients":0}
        """);
    private static readonly ReportReply Reply = new() { Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 1 }] };
    private static readonly ReportReply Reply3 = new()
    {
        Gateway = [new GatewayAuthMode { GwId = "gw-1", AuthMode = 1 }, new GatewayAuthMode { GwId = "gw-2", AuthMode = 0 }, new GatewayAuthMode { GwId = "gw-3", AuthMode = 1 }],
    };
    private readonly ArrayBufferWriter<byte> _writer = new(512);

    [Benchmark(Baseline = true)]
    public IDeviceFrame? DecodeSeedHeartbeat() => ProtocolCodec.DecodeFromDevice(SeedHeartbeat).Message;

    [Benchmark]
    public IDeviceFrame? DecodeUpstreamHeartbeat3Gw() => ProtocolCodec.DecodeFromDevice(UpstreamHeartbeat).Message;

    [Benchmark]
    public byte[] EncodeReplyToArray() => ProtocolCodec.Encode(Reply);

    [Benchmark]
    public int EncodeReplyToPooledWriter()
    {
        _writer.ResetWrittenCount();
        ProtocolCodec.Encode(Reply, _writer);
        return _writer.WrittenCount;
    }

    [Benchmark]
    public byte[] EncodeReply3GwToArray() => ProtocolCodec.Encode(Reply3);

    /// <summary>The whole per-heartbeat codec cost of a node: decode, build the reply, encode it.</summary>
    [Benchmark]
    public int DecodeAndReply()
    {
        var hb = (HeartbeatMessage)ProtocolCodec.DecodeFromDevice(SeedHeartbeat).Message!;
        var reply = new ReportReply { Gateway = hb.Gateway!.Select(g => new GatewayAuthMode { GwId = g.GwId, AuthMode = g.AuthMode }).ToArray() };
        _writer.ResetWrittenCount();
        ProtocolCodec.Encode(reply, _writer);
        return _writer.WrittenCount;
    }
}
