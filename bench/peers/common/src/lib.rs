//! The messages every program sends, the same in each (and in `plain.js`): the `n`th text
//! message is `n` in decimal, left-padded with `0` to `size` bytes; the `n`th binary message is
//! a fixed pattern of `size` bytes, made once per run, copied, with `n` in its first four bytes
//! (little-endian). A reply is checked against the message it answers, byte for byte.

/// The `n`th text message, `size` bytes.
pub fn text(n: u32, size: usize) -> String {
    let mut digits = [b'0'; 10];
    let (mut rest, mut at) = (n, digits.len());
    while rest > 0 || at == digits.len() {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let digits = &digits[at..];
    let mut message = vec![b'0'; size.max(digits.len())];
    let start = message.len() - digits.len();
    message[start..].copy_from_slice(digits);
    String::from_utf8(message).unwrap_or_default()
}

/// The bytes of a run's binary messages, `size` of them (at least 4).
pub fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// The `n`th binary message: `pattern` with `n` in its first four bytes.
pub fn binary(pattern: &[u8], n: u32) -> Vec<u8> {
    let mut message = pattern.to_vec();
    message[..4].copy_from_slice(&n.to_le_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(text(0, 13), "0000000000000");
        assert_eq!(text(4021, 13), "0000000004021");
        assert_eq!(text(123, 2), "123");
        let message = binary(&pattern(8), 258);
        assert_eq!(message, [2, 1, 0, 0, 31, 38, 45, 52]);
    }
}
