//! The local keyring: versioned 256-bit master keys in one JSON file.
//!
//! The file is the "service-managed" key of a self-hosted deployment. It
//! protects data files, backups and sync streams that leave this machine (or
//! are read by someone without the file); it does not protect against someone
//! who can read the key file itself, which is why it must be mode 0600 and
//! owned by the user that runs the server.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::cipher::{KEY_LEN, unwrap_key, wrap_key};
use crate::secret::KeyBytes;
use crate::{DataKey, Error, KeyContext, KeySlot, PROVIDER_LOCAL, Result};

/// A keyring file larger than this is not a keyring (and is not read whole).
const MAX_FILE_LEN: u64 = 1 << 20;
const FORMAT: &str = "rampart-keyring";
/// Binds a wrapped key to this scheme, the key id and the context.
const WRAP_LABEL: &[u8] = b"rampart/local-wrap/v1";

/// Whether a key version may be used.
///
/// ```
/// assert_eq!(rampart_kms::KeyState::Enabled.to_string(), "enabled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Encrypts (if primary) and decrypts.
    Enabled,
    /// Neither encrypts nor decrypts; data under it is unreadable until it is
    /// enabled again.
    Disabled,
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    version: u32,
    state: KeyState,
    created: String,
    material: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    format_version: u32,
    id: String,
    primary: u32,
    keys: Vec<FileKey>,
}

struct MasterKey {
    version: u32,
    state: KeyState,
    created: String,
    /// In an excluded, locked page (`secret`).
    material: KeyBytes,
}

/// One key version as `rampart keyring list` shows it: no key material.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = rampart_kms::LocalKeyring::init(&dir.path().join("k.json")).unwrap();
/// let v = &ring.versions()[0];
/// assert!(v.primary && v.version == 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersionInfo {
    /// Version number, from 1.
    pub version: u32,
    /// Enabled or disabled.
    pub state: KeyState,
    /// Creation time, RFC 3339.
    pub created: String,
    /// True for the version that wraps new data keys.
    pub primary: bool,
    /// The key id written in key slots.
    pub key_id: String,
}

/// A loaded keyring file.
///
/// ```
/// use rampart_kms::{KeyContext, LocalKeyring, Payload};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("keyring.json");
/// let mut ring = LocalKeyring::init(&path).unwrap();
/// let ctx = KeyContext::new("cache-1", Payload::Snapshot);
/// let (_key, slot) = ring.generate_data_key(&ctx).unwrap();
/// ring.rotate().unwrap();
/// // Old versions still decrypt.
/// assert!(ring.decrypt_data_key(&slot, &ctx).is_ok());
/// ```
pub struct LocalKeyring {
    path: PathBuf,
    id: String,
    primary: u32,
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for LocalKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyring")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("primary", &self.primary)
            .field("versions", &self.keys.len())
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::KeyFileIo {
        path: path.to_path_buf(),
        source,
    }
}

impl LocalKeyring {
    /// Creates a new keyring file with one enabled, primary version; refuses
    /// if the file exists.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let p = dir.path().join("k.json");
    /// rampart_kms::LocalKeyring::init(&p).unwrap();
    /// assert!(rampart_kms::LocalKeyring::init(&p).is_err());
    /// ```
    pub fn init(path: &Path) -> Result<LocalKeyring> {
        if fs::symlink_metadata(path).is_ok() {
            return Err(Error::KeyFileExists(path.to_path_buf()));
        }
        let mut id_bytes = [0u8; 8];
        crate::cipher::random_fill(&mut id_bytes)?;
        let mut ring = LocalKeyring {
            path: path.to_path_buf(),
            id: format!("rk-{}", hex::encode(id_bytes)),
            primary: 0,
            keys: Vec::new(),
        };
        ring.add_version()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(path))?;
        }
        ring.save_new()?;
        Ok(ring)
    }

    /// Opens `path`, or creates it if missing: the service-managed default.
    /// Returns whether it was created, so the server can log where the key is
    /// and what it protects.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let p = dir.path().join("keys/keyring.json");
    /// let (_, created) = rampart_kms::LocalKeyring::open_or_create(&p).unwrap();
    /// assert!(created);
    /// let (_, created) = rampart_kms::LocalKeyring::open_or_create(&p).unwrap();
    /// assert!(!created);
    /// ```
    pub fn open_or_create(path: &Path) -> Result<(LocalKeyring, bool)> {
        match LocalKeyring::open(path) {
            Ok(r) => Ok((r, false)),
            Err(Error::KeyFileMissing(_)) => match LocalKeyring::init(path) {
                Ok(r) => Ok((r, true)),
                // Lost a race with another process creating it: use theirs.
                Err(Error::KeyFileExists(_)) => Ok((LocalKeyring::open(path)?, false)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Opens and validates a keyring file. Refused unless it is a regular
    /// file with mode 0600 owned by the running user.
    ///
    /// ```
    /// # use std::os::unix::fs::PermissionsExt;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let p = dir.path().join("k.json");
    /// rampart_kms::LocalKeyring::init(&p).unwrap();
    /// std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    /// let err = rampart_kms::LocalKeyring::open(&p).unwrap_err();
    /// assert!(err.to_string().contains("must be 0600"));
    /// ```
    pub fn open(path: &Path) -> Result<LocalKeyring> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(nofollow())
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::KeyFileMissing(path.to_path_buf()));
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        // Check the opened file, not the path, so a swap between check and
        // read changes nothing.
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(Error::KeyFileInvalid {
                path: path.to_path_buf(),
                reason: "not a regular file".into(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode != 0o600 {
            return Err(Error::KeyFileMode {
                path: path.to_path_buf(),
                mode,
            });
        }
        let euid = rustix::process::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(Error::KeyFileOwner {
                path: path.to_path_buf(),
                owner: meta.uid(),
                euid,
            });
        }
        if meta.len() > MAX_FILE_LEN {
            return Err(Error::KeyFileInvalid {
                path: path.to_path_buf(),
                reason: format!("{} bytes is too large for a keyring", meta.len()),
            });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(path))?;
        Self::from_json(path, &bytes)
    }

    /// Parses keyring JSON (no permission checks); `path` is only used in
    /// messages. Exposed for tools and fuzzing.
    ///
    /// ```
    /// let e = rampart_kms::LocalKeyring::from_json("x".as_ref(), b"{}").unwrap_err();
    /// assert!(e.to_string().contains("not a valid Rampart keyring"));
    /// ```
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<LocalKeyring> {
        let invalid = |reason: String| Error::KeyFileInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let file: KeyringFile =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if file.format != FORMAT || file.format_version != 1 {
            return Err(invalid(format!(
                "format {:?} version {} (expected {FORMAT:?} version 1)",
                file.format, file.format_version
            )));
        }
        if file.id.is_empty()
            || file.id.len() > 64
            || !file
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "keyring id must be 1..=64 letters, digits or '-'".into(),
            ));
        }
        let mut keys: Vec<MasterKey> = Vec::with_capacity(file.keys.len());
        for k in file.keys {
            if k.version == 0 || keys.iter().any(|m| m.version == k.version) {
                return Err(invalid(format!(
                    "key version {} is zero or repeated",
                    k.version
                )));
            }
            let raw = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(k.material.as_bytes())
                    .map_err(|_| {
                        invalid(format!("key version {}: material is not base64", k.version))
                    })?,
            );
            let mut material = KeyBytes::zeroed();
            if raw.len() != KEY_LEN {
                return Err(invalid(format!(
                    "key version {}: material is {} bytes, expected {KEY_LEN}",
                    k.version,
                    raw.len()
                )));
            }
            material.as_mut().copy_from_slice(&raw);
            keys.push(MasterKey {
                version: k.version,
                state: k.state,
                created: k.created,
                material,
            });
        }
        match keys.iter().find(|k| k.version == file.primary) {
            None => {
                return Err(invalid(format!(
                    "primary version {} is not in the keyring",
                    file.primary
                )));
            }
            Some(k) if k.state != KeyState::Enabled => {
                return Err(invalid(format!(
                    "primary version {} is disabled",
                    file.primary
                )));
            }
            Some(_) => {}
        }
        Ok(LocalKeyring {
            path: path.to_path_buf(),
            id: file.id,
            primary: file.primary,
            keys,
        })
    }

    fn to_json(&self) -> Result<Zeroizing<Vec<u8>>> {
        let file = KeyringFile {
            format: FORMAT.into(),
            format_version: 1,
            id: self.id.clone(),
            primary: self.primary,
            keys: self
                .keys
                .iter()
                .map(|k| FileKey {
                    version: k.version,
                    state: k.state,
                    created: k.created.clone(),
                    material: Zeroizing::new(
                        base64::engine::general_purpose::STANDARD.encode(k.material.as_array()),
                    ),
                })
                .collect(),
        };
        let mut out = Zeroizing::new(
            serde_json::to_vec_pretty(&file)
                .map_err(|e| Error::KeyringOp(format!("serializing keyring: {e}")))?,
        );
        out.push(b'\n');
        Ok(out)
    }

    fn add_version(&mut self) -> Result<u32> {
        let version = self.keys.iter().map(|k| k.version).max().unwrap_or(0) + 1;
        let mut material = KeyBytes::zeroed();
        crate::cipher::random_fill(material.as_mut())?;
        self.keys.push(MasterKey {
            version,
            state: KeyState::Enabled,
            created: crate::time::now_rfc3339(),
            material,
        });
        self.primary = version;
        Ok(version)
    }

    /// Writes the first version of the file: create_new, so two processes
    /// racing to create the default keyring cannot overwrite each other.
    fn save_new(&self) -> Result<()> {
        let json = self.to_json()?;
        let path = &self.path;
        let tmp = tmp_path(path)?;
        write_synced(&tmp, &json).map_err(io_err(path))?;
        // link() fails if the target exists, unlike rename().
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => sync_dir(path).map_err(io_err(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::KeyFileExists(path.clone()))
            }
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Replaces the file atomically: temp file, fsync, rename, fsync dir.
    fn save(&self) -> Result<()> {
        let json = self.to_json()?;
        let path = &self.path;
        let tmp = tmp_path(path)?;
        let result = write_synced(&tmp, &json)
            .and_then(|()| fs::rename(&tmp, path))
            .and_then(|()| sync_dir(path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io_err(path))
    }

    /// Adds a new version, makes it primary, and saves. Returns the version.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut ring = rampart_kms::LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// assert_eq!(ring.rotate().unwrap(), 2);
    /// assert_eq!(ring.primary_version(), 2);
    /// ```
    pub fn rotate(&mut self) -> Result<u32> {
        self.modify(|ring| ring.add_version())
    }

    /// Read-modify-write under an exclusive lock, starting from the file as
    /// it is now: two `rampart keyring` runs at once must not lose a version
    /// (data may already be encrypted under it).
    fn modify<T>(&mut self, f: impl FnOnce(&mut LocalKeyring) -> Result<T>) -> Result<T> {
        let lock_path = lock_path(&self.path);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(&lock_path)(e.into()))?;
        let mut fresh = LocalKeyring::open(&self.path)?;
        let out = f(&mut fresh)?;
        fresh.save()?;
        *self = fresh;
        // The lock is released when `lock` is closed.
        drop(lock);
        Ok(out)
    }

    fn set_state(&mut self, version: u32, state: KeyState) -> Result<()> {
        self.modify(|ring| ring.set_state_in_memory(version, state))
    }

    fn set_state_in_memory(&mut self, version: u32, state: KeyState) -> Result<()> {
        if state == KeyState::Disabled && version == self.primary {
            return Err(Error::KeyringOp(format!(
                "version {version} is the primary key of {}; rotate first (rampart keyring rotate), then disable it",
                self.path.display()
            )));
        }
        let key_id = self.key_id(version);
        let k = self
            .keys
            .iter_mut()
            .find(|k| k.version == version)
            .ok_or_else(|| Error::LocalKeyNotFound {
                key_id,
                version,
                path: self.path.clone(),
            })?;
        k.state = state;
        Ok(())
    }

    /// Disables a version: data under it can no longer be decrypted. The
    /// primary cannot be disabled.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut ring = LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// let ctx = KeyContext::new("d", Payload::Snapshot);
    /// let (_, slot) = ring.generate_data_key(&ctx).unwrap();
    /// ring.rotate().unwrap();
    /// ring.disable(1).unwrap();
    /// let err = ring.decrypt_data_key(&slot, &ctx).unwrap_err();
    /// assert!(err.to_string().contains("is disabled"));
    /// ```
    pub fn disable(&mut self, version: u32) -> Result<()> {
        self.set_state(version, KeyState::Disabled)
    }

    /// Enables a version again.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut ring = rampart_kms::LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// ring.rotate().unwrap();
    /// ring.disable(1).unwrap();
    /// ring.enable(1).unwrap();
    /// ```
    pub fn enable(&mut self, version: u32) -> Result<()> {
        self.set_state(version, KeyState::Enabled)
    }

    /// The file this keyring was loaded from.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let p = dir.path().join("k.json");
    /// let ring = rampart_kms::LocalKeyring::init(&p).unwrap();
    /// assert_eq!(ring.path(), p);
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keyring's random id (`rk-…`), part of every key id.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = rampart_kms::LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// assert!(ring.id().starts_with("rk-"));
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The primary version.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = rampart_kms::LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// assert_eq!(ring.primary_version(), 1);
    /// ```
    pub fn primary_version(&self) -> u32 {
        self.primary
    }

    /// The key id of `version` as written in key slots: `<keyring id>/<version>`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = rampart_kms::LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// assert!(ring.key_id(1).ends_with("/1"));
    /// ```
    pub fn key_id(&self, version: u32) -> String {
        format!("{}/{version}", self.id)
    }

    /// All versions, without key material.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = rampart_kms::LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// assert_eq!(ring.versions().len(), 1);
    /// ```
    pub fn versions(&self) -> Vec<KeyVersionInfo> {
        self.keys
            .iter()
            .map(|k| KeyVersionInfo {
                version: k.version,
                state: k.state,
                created: k.created.clone(),
                primary: k.version == self.primary,
                key_id: self.key_id(k.version),
            })
            .collect()
    }

    fn aad(key_id: &str, ctx: &KeyContext) -> Vec<u8> {
        let mut aad = WRAP_LABEL.to_vec();
        aad.extend_from_slice(&(key_id.len() as u16).to_be_bytes());
        aad.extend_from_slice(key_id.as_bytes());
        aad.extend_from_slice(&ctx.canonical_bytes());
        aad
    }

    /// Wraps `data_key` under the primary version for `ctx`.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// let slot = ring.wrap(&DataKey::generate().unwrap(), &KeyContext::new("d", Payload::Backup)).unwrap();
    /// assert_eq!(slot.provider, "local");
    /// ```
    pub fn wrap(&self, data_key: &DataKey, ctx: &KeyContext) -> Result<KeySlot> {
        let key_id = self.key_id(self.primary);
        let master = self
            .keys
            .iter()
            .find(|k| k.version == self.primary && k.state == KeyState::Enabled)
            .ok_or_else(|| {
                Error::KeyringOp(format!(
                    "keyring {} has no enabled primary",
                    self.path.display()
                ))
            })?;
        let blob = wrap_key(
            master.material.as_array(),
            data_key,
            &Self::aad(&key_id, ctx),
        )?;
        Ok(KeySlot::new(PROVIDER_LOCAL, key_id, blob))
    }

    /// A fresh data key and its slot wrapped under the primary version.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// let (_key, slot) = ring.generate_data_key(&KeyContext::new("d", Payload::Backup)).unwrap();
    /// assert!(slot.key_id.ends_with("/1"));
    /// ```
    pub fn generate_data_key(&self, ctx: &KeyContext) -> Result<(DataKey, KeySlot)> {
        let dk = DataKey::generate()?;
        let slot = self.wrap(&dk, ctx)?;
        Ok((dk, slot))
    }

    /// True if `slot` names this keyring (whatever the version).
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// let (_k, slot) = ring.generate_data_key(&KeyContext::new("d", Payload::Backup)).unwrap();
    /// assert!(ring.owns(&slot));
    /// ```
    pub fn owns(&self, slot: &KeySlot) -> bool {
        slot.provider == PROVIDER_LOCAL
            && slot
                .key_id
                .rsplit_once('/')
                .is_some_and(|(id, _)| id == self.id)
    }

    /// Unwraps a slot made by this keyring. Fails with a specific error for a
    /// disabled or missing version, another keyring, or a slot that does not
    /// authenticate (wrong context, corrupted).
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = LocalKeyring::init(&dir.path().join("k.json")).unwrap();
    /// let (_k, slot) = ring.generate_data_key(&KeyContext::new("d", Payload::Backup)).unwrap();
    /// let other = KeyContext::new("other", Payload::Backup);
    /// assert!(matches!(ring.decrypt_data_key(&slot, &other), Err(Error::LocalUnwrap { .. })));
    /// ```
    pub fn decrypt_data_key(&self, slot: &KeySlot, ctx: &KeyContext) -> Result<DataKey> {
        let bad_id = || {
            Error::BadHeader(format!(
                "local key slot has malformed key id {:?}",
                slot.key_id
            ))
        };
        if slot.provider != PROVIDER_LOCAL {
            return Err(Error::NoMatchingSlot {
                provider: format!("local keyring {}", self.path.display()),
                slots: slot.to_string(),
            });
        }
        let (ring_id, version) = slot.key_id.rsplit_once('/').ok_or_else(bad_id)?;
        let version: u32 = version.parse().map_err(|_| bad_id())?;
        if ring_id != self.id {
            return Err(Error::ForeignKeyring {
                key_id: slot.key_id.clone(),
                slot_keyring: ring_id.to_string(),
                keyring: self.id.clone(),
                path: self.path.clone(),
            });
        }
        let master = self
            .keys
            .iter()
            .find(|k| k.version == version)
            .ok_or_else(|| Error::LocalKeyNotFound {
                key_id: slot.key_id.clone(),
                version,
                path: self.path.clone(),
            })?;
        if master.state != KeyState::Enabled {
            return Err(Error::LocalKeyDisabled {
                key_id: slot.key_id.clone(),
                version,
                path: self.path.clone(),
            });
        }
        unwrap_key(
            master.material.as_array(),
            &slot.wrapped,
            &Self::aad(&slot.key_id, ctx),
        )
        .ok_or_else(|| Error::LocalUnwrap {
            key_id: slot.key_id.clone(),
        })
    }
}

fn nofollow() -> i32 {
    // A key file path that is a symlink is refused (ELOOP), so nobody can
    // point it at another file.
    libc::O_NOFOLLOW
}

fn tmp_path(path: &Path) -> Result<PathBuf> {
    let mut rnd = [0u8; 6];
    crate::cipher::random_fill(&mut rnd)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keyring".into());
    Ok(path.with_file_name(format!(".{name}.tmp-{}", hex::encode(rnd))))
}

fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keyring".into());
    path.with_file_name(format!(".{name}.lock"))
}

fn write_synced(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes a rename durable: fsync the directory that holds the entry.
pub(crate) fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
