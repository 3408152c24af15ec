//! Brute-force protection for sign-in: attempts are limited per account and per client address.
use std::{net::IpAddr, num::NonZeroU32};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::error::Error;

/// Keyed token buckets (governor's GCRA) for login attempts.
pub struct LoginLimits {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

impl LoginLimits {
    pub fn new(per_account_per_minute: u32, per_ip_per_minute: u32) -> Self {
        Self {
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
        }
    }

    /// Takes one attempt for this account and address; a refusal says when to come back.
    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> Result<(), Error> {
        let clock = governor::clock::DefaultClock::default();
        let refuse = |not_until: governor::NotUntil<_>| {
            let wait = not_until.wait_time_from(clock.now());
            Error::TooManyRequests { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
        };
        if let Some(ip) = ip {
            self.per_ip.check_key(&ip).map_err(refuse)?;
        }
        self.per_account.check_key(&email.trim().to_lowercase()).map_err(refuse)?;
        // Forget idle keys now and then so the maps stay small.
        if rand::random::<u8>() == 0 {
            self.per_account.retain_recent();
            self.per_ip.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn account_and_ip_limits_are_separate() {
        let limits = LoginLimits::new(2, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(limits.check("a@x.io", Some(ip)).is_ok());
        assert!(limits.check("A@x.io", Some(ip)).is_ok());
        let err = limits.check("a@x.io", Some(ip)).unwrap_err();
        assert!(matches!(err, Error::TooManyRequests { retry_after_secs } if retry_after_secs >= 1));
        // Third attempt from the IP went through the IP bucket; the fourth is refused by it.
        assert!(limits.check("b@x.io", Some(ip)).is_err());
        assert!(limits.check("b@x.io", Some("10.0.0.1".parse().unwrap())).is_ok());
    }
}
