// Figure-printing benchmarks. `dotnet run -c Release --project bench/Sirocco.Benchmarks -- <name>` runs one;
// with no name it lists them. Each benchmark prints a table meant to be pasted into docs/PERFORMANCE.md.

var benchmarks = new Dictionary<string, (string Description, Func<string[], int> Run)>(StringComparer.Ordinal)
{
    ["tokenizer"] = ("Tokenizer encode time versus input size, 1 KB to 1 MB", Sirocco.Benchmarks.TokenizerScaling.Run),
    ["quantdot"] = ("Q8_0 / Q4_0 4096x4096 matvec, 1 thread: reference vs SIMD dot, GB/s", Sirocco.Benchmarks.QuantDotThroughput.Run),
    ["matmul"] = ("MatMul per quantized type, 1 thread: decode GB/s, prefill (64 tokens) GFLOP/s [seconds] [types]", Sirocco.Benchmarks.MatMulBench.Run),
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var chosen))
{
    Console.Error.WriteLine("usage: Sirocco.Benchmarks <name> [options]");
    foreach (var (name, (description, _)) in benchmarks)
    {
        Console.Error.WriteLine($"  {name,-12} {description}");
    }
    return args.Length == 0 ? 0 : 2;
}
return chosen.Run(args[1..]);
