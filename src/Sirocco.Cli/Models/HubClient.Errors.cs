// HubClient's error messages: the hub's status codes and X-Error-Code header turned into one line that says what
// happened and what to do, the way huggingface_hub's hf_raise_for_status tells the cases apart. Note that the hub
// answers 401, not 404, for a missing repository when no token is sent (it will not say whether a private one exists).

using System.Net;

namespace Sirocco.Cli.Models;

internal sealed partial class HubClient
{
    private string EndpointText => _options.Endpoint.AbsoluteUri.TrimEnd('/');

    /// <summary>The exception for a final answer that is not success: 401, 403, 404 (with X-Error-Code RepoNotFound,
    /// RevisionNotFound, EntryNotFound or GatedRepo), 429 and 5xx (transient), anything else.</summary>
    /// <param name="path">The repository file asked for, or null for repository info and file lists.</param>
    internal ModelStoreException Describe(HttpResponseMessage response, HubModelReference reference, string? path)
    {
        int status = (int)response.StatusCode;
        string? code = Header(response, "X-Error-Code");
        bool hasToken = _options.Token is not null;
        string endpoint = EndpointText;
        string repoPage = $"{endpoint}/{reference.Repo}";
        string what = path is null ? reference.Repo : $"{path} in {reference.Repo}";
        string answered = $"{status} {response.ReasonPhrase}".TrimEnd();
        return (code, response.StatusCode) switch
        {
            ("GatedRepo", _) when hasToken => new ModelStoreException(
                $"{reference.Repo} is a gated repository and your token has no access to it ({answered}): accept its terms at {repoPage} with the account the token belongs to, then run this again"),
            ("GatedRepo", _) => new ModelStoreException(
                $"{reference.Repo} is a gated repository: it needs a Hugging Face token: set {HubOptions.TokenVariable} (and accept the model's terms at {repoPage})"),
            ("RepoNotFound", HttpStatusCode.Unauthorized) or (null, HttpStatusCode.Unauthorized) when !hasToken && path is null => new ModelStoreException(
                $"no repository {reference.Repo} on {endpoint} ({answered}), or it is private or gated and needs a Hugging Face token: check the name, or set {HubOptions.TokenVariable} (and accept the model's terms on {endpoint})"),
            ("RepoNotFound", _) or (null, HttpStatusCode.NotFound) when path is null || code is not null => new ModelStoreException(
                $"no repository {reference.Repo} on {endpoint} ({answered}): check the name" + (hasToken ? "; if it is private, check that your token can read it" : "")),
            ("RevisionNotFound", _) => new ModelStoreException(
                $"{reference.Repo} has no revision '{reference.Revision}' on {endpoint} ({answered}): check the name after '@'"),
            ("EntryNotFound", _) or (_, HttpStatusCode.NotFound) => new ModelStoreException(
                $"{reference.Repo} has no file {path} on {endpoint} ({answered}): check the name"),
            (_, HttpStatusCode.Unauthorized) when hasToken => new ModelStoreException(
                $"the hub rejected your token for {what} ({answered}): check {HubOptions.TokenVariable} at {endpoint}/settings/tokens"),
            (_, HttpStatusCode.Unauthorized) => new ModelStoreException(
                $"{what} needs a Hugging Face token ({answered}): set {HubOptions.TokenVariable} (and accept the model's terms at {repoPage})"),
            (_, HttpStatusCode.Forbidden) => new ModelStoreException(
                $"the hub refused access to {what} ({answered}): " + (hasToken
                    ? $"your token may not read it; if the model is gated, accept its terms at {repoPage}"
                    : $"set {HubOptions.TokenVariable} to a token that may read it")),
            (_, HttpStatusCode.TooManyRequests) => new ModelStoreException(
                $"the hub is limiting requests ({answered}) while fetching {what}; wait a minute and run this again", isTransient: true),
            (_, HttpStatusCode.RequestTimeout) or (_, >= HttpStatusCode.InternalServerError) => new ModelStoreException(
                $"the hub answered {answered} for {what}; try again later", isTransient: true),
            _ => new ModelStoreException($"the hub answered {answered} for {what}"),
        };
    }

    /// <summary>The exception for a request that got no answer (refused, name not found, reset). Transient once the
    /// hub has answered in this run (a blip in the middle of a download), final before that (nothing to wait for).</summary>
    private ModelStoreException Unreachable(Uri url, HttpRequestException e, HubModelReference reference)
    {
        string reason = e.InnerException?.Message is { Length: > 0 } inner && !e.Message.Contains(inner, StringComparison.Ordinal)
            ? $"{e.Message} {inner}"
            : e.Message;
        if (SameOrigin(url, _options.Endpoint))
        {
            return new ModelStoreException(
                $"cannot reach {EndpointText}: {reason}; check the connection, use --offline with a model already in the store " +
                $"(sirocco models lists them) or a local file, or set {HubOptions.EndpointVariable} to a reachable mirror",
                isTransient: _reachedHub, e);
        }
        return new ModelStoreException(
            $"cannot reach {url.GetLeftPart(UriPartial.Authority)}, where {EndpointText} sent the download of {reference.Repo}: {reason}",
            isTransient: true, e);
    }
}
