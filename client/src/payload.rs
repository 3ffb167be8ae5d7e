//! The bytes of a binary message: tungstenite's `Bytes` natively, a `Vec<u8>` in the browser.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// The bytes of a binary message ([`Message::Binary`](crate::Message::Binary)). It derefs to
/// `[u8]`, compares with byte slices and vectors, and converts from and into a `Vec<u8>`.
///
/// Natively it holds tungstenite's `Bytes`, so a large received message reaches the
/// application without a copy (`bytes::Bytes::from` takes it without one; `into_vec` copies
/// when the buffer is shared, as a received one is); one smaller than the connection's read
/// buffer (64 KiB) is copied out of it, so that a small payload kept for long does not keep
/// the whole buffer. In the browser it is a `Vec<u8>`: the bytes have been copied out of
/// JavaScript once anyway, and a page then carries none of the `bytes` crate's code (1.4 KB
/// gzipped). Cloning copies the bytes in the browser, not natively. To change the bytes in
/// place, take them with [`into_vec`](Self::into_vec).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Payload(Inner);

#[cfg(target_arch = "wasm32")]
type Inner = Vec<u8>;
#[cfg(not(target_arch = "wasm32"))]
type Inner = bytes::Bytes;

impl Payload {
    /// The bytes as a `Vec<u8>`: without a copy in the browser, and natively unless the
    /// buffer is shared.
    #[allow(
        clippy::useless_conversion,
        reason = "no conversion in the browser, Bytes natively"
    )]
    pub fn into_vec(self) -> Vec<u8> {
        self.0.into()
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// As the bytes' slice: `[1, 2, 3]`.
impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<Vec<u8>> for Payload {
    /// Without a copy.
    #[allow(
        clippy::useless_conversion,
        reason = "no conversion in the browser, Bytes natively"
    )]
    fn from(data: Vec<u8>) -> Self {
        Payload(data.into())
    }
}

impl From<&[u8]> for Payload {
    fn from(data: &[u8]) -> Self {
        Payload::from(data.to_vec())
    }
}

impl From<&Vec<u8>> for Payload {
    fn from(data: &Vec<u8>) -> Self {
        Payload::from(&data[..])
    }
}

impl<const N: usize> From<[u8; N]> for Payload {
    fn from(data: [u8; N]) -> Self {
        Payload::from(&data[..])
    }
}

impl<const N: usize> From<&[u8; N]> for Payload {
    fn from(data: &[u8; N]) -> Self {
        Payload::from(&data[..])
    }
}

impl FromIterator<u8> for Payload {
    fn from_iter<I: IntoIterator<Item = u8>>(bytes: I) -> Self {
        Payload::from(bytes.into_iter().collect::<Vec<u8>>())
    }
}

impl IntoIterator for Payload {
    type Item = u8;
    type IntoIter = std::vec::IntoIter<u8>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Payload {
    type Item = &'a u8;
    type IntoIter = std::slice::Iter<'a, u8>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A payload hashes, compares and orders as its bytes do, so maps keyed by it can be looked
/// up with a `&[u8]`.
impl Borrow<[u8]> for Payload {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl From<Payload> for Vec<u8> {
    fn from(payload: Payload) -> Self {
        payload.into_vec()
    }
}

/// Natively only: tungstenite's own type, without a copy.
#[cfg(not(target_arch = "wasm32"))]
impl From<bytes::Bytes> for Payload {
    fn from(data: bytes::Bytes) -> Self {
        Payload(data)
    }
}

/// Natively only: tungstenite's own type, without a copy.
#[cfg(not(target_arch = "wasm32"))]
impl From<Payload> for bytes::Bytes {
    fn from(payload: Payload) -> Self {
        payload.0
    }
}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[u8]> for Payload {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<u8>> for Payload {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Payload {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Payload {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

impl PartialEq<Payload> for [u8] {
    fn eq(&self, other: &Payload) -> bool {
        *self == **other
    }
}

impl PartialEq<Payload> for &[u8] {
    fn eq(&self, other: &Payload) -> bool {
        **self == **other
    }
}

impl PartialEq<Payload> for Vec<u8> {
    fn eq(&self, other: &Payload) -> bool {
        self[..] == **other
    }
}

impl<const N: usize> PartialEq<Payload> for [u8; N] {
    fn eq(&self, other: &Payload) -> bool {
        self[..] == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_its_bytes() {
        let payload = Payload::from(vec![1u8, 2, 3]);
        assert_eq!(&payload[..], [1, 2, 3]);
        assert_eq!(payload, vec![1u8, 2, 3]);
        assert_eq!(payload, [1u8, 2, 3]);
        assert_eq!(format!("{payload:?}"), "[1, 2, 3]");
        assert_eq!(Payload::from(&[1u8, 2, 3][..]), payload);
        assert_eq!(payload, b"\x01\x02\x03");
        assert_eq!(vec![1u8, 2, 3], payload);
        assert_eq!([1u8, 2, 3], payload);
        assert_eq!(&[1u8, 2, 3][..], payload);
        assert_eq!(Payload::from([1u8, 2, 3]), payload);
        assert_eq!(Payload::from(&vec![1u8, 2, 3]), payload);
        assert_eq!((1..=3).collect::<Payload>(), payload);
        assert_eq!((&payload).into_iter().sum::<u8>(), 6);
        assert_eq!(payload.clone().into_iter().collect::<Vec<u8>>(), [1, 2, 3]);
        let keyed = std::collections::HashMap::from([(payload.clone(), "three")]);
        assert_eq!(keyed.get(&[1u8, 2, 3][..]), Some(&"three"));
        assert_eq!(payload.clone().into_vec(), vec![1, 2, 3]);
        #[cfg(not(target_arch = "wasm32"))]
        assert_eq!(Payload::from(bytes::Bytes::from(payload.clone())), payload);
    }
}
