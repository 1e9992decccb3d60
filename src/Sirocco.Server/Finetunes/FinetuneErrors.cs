// The errors of the finetune store and API, each with its Cloudflare code and HTTP status (table: docs/API.md
// "Finetunes"). One place, so the store, the endpoints and the CLI word them the same way.

using Sirocco.Server.Protocol;

namespace Sirocco.Server.Finetunes;

internal static class FinetuneErrors
{
    /// <summary>404/3042: no finetune of that id or name that this account owns (or, for reads, may see). A private
    /// finetune of another account gets exactly this answer, so its existence does not leak.</summary>
    public static ApiException NotFound(string idOrName) =>
        new(ErrorCodes.InvalidModelId, 404, $"Finetune {Show(idOrName)} not found: no finetune with that id or name in this account");

    /// <summary>403/3041: a public finetune of another owner; readable, but only its owner changes or deletes it.</summary>
    public static ApiException NotOwner(Finetune finetune) =>
        new(ErrorCodes.AccountNotAllowed, 403,
            $"Finetune {Show(finetune.Name)} ({finetune.Id}) is a public finetune of another account; only its owner can change or delete it");

    /// <summary>400/5006: the finetune already has that file; files are immutable (Workers AI: create a new finetune).</summary>
    public static ApiException FileExists(Finetune finetune, string fileName) =>
        ApiException.BadInput(
            $"Bad input: finetune {Show(finetune.Name)} already has {fileName} ({finetune.Files[fileName].SizeBytes} bytes); " +
            "uploaded files cannot be replaced: create a new finetune (or delete this one) to change it", "/file_name");

    /// <summary>400/5006: file_name is not one of the two adapter files.</summary>
    public static ApiException BadFileName(string fileName) =>
        ApiException.BadInput(
            $"Bad input: /file_name: {Show(fileName)} is not an adapter file; use {Finetune.ConfigFileName} or {Finetune.WeightsFileName}", "/file_name");

    /// <summary>413/3006: an uploaded file over the size limit (found while streaming, before it is all read).</summary>
    public static ApiException FileTooLarge(long limit) =>
        new(ErrorCodes.RequestTooLarge, 413,
            $"Request is too large: the uploaded file is larger than {limit} bytes ({limit / (1024.0 * 1024.0):0.#} MiB), the largest adapter file this server accepts");

    /// <summary>400/5006: an uploaded file with no bytes.</summary>
    public static ApiException EmptyFile() => ApiException.BadInput("Bad input: /file: the uploaded file is empty", "/file");

    /// <summary>400/5006: the account already owns the most finetunes allowed.</summary>
    public static ApiException TooMany(int limit) =>
        ApiException.BadInput($"Bad input: this account already has {limit} finetunes, the most this server allows; delete one first");

    /// <summary>400/5006: the account already has a finetune of that name.</summary>
    public static ApiException NameTaken(string name) =>
        ApiException.BadInput($"Bad input: /name: this account already has a finetune named {Show(name)}; names are unique per account", "/name");

    /// <summary>400/5006: a public finetune of that name exists (public names are unique, so `lora: name` is unambiguous).</summary>
    public static ApiException PublicNameTaken(string name) =>
        ApiException.BadInput($"Bad input: /name: a public finetune named {Show(name)} already exists; public finetune names are unique", "/name");

    /// <summary>400/5006 at run time: `lora` names nothing this account can use.</summary>
    public static ApiException UnknownForRun(string idOrName) =>
        ApiException.BadInput($"Bad input: /lora: no finetune with id or name {Show(idOrName)} in this account or among the public finetunes", "/lora");

    /// <summary>400/3039 at run time: the finetune lacks a file (Workers AI's message, then which file).</summary>
    public static ApiException MissingFiles(Finetune finetune, IEnumerable<string> missing) =>
        new(ErrorCodes.FinetuneMissingFiles, 400,
            $"Finetune is missing required files (adapter_model.safetensors and adapter_config.json): {Show(finetune.Name)} has no {string.Join(" and no ", missing)}");

    /// <summary>A user-given value for a message: quoted, control characters escaped, cut to 64 characters.</summary>
    public static string Show(string value)
    {
        var text = new System.Text.StringBuilder(value.Length + 2);
        text.Append('"');
        foreach (char c in value.Length <= 64 ? value : value[..64])
        {
            if (char.IsControl(c))
            {
                text.Append($"\\u{(int)c:x4}");
            }
            else
            {
                text.Append(c);
            }
        }
        text.Append('"');
        if (value.Length > 64)
        {
            text.Append($"… ({value.Length} characters)");
        }
        return text.ToString();
    }
}
