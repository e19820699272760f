//! Grant purchases (`POST .../grants/purchase`) and their invoices (`GET /v2/invoices/{id}`).
use super::errors::invoice_not_found;
use super::{entitlement_in_path, ok, EntitlementPath};
use crate::body::JsonBody;
use crate::object_tag;
use crate::openapi::{
    BadGateway, BadRequest, Busy, Conflict, Forbidden, NotFound, TooLarge, Unauthorized, Unprocessable, Unsupported,
};
use crate::wire::{IdempotencyKey as IdempotencyKeySchema, NonNegativeAmount, Number, PositiveAmount};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::kernel::{Created, IdempotencyKey};
use grants_domain::purchases::{self, Invoice, InvoiceStatus, NewPurchase, PurchaseContext, RedirectUrl};
use grants_domain::{InvoiceId, Timestamp};
use http::StatusCode;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

object_tag!(PurchaseTag = "grant_purchase");
object_tag!(InvoiceTag = "invoice");
object_tag!(PurchaseMetadataTag = "grant_purchase");
object_tag!(NoCadence = "P0D");

/// The GrantPurchase object (a replay answers with the same invoice and session).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = GrantPurchase)]
pub struct PurchaseBody {
    #[schema(inline)]
    pub object: PurchaseTag,
    pub invoice_id: String,
    pub entitlement_id: String,
    #[schema(inline)]
    pub grant_amount: Number,
    /// The price as a decimal string with the currency's decimals (`"5.00"`).
    pub price: String,
    pub currency: String,
    /// The one payment session: where to send the customer, until when, and its amount in minor units.
    #[schema(inline)]
    pub payment_sessions: [PaymentSession; 1],
}

/// Where the customer pays.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSession {
    pub url: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub amount: i64,
}

impl From<&Invoice> for PurchaseBody {
    fn from(i: &Invoice) -> Self {
        Self {
            object: PurchaseTag,
            invoice_id: i.id.as_str().to_owned(),
            entitlement_id: i.entitlement_id.as_str().to_owned(),
            grant_amount: Number(i.grant_amount.value()),
            price: i.price.to_wire(),
            currency: i.price.currency().code().to_owned(),
            payment_sessions: [PaymentSession {
                url: i.session.url.clone(),
                expires_at: i.session.expires_at,
                amount: i.session.amount_minor,
            }],
        }
    }
}

/// An invoice's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Issued,
    Paid,
    Cancelled,
}

/// The Paygentic Invoice object for a purchase invoice: one line, no tax, no billing period of
/// its own (the period fields are the purchase time). Amounts are decimal strings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Invoice)]
pub struct InvoiceBody {
    pub id: String,
    #[schema(inline)]
    pub object: InvoiceTag,
    pub auto_approve: bool,
    #[schema(value_type = String, format = DateTime)]
    pub billing_anchor: Timestamp,
    #[schema(inline)]
    pub billing_cadence: NoCadence,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// ISO 4217, upper case.
    pub currency: String,
    #[schema(value_type = String, format = DateTime)]
    pub grace_period_end: Timestamp,
    pub grand_total: String,
    pub item_count: u32,
    pub merchant_id: String,
    pub paid_amount: String,
    #[schema(value_type = String, format = DateTime)]
    pub period_end: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub period_start: Timestamp,
    pub sequence_number: u32,
    #[schema(inline)]
    pub status: Status,
    pub subscription_id: String,
    pub customer_id: String,
    pub subtotal: String,
    pub total_tax: String,
    pub unpaid_amount: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub paid_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: Timestamp,
    /// The payment session's URL while the invoice is open.
    #[schema(required)]
    pub payment_url: Option<String>,
    #[schema(required)]
    pub failure_reason: Option<String>,
    pub entitlement_id: String,
    /// The grant, once paid.
    #[schema(required)]
    pub grant_id: Option<String>,
    #[schema(inline)]
    pub metadata: InvoiceMetadata,
    /// Handled by the sandbox provider (no money moved).
    pub sandbox: bool,
}

/// What the invoice is for.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceMetadata {
    #[serde(rename = "type")]
    #[schema(inline)]
    pub kind: PurchaseMetadataTag,
    pub entitlement_id: String,
    #[schema(required)]
    pub grant_id: Option<String>,
    #[schema(inline)]
    pub grant_amount: Number,
    /// Paid after the session had expired: the grant was still created.
    pub paid_late: bool,
    #[schema(required)]
    pub cancel_reason: Option<String>,
    /// Money given back so far by refunds (the currency's decimals, e.g. "2.50"; "0.00": none).
    pub refunded_amount: String,
    // Credits taken back from the grant for those refunds (only what was unspent). A doc comment
    // here would wrap the inline number schema in an allOf with an object.
    #[schema(inline)]
    pub credits_reclaimed: Number,
}

impl InvoiceBody {
    pub fn new(i: &Invoice, now: Timestamp) -> Self {
        let status = i.status_at(now);
        let price = i.price.to_wire();
        let zero = grants_domain::money::Price::new(Decimal::ZERO, i.price.currency())
            .map(|p| p.to_wire())
            .unwrap_or_default();
        let open = status == InvoiceStatus::Open;
        let paid = status == InvoiceStatus::Paid;
        let cancel_reason = match (status, &i.cancel_reason) {
            (InvoiceStatus::Canceled, Some(r)) => Some(r.clone()),
            (InvoiceStatus::Canceled, None) => Some("payment_session_expired".to_owned()),
            _ => None,
        };
        let grant_id = i.grant_id.as_ref().map(|g| g.as_str().to_owned());
        Self {
            id: i.id.as_str().to_owned(),
            object: InvoiceTag,
            auto_approve: true,
            billing_anchor: i.created_at,
            billing_cadence: NoCadence,
            created_at: i.created_at,
            currency: i.price.currency().code().to_uppercase(),
            grace_period_end: i.created_at,
            grand_total: price.clone(),
            item_count: 1,
            merchant_id: i.tenant.as_str().to_owned(),
            paid_amount: if paid { price.clone() } else { zero.clone() },
            period_end: i.created_at,
            period_start: i.created_at,
            sequence_number: 1,
            status: match status {
                InvoiceStatus::Open => Status::Issued,
                InvoiceStatus::Paid => Status::Paid,
                InvoiceStatus::Canceled => Status::Cancelled,
            },
            subscription_id: i.subscription_id.clone().unwrap_or_default(),
            customer_id: i.customer_id.clone(),
            subtotal: price.clone(),
            total_tax: zero.clone(),
            unpaid_amount: if open { price } else { zero.clone() },
            updated_at: i.updated_at,
            paid_at: i.paid_at,
            issued_at: i.created_at,
            due_at: i.session.expires_at,
            payment_url: open.then(|| i.session.url.clone()),
            failure_reason: i.failure_reason.clone(),
            entitlement_id: i.entitlement_id.as_str().to_owned(),
            grant_id: grant_id.clone(),
            metadata: InvoiceMetadata {
                kind: PurchaseMetadataTag,
                entitlement_id: i.entitlement_id.as_str().to_owned(),
                grant_id,
                grant_amount: Number(i.grant_amount.value()),
                paid_late: i.paid_late,
                cancel_reason,
                refunded_amount: grants_domain::money::Price::from_minor_units(i.refunded_minor, i.price.currency())
                    .map(|p| p.to_wire())
                    .unwrap_or(zero),
                credits_reclaimed: Number(i.credits_reclaimed),
            },
            sandbox: i.is_sandbox(),
        }
    }
}

/// The body of `POST /v1/entitlements/{id}/grants/purchase`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct PurchaseRequest {
    pub amount: PositiveAmount,
    /// A decimal string in the tenant's currency, at least its minimum per credit.
    #[schema(examples("5.00"))]
    pub price: String,
    pub idempotency_key: IdempotencyKeySchema,
    #[schema(format = DateTime, required = false)]
    pub effective_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(format = "uri", required = false)]
    pub success_url: String,
    #[schema(format = "uri", required = false)]
    pub cancel_url: String,
    #[schema(format = DateTime, required = false)]
    pub payment_expires_at: String,
    #[schema(required = false)]
    pub reset_max_rollover: NonNegativeAmount,
    #[schema(required = false)]
    pub reset_min_rollover: NonNegativeAmount,
}

/// Start a paid grant purchase: invoice + payment session.
///
/// An open invoice and its payment session; the grant exists once payment completes. Admin keys
/// only, unless the tenant allows members (403); the price must meet the tenant's minimum per
/// credit, and successUrl/cancelUrl its allowed redirect origins (400 naming the field). 503 when
/// the deployment has no payment provider.
#[utoipa::path(post, path = "/v1/entitlements/{id}/grants/purchase", operation_id = "purchaseGrant", tag = "paygentic",
    params(EntitlementPath), request_body = PurchaseRequest,
    responses(
        (status = 201, description = "The purchase (new, or the original on an identical replay).", body = PurchaseBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
        (status = 422, response = Unprocessable), (status = 502, response = BadGateway),
        (status = 503, response = Busy),
    ))]
pub async fn purchase_grant<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let entitlement_id = entitlement_in_path(req)?;
    let mut body = JsonBody::parse(req)?;
    let amount = body.required_amount("amount");
    let price = body.required_string("price");
    let idempotency_key = body.parsed("idempotencyKey", true, IdempotencyKey::parse);
    let effective_at = body.optional_timestamp("effectiveAt");
    let expires_at = body.optional_timestamp("expiresAt");
    let success_url = body.parsed("successUrl", false, RedirectUrl::parse);
    let cancel_url = body.parsed("cancelUrl", false, RedirectUrl::parse);
    let payment_expires_at = body.optional_timestamp("paymentExpiresAt");
    let reset_max_rollover = body.optional_non_negative("resetMaxRollover");
    let reset_min_rollover = body.optional_non_negative("resetMinRollover");
    body.finish()?;
    let (Some(amount), Some(price), Some(idempotency_key)) = (amount, price, idempotency_key) else {
        return Err(ApiError::internal());
    };
    let request = NewPurchase {
        entitlement_id,
        amount,
        price,
        idempotency_key,
        effective_at,
        expires_at,
        success_url,
        cancel_url,
        payment_expires_at,
        reset_max_rollover,
        reset_min_rollover,
    };
    let base_url = app.base_url(req);
    let store = app.store.as_ref();
    let ctx = PurchaseContext {
        tenant_store: store,
        entitlement_store: store,
        purchase_store: store,
        clock: app.clock.as_ref(),
        provider: app.payments.as_ref(),
        tenants: &app.tenants,
        base_url: base_url.as_deref(),
    };
    let created = purchases::purchase(&ctx, who, request).await?;
    if let Created::Replayed(i) = &created {
        tracing::info!(invoice = %i.id, "idempotent replay");
    }
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &PurchaseBody::from(&created.into_inner()),
    ))
}

/// One invoice (a purchase's), with its grant once paid.
#[utoipa::path(get, path = "/v2/invoices/{invoiceId}", operation_id = "getInvoice", tag = "payments",
    params(("invoiceId" = String, Path, description = "An invoice id (inv_...).")),
    responses(
        (status = 200, description = "A purchase's invoice (Paygentic's Invoice object).", body = InvoiceBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub async fn get_invoice<S: Store>(app: &App<S>, who: &Principal, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let id = InvoiceId::parse(req.param("invoiceId")).map_err(|_| invoice_not_found())?;
    let invoice = purchases::get_invoice(app.store.as_ref(), &who.tenant, &id).await?;
    ok(&InvoiceBody::new(&invoice, app.clock.now()))
}
