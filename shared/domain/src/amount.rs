//! Credit and money quantities. Always `rust_decimal`, never floating point.
use rust_decimal::Decimal;
use std::str::FromStr;

/// Largest quantity the service accepts: 10^15 credits. Far above any real grant, far below
/// DynamoDB's 38 significant digits, so sums of many grants stay exact.
const MAX_MAGNITUDE: Decimal = Decimal::from_parts(0x_A4C6_8000, 0x_38D7E, 0, false, 0);
/// Most decimal places kept.
const MAX_SCALE: u32 = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a number")]
    NotANumber,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
    #[error("must be at most 1000000000000000")]
    TooLarge,
    #[error("must have at most 12 decimal places")]
    TooPrecise,
    #[error("must be a whole number")]
    NotWhole,
}

impl AmountError {
    /// Machine-readable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            AmountError::NotANumber => "invalid_type",
            AmountError::NotPositive | AmountError::Negative => "too_small",
            AmountError::TooLarge => "too_big",
            AmountError::TooPrecise => "too_precise",
            AmountError::NotWhole => "not_integer",
        }
    }
}

/// Parses a decimal from its textual form, accepting exponents (`1e3`) as JSON allows.
pub fn parse_decimal(text: &str) -> Result<Decimal, AmountError> {
    let text = text.trim();
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    };
    match parsed {
        Ok(d) => Ok(d.normalize()),
        // A syntactically valid number that rust_decimal cannot hold is too large (or too precise).
        Err(_) if looks_numeric(text) => {
            if text.contains('.') && !text.contains(['e', 'E']) {
                Err(AmountError::TooPrecise)
            } else {
                Err(AmountError::TooLarge)
            }
        }
        Err(_) => Err(AmountError::NotANumber),
    }
}

fn looks_numeric(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
}

fn bounded(d: Decimal) -> Result<Decimal, AmountError> {
    if d.abs() > MAX_MAGNITUDE {
        return Err(AmountError::TooLarge);
    }
    if d.scale() > MAX_SCALE {
        return Err(AmountError::TooPrecise);
    }
    Ok(d)
}

/// Declares a bounded decimal newtype whose values must satisfy `$ok`, else `$err`.
macro_rules! bounded_decimal {
    ($(#[$doc:meta])* $name:ident, $ok:expr, $err:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Decimal);

        impl $name {
            pub fn new(d: Decimal) -> Result<Self, AmountError> {
                let d = bounded(d.normalize())?;
                let ok: fn(Decimal) -> bool = $ok;
                if ok(d) { Ok(Self(d)) } else { Err($err) }
            }
            pub fn parse(text: &str) -> Result<Self, AmountError> {
                Self::new(parse_decimal(text)?)
            }
            pub fn value(&self) -> Decimal {
                self.0
            }
        }
    };
}

bounded_decimal!(
    /// A quantity of credits strictly greater than zero (a grant's amount, a usage amount).
    CreditAmount, |d| d > Decimal::ZERO, AmountError::NotPositive
);
bounded_decimal!(
    /// A quantity that may be zero but not negative (rollover bounds, prices).
    NonNegative, |d| d >= Decimal::ZERO, AmountError::Negative
);

/// Burn-down priority: lower burns first. A decimal because Metronome sends fractional priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(Decimal);

impl Priority {
    pub fn new(d: Decimal) -> Result<Self, AmountError> {
        Ok(Self(bounded(d.normalize())?))
    }
    /// Whole-number priorities only (the Paygentic surface types priority as an integer).
    pub fn parse_integer(text: &str) -> Result<Self, AmountError> {
        let d = parse_decimal(text)?;
        if !d.fract().is_zero() {
            return Err(AmountError::NotWhole);
        }
        Self::new(d)
    }
    pub fn value(&self) -> Decimal {
        self.0
    }
    /// The integer form, when the priority is whole.
    pub fn as_integer(&self) -> Option<i64> {
        use rust_decimal::prelude::ToPrimitive;
        if self.0.fract().is_zero() {
            self.0.to_i64()
        } else {
            None
        }
    }
}

impl FromStr for CreditAmount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_magnitude_is_ten_to_the_fifteen() {
        assert_eq!(MAX_MAGNITUDE, Decimal::from_str("1000000000000000").unwrap());
    }

    #[test]
    fn parses_json_number_forms_exactly() {
        assert_eq!(CreditAmount::parse("100.0").unwrap().value().to_string(), "100");
        assert_eq!(CreditAmount::parse("1e3").unwrap().value().to_string(), "1000");
        assert_eq!(CreditAmount::parse("0.1").unwrap().value().to_string(), "0.1");
    }

    #[test]
    fn rejects_bad_amounts() {
        assert_eq!(CreditAmount::parse("0"), Err(AmountError::NotPositive));
        assert_eq!(CreditAmount::parse("-5"), Err(AmountError::NotPositive));
        assert_eq!(CreditAmount::parse("1e400"), Err(AmountError::TooLarge));
        assert_eq!(CreditAmount::parse("1000000000000001"), Err(AmountError::TooLarge));
        assert_eq!(
            CreditAmount::parse("99999999999999999999999999999999"),
            Err(AmountError::TooLarge)
        );
        assert_eq!(CreditAmount::parse("0.0000000000001"), Err(AmountError::TooPrecise));
        assert_eq!(CreditAmount::parse("abc"), Err(AmountError::NotANumber));
    }

    #[test]
    fn priorities() {
        assert_eq!(Priority::parse_integer("3").unwrap().as_integer(), Some(3));
        assert_eq!(Priority::parse_integer("0.5"), Err(AmountError::NotWhole));
        assert_eq!(Priority::new(Decimal::new(5, 1)).unwrap().as_integer(), None);
    }
}
