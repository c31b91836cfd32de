//! The engine's own cost per event, with nodes that do almost nothing: every node pings a
//! random node every 100 ms and answers pings. `cargo run --release -p dispersy-sim --example
//! engine_speed -- [NODES] [SECONDS] [nat]`.
#![allow(clippy::print_stdout)]

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;
use dispersy::time::Instant;
use dispersy_sim::net::PUBLIC_BASE;
use dispersy_sim::{
    Dist, Hooks, LinkSpec, LossModel, NatConfig, NatKind, NetConfig, Placement, Sim, SimNode, Span,
    Transmit,
};

/// Pings a pseudo-random public host every 100 ms; answers pings.
struct Pinger {
    state: u64,
    hosts: u32,
    next: Instant,
    out: VecDeque<Transmit>,
}

const PING: Bytes = Bytes::from_static(&[1; 64]);
const PONG: Bytes = Bytes::from_static(&[2; 64]);

impl SimNode for Pinger {
    type Event = ();

    fn handle_datagram(&mut self, _: Instant, from: SocketAddr, contents: Bytes) {
        if contents[0] == 1 {
            self.out.push_back(Transmit {
                destination: from,
                contents: PONG,
            });
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        // xorshift: cheap, deterministic.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let site = (self.state % u64::from(self.hosts)) as u32;
        let ip = Ipv4Addr::from(u32::from(PUBLIC_BASE) + site);
        self.out.push_back(Transmit {
            destination: SocketAddr::V4(SocketAddrV4::new(ip, 7759)),
            contents: PING,
        });
        self.next = now + Duration::from_millis(100);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.next)
    }
}

struct NoHooks;

impl Hooks<Pinger> for NoHooks {}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nodes: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60);
    let nat = args.get(2).is_some_and(|a| a == "nat");
    let cfg = NetConfig {
        jitter: Dist::Exponential {
            mean: Span::millis(3),
        },
        loss: LossModel::Bernoulli { p: 0.01 },
        ..NetConfig::default()
    };
    let mut sim: Sim<Pinger> = Sim::new(1, cfg).expect("valid config");
    for i in 0..nodes {
        let placement = if nat && i % 2 == 1 {
            Placement::BehindNat(sim.add_nat(NatConfig::new(NatKind::FullCone)).expect("nat"))
        } else {
            Placement::Public
        };
        let build = |_: &_| Pinger {
            state: u64::from(i) * 0x9e37_79b9 + 1,
            hosts: nodes,
            next: Instant::from_micros(u64::from(i) * 100_000 / u64::from(nodes)),
            out: VecDeque::new(),
        };
        sim.add_node(placement, 7759, LinkSpec::UNLIMITED, build)
            .expect("host");
    }
    let start = std::time::Instant::now();
    sim.run_until(Instant::from_secs(secs), &mut NoHooks);
    let wall = start.elapsed().as_secs_f64();
    let events = sim.stats().events;
    println!(
        "{nodes} nodes{}, {secs} s simulated: {events} events in {wall:.2} s = {:.0} events/s ({:.2} us/event)",
        if nat {
            " (half behind full-cone NATs)"
        } else {
            ""
        },
        events as f64 / wall,
        wall * 1e6 / events as f64
    );
    println!("{:?}", sim.stats());
    println!("hash {}", sim.log_hash());
}
