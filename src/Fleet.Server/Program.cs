using System.Data.Common;
using Fleet.Server.Hosting;

WebApplication app;
try
{
    app = await FleetNode.CreateAsync(args);
}
catch (Exception e) when (e is DbException or InvalidOperationException or FileNotFoundException)
{
    // Bad configuration or a database that stayed unreachable through the startup retries: one clear
    // line and a non-zero exit for the supervisor, not an unhandled-exception abort.
    Console.Error.WriteLine($"fleet: cannot start: {e.GetType().Name}: {e.Message}");
    return 1;
}
await app.RunAsync();
return 0;
