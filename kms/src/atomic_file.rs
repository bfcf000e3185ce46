//! Crash-safe file replacement, shared by the `rampart` tools and the
//! server's snapshot writer.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A temp file beside `dest` (mode 0600) that becomes `dest` only on
/// [`commit`](AtomicFile::commit): data fsynced, renamed over `dest`, the
/// directory fsynced. Dropped uncommitted, it is removed, so a failed or
/// interrupted write never leaves a partial output that looks complete, and
/// the previous `dest` stays as it was.
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let dest = dir.path().join("dump.rdb");
/// let mut f = rampart_kms::AtomicFile::create(&dest).unwrap();
/// f.write_all(b"data").unwrap();
/// assert!(!dest.exists());
/// f.commit().unwrap();
/// assert_eq!(std::fs::read(&dest).unwrap(), b"data");
/// ```
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<std::fs::File>,
}

impl AtomicFile {
    /// Creates the temp file (`.NAME.tmp-RANDOM` beside `dest`).
    pub fn create(dest: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut rnd = [0u8; 6];
        crate::cipher::random_fill(&mut rnd)?;
        let name = dest
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} is not a file path", dest.display()))?
            .to_string_lossy()
            .into_owned();
        let tmp = dest.with_file_name(format!(".{name}.tmp-{}", hex::encode(rnd)));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
        })
    }

    /// The temp file's path.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let f = rampart_kms::AtomicFile::create(&dir.path().join("x")).unwrap();
    /// assert!(f.temp_path().exists());
    /// ```
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// The open temp file.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut f = rampart_kms::AtomicFile::create(&dir.path().join("x")).unwrap();
    /// assert!(f.file().is_ok());
    /// ```
    pub fn file(&mut self) -> anyhow::Result<&mut std::fs::File> {
        self.file
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("output already closed"))
    }

    /// Fsyncs the data, renames it over `dest` and fsyncs the directory.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let f = rampart_kms::AtomicFile::create(&dir.path().join("x")).unwrap();
    /// f.commit().unwrap();
    /// assert!(dir.path().join("x").exists());
    /// ```
    pub fn commit(self) -> anyhow::Result<()> {
        self.commit_inner()
    }

    /// [`commit`](AtomicFile::commit), also returning the file opened for
    /// reading. It is opened before the rename, so it is this file's
    /// contents even if another writer replaces `dest` right after (a
    /// disk-based full sync sends the snapshot it wrote, not a later one).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut f = rampart_kms::AtomicFile::create(&dir.path().join("x")).unwrap();
    /// f.write_all(b"data").unwrap();
    /// let mut r = f.commit_and_open().unwrap();
    /// // Another snapshot replaces it (by rename, as they all do).
    /// std::fs::write(dir.path().join("y"), b"other").unwrap();
    /// std::fs::rename(dir.path().join("y"), dir.path().join("x")).unwrap();
    /// let mut s = String::new();
    /// r.read_to_string(&mut s).unwrap();
    /// assert_eq!(s, "data");
    /// ```
    pub fn commit_and_open(self) -> anyhow::Result<std::fs::File> {
        let f = std::fs::File::open(&self.tmp)
            .map_err(|e| anyhow::anyhow!("cannot reopen {}: {e}", self.tmp.display()))?;
        self.commit_inner()?;
        Ok(f)
    }

    fn commit_inner(mut self) -> anyhow::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| anyhow::anyhow!("output already closed"))?;
        file.sync_all()?;
        drop(file);
        if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
            let _ = std::fs::remove_file(&self.tmp);
            anyhow::bail!(
                "cannot rename {} to {}: {e}",
                self.tmp.display(),
                self.dest.display()
            );
        }
        crate::local::sync_dir(&self.dest)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("output already closed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
