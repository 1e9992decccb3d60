// Entry point of the `sirocco` command: builds the command tree and runs it. Each subcommand lives in Commands/
// as a static class with a Create() method; CliErrors turns bad input into one line on stderr and exit code 1.

using System.CommandLine;
using Sirocco.Cli.Commands;

var root = new RootCommand("Sirocco: a self-hosted Workers AI-compatible server for Mistral-7B-Instruct-v0.2")
{
    ServeCommand.Create(),
    PullCommand.Create(),
    ModelsCommand.Create(),
    RemoveCommand.Create(),
    SynthCommand.Create(),
    SynthLoraCommand.Create(),
    InspectCommand.Create(),
    TokenizeCommand.Create(),
    RunCommand.Create(),
    LogitsCommand.Create(),
    BenchCommand.Create(),
    LoraCommand.Create(),
};
// No response files: model names start with '@' (`--model @cf/mistral/…`) and must reach the commands as typed.
return await root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null }).InvokeAsync();
