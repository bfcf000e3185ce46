//! Key material kept out of core dumps and swap.
//!
//! A [`KeyBytes`] holds 32 bytes of key material (a data key, a keyring
//! master key) in a page of its own: an anonymous mapping marked
//! `MADV_DONTDUMP`, so a core dump (when `allow-core-dumps yes` lets one
//! happen) leaves it out, and `mlock`ed, so it never reaches swap even
//! with `lock-memory no`. The bytes are zeroized before the page is
//! unmapped. One page per key is cheap: a process holds a handful of
//! master keys and one data key per stream in flight.
//!
//! If the mapping cannot be made (out of address space), the key lives on
//! the heap instead, still zeroized on drop; `mlock` or `madvise` refusals
//! (RLIMIT_MEMLOCK, an old kernel) leave the page as it is. Both are
//! reported once, as a warning. The expanded AES key schedules that `ring`
//! derives from these bytes live on the heap for the length of one stream.

use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{Advice, MmapMut};
use zeroize::Zeroize;

use crate::cipher::KEY_LEN;

/// 32 bytes of key material in an excluded, locked page.
pub(crate) struct KeyBytes(Store);

enum Store {
    Page(MmapMut),
    Heap(Box<[u8; KEY_LEN]>),
}

static WARNED: AtomicBool = AtomicBool::new(false);

fn warn_once(what: &str, e: &std::io::Error) {
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "Key material: {what} failed ({e}); keys stay zeroized on drop but may reach swap or a core dump"
        );
    }
}

impl KeyBytes {
    /// All zeroes, ready to be filled through [`KeyBytes::as_mut`].
    pub(crate) fn zeroed() -> Self {
        let page = MmapMut::map_anon(KEY_LEN).and_then(|m| {
            // The mapping is a whole page; only its first KEY_LEN bytes
            // are used.
            if m.len() < KEY_LEN {
                return Err(std::io::Error::other("mapping shorter than a key"));
            }
            Ok(m)
        });
        match page {
            Ok(m) => {
                if let Err(e) = m.advise(Advice::DontDump) {
                    warn_once("MADV_DONTDUMP", &e);
                }
                if let Err(e) = m.lock() {
                    warn_once("mlock", &e);
                }
                KeyBytes(Store::Page(m))
            }
            Err(e) => {
                warn_once("mapping a key page", &e);
                KeyBytes(Store::Heap(Box::new([0u8; KEY_LEN])))
            }
        }
    }

    /// Copies `bytes` in; the caller zeroizes its own copy.
    pub(crate) fn from_slice(bytes: &[u8; KEY_LEN]) -> Self {
        let mut k = Self::zeroed();
        k.as_mut().copy_from_slice(bytes);
        k
    }

    /// The key.
    pub(crate) fn as_array(&self) -> &[u8; KEY_LEN] {
        match &self.0 {
            Store::Page(m) => m
                .first_chunk()
                .expect("a key page is at least KEY_LEN long (checked when mapped)"),
            Store::Heap(b) => b,
        }
    }

    /// The key, to fill.
    pub(crate) fn as_mut(&mut self) -> &mut [u8; KEY_LEN] {
        match &mut self.0 {
            Store::Page(m) => m
                .first_chunk_mut()
                .expect("a key page is at least KEY_LEN long (checked when mapped)"),
            Store::Heap(b) => b,
        }
    }

    /// Where the key is, for the tests that look it up in
    /// `/proc/self/smaps`.
    #[cfg(test)]
    fn address(&self) -> usize {
        self.as_array().as_ptr() as usize
    }
}

impl Drop for KeyBytes {
    fn drop(&mut self) {
        self.as_mut().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VmFlags line of the mapping holding `addr`.
    fn vm_flags(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((lo, hi)) = range.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
                continue;
            }
            if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some(flags.trim().to_string());
            }
        }
        None
    }

    #[test]
    fn key_pages_are_left_out_of_core_dumps_and_locked() {
        let k = KeyBytes::from_slice(&[0x5a; KEY_LEN]);
        assert_eq!(k.as_array(), &[0x5a; KEY_LEN]);
        let flags = vm_flags(k.address()).expect("the key's mapping is in smaps");
        let flags: Vec<&str> = flags.split_whitespace().collect();
        // dd: "do not include area into core dump"; lo: locked.
        assert!(flags.contains(&"dd"), "{flags:?}");
        assert!(flags.contains(&"lo"), "{flags:?}");
        // A heap allocation is not excluded, so the check can fail.
        let heap = Box::new([0u8; KEY_LEN]);
        let heap_flags = vm_flags(heap.as_ptr() as usize).unwrap_or_default();
        assert!(!heap_flags.split_whitespace().any(|f| f == "dd"));
    }
}
