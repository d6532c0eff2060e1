//! How records are written as bytes: one format byte, then postcard. Kept
//! here, beside the store, so every layer that reads its own records (the
//! vault, the audit trail) reads the same format.

use serde::de::DeserializeOwned;
use serde::Serialize;

const FORMAT: u8 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("the record could not be encoded")]
    Encode,
    #[error("the stored record does not decode")]
    Decode,
}

pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_extend(record, vec![FORMAT]).map_err(|_| CodecError::Encode)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        Some((&FORMAT, body)) => postcard::from_bytes(body).map_err(|_| CodecError::Decode),
        _ => Err(CodecError::Decode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_an_unknown_format_byte() {
        let bytes = encode(&(7u64, "x".to_owned())).unwrap();
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(decode::<(u64, String)>(&bytes).unwrap(), (7, "x".to_owned()));
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(matches!(decode::<(u64, String)>(&other), Err(CodecError::Decode)));
        assert!(matches!(decode::<(u64, String)>(&[]), Err(CodecError::Decode)));
    }
}
