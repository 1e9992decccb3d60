// The one exception type the HTTP layer maps to Cloudflare's error envelope
// {"errors":[{"code":N,"message":"…"}],"success":false,"result":…,"messages":[]} with Status as the HTTP status.
// Thrown where requests are validated (RunRequestParser, PromptBuilder) and by the endpoints themselves.

namespace Sirocco.Server.Protocol;

/// <summary>A request the server refuses, with its Cloudflare error code and HTTP status. The message is written for
/// the client: it names the field (as a JSON pointer), the value received and what is allowed.</summary>
public sealed class ApiException : Exception
{
    public ApiException(int code, int status, string message, string? pointer = null) : base(message)
    {
        Code = code;
        Status = status;
        Pointer = pointer;
    }

    public ApiException() : this(ErrorCodes.BadInput, 400, "bad input")
    {
    }

    public ApiException(string message) : this(ErrorCodes.BadInput, 400, message)
    {
    }

    public ApiException(string message, Exception innerException) : base(message, innerException)
    {
        Code = ErrorCodes.BadInput;
        Status = 400;
    }

    /// <summary>The Cloudflare error code (<see cref="ErrorCodes"/>).</summary>
    public int Code { get; }

    /// <summary>The HTTP status code.</summary>
    public int Status { get; }

    /// <summary>JSON pointer of the offending field in the body (<c>/messages/0/content</c>; <c>/</c> for the body
    /// itself), or null when the error is not about one field. The envelope may carry it as
    /// <c>errors[].source.pointer</c>, a field the Cloudflare SDKs type.</summary>
    public string? Pointer { get; }

    /// <summary>For 429 and 503: how long the client should wait (sent as Retry-After and retry-after-ms).</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>400 / 5006: the body is malformed or breaks the model's input schema.</summary>
    public static ApiException BadInput(string message, string? pointer = null) => new(ErrorCodes.BadInput, 400, message, pointer);

    /// <summary>400 / 5007: the model in the path is not in the catalog.</summary>
    public static ApiException NoSuchModel(string model) =>
        new(ErrorCodes.NoSuchModel, 400, $"No such model {model} or task");

    /// <summary>400 / 5021: prompt tokens plus <c>max_tokens</c> do not fit the model's context window. The wording is
    /// Workers AI's, with the sum broken down so the client sees both numbers.</summary>
    public static ApiException ContextWindowExceeded(int promptTokens, int maxTokens, int contextWindow) =>
        new(ErrorCodes.ContextWindowExceeded, 400,
            $"The estimated number of input and maximum output tokens ({promptTokens} + {maxTokens} = {(long)promptTokens + maxTokens}) " +
            $"exceeded this model context window limit ({contextWindow}).");

    /// <summary>405 / 5005: a <c>lora</c> for a model that cannot take one.</summary>
    public static ApiException LoraUnsupported(string model) =>
        new(ErrorCodes.LoraUnsupported, 405, $"The model {model} does not support LoRa inference");

    /// <summary>429 / 3040: the server is full; clients retry.</summary>
    public static ApiException OutOfCapacity() =>
        new(ErrorCodes.OutOfCapacity, 429, "Capacity temporarily exceeded, please try again.");

    /// <summary>401 / 10000: missing or wrong credentials.</summary>
    public static ApiException AuthenticationError() =>
        new(ErrorCodes.AuthenticationError, 401, "Authentication error");
}
