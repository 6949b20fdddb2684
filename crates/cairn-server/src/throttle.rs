//! Per-address throttling of sign-in and first-account posts: a person
//! never notices it, a password guesser or a flood is answered 429 at once,
//! before any password is hashed.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::state::AppState;

/// Addresses tracked at once. Beyond this (a flood from very many
/// addresses) entries that have refilled are dropped, and while the table
/// is still full new addresses wait: memory stays bounded (~10 MB).
const MAX_TRACKED_ADDRESSES: usize = 100_000;

pub struct SignInThrottle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    per_minute: NonZeroU32,
    /// Unix second of the last sweep of refilled entries.
    last_sweep: AtomicU64,
}

/// The requests of one client: its IPv4 address, or its IPv6 /64 (one
/// subscriber usually holds a whole /64, so single addresses cost nothing).
fn client_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SignInThrottle {
    /// `per_minute` attempts a minute per client, all of them at once if it
    /// likes.
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            per_minute,
            last_sweep: AtomicU64::new(0),
        }
    }

    /// Counts one attempt from `address`; `Err` holds how long it must wait.
    pub fn attempt(&self, address: IpAddr) -> Result<(), Duration> {
        let key = client_key(address);
        if self.limiter.len() >= MAX_TRACKED_ADDRESSES {
            let now = unix_seconds();
            let last = self.last_sweep.load(Ordering::Relaxed);
            if now > last
                && self
                    .last_sweep
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.limiter.retain_recent();
                self.limiter.shrink_to_fit();
            }
            if self.limiter.len() >= MAX_TRACKED_ADDRESSES {
                return Err(Duration::from_secs(60));
            }
        }
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    fn refused(&self, wait: Duration) -> Response {
        // Whole seconds, rounded up: "0" would invite an immediate retry.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, seconds.to_string())],
            format!(
                "Too many sign-in attempts: the limit is {} per minute from one address \
                 (sign_in_limit). Try again in {seconds} s.",
                self.per_minute
            ),
        )
            .into_response()
    }
}

/// Middleware for `/login` and `/setup`: their posts count against the
/// client's allowance; pages themselves are free.
pub async fn sign_in_attempts(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST {
        // Served without a peer address only in-process (tests): one bucket.
        let address = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        if let Err(wait) = state.sign_in.attempt(address) {
            return state.sign_in.refused(wait);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_allowance_then_waits() {
        let throttle = SignInThrottle::new(NonZeroU32::new(3).unwrap());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(throttle.attempt(a).is_ok());
        }
        let wait = throttle.attempt(a).unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(throttle.attempt(b).is_ok(), "another address has its own");
        let response = throttle.refused(wait);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "20");
    }

    #[test]
    fn an_ipv6_subscriber_is_one_client() {
        let throttle = SignInThrottle::new(NonZeroU32::new(1).unwrap());
        assert!(throttle.attempt("2001:db8::1".parse().unwrap()).is_ok());
        assert!(throttle.attempt("2001:db8::2".parse().unwrap()).is_err());
        assert!(throttle.attempt("2001:db8:0:1::1".parse().unwrap()).is_ok());
        assert_eq!(
            client_key("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
