//! The HTTP API: one router per resource, merged here with the OpenAPI document, health,
//! metrics, the docs page and the web-client.
mod attachments;
mod auth;
mod canned_replies;
mod comments;
pub mod extract;
mod ingest;
mod kb;
mod notifications;
mod preferences;
mod setup;
mod tickets;
mod timeline;
mod users;
mod webhooks;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, Method, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, get_service},
};
use serde_json::json;
use tower_http::{
    catch_panic::CatchPanicLayer,
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::{error::Error, state::AppState, telemetry};

#[derive(OpenApi)]
#[openapi(
    info(title = "ticketwire", description = "Support tickets whose every change reaches people the moment it happens."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "auth"), (name = "users"), (name = "tickets"), (name = "comments"), (name = "kb"),
        (name = "attachments"), (name = "notifications"), (name = "events"), (name = "webhooks"),
        (name = "canned replies"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Every operation can fail in the same `{code, detail}` shape: say so once, as its `default`
/// response, instead of repeating each status on every route.
struct ErrorsEverywhere;

impl Modify for ErrorsEverywhere {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = ResponseBuilder::new()
            .description("An error: `{code, detail}` with the status that fits (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 503).")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                op.responses.responses.entry("default".into()).or_insert_with(|| error.clone().into());
            }
        }
    }
}

/// The routes with their OpenAPI description, before state is attached.
pub fn openapi_router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(users::router())
        .merge(tickets::router())
        .merge(comments::router())
        .merge(kb::router())
        .merge(attachments::router(state.config.upload_limit_bytes))
        .merge(notifications::router())
        .merge(webhooks::router(state.config.webhooks.manual_sends_per_minute))
        .merge(ingest::router())
        .merge(timeline::router())
        .merge(canned_replies::router())
        .merge(preferences::router())
        .merge(setup::router())
}

/// The policy of the web-client and of every API answer: scripts, styles and connections from
/// this origin only, nothing inline, no plugins, never framed. `data:` images for the
/// web-client's empty favicon.
const APP_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Swagger UI loads its bundle and initializer as files (no inline script), but its React
/// components set inline styles and its stylesheet embeds `data:` icons: those two, and still
/// no inline script.
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub fn router(state: AppState) -> Router {
    let (api, mut openapi) = openapi_router(&state).split_for_parts();
    // After the routes are merged in: a modifier on `ApiDoc` would see no paths yet.
    ErrorsEverywhere.modify(&mut openapi);
    let web_dir = state.config.web_dir.clone();
    let index = web_dir.join("index.html");
    let api = api
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api", any(api_not_found))
        .route("/api/", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .layer(DefaultBodyLimit::max(state.config.json_limit_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), writes_first))
        .with_state(state);
    // The web-client is read-only: other methods get the same JSON 405 as the API.
    let web = get_service(ServeDir::new(&web_dir).fallback(ServeFile::new(index))).fallback(method_not_allowed);
    // The validator badge would send the document's address to a third party.
    let swagger = SwaggerUi::new("/docs")
        .url("/api/openapi.json", openapi)
        .config(utoipa_swagger_ui::Config::new(["/api/openapi.json"]).validator_url("none"));
    let docs = Router::from(swagger).layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_POLICY),
    ));
    Router::new()
        .merge(docs)
        .merge(api)
        // Last of the routes: it reaches only the method routers registered before it.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback_service(web)
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| Error::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        // Outermost, so panics and 405s carry them too. A route that set its own policy (the
        // sandboxed attachment download, the docs) keeps it.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(APP_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
}

/// A write holds back this node's presence messages while it runs (`PresenceConfig::give_way_ms`):
/// the change it makes reaches its watchers before advisory presence does.
async fn writes_first(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let _writing = match request.method().is_safe() {
        true => None,
        false => state.realtime.presence().map(|hub| hub.write_started()),
    };
    next.run(request).await
}

/// A known path asked with a method it does not have. The router adds `Allow`.
async fn method_not_allowed(method: Method, uri: Uri) -> Error {
    Error::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// Unknown API paths answer in JSON (routed here for `/api` and below only).
async fn api_not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "code": "not_found", "detail": format!("no route for {}", uri.path()) })),
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.db.ping().await {
        Ok(()) => axum::Json(json!({ "status": "ok" })).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "detail": "database unreachable" })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> String {
    metrics::gauge!("ticketwire_sockets_local").set(state.realtime.connected() as f64);
    telemetry::metrics_handle().render()
}
