// API tokens and the accounts they belong to: read from a file (`--tokens-file`) or the SIROCCO_API_TOKENS environment
// variable, and checked on every API request by ApiAuthentication. Tokens are compared as SHA-256 digests in fixed
// time, so neither a timing difference nor a memory dump of the lookup table reveals them.

using System.Security.Cryptography;
using System.Text;

namespace Sirocco.Server.Auth;

/// <summary>One API token and the account id it may act for.</summary>
public sealed record ApiToken(string AccountId, string Token)
{
    public override string ToString() => $"ApiToken {{ AccountId = {AccountId}, Token = *** }}";
}

/// <summary>The configured tokens; <see cref="IsEnabled"/> is false when there are none.</summary>
public sealed class ApiTokens
{
    /// <summary>Environment variable holding tokens in the file format, entries separated by newlines, commas or
    /// semicolons.</summary>
    public const string EnvironmentVariable = "SIROCCO_API_TOKENS";

    private readonly (byte[] Digest, string AccountId)[] _entries;

    public ApiTokens(IReadOnlyList<ApiToken> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        _entries = [.. tokens.Select(t => (Digest(t.Token), t.AccountId))];
    }

    /// <summary>Whether any token is configured (and so every API route requires one).</summary>
    public bool IsEnabled => _entries.Length > 0;

    /// <summary>The account <paramref name="token"/> belongs to, or null for an unknown token.</summary>
    public string? AccountOf(string token)
    {
        byte[] digest = Digest(token);
        string? account = null;
        foreach (var (expected, accountId) in _entries)
        {
            // Visit every entry whatever matches, so the time taken does not depend on where the token is.
            if (CryptographicOperations.FixedTimeEquals(expected, digest))
            {
                account ??= accountId;
            }
        }
        return account;
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    /// <summary>Parses the token file format: one <c>ACCOUNT_ID TOKEN</c> pair per line (spaces or tabs between),
    /// blank lines and lines starting with <c>#</c> ignored.</summary>
    /// <param name="text">The text to parse.</param>
    /// <param name="source">Where it came from, for error messages.</param>
    /// <param name="extraSeparators">Also split entries on commas and semicolons (the environment variable form).</param>
    /// <exception cref="FormatException">A line that is not exactly two fields, or a token shorter than 16 characters
    /// (the message names the line, never the token).</exception>
    public static IReadOnlyList<ApiToken> Parse(string text, string source, bool extraSeparators = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<ApiToken>();
        char[] separators = extraSeparators ? ['\n', ',', ';'] : ['\n'];
        string[] lines = text.Split(separators);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            string[] fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            string where = extraSeparators ? $"{source}: entry {i + 1}" : $"{source}: line {i + 1}";
            if (fields.Length != 2)
            {
                throw new FormatException($"{where} has {fields.Length} fields; expected ACCOUNT_ID TOKEN");
            }
            if (fields[1].Length < 16)
            {
                throw new FormatException($"{where}: the token is {fields[1].Length} characters; use at least 16 (e.g. `openssl rand -hex 24`)");
            }
            if (fields[0].Any(char.IsControl) || fields[0].Contains('/', StringComparison.Ordinal))
            {
                throw new FormatException($"{where}: the account id contains a control character or '/'");
            }
            tokens.Add(new ApiToken(fields[0], fields[1]));
        }
        return tokens;
    }

    /// <summary>Reads tokens from <paramref name="path"/> (if given) and the <see cref="EnvironmentVariable"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">Either source is malformed.</exception>
    public static IReadOnlyList<ApiToken> Load(string? path, string? environmentValue)
    {
        var tokens = new List<ApiToken>();
        if (path is not null)
        {
            if (!File.Exists(path))
            {
                throw new FileNotFoundException($"{path}: token file not found", path);
            }
            tokens.AddRange(Parse(File.ReadAllText(path), path));
        }
        if (!string.IsNullOrWhiteSpace(environmentValue))
        {
            tokens.AddRange(Parse(environmentValue, EnvironmentVariable, extraSeparators: true));
        }
        return tokens;
    }
}
