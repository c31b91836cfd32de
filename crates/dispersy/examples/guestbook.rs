//! A community type in a page: a guestbook where anyone signs with a name and a line of text,
//! and everybody eventually holds every entry.
//!
//! Run it with `cargo run -p dispersy --example guestbook`. Three nodes run in-process on a
//! virtual clock (no sockets); see `dispersy-net` for real UDP.

#![allow(clippy::print_stdout)]

use std::time::Duration;

use dispersy::community::payload::Payload;
use dispersy::community::{Definition, MetaMessage};
use dispersy::crypto::PrivateKey;
use dispersy::ids::MetaId;
use dispersy::node::{Config, Event, Node};
use dispersy::store::MemStore;
use dispersy::testing::Network;
use dispersy::wire::DecodeError;
use dispersy::wire::codec::{Reader, put_varlen_h};

/// One guestbook entry: who and what.
#[derive(Debug)]
struct Entry {
    name: String,
    text: String,
}

fn utf8(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Invalid {
        field,
        reason: "not UTF-8",
    })
}

impl Payload for Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varlen_h(out, self.name.as_bytes());
        put_varlen_h(out, self.text.as_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Entry {
            name: utf8(r.varlen_h("name")?, "name")?,
            text: utf8(r.varlen_h("text")?, "text")?,
        })
    }
}

const ENTRY: MetaId = MetaId(1);

/// The community type: one meta-message, fully synced, numbered per author, pushed to 5 peers.
fn guestbook(master: &PrivateKey) -> Definition {
    Definition::builder(master.public().clone())
        .kind("guestbook")
        .meta(
            MetaMessage::new(ENTRY.0, "entry")
                .sequenced()
                .destination(dispersy::community::policy::Destination::Community { node_count: 5 })
                .payload::<Entry>(),
        )
        .build()
        .expect("the guestbook definition is valid")
}

fn main() {
    let mut rng = rand::thread_rng();
    let master = PrivateKey::generate(&mut rng);
    let def = guestbook(&master);
    let mut net = Network::new(1);
    for seed in 0..3 {
        let node = Node::new(
            Config {
                seed,
                ..Config::default()
            },
            PrivateKey::generate(&mut rng),
            Box::new(MemStore::new()),
        );
        let i = net.add(node);
        net.with(i, |n, now| n.join(now, def.clone()))
            .expect("join");
    }
    // Bootstrap every node to the others, and let the walk verify them (two 5 s steps).
    for i in 0..3 {
        for j in (0..3).filter(|j| *j != i) {
            net.with(i, |n, now| n.add_peer(now, def.id(), Network::address(j)))
                .expect("peer");
        }
    }
    net.run_for(Duration::from_secs(15));
    for (i, name) in ["ada", "bob", "cy"].iter().enumerate() {
        let entry = Entry {
            name: (*name).into(),
            text: format!("hello from node {i}"),
        };
        net.with(i, |n, now| {
            n.create_message(now, def.id(), ENTRY, &entry.to_bytes(), &[])
        })
        .expect("create");
    }
    net.run_for(Duration::from_secs(1));
    for i in 0..3 {
        for event in net.take_events(i) {
            if let Event::Message(m) = event {
                let entry = Entry::from_bytes(&m.payload).expect("validated by the node");
                println!("node {i} got {:?}: {}", entry.name, entry.text);
            }
        }
    }
}
