using System.Text.Json;

namespace Fleet.Server.Admin;

/// <summary>Reads an admin request's body, capped before it is buffered.</summary>
public static class JsonBody
{
    public const int MaxBytes = 64 * 1024;

    /// <summary>The body's bytes, or why there are none to use.</summary>
    public static async Task<(byte[]? Body, string? Problem)> ReadAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBytes) return (null, $"the body is larger than {MaxBytes} bytes");
        using var ms = new MemoryStream();
        var buffer = new byte[8192];
        int n;
        while ((n = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0)
        {
            if (ms.Length + n > MaxBytes) return (null, $"the body is larger than {MaxBytes} bytes");
            ms.Write(buffer, 0, n);
        }
        return ms.Length == 0 ? (null, "the body is empty; send a JSON object") : (ms.ToArray(), null);
    }

    /// <summary>The body as a JSON object, or why it is not one.</summary>
    public static async Task<(JsonElement Body, string? Problem)> ReadObjectAsync(HttpRequest request)
    {
        var (bytes, problem) = await ReadAsync(request);
        if (problem is not null) return (default, problem);
        try
        {
            var root = JsonElement.Parse(bytes);
            return root.ValueKind == JsonValueKind.Object ? (root, null) : (default, "the body must be a JSON object");
        }
        catch (JsonException ex)
        {
            return (default, $"the body is not valid JSON (stops at line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1})");
        }
    }
}
