use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What an access token says. `sub` is the user id; the role is re-read from the database on
/// every request, so a demotion or deactivation takes effect at once. `jti` and `tva` have no
/// default: a token without them (issued before they existed) cannot be signed out of, so it is
/// refused rather than honoured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    /// This token's own id, which signing out revokes (`revoked_tokens`).
    pub jti: String,
    /// The account's `tokens_valid_after` when this token was issued, in milliseconds since the
    /// epoch (0: never set). Compared with the stored value rather than with `iat`, so neither a
    /// second's granularity nor the clocks of several nodes decide whether a token issued right
    /// after a password change still works.
    #[serde(rename = "tva")]
    pub tokens_valid_after: i64,
}

/// A `users.tokens_valid_after` as carried in tokens.
pub fn valid_after_millis(at: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    at.map_or(0, |t| t.timestamp_millis())
}

/// Signing and verification keys. The algorithm is pinned to HS256: a token that names another
/// (including `none`) is refused.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl_secs: u64,
    /// A key derived from the secret for other purposes (inbound integration secrets), so the
    /// secret itself never leaves this struct.
    ingest_key: [u8; 32],
    /// What the first-run setup link carries ([`JwtKeys::setup_token`]).
    setup_token: String,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
            ingest_key: derive(secret, b"ticketwire/ingest-integration-secrets/v1"),
            setup_token: derive(secret, b"ticketwire/first-admin-setup/v1")[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }

    /// The server key integration secrets are derived from (HMAC-SHA256 of a label under the secret).
    pub fn ingest_key(&self) -> &[u8; 32] {
        &self.ingest_key
    }

    /// The token of the first-run setup link: derived from the secret, so every node knows it
    /// and nobody can guess it. It creates an admin only while there is none.
    pub fn setup_token(&self) -> &str {
        &self.setup_token
    }

    /// A token for an account whose `tokens_valid_after` was never set.
    pub fn issue(&self, user_id: &str, role: &str) -> anyhow::Result<String> {
        self.issue_valid_after(user_id, role, None)
    }

    /// A token for an account whose `tokens_valid_after` is `valid_after`.
    pub fn issue_valid_after(
        &self,
        user_id: &str,
        role: &str,
        valid_after: Option<chrono::DateTime<chrono::Utc>>,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.to_string(),
            iat: now,
            exp: now + self.ttl_secs as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            tokens_valid_after: valid_after_millis(valid_after),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok().map(|data| data.claims)
    }
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The configured secret, or the one kept in `data_dir/jwt_secret` (generated on first start),
/// so tokens survive a restart without anyone choosing a secret.
pub fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    let mut bytes = [0u8; 48];
    rand::fill(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    std::fs::create_dir_all(data_dir)?;
    write_private(&path, &secret)?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_another_key_or_alg_none_are_refused() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", 60);
        let token = keys.issue("u1", "admin").unwrap();
        assert_eq!(keys.verify(&token).unwrap().sub, "u1");

        let other = JwtKeys::new(b"another key another key another!", 60);
        assert!(other.verify(&token).is_none());

        // {"alg":"none"} with the same claims and an empty signature.
        let payload = token.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(keys.verify(&none).is_none());
    }

    #[test]
    fn every_token_has_its_own_id_and_tokens_without_one_are_refused() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", 60);
        let (a, b) = (keys.issue("u1", "admin").unwrap(), keys.issue("u1", "admin").unwrap());
        assert_ne!(keys.verify(&a).unwrap().jti, keys.verify(&b).unwrap().jti);
        let at = chrono::DateTime::from_timestamp_millis(1_700_000_000_123);
        let c = keys.verify(&keys.issue_valid_after("u1", "admin", at).unwrap()).unwrap();
        assert_eq!(c.tokens_valid_after, 1_700_000_000_123);

        #[derive(Serialize)]
        struct Old {
            sub: &'static str,
            role: &'static str,
            iat: i64,
            exp: i64,
        }
        let now = chrono::Utc::now().timestamp();
        let old = Old { sub: "u1", role: "admin", iat: now, exp: now + 60 };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &keys.encoding).unwrap();
        assert!(keys.verify(&old).is_none());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", 0);
        let token = keys.issue("u1", "admin").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(keys.verify(&token).is_none());
    }

    #[test]
    fn generated_secret_is_kept() {
        let dir = std::env::temp_dir().join(format!("tw-jwt-{}", uuid::Uuid::new_v4()));
        let a = load_or_create_secret(None, &dir).unwrap();
        let b = load_or_create_secret(None, &dir).unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 32);
        std::fs::remove_dir_all(dir).ok();
    }
}
