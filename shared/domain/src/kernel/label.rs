//! Short free-text identifiers from clients, as every aggregate takes them.

/// A short free-text identifier from a client (customer id, feature key, ...): 1..=255 characters,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 255 characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacters,
}

impl Label {
    pub fn parse(s: &str) -> Result<Self, LabelError> {
        if s.trim().is_empty() {
            return Err(LabelError::Empty);
        }
        if s.chars().count() > 255 {
            return Err(LabelError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(LabelError::ControlCharacters);
        }
        Ok(Self(s.to_owned()))
    }
    pub fn into_string(self) -> String {
        self.0
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}
