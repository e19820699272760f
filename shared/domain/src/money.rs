//! Money: currencies with their minor units, and purchase prices. Exact decimals only.
use rust_decimal::Decimal;
use std::fmt;

/// An ISO 4217 currency the service can charge in, with its number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_digits: u32,
}

/// The currencies accepted, lowercase as Paygentic and Stripe spell them.
const CURRENCIES: &[(&str, u32)] = &[
    ("usd", 2),
    ("eur", 2),
    ("gbp", 2),
    ("cad", 2),
    ("aud", 2),
    ("nzd", 2),
    ("chf", 2),
    ("sek", 2),
    ("nok", 2),
    ("dkk", 2),
    ("pln", 2),
    ("czk", 2),
    ("sgd", 2),
    ("hkd", 2),
    ("inr", 2),
    ("brl", 2),
    ("mxn", 2),
    ("zar", 2),
    ("jpy", 0),
    ("krw", 0),
    ("vnd", 0),
    ("clp", 0),
    ("isk", 0),
    ("bhd", 3),
    ("kwd", 3),
    ("jod", 3),
    ("omr", 3),
    ("tnd", 3),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a supported ISO 4217 currency code")]
pub struct CurrencyError;

impl Currency {
    pub const USD: Currency = Currency {
        code: "usd",
        minor_digits: 2,
    };

    /// Accepts a code in any case (`USD`, `usd`).
    pub fn parse(s: &str) -> Result<Self, CurrencyError> {
        let lower = s.trim().to_ascii_lowercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == lower)
            .map(|(code, minor_digits)| Currency {
                code,
                minor_digits: *minor_digits,
            })
            .ok_or(CurrencyError)
    }
    /// Lowercase code (`usd`).
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// A price in a currency: at least 0.50, at most 999,999,999.99, with no more decimals than the
/// currency's minor unit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    value: Decimal,
    currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("must be a decimal string such as \"5.00\"")]
    Format,
    #[error("must be at least \"0.50\"")]
    TooSmall,
    #[error("must be at most \"999999999.99\"")]
    TooLarge,
    #[error("must have at most {0} decimal places for this currency")]
    TooPrecise(u32),
}

impl PriceError {
    pub fn code(&self) -> &'static str {
        match self {
            PriceError::Format => "invalid_format",
            PriceError::TooSmall => "too_small",
            PriceError::TooLarge => "too_big",
            PriceError::TooPrecise(_) => "too_precise",
        }
    }
}

impl Price {
    /// Parses the wire form: digits, optionally a point and digits. No sign, exponent or spaces.
    pub(crate) fn parse(text: &str, currency: Currency) -> Result<Self, PriceError> {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 12 || !digits_ok(whole) || !digits_ok(frac) {
            return Err(PriceError::Format);
        }
        if text.contains('.') && frac.is_empty() {
            return Err(PriceError::Format);
        }
        let value = Decimal::from_str_exact(text).map_err(|_| PriceError::Format)?;
        // "5.10" is fine in USD; "5.105" is not. Trailing zeros do not count as precision.
        if value.normalize().scale() > currency.minor_digits {
            return Err(PriceError::TooPrecise(currency.minor_digits));
        }
        if value < Decimal::new(50, 2) {
            return Err(PriceError::TooSmall);
        }
        if value > Decimal::new(99_999_999_999, 2) {
            return Err(PriceError::TooLarge);
        }
        Self::new(value, currency)
    }

    /// A stored price, checked again.
    pub fn new(value: Decimal, currency: Currency) -> Result<Self, PriceError> {
        let mut value = value.normalize();
        if value.scale() > currency.minor_digits {
            return Err(PriceError::TooPrecise(currency.minor_digits));
        }
        value.rescale(currency.minor_digits);
        Ok(Self { value, currency })
    }

    pub fn value(&self) -> Decimal {
        self.value
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount of `minor` of the currency's minor unit: 250 USD cents is "2.50".
    pub fn from_minor_units(minor: i64, currency: Currency) -> Result<Self, PriceError> {
        Self::new(Decimal::new(minor, currency.minor_digits), currency)
    }

    /// The amount in the currency's minor unit: "5.00" USD is 500, "500" JPY is 500.
    pub fn minor_units(&self) -> i64 {
        // The value carries exactly `minor_digits` decimals, so its mantissa is the minor amount.
        i64::try_from(self.value.mantissa()).unwrap_or(i64::MAX)
    }

    /// The wire form with exactly the currency's decimals: "5.00".
    pub fn to_wire(&self) -> String {
        self.value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_the_currency() {
        let usd = Currency::parse("USD").unwrap();
        let p = Price::parse("5.00", usd).unwrap();
        assert_eq!((p.minor_units(), p.to_wire()), (500, "5.00".to_owned()));
        assert_eq!(Price::parse("5", usd).unwrap().to_wire(), "5.00");
        assert_eq!(Price::parse("0.5", usd).unwrap().minor_units(), 50);
        assert_eq!(Price::parse("12.340", usd).unwrap().minor_units(), 1234);
        assert_eq!(Price::parse("0.49", usd), Err(PriceError::TooSmall));
        assert_eq!(Price::parse("5.001", usd), Err(PriceError::TooPrecise(2)));
        for bad in ["", "5.", ".5", "-5", "5e2", " 5", "5,00", "1.2.3", "abc"] {
            assert_eq!(Price::parse(bad, usd), Err(PriceError::Format), "{bad:?}");
        }
        assert_eq!(Price::parse("1000000000", usd), Err(PriceError::TooLarge));
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(Price::parse("500", jpy).unwrap().minor_units(), 500);
        assert_eq!(Price::parse("0.50", jpy), Err(PriceError::TooPrecise(0)));
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Price::parse("1.234", kwd).unwrap().minor_units(), 1234);
        assert!(Currency::parse("xyz").is_err());
    }
}
