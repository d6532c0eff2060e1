//! Writing a file whole or not at all: the bytes go to a file of their
//! own beside it, are flushed, renamed over the target, and the folder is
//! flushed, so a crash leaves the old file or the new one, never half.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `contents` to `path` with permissions `mode` (0o600 for keys).
pub fn write(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let staged = stage(path, contents, mode)?;
    std::fs::rename(&staged, path)?;
    sync_folder(path)
}

/// `write`, only if nothing is at `path` yet (linked into place, so two
/// writers racing leave one whole file). `Ok(false)`: something was there,
/// and it is left as it was.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<bool> {
    let staged = stage(path, contents, mode)?;
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => sync_folder(path).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// `contents` flushed to a file of its own beside `path`.
fn stage(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<std::path::PathBuf> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(format!(".{}.tmp", std::process::id()));
    let staged = std::path::PathBuf::from(staged);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&staged)?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(staged)
}

fn sync_folder(path: &Path) -> std::io::Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_is_replaced_whole_with_its_mode_and_no_staged_copy_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        super::write(&path, b"first", 0o600).unwrap();
        super::write(&path, b"second", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_file_is_written_once_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        assert!(super::write_new(&path, b"first", 0o600).unwrap());
        assert!(!super::write_new(&path, b"second", 0o600).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
