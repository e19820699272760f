//! Billable metrics (`/v0/billableMetrics`): create (admin), list, get. Which usage events burn
//! credits and by how much; the rules are [`grants_domain::meters`]'.
use super::errors::metric_not_found;
use super::{ok, List};
use crate::body::{JsonBody, QueryParams};
use crate::object_tag;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, TooLarge, Unauthorized, Unsupported};
use crate::wire::{one_of, Label as LabelSchema};
use crate::{ApiError, ApiRequest, ApiResponse, App, Store};
use grants_domain::auth::Principal;
use grants_domain::kernel::{Created, Label};
use grants_domain::meters::{self, Aggregation, BillableMetric, MetricFilter, MetricId, NewMetric, ValuePath};
use grants_domain::Timestamp;
use http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::{IntoParams, ToSchema};

object_tag!(MetricTag = "billableMetric");

/// A billable metric in Paygentic's shape. `productId` is `""` for a metric created without one
/// (Paygentic's SDK requires a string); `itemId` is always present, `null` when untagged.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BillableMetric)]
pub struct MetricBody {
    pub id: String,
    #[schema(inline)]
    pub object: MetricTag,
    #[schema(schema_with = served_aggregation)]
    pub aggregation: &'static str,
    pub name: String,
    pub description: String,
    pub unit: String,
    pub event_type: String,
    /// For SUM: where the amount is in each event's `data`.
    #[schema(required)]
    pub value_property: Option<String>,
    pub merchant_id: String,
    pub product_id: String,
    #[schema(required)]
    pub item_id: Option<String>,
    #[schema(required)]
    pub group_by: Option<BTreeMap<String, String>>,
    #[schema(value_type = Option<String>, format = DateTime, required)]
    pub event_from: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&BillableMetric> for MetricBody {
    fn from(m: &BillableMetric) -> Self {
        let d = &m.definition;
        Self {
            id: m.id.as_str().to_owned(),
            object: MetricTag,
            aggregation: d.aggregation.name(),
            name: d.name.clone(),
            description: d.description.clone(),
            unit: d.unit.clone(),
            event_type: d.event_type.clone(),
            value_property: d.aggregation.value_property().map(|p| p.as_str().to_owned()),
            merchant_id: m.tenant.as_str().to_owned(),
            product_id: d.product_id.clone().unwrap_or_default(),
            item_id: d.item_id.clone(),
            group_by: (!d.group_by.is_empty()).then(|| {
                d.group_by
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().to_owned()))
                    .collect()
            }),
            event_from: d.event_from,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

fn served_aggregation() -> ObjectBuilder {
    one_of(&["SUM", "COUNT"], false)
}

fn any_aggregation() -> ObjectBuilder {
    one_of(Aggregation::ALL, false)
}

/// The body of `POST /v0/billableMetrics`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", as = NewBillableMetric)]
pub struct NewMetricRequest {
    /// SUM or COUNT; Paygentic's other aggregations are refused (400 saying why).
    #[schema(schema_with = any_aggregation)]
    pub aggregation: String,
    #[schema(max_length = 1000)]
    pub description: String,
    /// The key's tenant; another organization's id is not found (404).
    pub merchant_id: String,
    pub name: LabelSchema,
    pub unit: LabelSchema,
    /// The CloudEvents `type` this metric meters: one metric per type.
    pub event_type: LabelSchema,
    #[schema(required = false)]
    pub product_id: LabelSchema,
    #[schema(required = false)]
    pub item_id: LabelSchema,
    /// Required for SUM: `$.` and member names, such as `$.tokens`.
    #[schema(required = false, pattern = r"^\$\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")]
    pub value_property: String,
    #[schema(required = false)]
    pub group_by: BTreeMap<String, String>,
    #[schema(format = DateTime, required = false)]
    pub event_from: String,
}

/// `id` in the path: a billable metric.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MetricPath {
    /// A billable metric id (bm_...).
    pub id: String,
}

/// A metric's description: free text, possibly empty, at most 1,000 characters, no control
/// characters but line breaks and tabs.
fn description(raw: &str) -> Result<String, &'static str> {
    if raw.chars().count() > 1000 {
        Err("must be at most 1000 characters")
    } else if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        Err("must not contain control characters")
    } else {
        Ok(raw.to_owned())
    }
}

/// The create request, every field checked (all errors at once).
fn parse_new_metric(req: &ApiRequest) -> Result<NewMetric, ApiError> {
    let mut body = JsonBody::parse(req)?;
    let aggregation = body.required_string("aggregation");
    let description = body.parsed("description", true, description);
    let merchant_id = body.required_string("merchantId");
    let name = body.parsed("name", true, Label::parse);
    let unit = body.parsed("unit", true, Label::parse);
    let event_type = body.parsed("eventType", true, Label::parse);
    // `""` is absent: a metric created without a product answers `productId: ""`, and may be sent back.
    let optional_label = |raw: &str| (!raw.is_empty()).then(|| Label::parse(raw)).transpose();
    let product_id = body.parsed("productId", false, optional_label).flatten();
    let item_id = body.parsed("itemId", false, optional_label).flatten();
    let value_property = body.parsed("valueProperty", false, ValuePath::parse);
    let value_property_sent = body.has("valueProperty");
    let group_by = body
        .optional_string_map("groupBy")
        .into_iter()
        .filter_map(|(k, v)| match ValuePath::parse(&v) {
            Ok(p) => Some((k, p)),
            Err(e) => {
                body.reject(&format!("groupBy.{k}"), "invalid", e.to_string());
                None
            }
        })
        .collect();
    let event_from = body.optional_timestamp("eventFrom");
    let aggregation = aggregation.and_then(|a| {
        // A bad valueProperty was named already; do not also call it missing.
        if a == "SUM" && value_property_sent && value_property.is_none() {
            return None;
        }
        Aggregation::parse(&a, value_property)
            .map_err(|e| match e {
                meters::AggregationError::ValuePropertyRequired => {
                    body.reject("valueProperty", "required", e.to_string())
                }
                meters::AggregationError::Unsupported(_) => body.reject("aggregation", "unsupported", e.to_string()),
                meters::AggregationError::Unknown => body.reject("aggregation", "invalid", e.to_string()),
            })
            .ok()
    });
    body.finish()?;
    let (Some(aggregation), Some(description), Some(merchant_id), Some(name), Some(unit), Some(event_type)) =
        (aggregation, description, merchant_id, name, unit, event_type)
    else {
        return Err(ApiError::internal());
    };
    Ok(NewMetric {
        merchant_id,
        name,
        description,
        unit,
        event_type,
        aggregation,
        product_id,
        item_id,
        group_by,
        event_from,
    })
}

/// Create a billable metric.
///
/// Admin only. One metric per event type: creating an identical one again answers 201 with the
/// first; a different one for a metered event type is 409.
#[utoipa::path(post, path = "/v0/billableMetrics", operation_id = "createBillableMetric", tag = "paygentic",
    request_body = NewMetricRequest,
    responses(
        (status = 201, description = "The billable metric (new, or the identical one that exists).", body = MetricBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = Unsupported),
    ))]
pub async fn create_billable_metric<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let new = parse_new_metric(req)?;
    let created = meters::create_metric(app.store.as_ref(), app.clock.as_ref(), &who.tenant, new).await?;
    if let Created::Replayed(m) = &created {
        tracing::info!(metric = %m.id, "identical billable metric exists");
    }
    Ok(ApiResponse::json(
        StatusCode::CREATED,
        &MetricBody::from(&created.into_inner()),
    ))
}

/// List billable metrics.
#[utoipa::path(get, path = "/v0/billableMetrics", operation_id = "listBillableMetrics", tag = "paygentic",
    params(
        ("merchantId" = String, Query, description = "The key's tenant (another organization's: 404)."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100),
        ("offset" = Option<usize>, Query, maximum = 1000000),
        ("productId" = Option<String>, Query),
        ("itemId" = Option<String>, Query)),
    responses(
        (status = 200, description = "A page of billable metrics, in id order.", body = List<MetricBody>),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub async fn list_billable_metrics<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let mut q = QueryParams::new(req);
    let limit = q.int("limit", 1, 100, 10);
    let offset = q.int("offset", 0, 1_000_000, 0);
    let merchant = q.string("merchantId").filter(|m| !m.is_empty());
    let filter = MetricFilter {
        product_id: q.string("productId").map(str::to_owned),
        item_id: q.string("itemId").map(str::to_owned),
    };
    q.finish()?;
    let merchant = merchant.ok_or_else(|| ApiError::field("merchantId", "required", "is required"))?;
    let page = meters::list_metrics(app.store.as_ref(), &who.tenant, merchant, &filter, limit, offset).await?;
    ok(&List::<MetricBody>::new(&page))
}

/// One billable metric.
#[utoipa::path(get, path = "/v0/billableMetrics/{id}", operation_id = "getBillableMetric", tag = "paygentic",
    params(MetricPath),
    responses(
        (status = 200, description = "The billable metric.", body = MetricBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ))]
pub async fn get_billable_metric<S: Store>(
    app: &App<S>,
    who: &Principal,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let id = MetricId::parse(req.param("id")).ok_or_else(metric_not_found)?;
    let metric = meters::get_metric(app.store.as_ref(), &who.tenant, &id).await?;
    ok(&MetricBody::from(&metric))
}
