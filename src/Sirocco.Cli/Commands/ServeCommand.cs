// `sirocco serve`: will start the HTTP server. The server lands with issue 4; until then it says so plainly.

using System.CommandLine;

namespace Sirocco.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "GGUF file or Hugging Face-style model directory" };
        var host = new Option<string>("--host") { Description = "Address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to listen on", DefaultValueFactory = _ => 8787 };
        var command = new Command("serve", "Start the Workers AI-compatible HTTP server (not yet available)") { model, host, port };
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("sirocco serve: the HTTP server is not implemented yet in this build. " +
                "Available now: `sirocco tokenize`, `sirocco synth`, `sirocco inspect`. See README.md.");
            return 2;
        });
        return command;
    }
}
