//! What the API handlers share: the driver's handle, the hosted communities' descriptions, the
//! token, and the traffic history.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use dispersy::community::Definition;
use dispersy::community::payload::Layout;
use dispersy::community::policy::{Distribution, Resolution};
use dispersy::community::spec::CommunitySpec;
use dispersy::ids::{CommunityId, MetaId};
use dispersy::node::{Counters, Delivered};
use dispersy::store::{StoredMessage, Undone};
use dispersy::wire::builtin;
use dispersy_net::Handle;
use tokio::sync::watch;

use super::datadir::DataDir;
use super::views::{CountersView, MessageView, MetaView, Sample, TrafficView, TypeView};

/// Samples kept in the traffic history (an hour at the default interval).
pub const HISTORY_LEN: usize = 720;
/// Time between traffic samples.
pub const HISTORY_INTERVAL: Duration = Duration::from_secs(5);

/// A community this daemon hosts.
#[derive(Debug, Clone)]
pub struct Hosted {
    /// Its definition.
    pub def: Arc<Definition>,
    /// Its declarative description, if it has one.
    pub spec: Option<Arc<CommunitySpec>>,
    /// Whether we hold its master key.
    pub founder: bool,
}

impl Hosted {
    /// The payload layout of a declared meta-message.
    pub fn layout(&self, meta: MetaId) -> Option<Layout> {
        self.spec
            .as_ref()?
            .messages
            .iter()
            .find(|m| m.byte == meta.0)
            .map(|m| m.payload)
    }

    /// The name of a message byte in this community.
    pub fn type_name(&self, byte: u8) -> String {
        self.def
            .meta(MetaId(byte))
            .map(|m| m.name.clone())
            .unwrap_or_else(|| node_type_name(byte))
    }

    /// The meta-messages, application ones first.
    pub fn metas(&self) -> Vec<MetaView> {
        self.def
            .metas()
            .map(|m| MetaView {
                name: m.name.clone(),
                byte: m.id.0,
                distribution: match m.distribution {
                    Distribution::Direct => "direct",
                    Distribution::FullSync { .. } => "full-sync",
                    Distribution::LastSync { .. } => "last-sync",
                }
                .into(),
                resolution: match m.resolution {
                    Resolution::Public => "public",
                    Resolution::Linear => "linear",
                    Resolution::Dynamic { .. } => "dynamic",
                }
                .into(),
                payload: self.layout(m.id).map(layout_name),
                undoable: m.undoable,
                builtin: m.id.0 > dispersy::community::MAX_APPLICATION_BYTE,
            })
            .collect()
    }

    /// Splits a payload into its content (the part inside a declared layout) as text and
    /// base64.
    pub fn content(&self, meta: MetaId, payload: &[u8]) -> (Option<String>, String) {
        let content = match self.layout(meta).map(|l| l.decode(payload)) {
            Some(Ok(c)) => c,
            _ => payload,
        };
        let text = std::str::from_utf8(content).ok().map(str::to_owned);
        let b64 = base64::engine::general_purpose::STANDARD.encode(content);
        (text, b64)
    }

    /// A delivered message as JSON.
    pub fn delivered_view(&self, m: &Delivered) -> MessageView {
        let (text, base64) = self.content(m.meta, &m.payload);
        MessageView {
            community: m.community.to_hex(),
            id: m.id().map(|id| message_id(&id)),
            meta: self.type_name(m.meta.0),
            byte: m.meta.0,
            member: m.author.map(|a| a.to_hex()),
            global_time: m.global_time.0,
            sequence: m.sequence.map(|s| u64::from(s.0)),
            text,
            base64,
            undone: None,
            size: m.packet.len(),
            source: m.source,
        }
    }

    /// A stored message (with its payload, parsed by the node) as JSON.
    pub fn stored_view(&self, m: &StoredMessage, payload: &[u8]) -> MessageView {
        let (text, base64) = self.content(m.meta, payload);
        MessageView {
            community: m.community.to_hex(),
            id: Some(message_id(&m.id())),
            meta: self.type_name(m.meta.0),
            byte: m.meta.0,
            member: Some(m.member.to_hex()),
            global_time: m.global_time.0,
            sequence: m.sequence.map(|s| u64::from(s.0)),
            text,
            base64,
            undone: match m.undone {
                Undone::No => None,
                Undone::ByMessage(id) => Some(message_id(&id)),
                Undone::ByPolicy => Some("policy".into()),
            },
            size: m.packet.len(),
            source: None,
        }
    }
}

/// `<member hex>:<global time>`.
pub fn message_id(id: &dispersy::ids::MessageId) -> String {
    format!("{}:{}", id.member.to_hex(), id.global_time.0)
}

/// The spec name of a layout.
pub fn layout_name(l: Layout) -> String {
    match l {
        Layout::Raw => "raw",
        Layout::RawText => "raw-text",
        Layout::Bytes => "bytes",
        Layout::Text => "text",
        Layout::Empty => "empty",
    }
    .into()
}

/// The name of a message byte outside any community: built-ins by name, others `byte-N`.
pub fn node_type_name(byte: u8) -> String {
    builtin::name(byte).map_or_else(|| format!("byte-{byte}"), str::to_owned)
}

/// Node or community counters as JSON, naming message types with `name`.
pub fn counters_view(c: &Counters, name: impl Fn(u8) -> String) -> CountersView {
    let t = |t: &dispersy::node::Traffic| TrafficView {
        packets: t.packets,
        bytes: t.bytes,
    };
    let mut bytes: Vec<u8> = c
        .received_by_type
        .keys()
        .chain(c.sent_by_type.keys())
        .chain(c.accepted.keys())
        .chain(c.created.keys())
        .copied()
        .collect();
    bytes.sort_unstable();
    bytes.dedup();
    CountersView {
        received: t(&c.received),
        sent: t(&c.sent),
        types: bytes
            .into_iter()
            .map(|b| TypeView {
                byte: b,
                name: name(b),
                received: c.received_by_type.get(&b).map(t).unwrap_or_default(),
                sent: c.sent_by_type.get(&b).map(t).unwrap_or_default(),
                accepted: c.accepted.get(&b).copied().unwrap_or(0),
                created: c.created.get(&b).copied().unwrap_or(0),
            })
            .collect(),
        drops: c.drops.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        delayed: c
            .delayed
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    }
}

/// The shared state of the API.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    pub(crate) handle: Handle,
    pub(crate) data: DataDir,
    pub(crate) token: Option<String>,
    pub(crate) api_addr: SocketAddr,
    pub(crate) dashboard: bool,
    pub(crate) started: std::time::Instant,
    pub(crate) hosted: RwLock<BTreeMap<CommunityId, Hosted>>,
    pub(crate) history: Mutex<VecDeque<Sample>>,
    pub(crate) stopping: watch::Receiver<bool>,
    /// Event streams open now (at most [`MAX_STREAMS`]).
    pub(crate) streams: std::sync::atomic::AtomicUsize,
}

/// Most event streams open at once; more are refused with 429.
pub const MAX_STREAMS: usize = 64;

/// One open event stream; dropping it frees its place.
#[derive(Debug)]
pub struct StreamSlot(AppState);

impl StreamSlot {
    /// Takes a place, or `None` when [`MAX_STREAMS`] are open.
    pub fn take(state: &AppState) -> Option<StreamSlot> {
        use std::sync::atomic::Ordering;
        state
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_STREAMS).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot(state.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0
            .streams
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub(crate) fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }

    /// A hosted community.
    pub fn hosted(&self, id: &CommunityId) -> Option<Hosted> {
        self.hosted
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Every hosted community.
    pub fn all_hosted(&self) -> BTreeMap<CommunityId, Hosted> {
        self.hosted
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_hosted(&self, id: CommunityId, h: Option<Hosted>) {
        let mut map = self
            .hosted
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match h {
            Some(h) => map.insert(id, h),
            None => map.remove(&id),
        };
    }

    /// The traffic history, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    fn push_sample(&self, s: Sample) {
        let mut h = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if h.len() >= HISTORY_LEN {
            h.pop_front();
        }
        h.push_back(s);
    }

    /// A future that completes when the daemon begins to stop.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static + use<> {
        let mut rx = self.stopping.clone();
        async move {
            // An error means the sender is gone: stopping too.
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// Takes a traffic sample every [`HISTORY_INTERVAL`] until the daemon stops.
pub(crate) async fn sample_loop(state: AppState) {
    let stop = state.stopped();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(HISTORY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let Ok(c) = state.handle.stats().await else {
            return;
        };
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        state.push_sample(Sample {
            t,
            received: TrafficView {
                packets: c.received.packets,
                bytes: c.received.bytes,
            },
            sent: TrafficView {
                packets: c.sent.packets,
                bytes: c.sent.bytes,
            },
            drops: c.total_drops(),
            messages: c.accepted.values().sum::<u64>() + c.created.values().sum::<u64>(),
        });
    }
}
