//! Reading client input into domain newtypes, collecting every invalid field with its name.
use crate::error::{ApiError, FieldError};
use crate::ApiRequest;
use grants_domain::amount::AmountError;
use grants_domain::{CreditAmount, NonNegative, Priority, Timestamp};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A JSON object body being read field by field. Each getter records a [`FieldError`] instead of
/// failing, so one response names every bad field; [`JsonBody::finish`] turns them into a 400.
pub struct JsonBody {
    obj: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl JsonBody {
    /// Parses the body. Empty, malformed, or non-object JSON is a 400 naming `body`.
    pub fn parse(req: &ApiRequest) -> Result<Self, ApiError> {
        if req.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::field("body", "required", "must be a JSON object"));
        }
        Self::from_slice(&req.body)
    }

    /// Parses raw JSON bytes that must hold an object.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(obj)) => Ok(Self {
                obj,
                errors: Vec::new(),
            }),
            Ok(_) => Err(ApiError::field("body", "invalid_type", "must be a JSON object")),
            Err(e) => Err(ApiError::field(
                "body",
                "invalid_json",
                format!("is not valid JSON ({e})"),
            )),
        }
    }

    fn fail(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// Records an error for a field the caller validated itself.
    pub fn reject(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.fail(field, code, message);
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    fn number_text(&mut self, name: &str) -> Option<String> {
        match self.present(name) {
            None => None,
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.fail(name, "invalid_type", "must be a number");
                None
            }
        }
    }

    fn amount_error(&mut self, name: &str, e: AmountError) {
        self.fail(name, e.code(), e.to_string());
    }

    pub fn required_amount(&mut self, name: &str) -> Option<CreditAmount> {
        if self.present(name).is_none() {
            self.fail(name, "required", "is required");
            return None;
        }
        let text = self.number_text(name)?;
        CreditAmount::parse(&text).map_err(|e| self.amount_error(name, e)).ok()
    }

    pub fn optional_non_negative(&mut self, name: &str) -> Option<NonNegative> {
        let text = self.number_text(name)?;
        NonNegative::parse(&text).map_err(|e| self.amount_error(name, e)).ok()
    }

    pub fn optional_integer_priority(&mut self, name: &str) -> Option<Priority> {
        let text = self.number_text(name)?;
        Priority::parse_integer(&text)
            .map_err(|e| self.amount_error(name, e))
            .ok()
    }

    pub fn required_string(&mut self, name: &str) -> Option<String> {
        match self.present(name) {
            None => {
                self.fail(name, "required", "is required");
                None
            }
            Some(_) => self.optional_string(name),
        }
    }

    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.present(name) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.fail(name, "invalid_type", "must be a string");
                None
            }
        }
    }

    /// Reads a string field and parses it with `parse`, recording its error under `name`.
    pub fn parsed<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let raw = if required {
            self.required_string(name)
        } else {
            self.optional_string(name)
        }?;
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(name, "invalid", e.to_string());
                None
            }
        }
    }

    pub fn optional_timestamp(&mut self, name: &str) -> Option<Timestamp> {
        self.parsed(name, false, Timestamp::parse)
    }

    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.present(name) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(name, "invalid_type", "must be a boolean");
                None
            }
        }
    }

    /// A map of string to string (metadata). At most 50 keys of up to 40 characters, values up to 500.
    pub fn optional_string_map(&mut self, name: &str) -> BTreeMap<String, String> {
        let Some(value) = self.present(name).cloned() else {
            return BTreeMap::new();
        };
        let Value::Object(map) = value else {
            self.fail(name, "invalid_type", "must be an object of strings");
            return BTreeMap::new();
        };
        if map.len() > 50 {
            self.fail(name, "too_big", "must have at most 50 keys");
            return BTreeMap::new();
        }
        let mut out = BTreeMap::new();
        for (k, v) in map {
            match v {
                Value::String(s) if k.chars().count() <= 40 && s.chars().count() <= 500 && !k.is_empty() => {
                    out.insert(k, s);
                }
                Value::String(_) => self.fail(&format!("{name}.{k}"), "too_big", "key or value too long"),
                _ => self.fail(&format!("{name}.{k}"), "invalid_type", "must be a string"),
            }
        }
        out
    }

    /// Whether the field is present and not null.
    /// The field is sent as `null`.
    pub fn is_null(&self, name: &str) -> bool {
        self.obj.get(name).is_some_and(Value::is_null)
    }

    /// The field is sent as `{}`.
    pub fn is_empty_object(&self, name: &str) -> bool {
        self.obj.get(name).and_then(Value::as_object).is_some_and(Map::is_empty)
    }

    /// Some field was found invalid already.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.present(name).is_some()
    }

    /// A whole number from `min` to `max`, when present.
    pub fn optional_integer(&mut self, name: &str, min: u64, max: u64) -> Option<u64> {
        self.present(name)?;
        self.required_integer(name, min, max)
    }

    /// A whole number from `min` to `max`, required.
    pub fn required_integer(&mut self, name: &str, min: u64, max: u64) -> Option<u64> {
        if self.present(name).is_none() {
            self.fail(name, "required", "is required");
            return None;
        }
        let text = self.number_text(name)?;
        match grants_domain::amount::parse_decimal(&text) {
            Ok(d) if d.fract().is_zero() => match u64::try_from(d) {
                Ok(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    self.fail(name, "out_of_range", format!("must be from {min} to {max}"));
                    None
                }
            },
            Ok(_) => {
                self.fail(name, "not_integer", "must be a whole number");
                None
            }
            Err(e) => {
                self.amount_error(name, e);
                None
            }
        }
    }

    /// A decimal given as a string or a JSON number, returned as its exact text.
    pub fn decimal_text(&mut self, name: &str, required: bool) -> Option<String> {
        match self.present(name) {
            None => {
                if required {
                    self.fail(name, "required", "is required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.fail(name, "invalid_type", "must be a decimal string");
                None
            }
        }
    }

    pub fn required_non_negative(&mut self, name: &str) -> Option<NonNegative> {
        if self.present(name).is_none() {
            self.fail(name, "required", "is required");
            return None;
        }
        self.optional_non_negative(name)
    }

    /// Any decimal priority (Metronome sends floats), required.
    pub fn required_priority(&mut self, name: &str) -> Option<Priority> {
        if self.present(name).is_none() {
            self.fail(name, "required", "is required");
            return None;
        }
        let text = self.number_text(name)?;
        grants_domain::amount::parse_decimal(&text)
            .and_then(Priority::new)
            .map_err(|e| self.amount_error(name, e))
            .ok()
    }

    pub fn required_timestamp(&mut self, name: &str) -> Option<Timestamp> {
        self.parsed(name, true, Timestamp::parse)
    }

    /// An array of up to 100 non-empty strings of up to 255 characters; absent is empty.
    pub fn string_list(&mut self, name: &str) -> Vec<String> {
        let Some(value) = self.present(name).cloned() else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.fail(name, "invalid_type", "must be an array of strings");
            return Vec::new();
        };
        if items.len() > 100 {
            self.fail(name, "too_big", "must have at most 100 items");
            return Vec::new();
        }
        let mut out = Vec::new();
        for (i, v) in items.into_iter().enumerate() {
            match v {
                Value::String(s) if !s.is_empty() && s.chars().count() <= 255 => out.push(s),
                _ => self.fail(
                    &format!("{name}[{i}]"),
                    "invalid",
                    "must be a non-empty string of at most 255 characters",
                ),
            }
        }
        out
    }

    /// A nested object read field by field; its errors are reported under `name.`.
    pub fn object(&mut self, name: &str, required: bool) -> Option<JsonBody> {
        match self.present(name).cloned() {
            None => {
                if required {
                    self.fail(name, "required", "is required");
                }
                None
            }
            Some(Value::Object(obj)) => Some(JsonBody {
                obj,
                errors: Vec::new(),
            }),
            Some(_) => {
                self.fail(name, "invalid_type", "must be an object");
                None
            }
        }
    }

    /// A nested object as it came (free-form data such as an event's `data`).
    pub fn raw_object(&mut self, name: &str, required: bool) -> Option<Map<String, Value>> {
        self.object(name, required).map(|o| o.obj)
    }

    /// Takes over a nested object's errors, naming them `prefix.field`.
    pub fn absorb(&mut self, prefix: &str, child: JsonBody) {
        for mut e in child.errors {
            e.field = format!("{prefix}.{}", e.field);
            self.errors.push(e);
        }
    }

    /// Ok when every field read so far was valid.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// Query-string parameters with range checks.
pub struct QueryParams<'a> {
    req: &'a ApiRequest,
    errors: Vec<FieldError>,
}

impl<'a> QueryParams<'a> {
    pub fn new(req: &'a ApiRequest) -> Self {
        Self {
            req,
            errors: Vec::new(),
        }
    }

    pub fn int(&mut self, name: &str, min: usize, max: usize, default: usize) -> usize {
        match self.req.query_value(name) {
            None | Some("") => default,
            Some(raw) => match raw.parse::<usize>() {
                Ok(v) if (min..=max).contains(&v) => v,
                _ => {
                    self.errors.push(FieldError::new(
                        name,
                        "out_of_range",
                        format!("must be an integer from {min} to {max}"),
                    ));
                    default
                }
            },
        }
    }

    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.req.query_value(name) {
            None | Some("") => default,
            Some("true") | Some("True") | Some("1") => true,
            Some("false") | Some("False") | Some("0") => false,
            Some(_) => {
                self.errors
                    .push(FieldError::new(name, "invalid_type", "must be true or false"));
                default
            }
        }
    }

    /// A comma-separated list (`kinds=a,b`); absent is empty.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.string(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records an error for a parameter the caller validated itself.
    pub fn reject(&mut self, name: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, code, message));
    }

    pub fn string(&self, name: &str) -> Option<&'a str> {
        self.req.query_value(name).filter(|v| !v.is_empty())
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}
