using Fleet.Server.Hosting;

var app = await FleetNode.CreateAsync(args);
await app.RunAsync();
