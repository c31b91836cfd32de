//! Application payloads.
//!
//! The core stores and forwards payload bytes without understanding them, but it must refuse
//! malformed ones before storing, or garbage would spread to every node. Each meta-message
//! therefore names a [`PayloadSchema`] that validates its bytes: typed Rust payloads
//! ([`Payload`], wrapped by [`Typed`]) or the declarative layouts of [`Layout`].

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::wire::DecodeError;
use crate::wire::codec::{Reader, put_varlen_h};

/// Checks (and optionally describes) a meta-message's payload bytes.
pub trait PayloadSchema: Send + Sync + fmt::Debug {
    /// `Ok` when the bytes are a well-formed payload.
    fn validate(&self, payload: &[u8]) -> Result<(), DecodeError>;

    /// A short human-readable rendering (for the dissector, logs and the REST API).
    fn describe(&self, payload: &[u8]) -> String {
        hex::encode(payload)
    }
}

/// A typed application payload, encoded with the wire helpers.
///
/// ```
/// use dispersy::community::payload::Payload;
/// use dispersy::wire::{DecodeError, codec::{Reader, put_varlen_h}};
///
/// struct Post { text: String }
///
/// impl Payload for Post {
///     fn encode(&self, out: &mut Vec<u8>) { put_varlen_h(out, self.text.as_bytes()) }
///     fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
///         let text = std::str::from_utf8(r.varlen_h("text")?)
///             .map_err(|_| DecodeError::Invalid { field: "text", reason: "not UTF-8" })?;
///         Ok(Post { text: text.to_owned() })
///     }
/// }
/// ```
pub trait Payload: Sized + Send + Sync + 'static {
    /// Appends the encoding.
    fn encode(&self, out: &mut Vec<u8>);

    /// Decodes from the reader; must consume exactly the payload (trailing bytes are refused by
    /// [`Payload::from_bytes`]).
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The encoding as a fresh buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a whole payload, refusing trailing bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let p = Self::decode(&mut r)?;
        r.finish()?;
        Ok(p)
    }
}

/// The [`PayloadSchema`] of a typed payload.
pub struct Typed<P>(PhantomData<fn() -> P>);

impl<P> Typed<P> {
    /// The schema of `P`.
    pub fn new() -> Typed<P> {
        Typed(PhantomData)
    }
}

impl<P> Default for Typed<P> {
    fn default() -> Self {
        Typed::new()
    }
}

impl<P> fmt::Debug for Typed<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Typed<{}>", std::any::type_name::<P>())
    }
}

impl<P: Payload> PayloadSchema for Typed<P> {
    fn validate(&self, payload: &[u8]) -> Result<(), DecodeError> {
        P::from_bytes(payload).map(|_| ())
    }
}

/// Declarative payload layouts, for communities described in TOML.
///
/// They are chosen to match py-ipv8's serializer formats, so a declared community can talk to a
/// py-ipv8 community whose message uses the same format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Any bytes (py-ipv8 `raw`).
    Raw,
    /// Any valid UTF-8 (py-ipv8 `raw` holding text).
    RawText,
    /// A `u16` length then that many bytes (py-ipv8 `varlenH`).
    Bytes,
    /// A `u16` length then that many bytes of UTF-8 (py-ipv8 `varlenH` holding text,
    /// `varlenHutf8`).
    Text,
    /// Nothing.
    Empty,
}

impl Layout {
    /// Encodes application content given as raw bytes into this layout.
    pub fn encode(self, content: &[u8]) -> Result<Vec<u8>, LayoutError> {
        match self {
            Layout::Raw => Ok(content.to_vec()),
            Layout::RawText => {
                std::str::from_utf8(content).map_err(|_| LayoutError::NotUtf8)?;
                Ok(content.to_vec())
            }
            Layout::Bytes | Layout::Text => {
                if self == Layout::Text {
                    std::str::from_utf8(content).map_err(|_| LayoutError::NotUtf8)?;
                }
                if content.len() > usize::from(u16::MAX) {
                    return Err(LayoutError::TooLong(content.len()));
                }
                let mut out = Vec::with_capacity(content.len() + 2);
                put_varlen_h(&mut out, content);
                Ok(out)
            }
            Layout::Empty if content.is_empty() => Ok(Vec::new()),
            Layout::Empty => Err(LayoutError::NotEmpty),
        }
    }

    /// Extracts the application content from a payload in this layout.
    pub fn decode(self, payload: &[u8]) -> Result<&[u8], DecodeError> {
        let mut r = Reader::new(payload);
        let content = match self {
            Layout::Raw => r.rest(),
            Layout::RawText => {
                let c = r.rest();
                utf8(c)?;
                c
            }
            Layout::Bytes => r.varlen_h("payload")?,
            Layout::Text => {
                let c = r.varlen_h("payload")?;
                utf8(c)?;
                c
            }
            Layout::Empty => &[],
        };
        r.finish()?;
        Ok(content)
    }

    /// Whether the content is text.
    pub fn is_text(self) -> bool {
        matches!(self, Layout::Text | Layout::RawText)
    }
}

fn utf8(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| DecodeError::Invalid {
        field: "payload",
        reason: "not UTF-8",
    })
}

impl PayloadSchema for Layout {
    fn validate(&self, payload: &[u8]) -> Result<(), DecodeError> {
        self.decode(payload).map(|_| ())
    }

    fn describe(&self, payload: &[u8]) -> String {
        match self.decode(payload) {
            Ok(c) if self.is_text() => String::from_utf8_lossy(c).into_owned(),
            Ok(c) => hex::encode(c),
            Err(e) => format!("<{e}>"),
        }
    }
}

/// Why content does not fit a [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Text layouts need UTF-8.
    #[error("content is not valid UTF-8")]
    NotUtf8,
    /// Length-prefixed layouts hold at most 65535 bytes.
    #[error("content of {0} bytes is longer than 65535")]
    TooLong(usize),
    /// The empty layout holds nothing.
    #[error("this message type carries no content")]
    NotEmpty,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip() {
        for layout in [Layout::Raw, Layout::RawText, Layout::Bytes, Layout::Text] {
            let p = layout.encode("héllo".as_bytes()).unwrap();
            assert_eq!(layout.decode(&p).unwrap(), "héllo".as_bytes());
            layout.validate(&p).unwrap();
        }
        assert_eq!(
            Layout::Text.encode(&[0xff]).unwrap_err(),
            LayoutError::NotUtf8
        );
        assert!(Layout::Text.validate(&[0, 5, b'a']).is_err());
        assert!(Layout::Bytes.validate(&[0, 1, b'a', b'b']).is_err());
        assert_eq!(
            Layout::Text.describe(&Layout::Text.encode(b"hi").unwrap()),
            "hi"
        );
        assert!(Layout::Empty.validate(&[1]).is_err());
    }
}
