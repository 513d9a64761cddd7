namespace Fleet.Edge.Tests; public class PlaceholderTests { [Xunit.Fact] public void Ok() => Xunit.Assert.True(true); }
