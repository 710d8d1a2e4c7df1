import Foundation
import Hummingbird

/// Whether a path is under `/v1` (authenticated and counted).
func isAPIPath(_ path: String) -> Bool { path == "/v1" || path.hasPrefix("/v1/") }

/// Turns every error into OpenAI's error JSON and counts answered `/v1` requests by status.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    let maxRequestBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = try Self.apiError(for: error, request: request, maxRequestBytes: maxRequestBytes).response(from: request, context: context)
        }
        if isAPIPath(request.uri.path) { metrics.recordResponse(status: response.status.code) }
        return response
    }

    static func apiError(for error: any Error, request: Request, maxRequestBytes: Int) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as HTTPError where error.status == .notFound:
            return .routeNotFound(method: request.method.rawValue, path: request.uri.path)
        case let error as HTTPError:
            return APIError(
                status: error.status, message: error.body ?? error.status.reasonPhrase,
                type: error.status.code >= 500 ? "server_error" : "invalid_request_error")
        case is CancellationError:
            // The client went away; nobody reads this (nginx's 499), but metrics count it.
            return APIError(
                status: .init(code: 499, reasonPhrase: "Client Closed Request"), message: "The request was cancelled.",
                code: "cancelled")
        case let error as any HTTPResponseError where error.status == .contentTooLarge:
            return .bodyTooLarge(limit: maxRequestBytes)
        case let error as any HTTPResponseError:
            return APIError(status: error.status, message: "\(error)")
        default:
            return .internalError("The server had an error while processing your request: \(error)")
        }
    }
}

/// Requires `Authorization: Bearer <key>` with one of the keys on every `/v1` request.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if isAPIPath(request.uri.path) {
            let header = request.headers[.authorization]
            guard header != nil else { throw APIError.missingKey() }
            guard ServeSecurity.authorize(header, keys: keys) else { throw APIError.invalidKey() }
        }
        return try await next(request, context)
    }
}
