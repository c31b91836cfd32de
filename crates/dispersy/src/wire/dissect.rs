//! A total dissector: any byte string in, a serialisable description out.
//!
//! [`dissect`] is what `dispersy decode` prints and what the fuzz target drives. It never panics
//! and never fails: whatever cannot be decoded is reported in [`Dissection::error`] next to
//! everything that could be. Layouts come from [`super::builtin::layout`] for built-in messages.
//! A community's own messages have layouts only that community knows, so unless the caller
//! passes one in a [`Hint`], they are tried as py-ipv8 frames them (full member key, global
//! time, raw payload, one signature) and shown only when that parses *and* verifies.
//!
//! Signatures are checked one by one (this is a diagnostic tool, not the hot path).

use std::net::SocketAddr;

use bytes::Bytes;
use serde::Serialize;

use super::builtin::{
    self, Builtin, IntroductionRequest, IntroductionResponse, PermissionGrant, Puncture,
    PunctureRequest, SignatureExchange, SyncBlock, WalkerStyle,
};
use super::extension::{self, Extensions};
use super::packet::{AuthLayout, Authentication, KeyEncoding, KeyLookup, Layout, Packet, Prefix};
use super::{DecodeError, MESSAGE_BYTE_OFFSET};
use crate::crypto::{PublicKey, SignatureError};
use crate::ids::{CommunityId, GlobalTime, MemberId, SequenceNumber};

/// How deep signature-request/-response packets are dissected inside one another.
pub const MAX_EMBEDDING_DEPTH: usize = 2;

/// What the caller knows that the bytes do not say.
#[derive(Debug, Clone, Default)]
pub struct Hint {
    /// The layout of non-built-in (community) messages. Without it they are tried as py-ipv8
    /// signed messages.
    pub layout: Option<Layout>,
    /// Keys to resolve members named by id (communities of version 1 and lower).
    pub keys: Vec<PublicKey>,
}

impl KeyLookup for Hint {
    fn by_id(&self, member: &MemberId) -> Option<PublicKey> {
        self.keys.iter().find(|k| k.member_id() == *member).cloned()
    }
}

/// Everything the dissector could tell about one datagram.
#[derive(Debug, Clone, Serialize)]
pub struct Dissection {
    /// Datagram length in bytes.
    pub length: usize,
    /// The community the prefix names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community: Option<CommunityView>,
    /// The message byte and what it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageView>,
    /// The authors (two for a double-member message).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<KeyView>,
    /// The dynamic-resolution policy index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<u8>,
    /// The Lamport time the author claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_time: Option<GlobalTime>,
    /// The sequence number, for messages that carry one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<SequenceNumber>,
    /// The decoded payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadView>,
    /// The verdict over all signatures (worst first: invalid, unsupported key, unsigned, valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureStatus>,
    /// One verdict per signature slot, in author order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureView>,
    /// Why (part of) the datagram could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
}

impl Dissection {
    /// Whether the datagram decoded completely and no signature is invalid.
    pub fn is_ok(&self) -> bool {
        self.problem().is_none()
    }

    /// A one-line statement of what is wrong, if anything: the decode error, else the first
    /// invalid signature.
    pub fn problem(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.message.clone());
        }
        self.signatures
            .iter()
            .position(|s| s.status == SignatureStatus::Invalid)
            .map(|i| {
                format!(
                    "signature {} of {} is invalid",
                    i + 1,
                    self.signatures.len()
                )
            })
    }
}

/// The community named by the prefix.
#[derive(Debug, Clone, Serialize)]
pub struct CommunityView {
    /// Community id.
    pub id: CommunityId,
    /// Community (conversion) version byte.
    pub version: u8,
}

/// Whether a message byte is one of Dispersy's built-ins, a community message, or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// A `dispersy-*` or walker message with a fixed layout.
    Builtin,
    /// A community's own message, decoded with the hinted or the py-ipv8 layout.
    Community,
    /// Not built in, and not decodable without knowing the community.
    Unknown,
}

/// The message byte.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// The byte.
    pub byte: u8,
    /// Dispersy's name, for built-ins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// Built-in, community or unknown.
    pub kind: MessageKind,
}

/// A public key as hex, with its member id.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// SHA-1 of the key blob.
    pub member_id: MemberId,
    /// The key blob.
    pub public_key: String,
    /// `ed25519` or the legacy curve's name.
    pub key_type: &'static str,
}

impl KeyView {
    fn new(key: &PublicKey) -> KeyView {
        KeyView {
            member_id: key.member_id(),
            public_key: hex::encode(key.to_bin()),
            key_type: key.legacy_curve().map_or("ed25519", |c| c.name()),
        }
    }
}

/// The verdict on a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// It verifies.
    Valid,
    /// No signature (an unsigned message, or an all-zero placeholder slot).
    Unsigned,
    /// A legacy elliptic-curve key, which we parse but cannot verify.
    UnsupportedKey,
    /// It does not verify.
    Invalid,
}

/// One signature slot.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureView {
    /// The verdict.
    pub status: SignatureStatus,
    /// The signature bytes.
    pub hex: String,
}

/// A decode error.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    /// Short stable name (as counted by the node).
    pub reason: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl From<&DecodeError> for ErrorView {
    fn from(e: &DecodeError) -> ErrorView {
        ErrorView {
            reason: e.reason(),
            message: e.to_string(),
        }
    }
}

/// The Bloom-filter sync block, summarised (the bits themselves are not shown).
#[derive(Debug, Clone, Serialize)]
pub struct SyncView {
    /// Lowest global time covered.
    pub time_low: GlobalTime,
    /// Highest global time covered (0: up to the receiver's).
    pub time_high: GlobalTime,
    /// Covered messages have `(global_time + offset) % modulo == 0`.
    pub modulo: u16,
    /// See `modulo`.
    pub offset: u16,
    /// Bloom hash functions.
    pub functions: u8,
    /// Bloom salt byte.
    pub prefix: u8,
    /// Filter size in bits.
    pub size_bits: usize,
    /// Bits set in the filter.
    pub bits_set: u32,
}

impl From<&SyncBlock> for SyncView {
    fn from(s: &SyncBlock) -> SyncView {
        SyncView {
            time_low: s.time_low,
            time_high: s.time_high,
            modulo: s.modulo,
            offset: s.offset,
            functions: s.functions,
            prefix: s.prefix,
            size_bits: s.size_bits(),
            bits_set: s.bits_set(),
        }
    }
}

/// One extension entry from the trailing bytes of a walker message.
#[derive(Debug, Clone, Serialize)]
pub struct ExtensionView {
    /// Kind byte.
    pub kind: u8,
    /// Registered name of the kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// Value bytes.
    pub value: String,
}

/// The trailing bytes of an introduction-request or -response.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExtraView {
    /// The raw trailing bytes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub extra: String,
    /// Our extension entries, when the bytes hold our block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<ExtensionView>,
    /// Why the extension block is malformed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions_error: Option<String>,
}

impl ExtraView {
    fn new(extra: &[u8]) -> ExtraView {
        let mut view = ExtraView {
            extra: hex::encode(extra),
            ..ExtraView::default()
        };
        match Extensions::parse(extra) {
            Ok(ext) => {
                view.extensions = ext
                    .iter()
                    .map(|(kind, value)| ExtensionView {
                        kind,
                        name: extension::kind_name(kind),
                        value: hex::encode(value),
                    })
                    .collect();
            }
            Err(e) => view.extensions_error = Some(e.to_string()),
        }
        view
    }
}

/// Permission bits on one meta-message.
#[derive(Debug, Clone, Serialize)]
pub struct PermissionView {
    /// The meta-message byte.
    pub meta: u8,
    /// The raw bits.
    pub bits: u8,
    /// Their names.
    pub names: Vec<&'static str>,
}

/// The permissions of one member in an authorize or revoke message.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    /// The member.
    pub member: KeyView,
    /// Per meta-message.
    pub permissions: Vec<PermissionView>,
}

impl From<&PermissionGrant> for GrantView {
    fn from(g: &PermissionGrant) -> GrantView {
        GrantView {
            member: KeyView::new(&g.member),
            permissions: g
                .permissions
                .iter()
                .map(|(meta, bits)| PermissionView {
                    meta: meta.0,
                    bits: bits.0,
                    names: bits.iter().map(|p| p.name()).collect(),
                })
                .collect(),
        }
    }
}

/// A resolution change in a dynamic-settings message.
#[derive(Debug, Clone, Serialize)]
pub struct SettingView {
    /// The meta-message byte.
    pub meta: u8,
    /// The resolution policy index it switches to.
    pub policy_index: u8,
}

/// The payload, decoded.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PayloadView {
    /// 246 / 234.
    IntroductionRequest {
        /// `old` or `new`.
        style: &'static str,
        /// Where the request was sent.
        destination: String,
        /// Sender's LAN address.
        source_lan: String,
        /// Sender's WAN address.
        source_wan: String,
        /// Wants an introduction.
        advice: bool,
        /// Sender's NAT situation.
        connection_type: builtin::ConnectionType,
        /// Sender speaks new style.
        supports_new_style: bool,
        /// The tunnel bit.
        tunnel: bool,
        /// Flag bits without meaning.
        unused_flags: u8,
        /// Echoed identifier.
        identifier: u16,
        /// Bloom-filter sync block.
        #[serde(skip_serializing_if = "Option::is_none")]
        sync: Option<SyncView>,
        /// Trailing bytes and extensions.
        #[serde(flatten)]
        extra: ExtraView,
    },
    /// 245 / 233.
    IntroductionResponse {
        /// `old` or `new`.
        style: &'static str,
        /// The requester's address as the responder saw it.
        destination: String,
        /// Responder's LAN address.
        source_lan: String,
        /// Responder's WAN address.
        source_wan: String,
        /// Introduced peer's LAN address.
        lan_introduction: String,
        /// Introduced peer's WAN address.
        wan_introduction: String,
        /// Responder's NAT situation (old style).
        connection_type: builtin::ConnectionType,
        /// Responder speaks new style.
        supports_new_style: bool,
        /// Introduced peer speaks new style.
        intro_supports_new_style: bool,
        /// Responder has all the peers it wants.
        peer_limit_reached: bool,
        /// Flag bits without meaning.
        unused_flags: u8,
        /// Echoed identifier.
        identifier: u16,
        /// Trailing bytes and extensions.
        #[serde(flatten)]
        extra: ExtraView,
    },
    /// 250 / 232.
    PunctureRequest {
        /// `old` or `new`.
        style: &'static str,
        /// Walker's LAN address.
        lan_walker: String,
        /// Walker's WAN address.
        wan_walker: String,
        /// The walker's request identifier.
        identifier: u16,
    },
    /// 249 / 231.
    Puncture {
        /// `old` or `new`.
        style: &'static str,
        /// Sender's LAN address.
        source_lan: String,
        /// Sender's WAN address.
        source_wan: String,
        /// Echoed identifier.
        identifier: u16,
    },
    /// 248: the key is the author.
    Identity {},
    /// 247.
    MissingIdentity {
        /// The wanted member.
        member_id: MemberId,
    },
    /// 254.
    MissingSequence {
        /// The author.
        member_id: MemberId,
        /// The meta-message byte.
        meta: u8,
        /// First wanted sequence number.
        low: SequenceNumber,
        /// Last wanted sequence number.
        high: SequenceNumber,
    },
    /// 239.
    MissingMessage {
        /// The author.
        member: KeyView,
        /// The wanted global times.
        global_times: Vec<GlobalTime>,
    },
    /// 253.
    MissingProof {
        /// The message's author.
        member: KeyView,
        /// The message's global time.
        global_time: GlobalTime,
    },
    /// 252.
    SignatureRequest(EmbeddedView),
    /// 251.
    SignatureResponse(EmbeddedView),
    /// 244.
    DestroyCommunity {
        /// Soft or hard.
        kind: builtin::DestroyKind,
    },
    /// 243.
    Authorize {
        /// Per member.
        grants: Vec<GrantView>,
    },
    /// 242.
    Revoke {
        /// Per member.
        grants: Vec<GrantView>,
    },
    /// 238.
    UndoOwn {
        /// The undone message's global time.
        global_time: GlobalTime,
    },
    /// 237.
    UndoOther {
        /// The undone message's author.
        member: KeyView,
        /// The undone message's global time.
        global_time: GlobalTime,
    },
    /// 236.
    DynamicSettings {
        /// The changes.
        changes: Vec<SettingView>,
    },
    /// A community message: its payload is the community's business.
    Community {
        /// Payload bytes.
        hex: String,
    },
    /// Bytes that could not be decoded (everything after the message byte, or the payload).
    Unknown {
        /// The undecoded bytes.
        hex: String,
    },
}

/// The packet carried by a signature-request or -response.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddedView {
    /// Matches the response to the request.
    pub identifier: u16,
    /// The embedded packet, dissected (absent beyond [`MAX_EMBEDDING_DEPTH`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet: Option<Box<Dissection>>,
    /// The embedded packet's bytes, when not dissected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_hex: Option<String>,
}

/// Describes any datagram. Never panics.
pub fn dissect(bytes: &[u8], hint: &Hint) -> Dissection {
    dissect_at(bytes, hint, 0)
}

fn dissect_at(bytes: &[u8], hint: &Hint, depth: usize) -> Dissection {
    let mut d = Dissection {
        length: bytes.len(),
        community: None,
        message: None,
        authors: Vec::new(),
        resolution: None,
        global_time: None,
        sequence_number: None,
        payload: None,
        signature: None,
        signatures: Vec::new(),
        error: None,
    };
    let (prefix, byte) = match Prefix::parse(bytes) {
        Ok(p) => p,
        Err(e) => {
            d.error = Some((&e).into());
            return d;
        }
    };
    d.community = Some(CommunityView {
        id: prefix.community,
        version: prefix.community_version,
    });
    let name = builtin::name(byte);
    let (layout, kind) = match (builtin::layout(byte, prefix.community_version), hint.layout) {
        (Some(l), _) => (l, MessageKind::Builtin),
        (None, Some(l)) => (l, MessageKind::Community),
        (None, None) => (py_ipv8_layout(), MessageKind::Unknown),
    };
    d.message = Some(MessageView { byte, name, kind });

    let packet = match Packet::parse(Bytes::copy_from_slice(bytes), &layout, hint) {
        Ok(p) => p,
        Err(e) if kind == MessageKind::Unknown => {
            unknown(&mut d, bytes, &format!("it does not parse ({e})"));
            return d;
        }
        Err(e) => {
            d.error = Some((&e).into());
            return d;
        }
    };
    let signatures = signature_views(&packet);
    let overall = signatures
        .iter()
        .map(|s| s.status)
        .max()
        .unwrap_or(SignatureStatus::Unsigned);
    if kind == MessageKind::Unknown && overall != SignatureStatus::Valid {
        unknown(&mut d, bytes, "its signature does not verify");
        return d;
    }
    d.authors = match packet.authentication() {
        Authentication::None => Vec::new(),
        Authentication::Member { key, .. } => vec![KeyView::new(key)],
        Authentication::DoubleMember { keys, .. } => keys.iter().map(KeyView::new).collect(),
    };
    d.resolution = packet.resolution();
    d.global_time = Some(packet.global_time());
    d.sequence_number = packet.sequence();
    d.signature = Some(overall);
    d.signatures = signatures;
    if kind != MessageKind::Builtin {
        if let Some(m) = d.message.as_mut() {
            m.kind = MessageKind::Community;
        }
        d.payload = Some(PayloadView::Community {
            hex: hex::encode(packet.payload()),
        });
        return d;
    }
    match Builtin::decode(byte, packet.payload()) {
        Ok(b) => d.payload = Some(payload_view(&b, hint, depth)),
        Err(e) => {
            d.payload = Some(PayloadView::Unknown {
                hex: hex::encode(packet.payload()),
            });
            d.error = Some((&e).into());
        }
    }
    d
}

/// py-ipv8's framing of a community message: full key, global time, raw payload, signature.
fn py_ipv8_layout() -> Layout {
    Layout::new(AuthLayout::Member(KeyEncoding::PublicKey))
}

fn unknown(d: &mut Dissection, bytes: &[u8], why: &str) {
    let byte = bytes.get(MESSAGE_BYTE_OFFSET).copied().unwrap_or_default();
    let rest = bytes.get(MESSAGE_BYTE_OFFSET + 1..).unwrap_or_default();
    d.payload = Some(PayloadView::Unknown {
        hex: hex::encode(rest),
    });
    d.error = Some(ErrorView {
        reason: DecodeError::UnknownMessage(byte).reason(),
        message: format!(
            "message byte {byte} is not built in and the packet is not a py-ipv8 signed \
             message: {why}"
        ),
    });
}

fn signature_views(packet: &Packet) -> Vec<SignatureView> {
    packet
        .batch_items()
        .iter()
        .map(|item| {
            let status = if item.signature.is_empty() {
                SignatureStatus::Unsigned
            } else {
                match item.key.verify(item.message, item.signature) {
                    Ok(()) => SignatureStatus::Valid,
                    Err(SignatureError::Invalid) => SignatureStatus::Invalid,
                    Err(SignatureError::Unsupported(_)) => SignatureStatus::UnsupportedKey,
                }
            };
            SignatureView {
                status,
                hex: hex::encode(item.signature.as_bytes()),
            }
        })
        .collect()
}

fn style(s: WalkerStyle) -> &'static str {
    match s {
        WalkerStyle::Old => "old",
        WalkerStyle::New => "new",
    }
}

fn addr(a: SocketAddr) -> String {
    a.to_string()
}

fn embedded(ex: &SignatureExchange, hint: &Hint, depth: usize) -> EmbeddedView {
    let inner = depth + 1 < MAX_EMBEDDING_DEPTH;
    EmbeddedView {
        identifier: ex.identifier,
        packet: inner.then(|| Box::new(dissect_at(&ex.packet, hint, depth + 1))),
        packet_hex: (!inner).then(|| hex::encode(&ex.packet)),
    }
}

fn payload_view(b: &Builtin, hint: &Hint, depth: usize) -> PayloadView {
    match b {
        Builtin::IntroductionRequest(m) => request_view(m),
        Builtin::IntroductionResponse(m) => response_view(m),
        Builtin::PunctureRequest(PunctureRequest {
            style: s,
            lan_walker,
            wan_walker,
            identifier,
        }) => PayloadView::PunctureRequest {
            style: style(*s),
            lan_walker: addr(*lan_walker),
            wan_walker: addr(*wan_walker),
            identifier: *identifier,
        },
        Builtin::Puncture(Puncture {
            style: s,
            source_lan,
            source_wan,
            identifier,
        }) => PayloadView::Puncture {
            style: style(*s),
            source_lan: addr(*source_lan),
            source_wan: addr(*source_wan),
            identifier: *identifier,
        },
        Builtin::Identity => PayloadView::Identity {},
        Builtin::MissingIdentity(member_id) => PayloadView::MissingIdentity {
            member_id: *member_id,
        },
        Builtin::MissingSequence(m) => PayloadView::MissingSequence {
            member_id: m.member,
            meta: m.meta.0,
            low: m.low,
            high: m.high,
        },
        Builtin::MissingMessage(m) => PayloadView::MissingMessage {
            member: KeyView::new(&m.member),
            global_times: m.global_times.clone(),
        },
        Builtin::MissingProof(m) => PayloadView::MissingProof {
            member: KeyView::new(&m.member),
            global_time: m.global_time,
        },
        Builtin::SignatureRequest(ex) => PayloadView::SignatureRequest(embedded(ex, hint, depth)),
        Builtin::SignatureResponse(ex) => PayloadView::SignatureResponse(embedded(ex, hint, depth)),
        Builtin::DestroyCommunity(kind) => PayloadView::DestroyCommunity { kind: *kind },
        Builtin::Authorize(g) => PayloadView::Authorize {
            grants: g.iter().map(GrantView::from).collect(),
        },
        Builtin::Revoke(g) => PayloadView::Revoke {
            grants: g.iter().map(GrantView::from).collect(),
        },
        Builtin::UndoOwn(global_time) => PayloadView::UndoOwn {
            global_time: *global_time,
        },
        Builtin::UndoOther {
            member,
            global_time,
        } => PayloadView::UndoOther {
            member: KeyView::new(member),
            global_time: *global_time,
        },
        Builtin::DynamicSettings(s) => PayloadView::DynamicSettings {
            changes: s
                .iter()
                .map(|(meta, policy_index)| SettingView {
                    meta: meta.0,
                    policy_index: *policy_index,
                })
                .collect(),
        },
    }
}

fn request_view(m: &IntroductionRequest) -> PayloadView {
    PayloadView::IntroductionRequest {
        style: style(m.style),
        destination: addr(m.destination),
        source_lan: addr(m.source_lan),
        source_wan: addr(m.source_wan),
        advice: m.advice,
        connection_type: m.connection_type,
        supports_new_style: m.supports_new_style,
        tunnel: m.tunnel,
        unused_flags: m.unused_flags,
        identifier: m.identifier,
        sync: m.sync.as_ref().map(SyncView::from),
        extra: ExtraView::new(&m.extra),
    }
}

fn response_view(m: &IntroductionResponse) -> PayloadView {
    PayloadView::IntroductionResponse {
        style: style(m.style),
        destination: addr(m.destination),
        source_lan: addr(m.source_lan),
        source_wan: addr(m.source_wan),
        lan_introduction: addr(m.lan_introduction),
        wan_introduction: addr(m.wan_introduction),
        connection_type: m.connection_type,
        supports_new_style: m.supports_new_style,
        intro_supports_new_style: m.intro_supports_new_style,
        peer_limit_reached: m.peer_limit_reached,
        unused_flags: m.unused_flags,
        identifier: m.identifier,
        extra: ExtraView::new(&m.extra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use crate::wire::{Authors, Draft};

    fn golden() -> Vec<(String, Vec<u8>)> {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/vectors/ipv8-vectors.json"))
                .expect("vectors parse");
        v["packets"]
            .as_object()
            .expect("packets")
            .iter()
            .map(|(name, p)| {
                let hex = p["packet_hex"].as_str().expect("hex");
                (name.clone(), hex::decode(hex).expect("hex"))
            })
            .collect()
    }

    #[test]
    fn golden_vectors_dissect_with_valid_signatures() {
        for (name, bytes) in golden() {
            let d = dissect(&bytes, &Hint::default());
            assert!(d.is_ok(), "{name}: {:?}", d.problem());
            let signed = !name.ends_with("unsigned");
            let want = if signed {
                SignatureStatus::Valid
            } else {
                SignatureStatus::Unsigned
            };
            assert_eq!(d.signature, Some(want), "{name}");
            let json = serde_json::to_value(&d).expect("serialises");
            assert_eq!(json["community"]["version"], 2, "{name}");
            if name == "text_message_1" {
                assert_eq!(json["message"]["kind"], "community");
                assert_eq!(json["payload"]["type"], "community");
                assert_eq!(json["payload"]["hex"], "000668c3a96c6c6f");
            } else {
                assert_eq!(json["message"]["kind"], "builtin", "{name}");
            }
        }
    }

    #[test]
    fn introduction_request_fields_are_shown() {
        let (_, bytes) = golden()
            .into_iter()
            .find(|(n, _)| n == "new_introduction_request_234")
            .expect("vector");
        let json = serde_json::to_value(dissect(&bytes, &Hint::default())).expect("json");
        assert_eq!(json["message"]["name"], "new-introduction-request");
        assert_eq!(json["payload"]["type"], "introduction-request");
        assert_eq!(json["payload"]["style"], "new");
        assert_eq!(json["payload"]["destination"], "127.0.0.1:9101");
        assert_eq!(json["payload"]["source_wan"], "[2001:db8::1]:7000");
        assert_eq!(json["authors"][0]["key_type"], "ed25519");
        assert_eq!(
            json["authors"][0]["member_id"],
            "f37c16019b1ce0dff055275a54fdfbd8a82ec742"
        );
    }

    #[test]
    fn damage_is_reported_not_hidden() {
        for (name, bytes) in golden() {
            for cut in [0, 1, 22, 23, bytes.len() / 2, bytes.len() - 1] {
                let d = dissect(&bytes[..cut], &Hint::default());
                assert!(!d.is_ok(), "{name} cut at {cut}");
            }
            if name.ends_with("unsigned") {
                continue;
            }
            let mut flipped = bytes.clone();
            let at = flipped.len() - 70;
            flipped[at] ^= 0x01;
            let d = dissect(&flipped, &Hint::default());
            assert!(!d.is_ok(), "{name} with a flipped bit");
        }
        let d = dissect(b"\x01hello", &Hint::default());
        assert_eq!(d.error.as_ref().map(|e| e.reason), Some("not-dispersy"));
    }

    #[test]
    fn hinted_layout_and_embedded_packets() {
        let a = PrivateKey::from_bin(&[b"LibNaCLSK:".as_slice(), &[3; 64]].concat()).expect("key");
        let b = PrivateKey::from_bin(&[b"LibNaCLSK:".as_slice(), &[4; 64]].concat()).expect("key");
        let prefix = Prefix {
            community_version: 2,
            community: CommunityId([5; 20]),
        };
        let inner = Draft {
            prefix,
            message_byte: 7,
            authors: Authors::DoubleMember([a.public(), b.public()], KeyEncoding::PublicKey),
            resolution: None,
            global_time: GlobalTime(3),
            sequence: None,
            payload: b"deal",
        };
        let half = inner.encode(&[Some(&a)]).expect("encodes");
        let request = Builtin::SignatureRequest(SignatureExchange {
            identifier: 77,
            packet: half.clone(),
        })
        .to_bytes()
        .expect("payload");
        let outer = Draft {
            prefix,
            message_byte: builtin::byte::SIGNATURE_REQUEST,
            authors: Authors::None,
            resolution: None,
            global_time: GlobalTime(4),
            sequence: None,
            payload: &request,
        }
        .encode(&[])
        .expect("encodes");
        let hint = Hint {
            layout: Some(inner.layout()),
            keys: Vec::new(),
        };
        let d = dissect(&outer, &hint);
        assert!(d.is_ok(), "{:?}", d.problem());
        let json = serde_json::to_value(&d).expect("json");
        assert_eq!(json["payload"]["type"], "signature-request");
        assert_eq!(json["payload"]["identifier"], 77);
        let embedded = &json["payload"]["packet"];
        assert_eq!(embedded["message"]["kind"], "community");
        assert_eq!(embedded["signature"], "unsigned");
        assert_eq!(embedded["signatures"][0]["status"], "valid");
        assert_eq!(embedded["signatures"][1]["status"], "unsigned");
        assert_eq!(embedded["payload"]["hex"], hex::encode(b"deal"));

        // Without the hint the double-member message is not a py-ipv8 message: unknown.
        let d = dissect(&half, &Hint::default());
        assert_eq!(
            d.message.as_ref().map(|m| m.kind),
            Some(MessageKind::Unknown)
        );
        assert_eq!(d.error.as_ref().map(|e| e.reason), Some("unknown-message"));
    }
}
