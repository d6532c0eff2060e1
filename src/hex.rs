//! Lower-case hexadecimal for store keys, ids and key files, through
//! RustCrypto's `base16ct`: constant-time in the data, which matters because
//! key files and KEK shares are hex too.

pub(crate) fn encode(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Decodes into `out`; `None` unless `text` is exactly `2 * out.len()` hex
/// digits (either case).
pub(crate) fn decode_into(text: &str, out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 {
        return None;
    }
    let decoded = base16ct::mixed::decode(text, out).ok()?.len();
    (decoded == out.len()).then_some(())
}

/// Decodes hex of any even length; `None` if it is not hex.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    base16ct::mixed::decode_vec(text).ok()
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
