namespace Fleet.Protocol;

/// <summary>Which dialect a device speaks, decided from its first frame (never by configuration).</summary>
public static class DeviceDialects
{
    /// <summary>
    /// "op" at the top level: the current firmware's dialect (a new <see cref="OpDialect"/>, which keeps
    /// per connection the integer req_ids it hands out); "type": the seed/2025 dialect; neither: null
    /// (the frame is refused and the next one decides).
    /// </summary>
    public static IDeviceDialect? Detect(ReadOnlySpan<byte> firstFrame)
    {
        var envelope = ProtocolCodec.ReadEnvelope(firstFrame);
        if (envelope.Error is not null) return null;
        if (envelope.Op is not null) return new OpDialect();
        return envelope.Type is not null ? TypeDialect.Seed : null;
    }
}
