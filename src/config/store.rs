//! `[store]`: the embedded sled database's settings.

use super::{invalid, ConfigError};
use crate::store::SledSettings;
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
        if !(16..=65_536).contains(&self.cache_mib) {
            return Err(invalid("store.cache_mib", "must be 16 to 65536"));
        }
        Ok(())
    }

    pub fn sled(&self) -> SledSettings {
        SledSettings {
            cache_bytes: self.cache_mib * 1024 * 1024,
        }
    }
}
