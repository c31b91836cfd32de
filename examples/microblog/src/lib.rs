//! A Twitter-like community built on the dispersy library: how a developer builds on dispersy.
//!
//! - **Typed payloads**: [`Post`], [`Reply`], [`Like`] and [`Profile`] implement
//!   [`Payload`]; the node refuses (and counts) any packet whose payload does not decode, so
//!   malformed posts never spread.
//! - **Policies do the work**: posts and replies are full-sync and undoable; likes are full-sync;
//!   a profile is last-sync with history 1, so every node keeps only each member's newest one.
//! - **Moderation through the permission system**: the founder (who holds the master key)
//!   authorizes moderators with `undo` on posts and replies; a moderator's undo-other hides a
//!   post on every node, and the undo itself is a signed, synced message anyone can check.
//! - **A read model**: [`Timeline::read`] builds the feed (posts with their replies and like
//!   counts, without undone ones) from a node's store; it works on any `Node`, in-process
//!   ([`dispersy::testing::Network`]) or behind a driver (`Handle::call`).
//!
//! ```no_run
//! # async fn run(handle: dispersy_net::Handle, master: dispersy::crypto::PrivateKey) -> anyhow::Result<()> {
//! use dispersy::community::payload::Payload;
//!
//! let def = microblog::definition(master.public().clone());
//! let community = def.id();
//! handle.join(def).await?;
//! let post = microblog::Post::new("hello, decentralized world")?;
//! handle.create_message(community, microblog::POST, post.to_bytes(), Vec::new()).await?;
//! let feed = handle.call(move |node, _| microblog::Timeline::read(node, &community)).await??;
//! # drop(feed);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

use std::collections::BTreeMap;

use dispersy::community::payload::Payload;
use dispersy::community::{Definition, MetaMessage};
use dispersy::crypto::PublicKey;
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId};
use dispersy::node::Node;
use dispersy::store::{RangeQuery, StoreError, Undone};
use dispersy::wire::builtin::Permissions;
use dispersy::wire::codec::{Reader, put_varlen_h};
use dispersy::wire::{DecodeError, Packet};

/// A post (full sync, undoable).
pub const POST: MetaId = MetaId(1);
/// A reply to a post (full sync, undoable).
pub const REPLY: MetaId = MetaId(2);
/// A like of a post or reply (full sync).
pub const LIKE: MetaId = MetaId(3);
/// A member's profile (last sync, history 1: only the newest is kept).
pub const PROFILE: MetaId = MetaId(4);

/// Longest post or reply, in characters.
pub const MAX_TEXT: usize = 280;
/// Longest profile name, in characters.
pub const MAX_NAME: usize = 40;

/// Content that breaks the community's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Text longer than allowed.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// Empty text.
    #[error("{0} is empty")]
    Empty(&'static str),
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), ContentError> {
    if text.trim().is_empty() {
        return Err(ContentError::Empty(field));
    }
    if text.chars().count() > max {
        return Err(ContentError::TooLong { field, max });
    }
    Ok(())
}

fn read_text(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
    may_be_empty: bool,
) -> Result<String, DecodeError> {
    let text = std::str::from_utf8(r.varlen_h(field)?).map_err(|_| DecodeError::Invalid {
        field,
        reason: "not UTF-8",
    })?;
    if text.chars().count() > max || (!may_be_empty && text.trim().is_empty()) {
        return Err(DecodeError::Invalid {
            field,
            reason: "breaks the length rule",
        });
    }
    Ok(text.to_owned())
}

fn put_id(out: &mut Vec<u8>, id: &MessageId) {
    out.extend_from_slice(id.member.as_bytes());
    out.extend_from_slice(&id.global_time.0.to_be_bytes());
}

fn read_id(r: &mut Reader<'_>) -> Result<MessageId, DecodeError> {
    Ok(MessageId {
        member: MemberId(r.array::<20>("member")?),
        global_time: GlobalTime(r.u64("global time")?),
    })
}

/// A post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Up to [`MAX_TEXT`] characters.
    pub text: String,
}

impl Post {
    /// A post, checked against the rules.
    pub fn new(text: impl Into<String>) -> Result<Post, ContentError> {
        let text = text.into();
        check_text("post", &text, MAX_TEXT)?;
        Ok(Post { text })
    }
}

impl Payload for Post {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varlen_h(out, self.text.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Post {
            text: read_text(r, "post", MAX_TEXT, false)?,
        })
    }
}

/// A reply to a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The post replied to.
    pub to: MessageId,
    /// Up to [`MAX_TEXT`] characters.
    pub text: String,
}

impl Reply {
    /// A reply, checked against the rules.
    pub fn new(to: MessageId, text: impl Into<String>) -> Result<Reply, ContentError> {
        let text = text.into();
        check_text("reply", &text, MAX_TEXT)?;
        Ok(Reply { to, text })
    }
}

impl Payload for Reply {
    fn encode(&self, out: &mut Vec<u8>) {
        put_id(out, &self.to);
        put_varlen_h(out, self.text.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Reply {
            to: read_id(r)?,
            text: read_text(r, "reply", MAX_TEXT, false)?,
        })
    }
}

/// A like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Like {
    /// The post or reply liked.
    pub to: MessageId,
}

impl Payload for Like {
    fn encode(&self, out: &mut Vec<u8>) {
        put_id(out, &self.to);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Like { to: read_id(r)? })
    }
}

/// A member's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Display name, up to [`MAX_NAME`] characters.
    pub name: String,
    /// A line about the member, up to [`MAX_TEXT`] characters (may be empty).
    pub bio: String,
}

impl Profile {
    /// A profile, checked against the rules.
    pub fn new(name: impl Into<String>, bio: impl Into<String>) -> Result<Profile, ContentError> {
        let (name, bio) = (name.into(), bio.into());
        check_text("name", &name, MAX_NAME)?;
        if bio.chars().count() > MAX_TEXT {
            return Err(ContentError::TooLong {
                field: "bio",
                max: MAX_TEXT,
            });
        }
        Ok(Profile { name, bio })
    }
}

impl Payload for Profile {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varlen_h(out, self.name.as_bytes());
        put_varlen_h(out, self.bio.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Profile {
            name: read_text(r, "name", MAX_NAME, false)?,
            bio: read_text(r, "bio", MAX_TEXT, true)?,
        })
    }
}

/// What a moderator holds: `undo` on posts and replies (the founder grants it with
/// `Node::authorize`; a moderator's `Node::undo` of another member's post is an undo-other).
pub fn moderator_grants() -> Vec<(MetaId, Permissions)> {
    vec![(POST, Permissions::UNDO), (REPLY, Permissions::UNDO)]
}

/// The community definition of a microblog whose master key is `master`.
pub fn definition(master: PublicKey) -> Definition {
    Definition::builder(master)
        .kind("microblog")
        .meta(
            MetaMessage::new(POST.0, "post")
                .payload::<Post>()
                .undoable(),
        )
        .meta(
            MetaMessage::new(REPLY.0, "reply")
                .payload::<Reply>()
                .undoable(),
        )
        .meta(MetaMessage::new(LIKE.0, "like").payload::<Like>())
        .meta(
            MetaMessage::new(PROFILE.0, "profile")
                .last_sync(1)
                .payload::<Profile>(),
        )
        .build()
        .expect("invariant: the microblog definition is valid")
}

/// A post as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The post's id.
    pub id: MessageId,
    /// Its author's profile name, if known.
    pub author: Option<String>,
    /// The post.
    pub post: Post,
    /// Live replies, oldest first: (reply id, author name, reply).
    pub replies: Vec<(MessageId, Option<String>, Reply)>,
    /// Likes of the post.
    pub likes: usize,
}

/// The feed of one node: live posts, newest first, with replies, likes and profile names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The posts.
    pub entries: Vec<Entry>,
    /// The newest profile of each member.
    pub profiles: BTreeMap<MemberId, Profile>,
}

impl Timeline {
    /// Reads the feed from a node's store (live messages only: undone posts are gone).
    pub fn read(node: &Node, community: &CommunityId) -> Result<Timeline, StoreError> {
        let Some(def) = node.community(community).cloned() else {
            return Ok(Timeline::default());
        };
        let store = node.store();
        let lookup = |m: &MemberId| store.member(m).ok().flatten();
        let mut all = RangeQuery::between(GlobalTime(1), GlobalTime::MAX, 100_000);
        all.metas = Some(vec![POST, REPLY, LIKE, PROFILE]);
        let mut timeline = Timeline::default();
        let mut posts = Vec::new();
        let mut replies = Vec::new();
        let mut likes: BTreeMap<MessageId, usize> = BTreeMap::new();
        for m in store.range(community, &all)? {
            if m.undone != Undone::No {
                continue;
            }
            let Some(meta) = def.meta(m.meta) else {
                continue;
            };
            let Ok(packet) = Packet::parse(m.packet.clone(), &meta.layout(), &lookup) else {
                continue;
            };
            let payload = packet.payload();
            match m.meta {
                POST => {
                    if let Ok(p) = Post::from_bytes(payload) {
                        posts.push((m.id(), p));
                    }
                }
                REPLY => {
                    if let Ok(r) = Reply::from_bytes(payload) {
                        replies.push((m.id(), r));
                    }
                }
                LIKE => {
                    if let Ok(l) = Like::from_bytes(payload) {
                        *likes.entry(l.to).or_default() += 1;
                    }
                }
                PROFILE => {
                    if let Ok(p) = Profile::from_bytes(payload) {
                        timeline.profiles.insert(m.member, p);
                    }
                }
                _ => {}
            }
        }
        let name = |m: &MemberId| timeline.profiles.get(m).map(|p| p.name.clone());
        let mut entries: Vec<Entry> = posts
            .into_iter()
            .map(|(id, post)| Entry {
                id,
                author: name(&id.member),
                post,
                replies: replies
                    .iter()
                    .filter(|(_, r)| r.to == id)
                    .map(|(rid, r)| (*rid, name(&rid.member), r.clone()))
                    .collect(),
                likes: likes.get(&id).copied().unwrap_or(0),
            })
            .collect();
        entries.reverse();
        timeline.entries = entries;
        Ok(timeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId {
            member: MemberId([n; 20]),
            global_time: GlobalTime(u64::from(n) + 1),
        }
    }

    #[test]
    fn payloads_round_trip_and_rules_hold() {
        let post = Post::new("hi").unwrap();
        assert_eq!(Post::from_bytes(&post.to_bytes()).unwrap(), post);
        let reply = Reply::new(id(3), "yes").unwrap();
        assert_eq!(Reply::from_bytes(&reply.to_bytes()).unwrap(), reply);
        let like = Like { to: id(4) };
        assert_eq!(Like::from_bytes(&like.to_bytes()).unwrap(), like);
        let profile = Profile::new("ada", "").unwrap();
        assert_eq!(Profile::from_bytes(&profile.to_bytes()).unwrap(), profile);

        assert!(Post::new(" ").is_err());
        assert!(Post::new("x".repeat(MAX_TEXT + 1)).is_err());
        assert!(Profile::new("n".repeat(MAX_NAME + 1), "").is_err());
        // What a hostile peer might send is refused by the schema, so the node drops it.
        let mut long = Vec::new();
        put_varlen_h(&mut long, "x".repeat(MAX_TEXT + 1).as_bytes());
        assert!(Post::from_bytes(&long).is_err());
        assert!(Like::from_bytes(&[0; 27]).is_err());
        let mut trailing = post.to_bytes();
        trailing.push(0);
        assert!(Post::from_bytes(&trailing).is_err());
    }
}
