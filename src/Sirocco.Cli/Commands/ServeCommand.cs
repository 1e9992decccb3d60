// `sirocco serve [--model REF]`: resolves the model (the default alias when none is given, downloaded into the model
// store on first use), loads it and runs the Workers AI- and OpenAI-compatible HTTP server until
// Ctrl+C or SIGTERM (which finish or cancel the requests in flight). Options map onto ServerOptions one to one.

using System.CommandLine;
using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Sirocco.Cli.Models;
using Sirocco.Engine.Model;
using Sirocco.Engine.Tokenization;
using Sirocco.Server;
using Sirocco.Server.Auth;
using Sirocco.Server.Finetunes;
using Sirocco.Server.Hosting;

namespace Sirocco.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var model = new ModelArguments(optional: true);
        var defaults = new ServerOptions();
        var host = new Option<string>("--host") { Description = "Address to listen on (an IP address or localhost)", DefaultValueFactory = _ => defaults.Host };
        var port = new Option<int>("--port", "-p") { Description = "Port to listen on", DefaultValueFactory = _ => defaults.Port };
        var maxActive = new Option<int>("--max-active") { Description = "Requests generating at once (continuous batching)", DefaultValueFactory = _ => defaults.MaxActiveSequences };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests that may wait; beyond that, 429 with Retry-After", DefaultValueFactory = _ => defaults.MaxQueuedRequests };
        var context = new Option<int?>("--context") { Description = "Context window of @cf/mistral/mistral-7b-instruct-v0.2-lora in tokens (default: the model's)" };
        var kvCache = new Option<int?>("--kv-cache-mib") { Description = "KV cache budget shared by running requests, MiB (default: one full context window)" };
        var tokensFile = new Option<string?>("--tokens-file") { Description = $"File of `ACCOUNT_ID TOKEN` lines; with it (or {ApiTokens.EnvironmentVariable}) every API call needs a Bearer token" };
        var allowOpen = new Option<bool>("--allow-unauthenticated") { Description = "Listen on a non-loopback address without tokens" };
        var padding = new Option<int>("--sse-padding") { Description = "Longest random `p` padding on streamed events (0: none)", DefaultValueFactory = _ => defaults.SsePaddingMaxLength };
        var dataDir = new Option<string?>("--data-dir") { Description = $"Where finetunes (LoRA adapters) are stored (default: {FinetuneStore.DataDirectoryVariable}, or sirocco under the user's local data folder)" };
        var maxRank = new Option<int>("--max-lora-rank") { Description = "Largest LoRA rank an adapter may have (Workers AI: 8)", DefaultValueFactory = _ => defaults.MaxLoraRank };
        var loraCache = new Option<int>("--lora-cache-mib") { Description = "Memory for loaded LoRA adapters, MiB (least recently used dropped beyond)", DefaultValueFactory = _ => (int)(defaults.LoraCacheBytes >> 20) };
        var grace = new Option<double>("--shutdown-grace") { Description = "Seconds running requests may finish after Ctrl+C or SIGTERM", DefaultValueFactory = _ => defaults.ShutdownGrace.TotalSeconds };
        var command = new Command("serve", "Start the Workers AI- and OpenAI-compatible HTTP server")
        {
            host, port, maxActive, maxQueue, context, kvCache, tokensFile, allowOpen, padding, grace, dataDir, maxRank, loraCache,
        };
        model.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync("serve", async () =>
        {
            double graceSeconds = parse.GetValue(grace);
            if (!(graceSeconds >= 0 && graceSeconds <= 3600))
            {
                throw new CliUsageException($"--shutdown-grace {graceSeconds}: use 0 … 3600 seconds");
            }
            IReadOnlyList<ApiToken> tokens;
            try
            {
                tokens = ApiTokens.Load(parse.GetValue(tokensFile), Environment.GetEnvironmentVariable(ApiTokens.EnvironmentVariable));
            }
            catch (FormatException e)
            {
                throw new CliUsageException(e.Message);
            }
            var options = new ServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                MaxActiveSequences = parse.GetValue(maxActive),
                MaxQueuedRequests = parse.GetValue(maxQueue),
                LoraContextWindow = parse.GetValue(context),
                KvCacheBytes = parse.GetValue(kvCache) is int mib ? (long)mib << 20 : null,
                Tokens = tokens,
                AllowUnauthenticatedRemote = parse.GetValue(allowOpen),
                SsePaddingMaxLength = parse.GetValue(padding),
                ShutdownGrace = TimeSpan.FromSeconds(graceSeconds),
                DataDirectory = parse.GetValue(dataDir),
                MaxLoraRank = parse.GetValue(maxRank),
                LoraCacheBytes = (long)parse.GetValue(loraCache) << 20,
            };
            IReadOnlyList<string> problems = options.Validate();
            if (problems.Count > 0)
            {
                throw new CliUsageException(string.Join("; ", problems));
            }
            if (options.Port == 0)
            {
                throw new CliUsageException("--port 0: give a port to listen on");
            }
            FinetuneStore.PrepareDirectory(options.DataDirectory ?? FinetuneStore.DefaultDataDirectory()); // fail before the load
            KvCacheType cacheType = model.CacheType(parse);
            ResolvedModel resolved = await model.ResolveAsync(parse, cancellationToken);
            var clock = Stopwatch.StartNew();
            Tokenizer tokenizer = TokenizerLoader.Load(resolved.Path);
            LlamaModel llama = model.Load(parse, resolved.Path);
            Console.Error.WriteLine($"sirocco serve: loaded {resolved.Path} ({llama.Weights.Description}) in {clock.Elapsed.TotalSeconds:0.0} s");
            using var modelHost = new ModelHost(llama, tokenizer, options, resolved.Name, cacheType);
            WebApplication app;
            try
            {
                app = SiroccoServer.Build(options, modelHost);
            }
            catch (ArgumentException e)
            {
                throw new CliUsageException(e.Message);
            }
            await using (app)
            {
                await app.StartAsync(cancellationToken);
                await app.WaitForShutdownAsync(cancellationToken);
            }
            return 0;
        }));
        return command;
    }
}
