//! Trackers and other bootstrap addresses, given as `host:port`.
//!
//! Addresses that are IP literals are used as they are. Names are resolved with tokio's resolver
//! (the system's `getaddrinfo`, on tokio's blocking pool), each lookup bounded by a timeout. A
//! failed lookup is retried with exponential backoff and keeps the addresses found before; a
//! successful one is refreshed on a long interval, so a tracker that moves is followed.
//!
//! The union of everything resolved is published (see [`crate::Handle::trackers`]); the driver
//! tells the node about each address once, as a bootstrap address of every community, joined
//! now or later (`Node::add_bootstrap`: a candidate flagged as a tracker, which the walk visits
//! at most every 57.5 s, every 10 s while a community has few verified candidates, and never
//! introduces to others).

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::Counters;

/// The resolved addresses of every tracker.
pub type Resolved = BTreeSet<SocketAddr>;

/// Tracker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `host:port` strings (`tracker.example.org:6421`, `192.0.2.1:6421`, `[2001:db8::1]:6421`).
    pub addresses: Vec<String>,
    /// First wait after a failed lookup; doubled on each further failure.
    pub retry: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Time between lookups of a name that resolved.
    pub refresh: Duration,
    /// Longest a single lookup may take.
    pub lookup_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addresses: Vec::new(),
            retry: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            refresh: Duration::from_secs(600),
            lookup_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a tracker address is not a `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No `:port` at the end.
    #[error("tracker address {0:?} has no port")]
    MissingPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("tracker address {0:?} has an invalid port")]
    BadPort(String),
    /// The host is empty, too long or has characters no host name has.
    #[error("tracker address {0:?} has an invalid host")]
    BadHost(String),
}

/// One tracker: a host name or IP address, and a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tracker {
    host: String,
    port: u16,
}

impl Tracker {
    /// Parses `host:port`; IPv6 literals are written in brackets.
    pub fn parse(s: &str) -> Result<Tracker, ParseError> {
        if let Ok(addr) = SocketAddr::from_str(s) {
            if addr.port() == 0 {
                return Err(ParseError::BadPort(s.into()));
            }
            return Ok(Tracker {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| ParseError::MissingPort(s.into()))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| ParseError::BadPort(s.into()))?;
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid {
            return Err(ParseError::BadHost(s.into()));
        }
        Ok(Tracker {
            host: host.to_owned(),
            port,
        })
    }

    /// The host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address, when the host is an IP literal (no lookup needed).
    pub fn literal(&self) -> Option<SocketAddr> {
        self.host
            .parse()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl FromStr for Tracker {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tracker::parse(s)
    }
}

impl fmt::Display for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.literal() {
            Some(addr) => write!(f, "{addr}"),
            None => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// Looks a host name up: tokio's resolver, or a stand-in in tests.
pub(crate) type Resolver = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver, through tokio.
pub(crate) fn system_resolver() -> Resolver {
    Arc::new(|host, port| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await?;
            Ok(addrs.collect())
        })
    })
}

/// The state of one name being resolved.
struct Lookup {
    tracker: Tracker,
    found: Vec<SocketAddr>,
    next: tokio::time::Instant,
    backoff: Duration,
}

/// The addresses known without any lookup.
pub(crate) fn literals(trackers: &[Tracker]) -> Resolved {
    trackers.iter().filter_map(Tracker::literal).collect()
}

/// Resolves the names among `trackers` for as long as anyone listens; returns at once when
/// every tracker is an IP literal.
pub(crate) async fn resolve_loop(
    trackers: Vec<Tracker>,
    config: Config,
    resolver: Resolver,
    publish: watch::Sender<Resolved>,
    metrics: Arc<Counters>,
) {
    let fixed = literals(&trackers);
    let start = tokio::time::Instant::now();
    let mut names: Vec<Lookup> = trackers
        .into_iter()
        .filter(|t| t.literal().is_none())
        .map(|tracker| Lookup {
            tracker,
            found: Vec::new(),
            next: start,
            backoff: config.retry,
        })
        .collect();
    loop {
        let Some(next) = names.iter().map(|l| l.next).min() else {
            return;
        };
        tokio::time::sleep_until(next).await;
        if publish.is_closed() {
            return;
        }
        let now = tokio::time::Instant::now();
        for l in names.iter_mut().filter(|l| l.next <= now) {
            resolve(l, &config, &resolver, &metrics).await;
        }
        let mut all = fixed.clone();
        all.extend(names.iter().flat_map(|l| l.found.iter().copied()));
        publish.send_if_modified(|old| {
            let changed = *old != all;
            if changed {
                tracing::info!(addresses = all.len(), "tracker addresses changed");
                *old = std::mem::take(&mut all);
            }
            changed
        });
    }
}

async fn resolve(l: &mut Lookup, config: &Config, resolver: &Resolver, metrics: &Counters) {
    Counters::inc(&metrics.tracker_lookups);
    let lookup = resolver(l.tracker.host.clone(), l.tracker.port);
    let result = tokio::time::timeout(config.lookup_timeout, lookup).await;
    let found: Vec<SocketAddr> = match result {
        Ok(Ok(mut v)) => {
            v.sort_unstable();
            v.dedup();
            v
        }
        Ok(Err(e)) => {
            tracing::debug!(tracker = %l.tracker, error = %e, "tracker lookup failed");
            Vec::new()
        }
        Err(_) => {
            tracing::debug!(tracker = %l.tracker, "tracker lookup timed out");
            Vec::new()
        }
    };
    let now = tokio::time::Instant::now();
    if found.is_empty() {
        // Keep what an earlier lookup found: a stale address beats none.
        Counters::inc(&metrics.tracker_failures);
        l.next = now + l.backoff;
        l.backoff = (l.backoff * 2).min(config.retry_max.max(config.retry));
    } else {
        l.found = found;
        l.next = now + config.refresh;
        l.backoff = config.retry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_literals() {
        let t = Tracker::parse("dispersy1.tribler.org:6421").expect("name");
        assert_eq!(
            (t.host(), t.port(), t.literal()),
            ("dispersy1.tribler.org", 6421, None)
        );
        let v4 = Tracker::parse("192.0.2.1:6421").expect("v4");
        assert_eq!(
            v4.literal(),
            Some("192.0.2.1:6421".parse().expect("address"))
        );
        let v6 = Tracker::parse("[::1]:6421").expect("v6");
        assert_eq!(v6.literal(), Some("[::1]:6421".parse().expect("address")));
        assert_eq!(v6.to_string(), "[::1]:6421");
        assert!(matches!(
            Tracker::parse("host"),
            Err(ParseError::MissingPort(_))
        ));
        assert!(matches!(
            Tracker::parse("host:0"),
            Err(ParseError::BadPort(_))
        ));
        assert!(matches!(
            Tracker::parse("host:99999"),
            Err(ParseError::BadPort(_))
        ));
        assert!(matches!(Tracker::parse(":1"), Err(ParseError::BadHost(_))));
        assert!(matches!(
            Tracker::parse("a b:1"),
            Err(ParseError::BadHost(_))
        ));
        assert!(matches!(
            Tracker::parse("::1:5"),
            Err(ParseError::BadHost(_))
        ));
    }

    #[tokio::test]
    async fn names_resolve_and_failures_back_off() {
        let trackers = vec![
            Tracker::parse("tracker.test:7001").expect("name"),
            Tracker::parse("127.0.0.1:7002").expect("literal"),
            Tracker::parse("flaky.test:7003").expect("name"),
        ];
        // "flaky.test" fails three times, then resolves.
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = calls.clone();
        let resolver: Resolver = Arc::new(move |host, port| {
            let n = if host == "flaky.test" {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            } else {
                u32::MAX
            };
            Box::pin(async move {
                if n < 3 {
                    return Err(io::Error::other("temporary failure"));
                }
                Ok(vec![SocketAddr::new(
                    "127.0.0.1".parse().expect("ip"),
                    port,
                )])
            })
        });
        let (tx, mut rx) = watch::channel(literals(&trackers));
        assert_eq!(rx.borrow().len(), 1);
        let metrics = Arc::new(Counters::default());
        let config = Config {
            retry: Duration::from_millis(10),
            retry_max: Duration::from_millis(40),
            ..Config::default()
        };
        let task = tokio::spawn(resolve_loop(
            trackers,
            config,
            resolver,
            tx,
            metrics.clone(),
        ));
        let all: Resolved = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect();
        tokio::time::timeout(Duration::from_secs(30), async {
            while *rx.borrow_and_update() != all {
                rx.changed().await.expect("resolver runs");
            }
        })
        .await
        .expect("every tracker resolves");
        let m = metrics.snapshot();
        assert_eq!(m.tracker_failures, 3);
        assert_eq!(m.tracker_lookups, 5);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 4);
        task.abort();
    }
}
