//! Test helpers shared by the walker's unit tests: seeded RNGs and a small peer harness.

use std::net::SocketAddr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::address::{Interface, LocalInterfaces};
use super::{
    Category, Config, Error, RequestOutcome, ResponseOutcome, Sender, Shared, Transmit, Walker,
};
use crate::ids::{GlobalTime, MemberId};
use crate::time::Instant;
use crate::wire::builtin::{IntroductionRequest, IntroductionResponse};

/// An IPv4 socket address.
pub(crate) fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)),
        port,
    )
}

/// A seeded RNG for a randomized test: the seed comes from `DISPERSY_TEST_SEED` when set, else
/// it is derived from the test name; it is printed so a failure can be replayed.
pub(crate) fn seeded(test: &str) -> (u64, ChaCha8Rng) {
    let seed = std::env::var("DISPERSY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            test.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
        });
    println!("{test}: seed {seed} (set DISPERSY_TEST_SEED to replay)");
    (seed, ChaCha8Rng::seed_from_u64(seed))
}

/// One node's walker state for one community, as the node would hold it.
pub(crate) struct Peer {
    pub(crate) walker: Walker,
    pub(crate) shared: Shared,
    pub(crate) me: MemberId,
    /// The address others see this peer's packets come from.
    pub(crate) seen_as: SocketAddr,
    pub(crate) rng: ChaCha8Rng,
}

impl Peer {
    /// A peer bound to `bound` on a subnet of `prefix` bits, seen by others as `seen_as`.
    pub(crate) fn new(tag: u8, bound: SocketAddr, prefix: u8, seen_as: SocketAddr) -> Peer {
        let config = Config::default();
        let mut rng = ChaCha8Rng::seed_from_u64(u64::from(tag));
        let mut shared = Shared::new(&config, Instant::ZERO, &mut rng);
        shared.addresses.set_interfaces(LocalInterfaces {
            bound,
            interfaces: vec![Interface::new(bound.ip(), prefix)],
        });
        let me = MemberId([tag; 20]);
        Peer {
            walker: Walker::new(config, me, Instant::ZERO),
            shared,
            me,
            seen_as,
            rng,
        }
    }

    pub(crate) fn public(tag: u8, addr: SocketAddr) -> Peer {
        Peer::new(tag, addr, 24, addr)
    }

    pub(crate) fn sender(&self) -> Sender {
        Sender {
            address: self.seen_as,
            member: self.me,
            global_time: GlobalTime(7),
        }
    }

    pub(crate) fn walk(&mut self, now: Instant, to: SocketAddr) -> Transmit<IntroductionRequest> {
        self.walker
            .walk_to(now, &self.shared, to, &mut self.rng)
            .unwrap()
    }

    pub(crate) fn answer(
        &mut self,
        now: Instant,
        from: &Peer,
        request: &Transmit<IntroductionRequest>,
    ) -> RequestOutcome {
        self.walker
            .on_introduction_request(
                now,
                &mut self.shared,
                from.sender(),
                &request.payload,
                &request.extensions,
                &mut self.rng,
            )
            .unwrap()
    }

    pub(crate) fn receive(
        &mut self,
        now: Instant,
        from: &Peer,
        response: &Transmit<IntroductionResponse>,
    ) -> Result<ResponseOutcome, Error> {
        self.walker.on_introduction_response(
            now,
            &mut self.shared,
            from.sender(),
            &response.payload,
            &response.extensions,
        )
    }

    pub(crate) fn category(&self, addr: SocketAddr, now: Instant) -> Option<Category> {
        self.walker
            .candidates()
            .get(addr)
            .map(|c| c.category(now, self.walker.config()))
    }
}

/// Whole seconds as an instant.
pub(crate) fn t(s: u64) -> Instant {
    Instant::from_secs(s)
}
