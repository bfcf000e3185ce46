//! Hash slots: CRC16 (XMODEM), Redis's hash-tag rule, and a 16384-bit slot
//! bitmap laid out exactly as Redis's `myslots`.

use std::fmt;
use std::ops::RangeInclusive;

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// Bytes in a slot bitmap (`CLUSTER_SLOTS/8`), as carried in bus messages.
pub const SLOT_BYTES: usize = SLOTS / 8;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no reflection),
/// the table Redis's `crc16.c` hard-codes, computed here at compile time.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC16 as Redis computes it for key hashing (XMODEM variant).
///
/// ```
/// // The check value Redis's crc16.c documents.
/// assert_eq!(rampart_cluster::slot::crc16(b"123456789"), 0x31c3);
/// ```
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from(((crc >> 8) as u8) ^ b)]
    })
}

/// The hash slot of `key`, with Redis's hash-tag rule: if the key has a `{`
/// and a `}` somewhere after it with at least one byte between them, only the
/// bytes between the first `{` and the first `}` after it are hashed;
/// otherwise (no `{`, no `}` after it, or an empty tag `{}`) the whole key is.
///
/// ```
/// use rampart_cluster::slot::key_hash_slot;
/// assert_eq!(key_hash_slot(b"foo"), 12182);
/// assert_eq!(key_hash_slot(b"{user1000}.following"), key_hash_slot(b"user1000"));
/// // An empty tag does not count: the whole key is hashed.
/// assert_ne!(key_hash_slot(b"{}bar"), key_hash_slot(b""));
/// ```
pub fn key_hash_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & 0x3fff
}

/// The part of `key` that decides its slot (see [`key_hash_slot`]).
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        // Only a non-empty tag counts, as in Redis's keyHashSlot.
        Some(close) if close > 0 => &rest[..close],
        _ => key,
    }
}

/// A set of hash slots as a 2048-byte bitmap, bit `slot % 8` (least
/// significant first) of byte `slot / 8`: the layout of Redis's
/// `clusterNode.slots` and of `myslots` in every bus message header, so a
/// bitmap goes to and from the wire as is.
///
/// ```
/// use rampart_cluster::slot::SlotSet;
/// let mut s = SlotSet::new();
/// s.insert_range(0..=5460);
/// s.insert(10000);
/// assert!(s.contains(5460) && !s.contains(5461));
/// assert_eq!(s.len(), 5462);
/// assert_eq!(s.ranges(), vec![0..=5460, 10000..=10000]);
/// assert_eq!(s.as_bytes()[0], 0xff);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotSet {
    bits: Box<[u8; SLOT_BYTES]>,
}

impl SlotSet {
    /// An empty set.
    pub fn new() -> Self {
        SlotSet {
            bits: Box::new([0; SLOT_BYTES]),
        }
    }

    /// The set whose bitmap is `bytes` (Redis's layout).
    ///
    /// ```
    /// let mut raw = [0u8; 2048];
    /// raw[1] = 0b0000_0010; // slot 9
    /// assert_eq!(rampart_cluster::slot::SlotSet::from_bytes(&raw).ranges(), vec![9..=9]);
    /// ```
    pub fn from_bytes(bytes: &[u8; SLOT_BYTES]) -> Self {
        SlotSet {
            bits: Box::new(*bytes),
        }
    }

    /// The bitmap, in Redis's layout.
    pub fn as_bytes(&self) -> &[u8; SLOT_BYTES] {
        &self.bits
    }

    /// Whether `slot` is in the set; slots past 16383 never are.
    pub fn contains(&self, slot: u16) -> bool {
        let slot = usize::from(slot);
        slot < SLOTS && self.bits[slot / 8] & (1 << (slot % 8)) != 0
    }

    /// Adds `slot`; returns false (and changes nothing) if it is past 16383.
    pub fn insert(&mut self, slot: u16) -> bool {
        let slot = usize::from(slot);
        if slot >= SLOTS {
            return false;
        }
        self.bits[slot / 8] |= 1 << (slot % 8);
        true
    }

    /// Removes `slot` (a slot past 16383 is never there).
    pub fn remove(&mut self, slot: u16) {
        let slot = usize::from(slot);
        if slot < SLOTS {
            self.bits[slot / 8] &= !(1 << (slot % 8));
        }
    }

    /// Adds every slot of `range`; returns false (and changes nothing) if the
    /// range reaches past 16383.
    pub fn insert_range(&mut self, range: RangeInclusive<u16>) -> bool {
        if usize::from(*range.end()) >= SLOTS {
            return false;
        }
        for slot in range {
            self.insert(slot);
        }
        true
    }

    /// The number of slots in the set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Whether the set has no slot.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&b| b == 0)
    }

    /// The slots in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..SLOTS as u16).filter(|&s| self.contains(s))
    }

    /// The set as maximal runs of consecutive slots, ascending: the form
    /// `CLUSTER NODES` and nodes.conf print (`0-5460 10000`).
    pub fn ranges(&self) -> Vec<RangeInclusive<u16>> {
        let mut out = Vec::new();
        let mut start: Option<u16> = None;
        for slot in 0..SLOTS as u16 {
            match (self.contains(slot), start) {
                (true, None) => start = Some(slot),
                (false, Some(s)) => {
                    out.push(s..=slot - 1);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push(s..=(SLOTS - 1) as u16);
        }
        out
    }
}

impl Default for SlotSet {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SlotSet {
    // 2048 raw bytes say nothing to a reader; the ranges do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotSet[")?;
        for (i, r) in self.ranges().into_iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        write!(f, "]")
    }
}

impl FromIterator<u16> for SlotSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> Self {
        let mut s = SlotSet::new();
        for slot in iter {
            s.insert(slot);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_redis_table_entries() {
        // A few entries of the table in Redis's crc16.c, typed from it.
        assert_eq!(CRC16_TABLE[1], 0x1021);
        assert_eq!(CRC16_TABLE[8], 0x8108);
        assert_eq!(CRC16_TABLE[255], 0x1ef0);
    }

    #[test]
    fn hash_tags_follow_redis_rules() {
        assert_eq!(hash_tag(b"{a}b"), b"a");
        assert_eq!(hash_tag(b"x{a}{b}"), b"a");
        assert_eq!(hash_tag(b"{}{a}"), b"{}{a}");
        assert_eq!(hash_tag(b"{a"), b"{a");
        assert_eq!(hash_tag(b"}a{"), b"}a{");
        assert_eq!(hash_tag(b"{{a}}"), b"{a");
        assert_eq!(hash_tag(b""), b"");
    }

    #[test]
    fn ranges_cover_edges() {
        let mut s = SlotSet::new();
        assert!(s.ranges().is_empty());
        assert!(s.insert_range(16380..=16383));
        assert!(s.insert(0));
        assert!(!s.insert(16384));
        assert!(!s.insert_range(16383..=16384));
        assert_eq!(s.ranges(), vec![0..=0, 16380..=16383]);
        assert_eq!(s.len(), 5);
        s.remove(16381);
        assert_eq!(s.ranges(), vec![0..=0, 16380..=16380, 16382..=16383]);
        assert_eq!(format!("{s:?}"), "SlotSet[0 16380 16382-16383]");
        assert_eq!(s.iter().collect::<SlotSet>(), s);
    }
}
