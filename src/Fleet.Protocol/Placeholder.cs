namespace Fleet.Protocol; internal static class Placeholder {}
