using Fleet.Edge.Hosting;

// Fleet.Edge --config /etc/fleet-edge/edge.json [--check]: options and exit codes in EdgeCommandLine.
return await EdgeCommandLine.RunAsync(args);
