//! Page cursors of `listGrants` and `listEntries`, signed so that only cursors this service made
//! are accepted.
use crate::{ApiError, ApiRequest, App, Store};

/// Page cursors: `<hex of "tag:id">.<hex HMAC-SHA256(deployment cursor key, "tag:id")>`, so a
/// cursor this service did not make (forged, edited, over-long) is a 400 naming `next_page` before
/// anything reaches storage (security review finding 5).
pub(super) async fn cursor<S: Store>(app: &App<S>, tag: &str, id: &str) -> Result<String, ApiError> {
    use hmac::Mac;
    let payload = format!("{tag}:{id}");
    Ok(format!(
        "{}.{}",
        hex::encode(&payload),
        hex::encode(cursor_mac(app, &payload).await?.finalize().into_bytes())
    ))
}

async fn cursor_mac<S: Store>(app: &App<S>, payload: &str) -> Result<hmac::Hmac<sha2::Sha256>, ApiError> {
    use hmac::{KeyInit, Mac};
    let key = app.secrets.cursor_key().await.map_err(|e| {
        tracing::error!(error = %e, "the cursor key is unavailable");
        ApiError::unavailable()
    })?;
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(payload.as_bytes());
    Ok(mac)
}

/// Longest cursor accepted (an id of at most 255 characters, hex-encoded, and its MAC).
const MAX_CURSOR_CHARS: usize = 2 * (4 + 255 * 4) + 1 + 64;

pub(super) async fn read_cursor<S: Store>(
    app: &App<S>,
    req: &ApiRequest,
    tag: &str,
) -> Result<Option<String>, ApiError> {
    use hmac::Mac;
    let Some(raw) = req.query_value("next_page").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let invalid = || ApiError::field("next_page", "invalid", "is not a cursor this endpoint returned");
    if raw.len() > MAX_CURSOR_CHARS {
        return Err(invalid());
    }
    let (payload_hex, mac_hex) = raw.split_once('.').ok_or_else(invalid)?;
    let payload = hex::decode(payload_hex)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let mac = hex::decode(mac_hex).map_err(|_| invalid())?;
    cursor_mac(app, &payload)
        .await?
        .verify_slice(&mac)
        .map_err(|_| invalid())?;
    let id = payload.strip_prefix(&format!("{tag}:")).ok_or_else(invalid)?;
    Ok(Some(id.to_owned()))
}
