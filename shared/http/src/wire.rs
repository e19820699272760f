//! What every surface's JSON shares: exact decimals as JSON numbers, the constant `object` tags,
//! pagination, the request-side schemas the hand parser ([`crate::body`]) enforces (labels,
//! amounts), and the schema helpers. Each response body is a `Serialize` + `ToSchema` type, so what
//! a handler writes and what `openapi.yaml` documents are one definition ([`crate::openapi`]).
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use std::str::FromStr;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// A decimal as an exact JSON number, trailing zeros dropped (`1.50` is `1.5`): serde_json's
/// arbitrary precision keeps every digit, so no amount passes through a float. Schema `number`.
/// Use `#[schema(inline)]` on fields, so documents say `type: number` rather than a reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number(pub Decimal);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::Number::from_str(&self.0.normalize().to_string())
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl PartialSchema for Number {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Number).build().into()
    }
}
impl ToSchema for Number {}

impl From<Decimal> for Number {
    fn from(d: Decimal) -> Self {
        Self(d)
    }
}

/// A unit type that serializes as one fixed string and documents itself as `const: "<value>"`:
/// the `object` tag of a resource (`object_tag!(GrantTag = "grant")`). Fields use `#[schema(inline)]`.
#[macro_export]
macro_rules! object_tag {
    ($(#[$meta:meta])* $name:ident = $value:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($value)
            }
        }
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                $crate::wire::constant(serde_json::Value::from($value))
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

/// A schema with one allowed value: `{type: string, enum: [grant]}` (OpenAPI's `const`, which utoipa
/// does not build).
pub fn constant(value: serde_json::Value) -> RefOr<Schema> {
    let kind = if value.is_boolean() {
        Type::Boolean
    } else {
        Type::String
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .enum_values(Some([value]))
        .build()
        .into()
}

object_tag!(
    /// `"list"`.
    ListTag = "list"
);

/// A string with one of `values` (and null when `nullable`): `{type: string, enum: [...]}`.
pub fn one_of(values: &[&str], nullable: bool) -> ObjectBuilder {
    let mut all: Vec<serde_json::Value> = values.iter().map(|v| serde_json::Value::from(*v)).collect();
    let kind = if nullable {
        all.push(serde_json::Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new().schema_type(kind).enum_values(Some(all))
}

/// `{type: "null"}`: a key always present and always null (Paygentic's entitlement `config`).
pub fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Null)
}

/// `{type: [string, number]}`: a decimal a client may send as either (read exactly, never as a float).
pub fn decimal_input() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Number]))
}

/// `{type: [string, number, "null"]}`.
pub fn nullable_decimal() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Null]))
}

/// A page's position: `{total, limit, offset}` (Paygentic; Flexprice names its keys the same).
#[derive(Serialize, ToSchema)]
pub struct Pagination {
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
}

/// A label: an id or name chosen by the client, 1 to 255 characters.
pub struct Label;
impl PartialSchema for Label {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .build()
            .into()
    }
}
impl ToSchema for Label {}

/// An idempotency key: 1 to 255 characters, chosen by the client, one per intended object.
pub struct IdempotencyKey;
impl PartialSchema for IdempotencyKey {
    fn schema() -> RefOr<Schema> {
        Label::schema()
    }
}
impl ToSchema for IdempotencyKey {}

/// A credit amount above zero, as a JSON number (read exactly).
pub struct PositiveAmount;
impl PartialSchema for PositiveAmount {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .exclusive_minimum(Some(0))
            .build()
            .into()
    }
}
impl ToSchema for PositiveAmount {}

/// A credit amount of zero or more, as a JSON number (read exactly).
pub struct NonNegativeAmount;
impl PartialSchema for NonNegativeAmount {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0))
            .build()
            .into()
    }
}
impl ToSchema for NonNegativeAmount {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_exact_and_drops_trailing_zeros() {
        let n = |s: &str| serde_json::to_string(&Number(Decimal::from_str(s).unwrap())).unwrap();
        assert_eq!(n("1.50"), "1.5");
        assert_eq!(n("0.000000000000000000000000001"), "0.000000000000000000000000001");
        assert_eq!(n("79228162514264337593543950335"), "79228162514264337593543950335");
        assert_eq!(n("-2"), "-2");
    }

    #[test]
    fn an_object_tag_is_its_string() {
        assert_eq!(serde_json::to_string(&ListTag).unwrap(), "\"list\"");
    }
}
