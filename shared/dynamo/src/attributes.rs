//! Attribute values to and from domain types: the writers (`s`, `n`, `ts`, `map_ss`) and [`Reader`].

use crate::prelude::*;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(d: Decimal) -> AttributeValue {
    AttributeValue::N(d.to_string())
}

pub(crate) fn ts(t: Timestamp) -> AttributeValue {
    s(t.to_storage())
}

pub(crate) fn map_ss(m: &BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), s(v.clone()))).collect())
}

/// Reads typed attributes out of an item, turning anything unexpected into [`StoreError::Corrupt`].
pub(crate) struct Reader<'a>(pub(crate) &'a Item);

impl Reader<'_> {
    pub(crate) fn opt_s(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
    }
    pub(crate) fn s(&self, k: &str) -> Result<&str, StoreError> {
        self.opt_s(k)
            .ok_or_else(|| StoreError::Corrupt(format!("missing string {k}")))
    }
    pub(crate) fn opt_dec(&self, k: &str) -> Result<Option<Decimal>, StoreError> {
        match self.0.get(k) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => Decimal::from_str(v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("bad number {k}"))),
            Some(_) => Err(StoreError::Corrupt(format!("{k} is not a number"))),
        }
    }
    pub(crate) fn dec(&self, k: &str) -> Result<Decimal, StoreError> {
        self.opt_dec(k)?
            .ok_or_else(|| StoreError::Corrupt(format!("missing number {k}")))
    }
    pub(crate) fn opt_ts(&self, k: &str) -> Result<Option<Timestamp>, StoreError> {
        self.opt_s(k)
            .map(|v| Timestamp::parse(v).map_err(|_| StoreError::Corrupt(format!("bad time {k}"))))
            .transpose()
    }
    pub(crate) fn ts(&self, k: &str) -> Result<Timestamp, StoreError> {
        self.opt_ts(k)?
            .ok_or_else(|| StoreError::Corrupt(format!("missing time {k}")))
    }
    pub(crate) fn bool(&self, k: &str) -> bool {
        self.0.get(k).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
    }
    /// A version counter; absent is 0.
    pub(crate) fn version(&self, k: &str) -> Result<u64, StoreError> {
        match self.opt_dec(k)? {
            None => Ok(0),
            Some(d) => u64::try_from(d).map_err(|_| StoreError::Corrupt(format!("bad version {k}"))),
        }
    }
    pub(crate) fn list_s(&self, k: &str) -> Vec<String> {
        self.0
            .get(k)
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default()
    }
    pub(crate) fn map_ss(&self, k: &str) -> BTreeMap<String, String> {
        self.0
            .get(k)
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub(crate) fn corrupt<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}
