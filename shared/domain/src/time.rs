//! Instants: RFC 3339 on the wire (any offset accepted, UTC `Z` rendered), microsecond precision.
use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Utc};
use std::fmt;

/// A UTC instant, truncated to microseconds so that what is stored reads back identical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("must be an RFC 3339 date-time such as 2026-03-14T10:30:00Z")]
    Format,
    #[error("must be between the years 1970 and 9999")]
    Range,
}

/// Serialized in its wire form ([`Timestamp::to_rfc3339`]).
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Timestamp {
    /// 1970-01-01T00:00:00Z, the earliest instant there is.
    pub const EPOCH: Timestamp = Timestamp(DateTime::UNIX_EPOCH);

    pub fn from_datetime(dt: DateTime<Utc>) -> Result<Self, TimestampError> {
        if !(1970..=9999).contains(&dt.year()) {
            return Err(TimestampError::Range);
        }
        Ok(Self(dt.trunc_subsecs(6)))
    }

    /// Parses RFC 3339 with any offset.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let dt = DateTime::parse_from_rfc3339(s.trim()).map_err(|_| TimestampError::Format)?;
        Self::from_datetime(dt.with_timezone(&Utc))
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Wire form: `2026-03-14T10:30:00Z`, fractional seconds only when present.
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// This instant moved by `seconds` (negative: earlier); None outside the supported range.
    pub fn plus_seconds(&self, seconds: i64) -> Option<Self> {
        let dt = self.0.checked_add_signed(chrono::TimeDelta::try_seconds(seconds)?)?;
        Self::from_datetime(dt).ok()
    }

    /// The instant `seconds` after the Unix epoch (a provider's `created`); None outside the
    /// supported range.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        Self::from_datetime(DateTime::from_timestamp(seconds, 0)?).ok()
    }

    /// Whole seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    /// The start (00:00:00Z) of this instant's UTC day.
    pub fn day_start(&self) -> Self {
        let midnight = self.0.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        Self(midnight)
    }

    /// Storage form: fixed width, so that string order is time order.
    pub fn to_storage(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Where "now" comes from; tests substitute their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now().trunc_subsecs(6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_offsets_and_renders_utc() {
        let t = Timestamp::parse("2026-03-14T12:30:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-14T10:30:00Z");
        assert_eq!(t.to_storage(), "2026-03-14T10:30:00.000000Z");
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        assert_eq!(Timestamp::parse("yesterday"), Err(TimestampError::Format));
        assert_eq!(Timestamp::parse("2026-02-30T00:00:00Z"), Err(TimestampError::Format));
        assert_eq!(Timestamp::parse("1969-12-31T23:59:59Z"), Err(TimestampError::Range));
    }

    #[test]
    fn storage_round_trips() {
        let t = Timestamp::parse("2026-03-14T10:30:00.123456789Z").unwrap();
        assert_eq!(Timestamp::parse(&t.to_storage()).unwrap(), t);
    }
}
