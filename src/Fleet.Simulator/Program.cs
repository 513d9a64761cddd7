Console.WriteLine("Fleet.Simulator");
