namespace Fleet.Testing;

/// <summary>
/// The admin API keys every test node is started with (one per role), as configuration arguments or
/// environment variables. Test clients send <see cref="Admin"/> unless a test is about roles.
/// </summary>
public static class TestKeys
{
    public const string Admin = "test-admin-key-0000000000000001";
    public const string Operator = "test-operator-key-000000000002";
    public const string Viewer = "test-viewer-key-0000000000000003";

    private static readonly (string Name, string Key, string Role)[] All =
    [
        ("test-admin", Admin, "admin"), ("test-operator", Operator, "operator"), ("test-viewer", Viewer, "viewer"),
    ];

    /// <summary>--Fleet:Security:ApiKeys:N:… arguments.</summary>
    public static IEnumerable<string> Arguments() => All.SelectMany((k, i) => new[]
    {
        $"--Fleet:Security:ApiKeys:{i}:Name", k.Name, $"--Fleet:Security:ApiKeys:{i}:Key", k.Key, $"--Fleet:Security:ApiKeys:{i}:Role", k.Role,
    });

    /// <summary>Fleet__Security__ApiKeys__N__… environment variables.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Environment() => All.SelectMany((k, i) => new[]
    {
        KeyValuePair.Create($"Fleet__Security__ApiKeys__{i}__Name", k.Name),
        KeyValuePair.Create($"Fleet__Security__ApiKeys__{i}__Key", k.Key),
        KeyValuePair.Create($"Fleet__Security__ApiKeys__{i}__Role", k.Role),
    });

    public static HttpClient Authorize(this HttpClient http, string key = Admin)
    {
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        return http;
    }
}
