using System.CommandLine;

namespace Fleet.Bench;

/// <summary>The bench tools' command-line options (linked into each tool): every option may be repeated (the last one counts) and needs a value.</summary>
public static class CliOptions
{
    /// <param name="parse">Reads a value: (true, value), or (false, _) for <paramref name="check"/>'s message.</param>
    /// <param name="check">What a value must be, for the error ("an integer ≥ 1").</param>
    public static Option<T> Valued<T>(string name, string description, T defaultValue, Func<string, (bool Ok, T Value)> parse, string check)
    {
        var option = new Option<T>(name)
        {
            Description = description,
            Arity = ArgumentArity.ZeroOrMore,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                var v = r.Tokens.Count == 0 ? null : r.Tokens[^1].Value;
                if (v is not null && parse(v) is (true, var value)) return value;
                r.AddError($"{name} '{v}' is not {check}");
                return defaultValue;
            },
        };
        option.Validators.Add(r =>
        {
            if (!r.Implicit && r.Tokens.Count == 0) r.AddError($"{name} needs a value");
        });
        return option;
    }
}
