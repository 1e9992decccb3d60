// Checks `Authorization: Bearer <token>` on API routes when tokens are configured: the token must be known, and on
// /accounts/{account_id}/… routes it must belong to that account. Failures answer 401 with Cloudflare's code 10000
// "Authentication error" (OpenAI's error shape on the /v1 routes). /healthz never passes through here.

using Microsoft.AspNetCore.Http;
using Sirocco.Server.Apis.Common;
using Sirocco.Server.Protocol;

namespace Sirocco.Server.Auth;

internal static class ApiAuthentication
{
    private const string AccountItem = "sirocco.account";

    /// <summary>The account the request acts for: the one its token owns, or with authentication off the
    /// <c>account_id</c> of the path (null on /v1 routes).</summary>
    public static string? AccountOf(HttpContext context) => context.Items[AccountItem] as string;

    /// <summary>An endpoint filter for Cloudflare-style routes that carry <c>{account_id}</c>.</summary>
    public static EndpointFilterDelegate AccountRoute(ApiTokens tokens, EndpointFilterDelegate next) => async invocation =>
    {
        HttpContext context = invocation.HttpContext;
        string? pathAccount = context.Request.RouteValues["account_id"] as string;
        if (!tokens.IsEnabled)
        {
            context.Items[AccountItem] = pathAccount;
            return await next(invocation);
        }
        string? account = TokenAccount(context, tokens);
        if (account is null || !string.Equals(account, pathAccount, StringComparison.Ordinal))
        {
            await ApiResponses.WriteErrorAsync(context, StatusCodes.Status401Unauthorized, ErrorCodes.AuthenticationError, "Authentication error");
            return Results.Empty;
        }
        context.Items[AccountItem] = account;
        return await next(invocation);
    };

    /// <summary>An endpoint filter for OpenAI-style routes without an account in the path.</summary>
    public static EndpointFilterDelegate OpenAiRoute(ApiTokens tokens, EndpointFilterDelegate next) => async invocation =>
    {
        HttpContext context = invocation.HttpContext;
        if (!tokens.IsEnabled)
        {
            return await next(invocation);
        }
        string? account = TokenAccount(context, tokens);
        if (account is null)
        {
            await ApiResponses.WriteOpenAiErrorAsync(context, StatusCodes.Status401Unauthorized,
                "Authentication error: send `Authorization: Bearer <token>` with a token configured on this server.",
                "authentication_error", ErrorCodes.AuthenticationError.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return Results.Empty;
        }
        context.Items[AccountItem] = account;
        return await next(invocation);
    };

    private static string? TokenAccount(HttpContext context, ApiTokens tokens)
    {
        string? header = context.Request.Headers.Authorization;
        const string Scheme = "Bearer ";
        if (header is null || !header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        string token = header[Scheme.Length..].Trim();
        return token.Length == 0 ? null : tokens.AccountOf(token);
    }
}
