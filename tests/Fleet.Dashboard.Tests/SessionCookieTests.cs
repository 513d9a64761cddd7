using System.Net;
using System.Net.Http.Headers;

namespace Fleet.Dashboard.Tests;

/// <summary>The dashboard's server side without a browser: anonymous static files, the session cookie and its CSRF rule.</summary>
[Collection(DashboardCollection.Name)]
public sealed class SessionCookieTests(DashboardFixture fleet)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private HttpClient Anonymous() => new() { BaseAddress = fleet.BaseAddress };

    [Fact]
    public async Task The_dashboard_files_need_no_key_while_the_API_still_does()
    {
        using var http = Anonymous();
        var index = await http.GetAsync("/", Ct);
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        Assert.Contains("script-src 'self'", index.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/app.js", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/devices", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/session", Ct)).StatusCode);
    }

    [Fact]
    public async Task A_session_cookie_authenticates_as_its_key_and_writes_need_the_dashboard_header()
    {
        using var http = Anonymous();
        using var login = new HttpRequestMessage(HttpMethod.Post, "/api/v1/session");
        login.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestKeys.Operator);
        var answer = await http.SendAsync(login, Ct);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("""{"key_name":"test-operator","role":"operator"}""", await answer.Content.ReadAsStringAsync(Ct));
        var setCookie = answer.Headers.GetValues("Set-Cookie").Single();
        Assert.StartsWith($"fleet_session={TestKeys.Operator};", setCookie);
        Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", setCookie, StringComparison.OrdinalIgnoreCase);
        var cookie = setCookie.Split(';')[0];

        async Task<HttpResponseMessage> Send(HttpMethod method, string path, bool dashboardHeader, string? json = null)
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Add("Cookie", cookie);
            if (dashboardHeader) request.Headers.Add("X-Fleet-Dashboard", "1");
            if (json is not null) request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
            return await http.SendAsync(request, Ct);
        }

        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "/api/v1/devices?limit=1", false)).StatusCode);
        var session = await Send(HttpMethod.Get, "/api/v1/session", false);
        Assert.Equal("""{"key_name":"test-operator","role":"operator"}""", await session.Content.ReadAsStringAsync(Ct));
        // The operator's role, no more: the key list is admin-only.
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Get, "/api/v1/keys", false)).StatusCode);

        const string path = $"/api/v1/devices/{DashboardFixture.Parked}/gateways/gw-1/auth-mode";
        var crossSite = await Send(HttpMethod.Put, path, false, """{"auth_mode":1}""");
        Assert.Equal(HttpStatusCode.Forbidden, crossSite.StatusCode);
        Assert.Contains("X-Fleet-Dashboard: 1", await crossSite.Content.ReadAsStringAsync(Ct));
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, path, true, """{"auth_mode":1}""")).StatusCode);

        var logout = await Send(HttpMethod.Delete, "/api/v1/session", true);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        Assert.StartsWith("fleet_session=;", logout.Headers.GetValues("Set-Cookie").Single());
    }

    [Fact]
    public async Task A_login_with_an_unknown_key_is_401_and_sets_no_cookie()
    {
        using var http = Anonymous();
        using var login = new HttpRequestMessage(HttpMethod.Post, "/api/v1/session");
        login.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "no-such-key");
        var answer = await http.SendAsync(login, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.False(answer.Headers.Contains("Set-Cookie"));
    }
}
