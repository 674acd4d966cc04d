//! The HTTP API as an OpenAPI 3.1 document, served at `GET /openapi.json`: built from each
//! handler's `#[utoipa::path]` annotation and the body types' schemas, so it changes with the code.
//! A test holds it and [`super::router`] to the same routes.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use super::{account_manage, accounts, audit, files, health, sessions};
use crate::wire::Outcome;

/// The names of the security schemes, as the handlers' `security(...)` use them.
pub const ACCESS_TOKEN: &str = "access_token";
pub const ACCESS_COOKIE: &str = "access_cookie";
pub const REFRESH_COOKIE: &str = "refresh_cookie";
pub const AUDIT_TOKEN: &str = "audit_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ExpressChat server",
        version = env!("CARGO_PKG_VERSION"),
        description = "The HTTP API of the ExpressChat-protocol chat backend (docs/api.md, \"HTTP\"): \
            accounts and tokens, sessions, files, health, metrics and audit. Every JSON answer has \
            `success` (1 ok, 0 refused, -1 bad request or server error, -2 account not verified) and \
            `message`. Paths match case-insensitively. The Socket.IO protocol is described in docs/api.md."
    ),
    paths(
        accounts::signup,
        accounts::verify,
        accounts::resend,
        sessions::login,
        sessions::logout,
        sessions::refresh,
        sessions::update_access_token,
        account_manage::forgot_password,
        account_manage::reset_password,
        account_manage::list_sessions,
        account_manage::end_session,
        files::upload,
        files::download,
        health::health,
        health::ready,
        health::metrics,
        audit::chat_events,
        audit::user_events,
        openapi_json,
    ),
    components(schemas(Outcome)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "accounts", description = "Sign-up, verification, password reset"),
        (name = "tokens", description = "Login, logout and the token routes"),
        (name = "sessions", description = "The signed-in user's open sessions"),
        (name = "files", description = "Attachments: uploads and downloads"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "audit", description = "The event log, for a bearer of AUDIT_TOKEN"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes the handlers name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ACCESS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access token (HS256 JWT) of an open session, as `Authorization: Bearer`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ACCESS_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "access_token",
                "The access token in the cookie set by /login, /verify and /refresh",
            ))),
        );
        components.add_security_scheme(
            REFRESH_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "refresh_token",
                "The refresh token in the cookie set by /login, /verify and /refresh",
            ))),
        );
        components.add_security_scheme(
            AUDIT_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "AUDIT_TOKEN, as `Authorization: Bearer`; a user's access token is not one",
                    ))
                    .build(),
            ),
        );
    }
}

/// Raw bytes (a file's), for the document.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// A response whose body is an [`Outcome`].
fn outcome(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Outcome")))
                .build(),
        )
        .into()
}

/// What any route that reads a JSON body may answer before reading it (`body.rs`).
pub struct JsonBodyRefusals;

impl IntoResponses for JsonBodyRefusals {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        BTreeMap::from([
            (
                "413".to_owned(),
                outcome("The body is larger than 16 KiB (`success` -1)"),
            ),
            (
                "415".to_owned(),
                outcome(
                    "A declared type other than `application/json`, several `Content-Type` \
                     headers, or a body without a declared type (`success` -1); nothing is done",
                ),
            ),
        ])
    }
}

/// The answer of a route over its `AUTH_RATE_LIMIT` budget for the client's address.
pub struct RateLimited;

impl IntoResponses for RateLimited {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let response = ResponseBuilder::new()
            .description("Too many requests from this address (`success` -1)")
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds until the route takes a request again"))
                    .build(),
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Outcome")))
                    .build(),
            );
        BTreeMap::from([("429".to_owned(), response.into())])
    }
}

/// The document as served, written once.
static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    summary = "This document",
    description = "The HTTP API as OpenAPI 3.1, generated from the handlers.",
    tag = "operations",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = serde_json::Value),
    )
)]
pub async fn openapi_json() -> Response {
    match &*DOCUMENT {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response(),
        Err(detail) => {
            tracing::error!(%detail, "the OpenAPI document cannot be written");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(Outcome {
                    message: "internal error, try again",
                    success: -1,
                }),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use serde_json::Value;

    use super::*;

    /// Every `(METHOD, path)` the router serves, the web client's fallback aside, read from the
    /// router's `Debug` form: axum offers no other way to list a router's routes.
    fn routed() -> BTreeSet<(String, String)> {
        let debug = format!("{:?}", super::super::router());
        let routes = parse_routes(&debug)
            .unwrap_or_else(|| panic!("axum's Router Debug form has changed:\n{debug}"));
        assert!(
            routes.contains(&("POST".to_owned(), "/signup".to_owned())),
            "no route read from axum's Router Debug form:\n{debug}"
        );
        routes
    }

    fn parse_routes(debug: &str) -> Option<BTreeSet<(String, String)>> {
        // The matched routes come first; the fallback's, not part of the API, after.
        let (matched, _fallback) = debug.split_once("fallback_router:")?;
        let (endpoints, paths) = matched.split_once("node: Node")?;

        let mut path_of = HashMap::new();
        for entry in paths.split("RouteId(").skip(1) {
            let (id, rest) = entry.split_once(')')?;
            path_of.insert(id, rest.split('"').nth(1)?);
        }

        let mut routes = BTreeSet::new();
        for entry in endpoints.split("RouteId(").skip(1) {
            let (id, rest) = entry.split_once(')')?;
            let path = *path_of.get(id)?;
            assert!(
                rest.starts_with(": MethodRouter(MethodRouter {"),
                "{path} is routed to a service, not to handlers by method: it cannot be documented"
            );
            for method in [
                "get", "head", "delete", "options", "patch", "post", "put", "trace", "connect",
            ] {
                let (_, value) = rest.split_once(&format!(" {method}: "))?;
                if !value.starts_with("None") {
                    routes.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
        Some(routes)
    }

    fn document() -> Value {
        serde_json::from_str(DOCUMENT.as_ref().unwrap()).unwrap()
    }

    /// Every `(METHOD, path)` the document describes.
    fn documented() -> BTreeSet<(String, String)> {
        let document = document();
        let mut operations = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
        operations
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_is_served() {
        let routed = routed();
        let documented = documented();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes with no #[utoipa::path] in ApiDoc: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "documented but not routed: {unserved:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_its_security_schemes() {
        let document = document();
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(document["info"]["title"], "ExpressChat server");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        let schemes = document["components"]["securitySchemes"]
            .as_object()
            .unwrap();
        for name in [ACCESS_TOKEN, ACCESS_COOKIE, REFRESH_COOKIE, AUDIT_TOKEN] {
            assert!(schemes.contains_key(name), "{name}");
        }
        // Every scheme an operation names exists, and every operation says what it answers.
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    !operation["responses"].as_object().unwrap().is_empty(),
                    "{method} {path}"
                );
                for requirement in operation["security"].as_array().into_iter().flatten() {
                    for name in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{method} {path}: {name}");
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn it_is_served_as_json() {
        let response = openapi_json().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
