//! The OpenAPI document (`openapi.yaml`, what schemathesis tests), generated: each operation from
//! the `#[utoipa::path]` on its handler, each body from the wire type the handler writes.
//! `tests/api/openapi.rs` holds the checked-in file equal to [`document`] (`UPDATE_OPENAPI=1`
//! rewrites it) and to the route table.
use crate::error::{ErrorBody, FieldError, FlexpriceErrorBody};
use crate::{capacity, flexprice, metronome, paygentic, sandbox, stripe, webhooks};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// The document: every route of [`crate::Route`], and under `webhooks` every event type the
/// service delivers to merchants' endpoints, with the JSON Schema of its body.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.webhooks = Some(webhook_events());
    doc
}

/// One `webhooks` entry per event type (OpenAPI 3.1): the POST a merchant's endpoint receives.
fn webhook_events() -> utoipa::openapi::Paths {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::{ContentBuilder, PathsBuilder, Required, ResponseBuilder};
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String),
            ))
            .build()
    };
    let mut paths = PathsBuilder::new();
    for t in grants_domain::webhook_messages::event_types() {
        let Ok(schema) = serde_json::from_value::<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>(t.schema)
        else {
            continue;
        };
        let op = OperationBuilder::new()
            .operation_id(Some(format!("webhook.{}", t.name)))
            .tag("webhook-events")
            .summary(Some(t.description))
            .description(Some(
                "Sent to every enabled endpoint that takes this type, signed per Standard Webhooks. \
                 Retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h unless answered 2xx within 15 s.",
            ))
            .parameter(header(
                "webhook-id",
                "The message id: the same on every attempt (deduplicate by it).",
            ))
            .parameter(header("webhook-timestamp", "Unix seconds of this attempt."))
            .parameter(header(
                "webhook-signature",
                "`v1,<base64 HMAC-SHA256 of \"id.timestamp.body\">`, space-separated (two during a secret's rotation).",
            ))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                    .required(Some(Required::True))
                    .build(),
            ))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Any 2xx: delivered. Anything else, or no answer within 15 s: retried.")
                    .build(),
            )
            .build();
        paths = paths.path(t.name, PathItem::new(HttpMethod::Post, op));
    }
    paths.build()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Credit-grants service",
        version = "0.1.0",
        description = "The four grants surfaces this service speaks (Paygentic entitlement grants, Metronome's credit \
ledger, Flexprice credit grant plans, capacity grants), plus its own purchase checkout and payment webhook. \
Generated from the code (shared/http/src/openapi.rs); every route is here (tests/api/openapi.rs checks it), and \
`make test` runs schemathesis against the local stack with this document: no 5xx, every response's status, \
content type and body as written here. A key may be sent as a Bearer token or in `x-api-key`, on any surface. \
Amounts are decimals: JSON numbers on input are read exactly, never as floats.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "http://127.0.0.1:9000", description = "`make dev`")),
    security(("bearer" = []), ("apiKey" = [])),
    tags(
        (name = "paygentic", description = "Paygentic's entitlement grants, usage and balances."),
        (name = "metronome", description = "Metronome's credit ledger: grants, entries, credit types."),
        (name = "flexprice", description = "Flexprice's credit grant plans."),
        (name = "capacity", description = "Capacity grants: units of a kind on a cluster for a period."),
        (name = "payments", description = "Paid grants: invoices, the payment webhook, the sandbox checkout."),
        (name = "webhooks-portal", description = "The webhook portal page a `GET /v0/webhooks/portal` link opens (HTML forms, no API key)."),
        (name = "svix", description = "Svix's endpoint management for the tenant's webhook application."),
    ),
    paths(
        paygentic::entitlements::list_entitlements,
        paygentic::entitlements::create_entitlement,
        paygentic::entitlements::get_entitlement,
        paygentic::entitlements::cancel_entitlement,
        paygentic::grants::create_grant,
        paygentic::grants::list_grants,
        paygentic::grants::get_grant,
        paygentic::grants::void_grant,
        paygentic::purchases::purchase_grant,
        paygentic::purchases::get_invoice,
        webhooks::payment_webhook,
        stripe::stripe_webhook,
        stripe::payment_page,
        sandbox::checkout_page,
        paygentic::usage::record_usage,
        paygentic::usage::commit_usage,
        paygentic::usage::release_usage,
        paygentic::usage::get_balance,
        paygentic::meters::create_billable_metric,
        paygentic::meters::list_billable_metrics,
        paygentic::meters::get_billable_metric,
        paygentic::webhooks::get_webhooks,
        paygentic::webhooks::enable_webhooks,
        paygentic::webhooks::update_webhooks,
        paygentic::webhooks::disable_webhooks,
        paygentic::webhooks::get_webhook_portal,
        crate::svix::create_endpoint,
        crate::svix::list_endpoints,
        crate::svix::get_endpoint,
        crate::svix::patch_endpoint,
        crate::svix::delete_endpoint,
        crate::svix::get_endpoint_secret,
        crate::svix::rotate_endpoint_secret,
        crate::svix::list_attempts_by_endpoint,
        crate::svix::resend_message,
        paygentic::events::ingest_event,
        metronome::grants::list_grants,
        metronome::grants::create_grant,
        metronome::grants::void_grant,
        metronome::grants::edit_grant,
        metronome::entries::list_entries,
        metronome::credit_types::list_credit_types,
        metronome::credit_types::create_credit_type,
        capacity::grants::list,
        capacity::grants::create,
        capacity::grants::delete,
        capacity::grants::resell,
        flexprice::plans::create,
        flexprice::plans::list,
        flexprice::plans::get,
        flexprice::plans::update,
        flexprice::plans::delete,
        sandbox::checkout_action,
        crate::portal::portal_page,
        crate::portal::portal_action,
    ),
    components(
        schemas(ErrorBody, FlexpriceErrorBody, FieldError, crate::svix::SvixErrorBody, crate::svix::SvixValidationBody, crate::svix::SvixFieldError),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            TooLarge,
            Unsupported,
            Unprocessable,
            BadGateway,
            Busy,
            FlexpriceError,
            SvixError,
            SvixInvalid
        )
    ),
    modifiers(&Security)
)]
struct ApiDoc;

/// The two ways to send a key: `Authorization: Bearer <key>` or `x-api-key: <key>`.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

/// A JSON error answer with the body `T`, as a reusable response.
fn error_response<T: ToSchema>(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name(T::name())))
                .build(),
        )
        .build()
        .into()
}

/// A reusable error response (`components/responses/<name>`), answered with [`ErrorBody`]
/// unless another body is named.
macro_rules! error_responses {
    ($($name:ident $(($body:ty))? => $description:literal,)*) => {
        $(
            #[doc = $description]
            pub struct $name;
            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response::<error_responses!(@body $($body)?)>($description))
                }
            }
        )*
    };
    (@body) => { ErrorBody<'static> };
    (@body $body:ty) => { $body };
}

error_responses! {
    BadRequest => "Invalid input; `errors` names each field.",
    Unauthorized => "No key, or an unknown one.",
    Forbidden => "A member key on an admin operation.",
    NotFound => "No such object for this tenant.",
    Conflict => "An idempotency key reused with other parameters, or a state that forbids it.",
    TooLarge => "Body over 256 KiB.",
    Unsupported => "A body that is not JSON.",
    Unprocessable => "Valid, but not for this object's state (a cancelled entitlement, an inverted range).",
    BadGateway => "The payment provider did not open a session.",
    Busy => "Storage is throttling or contended; retry.",
    FlexpriceError (FlexpriceErrorBody<'static>) => "An error in Flexprice's shape merged with this service's.",
    SvixError (crate::svix::SvixErrorBody) => "An error in Svix's shape: `code` (not_found, authentication_failed, insufficient_access, ...) and `detail`.",
    SvixInvalid (crate::svix::SvixValidationBody) => "Invalid input in Svix's shape: `detail` lists each field (`loc`).",
}
