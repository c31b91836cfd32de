//! Socket addresses on the wire.
//!
//! Old-style walker messages (246/245/250/249) carry 6-byte IPv4 addresses: four address bytes
//! then a `u16` port. New-style ones (234/233/232/231) carry py-ipv8's tagged `ip_address`: a type
//! byte (`0x01` IPv4, `0x03` IPv6) then the address and port. `0.0.0.0:0` means "no address".

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::BufMut;

use super::DecodeError;
use super::codec::Reader;

/// Encoded length of an old-style IPv4 address.
pub const IPV4_LEN: usize = 6;

/// The "no address" value.
pub const UNSPECIFIED_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);

/// Reads a 6-byte IPv4 address.
pub fn read_v4(r: &mut Reader<'_>, field: &'static str) -> Result<SocketAddrV4, DecodeError> {
    let ip: [u8; 4] = r.array(field)?;
    let port = r.u16(field)?;
    Ok(SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

/// Writes a 6-byte IPv4 address.
pub fn put_v4(out: &mut Vec<u8>, addr: SocketAddrV4) {
    out.extend_from_slice(&addr.ip().octets());
    out.put_u16(addr.port());
}

/// Reads a tagged `ip_address` (IPv4 or IPv6; host names are refused as py-ipv8 refuses them).
pub fn read_tagged(r: &mut Reader<'_>, field: &'static str) -> Result<SocketAddr, DecodeError> {
    match r.u8(field)? {
        0x01 => {
            let ip: [u8; 4] = r.array(field)?;
            let port = r.u16(field)?;
            Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        0x03 => {
            let ip: [u8; 16] = r.array(field)?;
            let port = r.u16(field)?;
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                0,
                0,
            )))
        }
        0x02 => Err(DecodeError::Invalid {
            field,
            reason: "host names are not allowed here",
        }),
        _ => Err(DecodeError::Invalid {
            field,
            reason: "unknown address type",
        }),
    }
}

/// Writes a tagged `ip_address`.
pub fn put_tagged(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            out.put_u8(0x01);
            put_v4(out, a);
        }
        SocketAddr::V6(a) => {
            out.put_u8(0x03);
            out.extend_from_slice(&a.ip().octets());
            out.put_u16(a.port());
        }
    }
}

/// Encoded length of a tagged address.
pub fn tagged_len(addr: SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 7,
        SocketAddr::V6(_) => 19,
    }
}

/// Whether an address is the "no address" placeholder (unspecified IP or port zero).
pub fn is_unspecified(addr: SocketAddr) -> bool {
    addr.ip().is_unspecified() || addr.port() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v4: SocketAddr = "127.0.0.1:9101".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:7000".parse().unwrap();
        let mut out = Vec::new();
        put_tagged(&mut out, v4);
        put_tagged(&mut out, v6);
        assert_eq!(out.len(), tagged_len(v4) + tagged_len(v6));
        let mut r = Reader::new(&out);
        assert_eq!(read_tagged(&mut r, "a").unwrap(), v4);
        assert_eq!(read_tagged(&mut r, "b").unwrap(), v6);
        assert!(r.is_empty());
        assert!(read_tagged(&mut Reader::new(&[2, 0, 0]), "c").is_err());
        assert!(is_unspecified(SocketAddr::V4(UNSPECIFIED_V4)));
    }
}
