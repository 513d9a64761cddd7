Console.WriteLine("Fleet.Edge");
