namespace Fleet.Simulator.Tests; public class PlaceholderTests { [Xunit.Fact] public void Ok() => Xunit.Assert.True(true); }
