//! Walking every record of one family, a page at a time, so a full scan
//! (a count for `keys status`, a retention sweep) holds one page in memory.

use crate::store::Store;
use crate::vault::{Vault, VaultError};

/// Records read per store page.
const PAGE: usize = 512;

impl<S: Store> Vault<S> {
    /// Calls `visit(key, value)` for every record under `prefix`, in key order.
    pub(in crate::vault) async fn for_each_under(
        &self,
        prefix: &[u8],
        visit: impl FnMut(&[u8], &[u8]) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        self.for_each_under_by(prefix, PAGE, visit).await
    }

    /// `for_each_under`, `page` records at a time (fewer for large ones).
    pub(in crate::vault) async fn for_each_under_by(
        &self,
        prefix: &[u8],
        page: usize,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let size = page.max(1);
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.store.scan_prefix(prefix, after.as_deref(), size).await?;
            for (key, value) in &page {
                visit(key, value)?;
            }
            match page.last() {
                Some((key, _)) if page.len() == size => after = Some(key.clone()),
                _ => return Ok(()),
            }
        }
    }
}
