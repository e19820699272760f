//! The webhook portal page (issue 17, item 3): where `GET /v0/webhooks/portal`'s magic link leads.
//! No API key: the token in the path is the credential (see [`grants_domain::webhook_portal`]).
//!
//! GET shows the tenant's endpoints, each with its URL, description, event types, state, its last
//! deliveries (time, event, status, response code, duration, first bytes of the answer) and forms
//! to change it. Every change is a form POST to the same URL with an `action` (`add`, `update`,
//! `delete`, `reveal`, `rotate`, `resend`); it runs the same domain operation the Svix API runs and
//! answers 303 back to the page (PRG), except `reveal`, which shows the page with that endpoint's
//! secret. Plain HTML forms, no script; the page may not be framed, cached or leak its URL as a
//! referrer (see [`ApiResponse::html`]).
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::webhook_delivery::{self, AttemptStatus, MessageAttempt};
use grants_domain::webhook_endpoints::{
    self, EndpointError, EndpointPatch, EndpointUrl, EventTypeName, NewEndpoint, WebhookEndpoint,
};
use grants_domain::webhook_messages::event_types;
use grants_domain::webhook_portal::{self, PortalError, PortalToken};
use grants_domain::webhooks::ApplicationId;
use grants_domain::{TenantId, Timestamp};
use http::StatusCode;
use std::collections::BTreeSet;
use std::fmt::Write;
use utoipa::ToSchema;

/// Deliveries shown per endpoint.
const SHOWN_ATTEMPTS: usize = 10;

/// The page's path for a token.
pub fn page_path(token: &PortalToken) -> String {
    format!("/webhooks/portal/{}", token.expose())
}

use crate::html_escape as escape;

/// Who the page acts for.
struct Session {
    tenant: TenantId,
    app: ApplicationId,
    expires_at: Timestamp,
    path: String,
}

async fn session<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<Session, ApiResponse> {
    let token = req.param("token");
    match webhook_portal::portal_session(app.store.as_ref(), app.clock.as_ref(), token).await {
        Ok((tenant, application, expires_at)) => Ok(Session {
            tenant,
            app: application,
            expires_at,
            path: format!("/webhooks/portal/{token}"),
        }),
        Err(PortalError::Store(e)) => {
            tracing::warn!(error = %e, "portal page: storage unavailable");
            Err(message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The portal is unavailable for a moment. Reload the page.",
            ))
        }
        Err(_) => Err(message_page(
            StatusCode::NOT_FOUND,
            "This portal link is not valid: it may have expired. Ask for a new one.",
        )),
    }
}

fn message_page(status: StatusCode, text: &str) -> ApiResponse {
    page(
        status,
        &format!("<h1>Webhooks</h1><p id=\"notice\">{}</p>", escape(text)),
    )
}

fn page(status: StatusCode, body: &str) -> ApiResponse {
    ApiResponse::html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Webhooks</title>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <style>body{{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem}}\
             section{{border:1px solid #ccc;border-radius:.4rem;padding:1rem;margin:1rem 0}}\
             label{{display:block;margin:.4rem 0}} input[type=url],input[type=text]{{width:100%;max-width:40rem}}\
             table{{border-collapse:collapse;width:100%;font-size:.85rem}} td,th{{border-bottom:1px solid #eee;padding:.3rem;text-align:left}}\
             .ok{{color:#06702c}} .fail{{color:#b00020}} .note{{color:#666;font-size:.85rem}}\
             code{{word-break:break-all}} #notice{{background:#eef;padding:.6rem;border-radius:.3rem}}\
             </style></head><body>{body}</body></html>"
        ),
    )
}

fn type_checkboxes(selected: Option<&BTreeSet<EventTypeName>>, prefix: &str) -> String {
    let mut out = String::from("<fieldset><legend>Event types (none ticked: every type)</legend>");
    for t in event_types() {
        let checked = selected.is_some_and(|s| s.iter().any(|n| n.as_str() == t.name));
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" name=\"types\" value=\"{n}\" id=\"{prefix}-{id}\"{c}> <code>{n}</code> \
             <span class=\"note\">{d}</span></label>",
            n = escape(t.name),
            id = escape(&t.name.replace('.', "-")),
            c = if checked { " checked" } else { "" },
            d = escape(t.description),
        );
    }
    out.push_str("</fieldset>");
    out
}

fn attempts_table(s: &Session, e: &WebhookEndpoint, attempts: &[MessageAttempt]) -> String {
    if attempts.is_empty() {
        return "<p class=\"note deliveries-empty\">No deliveries yet.</p>".to_owned();
    }
    let mut out = String::from(
        "<table class=\"deliveries\"><tr><th>Time</th><th>Event</th><th>Status</th><th>Code</th>\
         <th>Duration</th><th>Response</th><th></th></tr>",
    );
    for a in attempts {
        let (class, status) = match a.status {
            AttemptStatus::Success => ("ok", "succeeded"),
            AttemptStatus::Fail => ("fail", "failed"),
        };
        let _ = write!(
            out,
            "<tr class=\"delivery\" data-message=\"{m}\"><td>{t}</td><td><code>{ev}</code></td>\
             <td class=\"{class} status\">{status}</td><td class=\"code\">{code}</td><td>{ms} ms</td>\
             <td><code>{resp}</code></td><td><form method=\"post\" action=\"{path}\">\
             <input type=\"hidden\" name=\"action\" value=\"resend\"><input type=\"hidden\" name=\"endpoint\" value=\"{ep}\">\
             <input type=\"hidden\" name=\"message\" value=\"{m}\"><button class=\"resend\">Resend</button></form></td></tr>",
            m = escape(a.message_id.as_str()),
            t = escape(&a.timestamp.to_rfc3339()),
            ev = escape(&a.event_type),
            code = a.response_status_code,
            ms = a.response_duration_ms,
            resp = escape(&a.response.chars().take(120).collect::<String>()),
            path = escape(&s.path),
            ep = escape(e.id.as_str()),
        );
    }
    out.push_str("</table>");
    out
}

fn endpoint_section(s: &Session, e: &WebhookEndpoint, attempts: &[MessageAttempt], revealed: bool) -> String {
    let id = escape(e.id.as_str());
    let state = match (&e.disabled, &e.disabled_reason) {
        (false, _) => "<span class=\"ok\">Enabled</span>".to_owned(),
        (true, None) => "<span class=\"fail\">Disabled</span>".to_owned(),
        (true, Some(why)) => format!(
            "<span class=\"fail\" role=\"alert\">Disabled by the service: {}. Fix the endpoint, then enable it again.</span>",
            escape(why)
        ),
    };
    let secret = if revealed {
        format!(
            "<p>Signing secret: <code class=\"secret\">{}</code></p>",
            escape(e.secret.expose())
        )
    } else {
        String::new()
    };
    format!(
        "<section class=\"endpoint\" id=\"{id}\" data-url=\"{url}\"><h2><code>{url}</code></h2>\
         <p class=\"state\">{state} <span class=\"note\">{id}</span></p>{secret}\
         <form method=\"post\" action=\"{path}\"><input type=\"hidden\" name=\"endpoint\" value=\"{id}\">\
         <label>URL <input type=\"url\" name=\"url\" value=\"{url}\" required></label>\
         <label>Description <input type=\"text\" name=\"description\" value=\"{desc}\"></label>{types}\
         <label><input type=\"checkbox\" name=\"disabled\" value=\"on\"{dis}> Disabled</label>\
         <button name=\"action\" value=\"update\" class=\"save\">Save</button> \
         <button name=\"action\" value=\"reveal\" class=\"reveal\">Reveal secret</button> \
         <button name=\"action\" value=\"rotate\" class=\"rotate\">Rotate secret</button> \
         <button name=\"action\" value=\"delete\" class=\"delete\">Delete</button></form>\
         <h3>Recent deliveries</h3>{deliveries}</section>",
        url = escape(e.url.as_str()),
        path = escape(&s.path),
        desc = escape(&e.description),
        types = type_checkboxes(e.event_types.as_ref(), &format!("{}-type", e.id)),
        dis = if e.disabled { " checked" } else { "" },
        deliveries = attempts_table(s, e, attempts),
    )
}

async fn render<S: Store>(
    app: &App<S>,
    s: &Session,
    status: StatusCode,
    notice: Option<&str>,
    revealed: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let store = app.store.as_ref();
    let endpoints = webhook_endpoints::EndpointStore::list_endpoints(store, &s.tenant).await?;
    let mut sections = String::new();
    for e in &endpoints {
        let (attempts, _) =
            webhook_delivery::DeliveryStore::attempts_by_endpoint(store, &s.tenant, &e.id, None, SHOWN_ATTEMPTS)
                .await?;
        sections.push_str(&endpoint_section(s, e, &attempts, revealed == Some(e.id.as_str())));
    }
    if endpoints.is_empty() {
        sections.push_str("<p class=\"note\" id=\"no-endpoints\">No endpoints yet.</p>");
    }
    let notice = notice
        .map(|n| format!("<p id=\"notice\" role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Webhooks</h1><p class=\"note\">Application <code>{app_id}</code>. This link works until {exp}.</p>{notice}\
         <section id=\"add\"><h2>Add an endpoint</h2><form method=\"post\" action=\"{path}\">\
         <input type=\"hidden\" name=\"action\" value=\"add\">\
         <label>URL <input type=\"url\" name=\"url\" id=\"new-url\" required placeholder=\"https://example.com/webhooks\"></label>\
         <label>Description <input type=\"text\" name=\"description\" id=\"new-description\"></label>{types}\
         <button id=\"add-endpoint\">Add endpoint</button></form></section>{sections}",
        app_id = escape(s.app.as_str()),
        exp = escape(&s.expires_at.to_rfc3339()),
        path = escape(&s.path),
        types = type_checkboxes(None, "new-type"),
    );
    Ok(page(status, &body))
}

/// The notice shown after a change (a fixed text per code: nothing from the URL is echoed).
fn done_notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "added" => "Endpoint added.",
        "saved" => "Endpoint saved.",
        "deleted" => "Endpoint deleted.",
        "rotated" => "Secret rotated. The old one still signs for 24 hours.",
        "resent" => "Message queued to be sent again.",
        _ => return None,
    })
}

/// `token` in the path: the portal link's secret.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// 43 base64url characters.
    pub token: String,
}

/// The webhook portal page (HTML).
///
/// No API key; the link's token is the credential, for one hour.
#[utoipa::path(get, path = "/webhooks/portal/{token}", operation_id = "webhookPortalPage", tag = "webhooks-portal",
    security(()),
    params(TokenPath, ("done" = Option<String>, Query, description = "What the last change did: a notice on the page.")),
    responses(
        (status = 200, description = "The portal page.", body = String, content_type = "text/html"),
        (status = 404, description = "Unknown or expired link.", body = String, content_type = "text/html"),
        (status = 503, description = "Storage unavailable; reload.", body = String, content_type = "text/html"),
    ))]
pub async fn portal_page<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let s = match session(app, req).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    render(app, &s, StatusCode::OK, done_notice(req.query_value("done")), None).await
}

/// The portal page's form (`application/x-www-form-urlencoded`).
#[derive(ToSchema)]
#[schema(as = PortalForm)]
pub struct PortalForm {
    /// add, update, delete, reveal, rotate or resend.
    pub action: String,
    /// The endpoint acted on (all but add).
    #[schema(required = false)]
    pub endpoint: String,
    /// add and update.
    #[schema(required = false)]
    pub url: String,
    #[schema(required = false)]
    pub description: String,
    /// Event types, repeated; none: every type.
    #[schema(required = false)]
    pub types: Vec<String>,
    /// `on`: disabled (update).
    #[schema(required = false)]
    pub disabled: String,
    /// The message to resend (resend).
    #[schema(required = false)]
    pub message: String,
}

struct Form(Vec<(String, String)>);

impl Form {
    fn one(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The description: at most 1,000 characters (Svix's limit).
    fn description(&self) -> Result<String, Refusal> {
        let d = self.one("description").unwrap_or_default();
        if d.chars().count() > 1000 {
            return Err(Refusal::Invalid("Description: at most 1000 characters.".to_owned()));
        }
        Ok(d.to_owned())
    }
    fn types(&self) -> Result<Option<BTreeSet<EventTypeName>>, String> {
        let types = self.all("types");
        if types.is_empty() {
            return Ok(None);
        }
        types
            .into_iter()
            .map(|t| EventTypeName::parse(t).map_err(|e| format!("Event type {t:?}: {e}.")))
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// A change on the portal page.
///
/// No API key; the link's token is the credential. Answers 303 back to the page (the secret page
/// for `reveal`: 200).
#[utoipa::path(post, path = "/webhooks/portal/{token}", operation_id = "webhookPortalAction", tag = "webhooks-portal",
    security(()),
    params(TokenPath),
    request_body(content = PortalForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The page with the endpoint's secret shown (reveal).", body = String, content_type = "text/html"),
        (status = 303, description = "Back to the page."),
        (status = 400, description = "A field is not valid: the page says which.", body = String, content_type = "text/html"),
        (status = 404, description = "Unknown or expired link, or no such endpoint or message.", body = String, content_type = "text/html"),
        (status = 413, response = crate::openapi::TooLarge),
        (status = 503, description = "Storage unavailable; retry.", body = String, content_type = "text/html"),
    ))]
pub async fn portal_action<S: Store>(app: &App<S>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let s = match session(app, req).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let form = Form(
        form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    );
    let store = app.store.as_ref();
    let (clock, tenant, application) = (app.clock.as_ref(), &s.tenant, s.app.as_str());
    let endpoint = form.one("endpoint").unwrap_or_default();
    let outcome: Result<&str, Refusal> = match form.one("action") {
        Some("add") => {
            let url = EndpointUrl::parse(form.one("url").unwrap_or_default())
                .map_err(|e| Refusal::Invalid(format!("URL: {e}.")));
            match (url, form.types().map_err(Refusal::Invalid), form.description()) {
                (Ok(url), Ok(event_types), Ok(description)) => {
                    let new = NewEndpoint {
                        url,
                        description,
                        event_types,
                        disabled: false,
                        secret: None,
                    };
                    webhook_endpoints::create_endpoint(store, clock, tenant, application, new)
                        .await
                        .map(|_| "added")
                        .map_err(Refusal::from)
                }
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        Some("update") => {
            let url = EndpointUrl::parse(form.one("url").unwrap_or_default())
                .map_err(|e| Refusal::Invalid(format!("URL: {e}.")));
            match (url, form.types().map_err(Refusal::Invalid), form.description()) {
                (Ok(url), Ok(event_types), Ok(description)) => {
                    let patch = EndpointPatch {
                        url: Some(url),
                        description: Some(description),
                        event_types: Some(event_types),
                        disabled: Some(form.one("disabled") == Some("on")),
                    };
                    webhook_endpoints::patch_endpoint(store, clock, tenant, application, endpoint, patch)
                        .await
                        .map(|_| "saved")
                        .map_err(Refusal::from)
                }
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        Some("delete") => webhook_endpoints::delete_endpoint(store, tenant, application, endpoint)
            .await
            .map(|()| "deleted")
            .map_err(Refusal::from),
        Some("rotate") => webhook_endpoints::rotate_secret(store, clock, tenant, application, endpoint, None, None)
            .await
            .map(|_| "rotated")
            .map_err(Refusal::from),
        Some("resend") => webhook_delivery::resend(
            store,
            app.webhook_deliveries.as_ref(),
            tenant,
            application,
            form.one("message").unwrap_or_default(),
            endpoint,
        )
        .await
        .map(|()| "resent")
        .map_err(Refusal::from),
        Some("reveal") => {
            return match webhook_endpoints::get_endpoint(store, tenant, application, endpoint).await {
                Ok(e) => {
                    render(
                        app,
                        &s,
                        StatusCode::OK,
                        Some("The endpoint's signing secret is shown below."),
                        Some(e.id.as_str()),
                    )
                    .await
                }
                Err(e) => refusal_page(app, &s, Refusal::from(e)).await,
            };
        }
        _ => Err(Refusal::Invalid("Unknown action.".to_owned())),
    };
    match outcome {
        Ok(done) => {
            tracing::info!(tenant = %tenant, action = done, "webhook portal change");
            Ok(ApiResponse::see_other(&format!("{}?done={done}", s.path)))
        }
        Err(r) => refusal_page(app, &s, r).await,
    }
}

/// Why a change was not made.
enum Refusal {
    Invalid(String),
    NotFound(&'static str),
    Failed(ApiError),
}

impl From<EndpointError> for Refusal {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::ApplicationNotFound | EndpointError::EndpointNotFound => {
                Refusal::NotFound("No such endpoint (it may have been deleted).")
            }
            EndpointError::MessageNotFound => Refusal::NotFound("No such message."),
            EndpointError::EndpointDisabled => {
                Refusal::Invalid("The endpoint is disabled: enable it before resending.".to_owned())
            }
            other => Refusal::Failed(other.into()),
        }
    }
}

async fn refusal_page<S: Store>(app: &App<S>, s: &Session, r: Refusal) -> Result<ApiResponse, ApiError> {
    match r {
        Refusal::Invalid(text) => render(app, s, StatusCode::BAD_REQUEST, Some(&text), None).await,
        Refusal::NotFound(text) => render(app, s, StatusCode::NOT_FOUND, Some(text), None).await,
        Refusal::Failed(e) => Err(e),
    }
}
