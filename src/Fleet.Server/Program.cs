using Fleet.Server.Admin;
using Fleet.Server.Connections;
using Fleet.Server.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddFleetNode();

var app = builder.Build();
await app.InitializeFleetStoreAsync();
app.UseFleetNode();
app.Run();

public partial class Program;
