// The Cloudflare error codes the server answers with (errors[].code of the v4 envelope). Table and sources:
// docs/API.md "Errors" and shared/spec/workers-ai-api-research.md §1.3.

namespace Sirocco.Server.Protocol;

/// <summary>Cloudflare / Workers AI error codes.</summary>
public static class ErrorCodes
{
    /// <summary>"Bad input": the body fails validation (not JSON, not an object, schema violation, unsupported field).
    /// HTTP 400.</summary>
    public const int BadInput = 5006;

    /// <summary>"No such model": the model in the path is not in the catalog. HTTP 400.</summary>
    public const int NoSuchModel = 5007;

    /// <summary>"Invalid data": bad base64 input. HTTP 400.</summary>
    public const int InvalidData = 5004;

    /// <summary>"LoRa unsupported": a <c>lora</c> for a model that takes none. HTTP 405.</summary>
    public const int LoraUnsupported = 5005;

    /// <summary>Prompt tokens plus <c>max_tokens</c> exceed the model's context window (or the prompt alone exceeds its
    /// input limit). HTTP 400 (Cloudflare's own status is unconfirmed; third parties map it to 400).</summary>
    public const int ContextWindowExceeded = 5021;

    /// <summary>"Incomplete request": missing headers or body. HTTP 400.</summary>
    public const int IncompleteRequest = 3003;

    /// <summary>"Request too large". HTTP 413.</summary>
    public const int RequestTooLarge = 3006;

    /// <summary>"Timeout". HTTP 408.</summary>
    public const int Timeout = 3007;

    /// <summary>"Aborted". HTTP 408.</summary>
    public const int Aborted = 3008;

    /// <summary>"Invalid or incomplete input for the model". HTTP 400.</summary>
    public const int InvalidInput = 3010;

    /// <summary>A finetune lacks its adapter files. HTTP 400.</summary>
    public const int FinetuneMissingFiles = 3039;

    /// <summary>"Account not allowed": the finetune belongs to another account (a public one may be read, not changed
    /// or deleted). HTTP 403.</summary>
    public const int AccountNotAllowed = 3041;

    /// <summary>"Out of capacity": the server cannot take more work now. HTTP 429.</summary>
    public const int OutOfCapacity = 3040;

    /// <summary>"Invalid model ID". HTTP 404.</summary>
    public const int InvalidModelId = 3042;

    /// <summary>Missing or wrong credentials. HTTP 401 here (Cloudflare has answered both 401 and 403).</summary>
    public const int AuthenticationError = 10000;

    /// <summary>The generic Cloudflare API answer for an unknown route ("No route for that URI"). HTTP 404.</summary>
    public const int NoRoute = 7000;

    /// <summary>The companion of <see cref="NoRoute"/> ("Could not route to …"). HTTP 404.</summary>
    public const int CouldNotRoute = 7003;
}
