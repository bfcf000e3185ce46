//! All raw cryptography of the crate, behind a few functions: the chunk
//! cipher (AES-256-GCM), the stream key schedule (HKDF-SHA-256), SHA-256,
//! key wrapping for the local keyring, and randomness. Everything comes from
//! `ring`, the crate's only crypto stack, so swapping the implementation is a
//! one-file change.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::{DataKey, Error, Result};

/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// AES-GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the key commitment in the header.
pub(crate) const COMMITMENT_LEN: usize = 32;
/// Data keys and master keys are AES-256 keys.
pub(crate) const KEY_LEN: usize = 32;

/// HKDF info prefix; the SHA-256 of the header (without commitment) follows.
const KDF_LABEL: &[u8] = b"rampart/v1";
/// Output of the stream key schedule: key ‖ nonce base ‖ commitment.
const OKM_LEN: usize = KEY_LEN + NONCE_LEN + COMMITMENT_LEN;

struct OkmLen;
impl ring::hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        OKM_LEN
    }
}

/// Fills `buf` from the system CSPRNG.
pub(crate) fn random_fill(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Random)
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A streaming SHA-256, for the digests backup manifests record.
///
/// ```
/// let mut h = rampart_kms::Sha256::new();
/// h.update(b"ab");
/// h.update(b"c");
/// assert_eq!(h.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// ```
#[derive(Clone)]
pub struct Sha256(ring::digest::Context);

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// An empty digest.
    ///
    /// ```
    /// assert_eq!(rampart_kms::Sha256::new().hex().len(), 64);
    /// ```
    pub fn new() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    /// Adds bytes.
    ///
    /// ```
    /// rampart_kms::Sha256::new().update(b"x");
    /// ```
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest so far, as lower-case hex (the digest goes on).
    ///
    /// ```
    /// assert!(rampart_kms::Sha256::new().hex().starts_with("e3b0c442"));
    /// ```
    pub fn hex(&self) -> String {
        hex::encode(self.0.clone().finish().as_ref())
    }
}

/// Constant-time equality, so a commitment check leaks nothing about how
/// many bytes matched.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The per-stream chunk cipher: the AES-256-GCM key and nonce base derived
/// from the data key, salt and header.
pub(crate) struct ChunkCipher {
    key: LessSafeKey,
    nonce_base: [u8; NONCE_LEN],
}

impl ChunkCipher {
    /// Runs the v1 key schedule; returns the cipher and the commitment.
    ///
    /// `header_wo_commitment` is the serialized header from the magic up to
    /// and including the context (the commitment itself excluded).
    pub(crate) fn derive(
        data_key: &DataKey,
        salt: &[u8; 32],
        header_wo_commitment: &[u8],
    ) -> Result<(Self, [u8; COMMITMENT_LEN])> {
        let header_hash = sha256(header_wo_commitment);
        let info: [&[u8]; 2] = [KDF_LABEL, &header_hash];
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(data_key.bytes());
        let okm = prk.expand(&info, OkmLen).map_err(|_| Error::Random)?;
        let mut out = Zeroizing::new([0u8; OKM_LEN]);
        okm.fill(&mut out[..]).map_err(|_| Error::Random)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &out[..KEY_LEN]).map_err(|_| Error::Random)?;
        let mut nonce_base = [0u8; NONCE_LEN];
        nonce_base.copy_from_slice(&out[KEY_LEN..KEY_LEN + NONCE_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&out[KEY_LEN + NONCE_LEN..]);
        Ok((
            ChunkCipher {
                key: LessSafeKey::new(unbound),
                nonce_base,
            },
            commitment,
        ))
    }

    fn nonce(&self, index: u64) -> Nonce {
        let mut n = self.nonce_base;
        for (b, c) in n[4..].iter_mut().zip(index.to_be_bytes()) {
            *b ^= c;
        }
        Nonce::assume_unique_for_key(n)
    }

    fn aad(index: u64, last: bool) -> [u8; 9] {
        let mut aad = [0u8; 9];
        aad[..8].copy_from_slice(&index.to_be_bytes());
        aad[8] = u8::from(last);
        aad
    }

    /// Encrypts chunk `index` in place and returns its tag.
    pub(crate) fn seal(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(index), Aad::from(Self::aad(index, last)), buf)
            .map_err(|_| Error::TooManyChunks)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts chunk `index` in place after verifying its tag; on failure the
    /// buffer holds no plaintext (ring zeroes it).
    pub(crate) fn open(
        &self,
        index: u64,
        last: bool,
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<()> {
        let tag = ring::aead::Tag::from(*tag);
        self.key
            .open_in_place_separate_tag(
                self.nonce(index),
                Aad::from(Self::aad(index, last)),
                tag,
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| Error::ChunkAuth { index })
    }
}

/// Wraps a data key under a local master key: `nonce ‖ ciphertext ‖ tag`,
/// with `aad` binding the key id and the encryption context.
pub(crate) fn wrap_key(master: &[u8; KEY_LEN], data_key: &DataKey, aad: &[u8]) -> Result<Vec<u8>> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, master).map_err(|_| Error::Random)?);
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce)?;
    let mut out = Vec::with_capacity(NONCE_LEN + KEY_LEN + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(data_key.bytes());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| Error::Random)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Reverses [`wrap_key`]; `None` when the blob does not authenticate.
pub(crate) fn unwrap_key(master: &[u8; KEY_LEN], blob: &[u8], aad: &[u8]) -> Option<DataKey> {
    if blob.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
        return None;
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, master).ok()?);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&blob[..NONCE_LEN]);
    let mut buf = Zeroizing::new([0u8; KEY_LEN]);
    buf.copy_from_slice(&blob[NONCE_LEN..NONCE_LEN + KEY_LEN]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&blob[NONCE_LEN + KEY_LEN..]);
    key.open_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        ring::aead::Tag::from(tag),
        &mut buf[..],
        0..,
    )
    .ok()?;
    let dk = DataKey::from_bytes(*buf);
    buf.zeroize();
    Some(dk)
}
