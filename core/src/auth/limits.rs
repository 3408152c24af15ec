//! Brute-force protection for signing in and throttling of signing up, per node.
//!
//! Sign-in attempts are limited three ways, none of which lets a stranger lock an account's
//! owner out:
//! - per (account, client address): the guesses one address may make at one account. Its
//!   refusals stay with that address; the owner elsewhere is not affected.
//! - per client address: the guesses one address may make over all accounts (spraying).
//! - per account, for addresses it has not signed in from lately: bounds guessing at one account
//!   from many addresses. It is larger than the first, so one address alone cannot empty it (its
//!   own limit stops it first), and an address the account signed in from is never held by it, so
//!   even many addresses together cannot keep the owner out of their usual devices.
//!
//! IPv6 addresses count by their /64, which one subscriber usually holds whole: keyed by the
//! full address, one attacker would have 2^64 of them.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::{config::Config, error::Error};

/// How much larger the account-wide limit is than the per-address one.
const ACCOUNT_WIDE_FACTOR: u32 = 10;
/// How long a successful sign-in makes its address known to the account.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Past this many (account, address) pairs the oldest are dropped.
const KNOWN_CAPACITY: usize = 100_000;

/// Where a request comes from, as the limits count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Origin {
    Addr(IpAddr),
    /// No peer address (a request the server makes to itself).
    Unknown,
}

impl Origin {
    fn of(ip: Option<IpAddr>) -> Self {
        match ip {
            None => Origin::Unknown,
            Some(IpAddr::V4(v4)) => Origin::Addr(IpAddr::V4(v4)),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Origin::Addr(IpAddr::V4(v4)),
                None => Origin::Addr(IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX)))),
            },
        }
    }
}

/// Keyed token buckets (governor's GCRA) for sign-in and sign-up.
pub struct LoginLimits {
    per_account_origin: DefaultKeyedRateLimiter<(String, Origin)>,
    per_origin: DefaultKeyedRateLimiter<Origin>,
    per_account_from_new_origins: DefaultKeyedRateLimiter<String>,
    /// (account, origin) pairs that signed in successfully, and when last.
    known: Mutex<HashMap<(String, Origin), Instant>>,
    registrations: DefaultKeyedRateLimiter<Origin>,
}

fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

fn per_hour(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_hour(n).allow_burst(n)
}

fn refuse(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> Error {
    let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
    Error::TooManyRequests { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginLimits {
    pub fn from_config(config: &Config) -> Self {
        Self::new(
            config.login_attempts_per_minute,
            config.login_attempts_per_minute_per_ip,
            config.registrations_per_hour_per_ip,
        )
    }

    pub fn new(per_account_per_minute: u32, per_ip_per_minute: u32, registrations_per_hour: u32) -> Self {
        Self {
            per_account_origin: RateLimiter::keyed(per_minute(per_account_per_minute)),
            per_origin: RateLimiter::keyed(per_minute(per_ip_per_minute)),
            per_account_from_new_origins: RateLimiter::keyed(per_minute(
                per_account_per_minute.max(1).saturating_mul(ACCOUNT_WIDE_FACTOR),
            )),
            known: Mutex::default(),
            registrations: RateLimiter::keyed(per_hour(registrations_per_hour)),
        }
    }

    /// Takes one sign-in attempt at this account from this address, before the password is
    /// checked (hashing is the expensive part); a refusal says when to come back.
    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> Result<(), Error> {
        let (account, origin) = (account_key(email), Origin::of(ip));
        // Cheapest refusal first, and each only once the one before let the attempt through,
        // so refused attempts from one address do not drain the account-wide bucket.
        self.per_origin.check_key(&origin).map_err(refuse)?;
        let pair = (account, origin);
        self.per_account_origin.check_key(&pair).map_err(refuse)?;
        if !self.is_known(&pair) {
            self.per_account_from_new_origins.check_key(&pair.0).map_err(refuse)?;
        }
        // Forget idle keys now and then so the maps stay small.
        if rand::random::<u8>() == 0 {
            self.per_account_origin.retain_recent();
            self.per_origin.retain_recent();
            self.per_account_from_new_origins.retain_recent();
            self.registrations.retain_recent();
        }
        Ok(())
    }

    /// Remembers that this address signed in to this account with the right password.
    pub fn signed_in(&self, email: &str, ip: Option<IpAddr>) {
        let mut known = self.known();
        if known.len() >= KNOWN_CAPACITY {
            known.retain(|_, at| at.elapsed() < KNOWN_FOR);
            if known.len() >= KNOWN_CAPACITY {
                known.clear();
            }
        }
        known.insert((account_key(email), Origin::of(ip)), Instant::now());
    }

    /// Takes one sign-up from this address. Counted before any work, failed ones included: each
    /// costs a password hash, and a duplicate email's 409 tells that the account exists.
    pub fn check_registration(&self, ip: Option<IpAddr>) -> Result<(), Error> {
        self.registrations.check_key(&Origin::of(ip)).map_err(refuse)
    }

    fn is_known(&self, pair: &(String, Origin)) -> bool {
        self.known().get(pair).is_some_and(|at| at.elapsed() < KNOWN_FOR)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Origin), Instant>> {
        // Nothing here can panic while holding the lock; recover rather than spread a poison.
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn guesses_from_one_address_do_not_hold_up_another() {
        let limits = LoginLimits::new(2, 100, 1);
        assert!(limits.check("a@x.io", ip("10.0.0.1")).is_ok());
        assert!(limits.check("A@x.io", ip("10.0.0.1")).is_ok());
        let err = limits.check("a@x.io", ip("10.0.0.1")).unwrap_err();
        assert!(matches!(err, Error::TooManyRequests { retry_after_secs } if retry_after_secs >= 1));
        assert!(limits.check("a@x.io", ip("10.0.0.2")).is_ok());
        assert!(limits.check("b@x.io", ip("10.0.0.1")).is_ok(), "another account from the same address");
    }

    #[test]
    fn one_address_may_not_spray_many_accounts() {
        let limits = LoginLimits::new(10, 3, 1);
        for account in ["a@x.io", "b@x.io", "c@x.io"] {
            assert!(limits.check(account, ip("10.0.0.1")).is_ok());
        }
        assert!(limits.check("d@x.io", ip("10.0.0.1")).is_err());
        assert!(limits.check("d@x.io", ip("10.0.0.2")).is_ok());
    }

    #[test]
    fn many_addresses_are_bounded_per_account_but_not_the_owners_known_one() {
        let limits = LoginLimits::new(2, 1000, 1);
        let account_wide = 2 * ACCOUNT_WIDE_FACTOR;
        assert!(limits.check("a@x.io", ip("192.0.2.1")).is_ok());
        limits.signed_in("a@x.io", ip("192.0.2.1"));
        let mut refused = 0;
        for i in 0..account_wide + 5 {
            if limits.check("a@x.io", ip(&format!("10.0.{}.{}", i / 200, i % 200))).is_err() {
                refused += 1;
            }
        }
        // The owner's first attempt took one from the account-wide bucket: it was not known yet.
        assert_eq!(refused, 6);
        assert!(limits.check("a@x.io", ip("10.1.0.1")).is_err(), "a new address waits");
        assert!(limits.check("a@x.io", ip("192.0.2.1")).is_ok(), "the owner's address does not");
    }

    #[test]
    fn an_ipv6_subscriber_counts_as_one_address() {
        let limits = LoginLimits::new(1, 100, 1);
        assert!(limits.check("a@x.io", ip("2001:db8:1:2::1")).is_ok());
        assert!(limits.check("a@x.io", ip("2001:db8:1:2::ffff")).is_err());
        assert!(limits.check("a@x.io", ip("2001:db8:1:3::1")).is_ok());
        assert!(limits.check("b@x.io", ip("::ffff:10.0.0.1")).is_ok());
        assert!(limits.check("b@x.io", ip("10.0.0.1")).is_err(), "a mapped IPv4 address is that address");
    }

    #[test]
    fn registrations_are_limited_per_address() {
        let limits = LoginLimits::new(10, 100, 2);
        assert!(limits.check_registration(ip("10.0.0.1")).is_ok());
        assert!(limits.check_registration(ip("10.0.0.1")).is_ok());
        let err = limits.check_registration(ip("10.0.0.1")).unwrap_err();
        assert!(matches!(err, Error::TooManyRequests { retry_after_secs } if retry_after_secs > 60));
        assert!(limits.check_registration(ip("10.0.0.2")).is_ok());
    }
}
