//! Writing an archive file safely: a temporary name beside the target, mode
//! 0600, fsync, then rename; on failure (or when dropped) the temporary file
//! is removed, so a half-written archive never appears under the final name.

use crate::Error;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub(crate) struct PendingFile {
    target: PathBuf,
    temp: PathBuf,
    committed: bool,
}

impl PendingFile {
    pub(crate) fn create(target: &Path) -> Result<(PendingFile, BufWriter<File>), Error> {
        let dir = parent(target);
        let name = target
            .file_name()
            .ok_or_else(|| output_error(target, "not a file name".into()))?
            .to_string_lossy();
        let temp = dir.join(format!(".{name}.pgark-tmp-{}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| output_error(target, format!("cannot create {}: {e}", temp.display())))?;
        let pending = PendingFile {
            target: target.to_path_buf(),
            temp,
            committed: false,
        };
        Ok((pending, BufWriter::with_capacity(1 << 20, file)))
    }

    /// Makes the file durable and moves it to its final name.
    pub(crate) fn commit(mut self, out: BufWriter<File>) -> Result<u64, Error> {
        let fail =
            |what: &str, e: std::io::Error| output_error(&self.target, format!("{what}: {e}"));
        let file = out
            .into_inner()
            .map_err(|e| fail("flushing", e.into_error()))?;
        file.sync_all().map_err(|e| fail("fsync", e))?;
        let len = file.metadata().map_err(|e| fail("stat", e))?.len();
        drop(file);
        std::fs::rename(&self.temp, &self.target)
            .map_err(|e| fail("renaming the finished archive", e))?;
        self.committed = true;
        // The rename is durable only once the directory is synced.
        if let Ok(d) = File::open(parent(&self.target)) {
            let _ = d.sync_all();
        }
        Ok(len)
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub(crate) fn output_error(path: &Path, reason: String) -> Error {
    Error::Output {
        path: path.display().to_string(),
        reason,
    }
}

/// Free bytes for an unprivileged user in the directory that will hold `path`.
pub(crate) fn free_space(path: &Path) -> Option<u64> {
    let dir = std::ffi::CString::new(parent(path).as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: dir is a valid C string and st a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(dir.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn committed_file_is_private_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.pgark");
        let (pending, mut out) = PendingFile::create(&target).unwrap();
        out.write_all(b"hello").unwrap();
        assert!(!target.exists());
        assert_eq!(pending.commit(out).unwrap(), 5);
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.pgark");
        let (pending, mut out) = PendingFile::create(&target).unwrap();
        out.write_all(b"partial").unwrap();
        drop(out);
        drop(pending);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let err = PendingFile::create(Path::new("/nonexistent-dir/a.pgark"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent-dir/a.pgark"),
            "{err}"
        );
        assert!(free_space(Path::new("/tmp/x")).unwrap() > 0);
    }
}
