//! A selector: one set of command, key and channel permissions
//! (`aclSelector`). A user passes a check when any of its selectors does.

use std::collections::BTreeMap;

use rampart_keyspace::glob;

use crate::catalog::{Catalog, CATEGORIES};
use crate::user::RuleError;

/// A key pattern with the access it grants (`~`, `%R~`, `%W~`, `%RW~`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    read: bool,
    write: bool,
    pattern: Vec<u8>,
}

/// A key argument of a request and the access the command needs to it
/// (from its key-spec flags: `access` reads; `insert`, `delete`, `update`
/// write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    /// Position in the command line (0 is the command name).
    pub pos: usize,
    /// Needs read permission.
    pub read: bool,
    /// Needs write permission.
    pub write: bool,
}

/// A channel argument of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRef {
    /// Position in the command line.
    pub pos: usize,
    /// A PSUBSCRIBE-style pattern: matched literally against the user's
    /// channel patterns, as Redis does.
    pub pattern: bool,
}

/// Why a check failed, ordered as Redis ranks them when picking which
/// selector's failure to report (`ACL_DENIED_CMD` < `KEY` < `CHANNEL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The command (or subcommand) is not allowed.
    Command,
    /// The key at this argument position is not allowed.
    Key(usize),
    /// The channel at this argument position is not allowed.
    Channel(usize),
}

impl Denied {
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(p) => (2, p),
            Denied::Channel(p) => (4, p),
        }
    }
}

/// One selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    allkeys: bool,
    allchannels: bool,
    allcommands: bool,
    /// One bit per catalog command, plus a last bit set only by `+@all`:
    /// whether the rules started from everything (Redis's "future
    /// commands" bit), which decides how they are described.
    bits: Vec<u64>,
    /// Allowed first arguments of otherwise blocked commands
    /// (`+select|0`), by command id.
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    keys: Vec<KeyPattern>,
    channels: Vec<Vec<u8>>,
}

impl Selector {
    /// An empty selector (no permissions); `allchannels` per
    /// `acl-pubsub-default`.
    pub fn new(cat: &Catalog, allchannels: bool) -> Selector {
        Selector {
            allkeys: false,
            allchannels,
            allcommands: false,
            bits: vec![0; (cat.len() + 1).div_ceil(64)],
            firstargs: BTreeMap::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.bits
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(w) = self.bits.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
                self.allcommands = false;
            }
        }
    }

    /// Whether the rules start from `+@all` (the reserved last bit).
    fn starts_from_all(&self, cat: &Catalog) -> bool {
        self.bit(cat.len())
    }

    /// `ACLChangeSelectorPerm`: a command and all its subcommands.
    fn change(&mut self, cat: &Catalog, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        for &s in &cat.get(id).subs {
            self.set_bit(s, allow);
        }
    }

    fn set_category(&mut self, cat: &Catalog, bit: u32, allow: bool) {
        for &id in cat.top() {
            if cat.get(id).categories & bit != 0 {
                self.change(cat, id, allow);
            }
            for &s in &cat.get(id).subs {
                if cat.get(s).categories & bit != 0 {
                    self.change(cat, s, allow);
                }
            }
        }
    }

    fn count_category(&self, cat: &Catalog, bit: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for &id in cat.top() {
            for c in std::iter::once(id).chain(cat.get(id).subs.iter().copied()) {
                if cat.get(c).categories & bit != 0 {
                    if self.bit(c) {
                        on += 1;
                    } else {
                        off += 1;
                    }
                }
            }
        }
        (on, off)
    }

    /// Applies one selector rule (`ACLSetSelector`): `~pat`, `%RW~pat`,
    /// `allkeys`, `resetkeys`, `&pat`, `allchannels`, `resetchannels`,
    /// `+cmd`, `-cmd`, `+@cat`, `-@cat`, `+cmd|sub`, `+cmd|firstarg`,
    /// `allcommands`, `nocommands`.
    pub fn apply(&mut self, cat: &Catalog, op: &[u8]) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        let Some(&first) = op.first() else {
            return Err(RuleError::Syntax);
        };
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.bits.iter_mut().for_each(|w| *w = u64::MAX);
            self.allcommands = true;
            self.firstargs.clear();
        } else if is("nocommands") || is("-@all") {
            self.bits.iter_mut().for_each(|w| *w = 0);
            self.allcommands = false;
            self.firstargs.clear();
        } else if first == b'~' || first == b'%' {
            if self.allkeys {
                return Err(RuleError::KeysAfterAll);
            }
            let (mut read, mut write) = (first == b'~', first == b'~');
            let mut at = 1;
            if first == b'%' {
                // Redis 7.0 took `%R` (no `~`) as a read pattern for the
                // empty string and `%~x` as a pattern granting nothing,
                // which later crashed ACL LIST; both are refused, as
                // Redis 7.2 refuses them.
                loop {
                    match op.get(at).map(u8::to_ascii_uppercase) {
                        Some(b'R') if !read => read = true,
                        Some(b'W') if !write => write = true,
                        Some(b'~') if read || write => {
                            at += 1;
                            break;
                        }
                        _ => return Err(RuleError::Syntax),
                    }
                    at += 1;
                }
            }
            let pattern = op.get(at..).unwrap_or_default();
            if crate::has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|k| k.pattern == pattern) {
                Some(k) => {
                    k.read |= read;
                    k.write |= write;
                }
                None => self.keys.push(KeyPattern {
                    read,
                    write,
                    pattern: pattern.to_vec(),
                }),
            }
            self.allkeys = false;
        } else if first == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelsAfterAll);
            }
            let pattern = &op[1..];
            if crate::has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(pattern.to_vec());
            }
            self.allchannels = false;
        } else if (first == b'+' || first == b'-') && op.get(1) == Some(&b'@') {
            let name = std::str::from_utf8(&op[2..]).map_err(|_| RuleError::Unknown)?;
            let bit = crate::category(name).ok_or(RuleError::Unknown)?;
            self.set_category(cat, bit, first == b'+');
        } else if first == b'+' {
            let name = &op[1..];
            match name.iter().rposition(|&c| c == b'|') {
                None => {
                    let id = cat.lookup(name).ok_or(RuleError::Unknown)?;
                    self.change(cat, id, true);
                }
                Some(bar) => {
                    let id = cat.lookup(&name[..bar]).ok_or(RuleError::Unknown)?;
                    if cat.get(id).parent.is_some() {
                        return Err(RuleError::FirstArgOfSub);
                    }
                    let sub = &name[bar + 1..];
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !cat.get(id).subs.is_empty() {
                        let id = cat.lookup(name).ok_or(RuleError::Unknown)?;
                        self.change(cat, id, true);
                    } else {
                        let list = self.firstargs.entry(id).or_default();
                        if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                            list.push(sub.to_vec());
                        }
                    }
                }
            }
        } else if first == b'-' {
            let id = cat.lookup(&op[1..]).ok_or(RuleError::Unknown)?;
            self.change(cat, id, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// The command rules that rebuild this selector's bitmap
    /// (`ACLDescribeSelectorCommandRules`): `+@all` or `-@all`, then the
    /// categories that fit best, then single commands. Redis lists the
    /// single commands in its hash table's (random) order; these come in
    /// catalog order.
    pub fn describe_commands(&self, cat: &Catalog) -> Vec<u8> {
        let additive = !self.starts_from_all(cat);
        let mut rules: Vec<u8> = Vec::new();
        let mut fake = Selector::new(cat, false);
        if additive {
            rules.extend_from_slice(b"-@all ");
        } else {
            rules.extend_from_slice(b"+@all ");
            fake.bits.iter_mut().for_each(|w| *w = u64::MAX);
        }
        let mut temp = self.clone();
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, name) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (on, off) = temp.count_category(cat, 1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some((j, *name));
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some((j, name)) = best else { break };
            fake.set_category(cat, 1 << j, additive);
            temp.set_category(cat, 1 << j, !additive);
            rules.push(if additive { b'+' } else { b'-' });
            rules.push(b'@');
            rules.extend_from_slice(name.as_bytes());
            rules.push(b' ');
            applied[j] = true;
        }
        for &id in cat.top() {
            self.describe_single(cat, &mut fake, &mut rules, id);
            for &s in &cat.get(id).subs {
                self.describe_single(cat, &mut fake, &mut rules, s);
            }
        }
        rules.pop();
        // Redis aborts here rather than describe rules that would rebuild
        // a different bitmap; the property tests hold us to the same.
        debug_assert_eq!(fake.bits, self.bits, "{}", String::from_utf8_lossy(&rules));
        rules
    }

    fn describe_single(&self, cat: &Catalog, fake: &mut Selector, rules: &mut Vec<u8>, id: usize) {
        let user = self.bit(id);
        if user != fake.bit(id) {
            rules.push(if user { b'+' } else { b'-' });
            rules.extend_from_slice(cat.get(id).name.as_bytes());
            rules.push(b' ');
            fake.change(cat, id, user);
        }
        if !user {
            for a in self.firstargs.get(&id).into_iter().flatten() {
                rules.push(b'+');
                rules.extend_from_slice(cat.get(id).name.as_bytes());
                rules.push(b'|');
                rules.extend_from_slice(a);
                rules.push(b' ');
            }
        }
    }

    /// Key patterns as ACL GETUSER's `keys` field shows them.
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(match (k.read, k.write) {
                (true, true) => b"~",
                (true, false) => b"%R~",
                _ => b"%W~",
            });
            out.extend_from_slice(&k.pattern);
        }
        out
    }

    /// Channel patterns as ACL GETUSER's `channels` field shows them.
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// The whole selector in rule form (`ACLDescribeSelector`).
    pub fn describe(&self, cat: &Catalog) -> Vec<u8> {
        let mut out = Vec::new();
        if self.allkeys || !self.keys.is_empty() {
            out.extend_from_slice(&self.describe_keys());
            out.push(b' ');
        }
        if !self.allchannels {
            out.extend_from_slice(b"resetchannels ");
        }
        if self.allchannels || !self.channels.is_empty() {
            out.extend_from_slice(&self.describe_channels());
            out.push(b' ');
        }
        out.extend_from_slice(&self.describe_commands(cat));
        out
    }

    /// Whether this selector lets anything through: every command, key
    /// and channel. Such a user needs no per-request check.
    pub fn unrestricted(&self) -> bool {
        self.allcommands && self.allkeys && self.allchannels
    }

    /// Whether any channel is allowed.
    pub fn all_channels(&self) -> bool {
        self.allchannels
    }

    /// Channel patterns (for `ACLKillPubsubClientsIfNeeded`).
    pub fn channels(&self) -> &[Vec<u8>] {
        &self.channels
    }

    /// Whether `channel` is allowed: a plain channel is matched against
    /// the patterns, a pattern only literally.
    pub fn check_channel(&self, channel: &[u8], pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| {
                if pattern {
                    p == channel
                } else {
                    glob::matches(p, channel, false)
                }
            })
    }

    /// Whether the key is allowed with the access asked.
    pub fn check_key(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.allkeys
            || self.keys.iter().any(|p| {
                (p.read || !read) && (p.write || !write) && glob::matches(&p.pattern, key, false)
            })
    }

    /// `ACLSelectorCheckCmd`: may this selector run command `id` with
    /// `args`? `keys` lists the key arguments (`None`: the command takes
    /// none), computed once for all selectors by the caller.
    pub fn check(
        &self,
        cat: &Catalog,
        id: usize,
        args: &[impl AsRef<[u8]>],
        keys: &mut dyn FnMut() -> Option<std::rc::Rc<[KeyRef]>>,
        channels: &[ChannelRef],
    ) -> Result<(), Denied> {
        let cmd = cat.get(id);
        if !self.allcommands && !cmd.no_auth && !self.bit(id) {
            let at = if cmd.parent.is_some() { 2 } else { 1 };
            let allowed = args.len() >= 2
                && self.firstargs.get(&id).is_some_and(|list| {
                    args.get(at)
                        .is_some_and(|a| list.iter().any(|f| f.eq_ignore_ascii_case(a.as_ref())))
                });
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys {
            if let Some(keys) = keys() {
                for k in keys.iter() {
                    let key = args.get(k.pos).map(AsRef::as_ref).unwrap_or_default();
                    if !self.check_key(key, k.read, k.write) {
                        return Err(Denied::Key(k.pos));
                    }
                }
            }
        }
        if !self.allchannels {
            for c in channels {
                let ch = args.get(c.pos).map(AsRef::as_ref).unwrap_or_default();
                if !self.check_channel(ch, c.pattern) {
                    return Err(Denied::Channel(c.pos));
                }
            }
        }
        Ok(())
    }

    /// Whether this selector grants `read`/`write` access to every key
    /// (`ACLSelectorHasUnrestrictedKeyAccess`: `~*`, `%R~*`…).
    pub fn all_keys_access(&self, read: bool, write: bool) -> bool {
        self.allkeys
            || self
                .keys
                .iter()
                .any(|p| (p.read || !read) && (p.write || !write) && p.pattern == b"*")
    }
}

/// Combines per-selector results as `ACLCheckAllUserCommandPerm` does:
/// the first success wins; otherwise the highest-ranked failure, and among
/// equals the one at the furthest argument.
pub(crate) fn worst(a: Option<Denied>, b: Denied) -> Denied {
    match a {
        Some(a) if a.rank() >= b.rank() => a,
        _ => b,
    }
}
