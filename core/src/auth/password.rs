use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier},
};

/// Each hash takes tens of milliseconds of CPU and 19 MiB of memory (the crate's recommended
/// Argon2id parameters). Past one per core, more at once only adds memory, not speed: a burst of
/// logins or sign-ups queues here instead of costing 19 MiB each.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// Argon2id with the crate's recommended parameters, salted at random, on the blocking pool.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    let _slot = hashing_slots().acquire().await?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await?
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub async fn verify_password(password: String, hash: String) -> bool {
    let Ok(_slot) = hashing_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_mismatch() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), h.clone()).await);
        assert!(!verify_password("wrong".into(), h).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }
}
