//! Integrations (who may send) and how a request proves it is one: `X-Api-Key`,
//! `Authorization: Bearer`, or the sender's native HMAC signature.
//!
//! A secret is never stored: it is `base64url(HMAC-SHA256(server key, id ":" nonce))`, where the
//! server key is derived from the JWT secret. The row keeps the nonce (to re-derive it for
//! signature checks) and `SHA-256(secret)` (to find the integration from an API key).
use axum::http::HeaderMap;
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::sources;
use crate::{
    auth::AuthUser,
    domain,
    entity::integration,
    error::{Error, Result},
    ingest::Context,
};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntegration {
    /// One of servicenow, zendesk, jira, freshdesk, prometheus, datadog, pagerduty, custom.
    pub source: String,
    pub name: String,
}

/// An integration as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct Integration {
    pub id: String,
    pub source: String,
    pub name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The answer to creating one: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedIntegration {
    pub id: String,
    pub source: String,
    pub name: String,
    pub secret: String,
}

impl From<integration::Model> for Integration {
    fn from(m: integration::Model) -> Self {
        Self { id: m.id, source: m.source, name: m.name, created_by: m.created_by, created_at: m.created_at }
    }
}

/// The secret of integration `id` with `nonce`.
pub fn secret_for(cx: Context<'_>, id: &str, nonce: &str) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(cx.key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b":");
    mac.update(nonce.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

pub async fn create(cx: Context<'_>, admin: &AuthUser, input: NewIntegration) -> Result<CreatedIntegration> {
    let source = input.source.trim().to_ascii_lowercase();
    if !sources::is_known(&source) {
        return Err(Error::validation("source", format!("must be one of {}", sources::SOURCES.join(", "))));
    }
    let name = domain::validate::required_text("name", &input.name, 200)?;
    let id = domain::new_id();
    let mut nonce = [0u8; 24];
    rand::fill(&mut nonce);
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let secret = secret_for(cx, &id, &nonce);
    integration::ActiveModel {
        id: Set(id.clone()),
        source: Set(source.clone()),
        name: Set(name.clone()),
        secret_hash: Set(hash(&secret)),
        secret_nonce: Set(nonce),
        created_by: Set(admin.id().to_string()),
        created_at: Set(domain::now()),
    }
    .insert(&cx.store.db)
    .await?;
    Ok(CreatedIntegration { id, source, name, secret })
}

pub async fn list(cx: Context<'_>) -> Result<Vec<Integration>> {
    let rows = integration::Entity::find().order_by_asc(integration::Column::Id).all(&cx.store.db).await?;
    Ok(rows.into_iter().map(Integration::from).collect())
}

pub async fn delete(cx: Context<'_>, id: &str) -> Result<()> {
    let res = integration::Entity::delete_by_id(id.to_string()).exec(&cx.store.db).await?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound("integration"));
    }
    Ok(())
}

/// Which integrations a route accepts: those of one source, or any (`custom`, flexible routes).
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    Source(&'a str),
    Any,
}

impl Scope<'_> {
    fn admits(&self, i: &integration::Model) -> bool {
        match self {
            Scope::Source(s) => i.source == *s,
            Scope::Any => true,
        }
    }
}

fn unauthorized(why: &str) -> Error {
    Error::Unauthorized(why.to_string())
}

/// The integration this request comes from, or 401.
pub async fn authenticate(
    cx: Context<'_>,
    headers: &HeaderMap,
    body: &[u8],
    scope: Scope<'_>,
) -> Result<integration::Model> {
    if let Some(key) = api_key(headers) {
        let found = integration::Entity::find()
            .filter(integration::Column::SecretHash.eq(hash(key)))
            .one(&cx.store.db)
            .await?
            .filter(|i| bool::from(secret_for(cx, &i.id, &i.secret_nonce).as_bytes().ct_eq(key.as_bytes())));
        return found.filter(|i| scope.admits(i)).ok_or_else(|| unauthorized("invalid API key for this source"));
    }
    if !has_signature(headers) {
        return Err(unauthorized("missing credentials: send X-Api-Key, Authorization: Bearer, or a signature header"));
    }
    let mut query = integration::Entity::find().order_by_asc(integration::Column::Id);
    if let Scope::Source(s) = scope {
        query = query.filter(integration::Column::Source.eq(s));
    }
    for candidate in query.all(&cx.store.db).await? {
        let secret = secret_for(cx, &candidate.id, &candidate.secret_nonce);
        if signature_matches(headers, body, secret.as_bytes()) {
            return Ok(candidate);
        }
    }
    Err(unauthorized("invalid signature"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn api_key(headers: &HeaderMap) -> Option<&str> {
    header(headers, "x-api-key").or_else(|| {
        let (scheme, token) = header(headers, "authorization")?.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    })
}

fn has_signature(headers: &HeaderMap) -> bool {
    ["x-hub-signature-256", "x-hub-signature", "x-zendesk-webhook-signature", "x-pagerduty-signature"]
        .iter()
        .any(|h| headers.contains_key(*h))
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac
}

/// Whether any signature header present is a valid HMAC-SHA256 of the body under `key`
/// (`verify_slice` compares in constant time).
pub fn signature_matches(headers: &HeaderMap, body: &[u8], key: &[u8]) -> bool {
    if let Some(sig) = header(headers, "x-hub-signature-256") {
        let hex_sig = sig.strip_prefix("sha256=").unwrap_or(sig);
        if unhex(hex_sig).is_some_and(|s| mac(key, &[body]).verify_slice(&s).is_ok()) {
            return true;
        }
    }
    // Jira Cloud's admin webhooks put `sha256=<hex>` in the unsuffixed header, where GitHub's
    // legacy scheme puts `sha1=`: only a value that names SHA-256 is checked, the rest never match.
    if let Some(sig) = header(headers, "x-hub-signature")
        && let Some((method, hex_sig)) = sig.split_once('=')
        && method.trim().eq_ignore_ascii_case("sha256")
        && unhex(hex_sig).is_some_and(|s| mac(key, &[body]).verify_slice(&s).is_ok())
    {
        return true;
    }
    let zendesk =
        (header(headers, "x-zendesk-webhook-signature"), header(headers, "x-zendesk-webhook-signature-timestamp"));
    if let (Some(sig), Some(ts)) = zendesk
        && is_fresh(ts, chrono::Utc::now())
        && STANDARD.decode(sig).is_ok_and(|s| mac(key, &[ts.as_bytes(), body]).verify_slice(&s).is_ok())
    {
        return true;
    }
    if let Some(sigs) = header(headers, "x-pagerduty-signature") {
        let any = sigs
            .split(',')
            .filter_map(|s| s.trim().strip_prefix("v1="))
            .filter_map(unhex)
            .any(|s| mac(key, &[body]).verify_slice(&s).is_ok());
        if any {
            return true;
        }
    }
    false
}

/// How far a signed timestamp may be from our clock: a captured request replays for this long at
/// most (the window Standard Webhooks uses too).
const SIGNATURE_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Whether an RFC 3339 timestamp (Zendesk's signing timestamp) is within the tolerance of `now`.
fn is_fresh(ts: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    chrono::DateTime::parse_from_rfc3339(ts).is_ok_and(|t| (now - t.to_utc()).abs() <= SIGNATURE_TOLERANCE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sign(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        mac(key, parts).finalize().into_bytes().to_vec()
    }

    #[test]
    fn each_signature_scheme() {
        let (key, body) = (b"k3y".as_slice(), br#"{"a":1}"#.as_slice());
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&format!("sha256={}", hex(&sign(key, &[body])))).unwrap(),
        );
        assert!(signature_matches(&h, body, key));
        assert!(!signature_matches(&h, b"{}", key));
        assert!(!signature_matches(&h, body, b"other"));

        let mut h = HeaderMap::new();
        let jira = format!("sha256={}", hex(&sign(key, &[body])));
        h.insert("x-hub-signature", HeaderValue::from_str(&jira).unwrap());
        assert!(has_signature(&h) && signature_matches(&h, body, key));
        assert!(!signature_matches(&h, b"{}", key));
        h.insert("x-hub-signature", HeaderValue::from_str(&jira.to_uppercase()).unwrap());
        assert!(signature_matches(&h, body, key), "the method name and hex digits in either case");
        // The same digest under another method's name, or with none, is no SHA-256 signature.
        h.insert("x-hub-signature", HeaderValue::from_str(&jira.replace("sha256=", "sha1=")).unwrap());
        assert!(!signature_matches(&h, body, key));
        h.insert("x-hub-signature", HeaderValue::from_str(&hex(&sign(key, &[body]))).unwrap());
        assert!(!signature_matches(&h, body, key));

        let mut h = HeaderMap::new();
        let ts = chrono::Utc::now().to_rfc3339();
        h.insert(
            "x-zendesk-webhook-signature",
            HeaderValue::from_str(&STANDARD.encode(sign(key, &[ts.as_bytes(), body]))).unwrap(),
        );
        h.insert("x-zendesk-webhook-signature-timestamp", HeaderValue::from_str(&ts).unwrap());
        assert!(signature_matches(&h, body, key));
        h.insert("x-zendesk-webhook-signature-timestamp", HeaderValue::from_static("2027-01-01T00:00:00Z"));
        assert!(!signature_matches(&h, body, key));
        // A correct signature over a stale timestamp is a replay.
        let stale = "2026-01-01T00:00:00Z";
        h.insert(
            "x-zendesk-webhook-signature",
            HeaderValue::from_str(&STANDARD.encode(sign(key, &[stale.as_bytes(), body]))).unwrap(),
        );
        h.insert("x-zendesk-webhook-signature-timestamp", HeaderValue::from_static(stale));
        assert!(!signature_matches(&h, body, key));

        let mut h = HeaderMap::new();
        let v = format!("v1=00ff, v1={}", hex(&sign(key, &[body])));
        h.insert("x-pagerduty-signature", HeaderValue::from_str(&v).unwrap());
        assert!(signature_matches(&h, body, key));
        h.insert("x-pagerduty-signature", HeaderValue::from_static("v1=zz,v1=00"));
        assert!(!signature_matches(&h, body, key));
    }

    #[test]
    fn timestamps_are_fresh_within_five_minutes_either_way() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z").unwrap().to_utc();
        assert!(is_fresh("2026-11-29T12:04:59Z", now) && is_fresh("2026-11-29T11:55:00Z", now));
        assert!(is_fresh("2026-11-29T13:00:00+01:00", now));
        assert!(!is_fresh("2026-11-29T11:54:59Z", now) && !is_fresh("2026-11-29T12:05:01Z", now));
        assert!(!is_fresh("1764417600", now) && !is_fresh("", now));
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 1, 254])).unwrap(), vec![0, 1, 254]);
        assert!(unhex("abc").is_none() && unhex("zz").is_none());
    }
}
