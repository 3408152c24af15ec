//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX).unwrap_or(secret)).ok()
}

/// The `v1,…` signature of a message under `secret`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = key(secret).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per valid secret, space separated.
pub fn signature_header(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| sign(s, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Checks a `webhook-signature` header against `secret` in constant time, with a 5-minute
/// tolerance on the timestamp (for the built-in receiver).
pub fn verify(secret: &str, msg_id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return false;
    }
    let expected = sign(secret, msg_id, ts, body);
    header.split(' ').any(|candidate| {
        use subtle::ConstantTimeEq;
        candidate.len() == expected.len() && bool::from(candidate.as_bytes().ct_eq(expected.as_bytes()))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification.
    #[test]
    fn matches_the_spec_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_decode_to_32_bytes() {
        let s = new_secret();
        assert_eq!(key(&s).unwrap().len(), 32);
    }

    #[test]
    fn verify_accepts_any_listed_signature() {
        let now = chrono::Utc::now().timestamp();
        let header = signature_header(&["whsec_AAAA", "whsec_BBBB"], "msg_1", now, b"{}");
        assert!(verify("whsec_BBBB", "msg_1", &now.to_string(), b"{}", &header));
        assert!(!verify("whsec_CCCC", "msg_1", &now.to_string(), b"{}", &header));
        assert!(!verify("whsec_AAAA", "msg_1", &(now - 1000).to_string(), b"{}", &header));
    }
}
