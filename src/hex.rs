//! Lower-case hexadecimal, for store keys and key files.

pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Decodes into `out`; `None` unless `text` is exactly `2 * out.len()` hex digits.
pub(crate) fn decode_into(text: &str, out: &mut [u8]) -> Option<()> {
    let bytes = text.as_bytes();
    if bytes.len() != out.len() * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let mut out = [0u8; 3];
        assert_eq!(super::encode(&[0, 0xab, 0xff]), "00abff");
        super::decode_into("00ABff", &mut out).unwrap();
        assert_eq!(out, [0, 0xab, 0xff]);
        assert!(super::decode_into("00abf", &mut out).is_none());
        assert!(super::decode_into("00abfg", &mut out).is_none());
    }
}
