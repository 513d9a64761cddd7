namespace Fleet.Protocol;

/// <summary>Which top-level key names a frame.</summary>
public enum NameKey { Type, Op, TypeOrOp }

/// <summary>
/// What one cheap pass over a frame's top level found: its names ("type", "op"), its "req_id", whether it
/// carries "response" (an answer envelope of the op dialect), or why it is not a JSON object.
/// </summary>
public readonly record struct Envelope(
    string? Type = null, string? Op = null, ReqId? ReqId = null, bool HasResponse = false,
    bool TypeWrongKind = false, bool OpWrongKind = false, DecodeError? Error = null)
{
    /// <summary>The frame's name under <paramref name="key"/>, or the error that it has none.</summary>
    public (string? Name, DecodeError? Error) Name(NameKey key)
    {
        var (name, wrongKind, field) = key switch
        {
            NameKey.Op => (Op, OpWrongKind, "op"),
            NameKey.TypeOrOp when Type is null && !TypeWrongKind => (Op, OpWrongKind, "op"),
            _ => (Type, TypeWrongKind, "type"),
        };
        if (wrongKind) return (null, new DecodeError(DecodeErrorKind.MissingType, $"field '{field}' must be a string", null, field, ReqId));
        if (string.IsNullOrEmpty(name)) return (null, new DecodeError(DecodeErrorKind.MissingType, $"frame has no '{field}' field", null, field, ReqId));
        return (name, null);
    }
}
