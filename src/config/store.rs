//! `[store]`: the embedded sled database's settings.

use super::{within, ConfigError};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// sled's page cache in MiB: the largest share of the service's memory
    /// on a big store. Default 1024 (sled's own default); 16 to 65536.
    pub cache_mib: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection { cache_mib: 1024 }
    }
}

impl StoreSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        within("store.cache_mib", self.cache_mib, 16..=65_536)?;
        Ok(())
    }

    /// The page cache in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_mib * 1024 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::StoreSection;

    #[test]
    fn the_cache_is_bounded_and_counted_in_bytes() {
        let section = |cache_mib| StoreSection { cache_mib };
        assert!(section(15).check().is_err());
        assert!(section(65_537).check().is_err());
        assert!(section(16).check().is_ok());
        assert_eq!(section(128).cache_bytes(), 128 * 1024 * 1024);
        assert_eq!(StoreSection::default().cache_bytes(), 1024 * 1024 * 1024);
    }
}
