namespace Fleet.Protocol;

public enum DecodeErrorKind
{
    /// <summary>The frame is not well-formed JSON (or not UTF-8).</summary>
    NotJson,
    /// <summary>Well-formed JSON, but not an object.</summary>
    NotObject,
    /// <summary>No "type" field (or it is not a string).</summary>
    MissingType,
    /// <summary>A "type" this direction of the protocol does not have.</summary>
    UnknownType,
    /// <summary>A required field is absent or null.</summary>
    MissingField,
    /// <summary>A field has the wrong JSON kind (a string where a number belongs, …).</summary>
    WrongKind,
}

/// <summary>
/// Why a frame could not be decoded. Type and ReqId are filled when they could be read; Position (a
/// 1-based byte offset) where the JSON stops being valid.
/// </summary>
public sealed record DecodeError(DecodeErrorKind Kind, string Message, string? Type = null, string? Field = null, ReqId? ReqId = null,
    long? Position = null)
{
    public override string ToString() => Message;
}

/// <summary>Either a decoded message or the precise reason it is not one.</summary>
public readonly record struct Decoded<T>(T? Message, DecodeError? Error) where T : class, IWireMessage
{
    public bool IsOk => Message is not null;
}
