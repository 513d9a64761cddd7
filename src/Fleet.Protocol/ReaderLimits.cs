namespace Fleet.Protocol;

/// <summary>
/// What the real client's reader can take (EXTENSIONS.md "How it reads"; src/ws_thread.c ws_read_cb, the same
/// from the seed era to 9.07): everything it has read in one go goes into a 1,024-byte buffer, and when that
/// would be full it stops reading the connection for good. Only the first frame of a read is handled.
/// </summary>
public static class ReaderLimits
{
    /// <summary>The largest frame, header included, that a device can read.</summary>
    public const int MaxFrameBytes = 1023;

    /// <summary>The largest payload of a frame from the controller: frames of 126 bytes or more have a 4-byte header.</summary>
    public const int MaxPayloadBytes = MaxFrameBytes - 4;

    /// <summary>
    /// The longest firmware URL: 9.07 builds <c>sysupgrade -F '&lt;url&gt;' &amp;</c> in a 512-byte buffer and, when
    /// it does not fit, does nothing — after answering success (api_handlers_sys.c). 2025 firmware cuts the
    /// URL short instead.
    /// </summary>
    public const int MaxFirmwareUrlLength = 493;
}
