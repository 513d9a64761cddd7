using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fleet.Edge.Portal;

/// <summary>
/// The portal state as JSON in state_directory/clients.json. Written to a temporary file and
/// renamed, so a power cut leaves either the old or the new table, never half of one.
/// </summary>
public sealed class StateStore(string directory)
{
    public string FilePath { get; } = Path.Combine(directory, "clients.json");

    public PortalState? Load()
    {
        if (!File.Exists(FilePath)) return null;
        var json = File.ReadAllBytes(FilePath);
        return JsonSerializer.Deserialize(json, StateJsonContext.Default.PortalState);
    }

    public void Save(PortalState state)
    {
        Directory.CreateDirectory(directory);
        var tmp = FilePath + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(state, StateJsonContext.Default.PortalState));
        File.Move(tmp, FilePath, overwrite: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(PortalState))]
internal sealed partial class StateJsonContext : JsonSerializerContext;
