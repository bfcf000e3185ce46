//! Which arguments of a command line are keys, found the way redis-server
//! 7.0 finds them for `COMMAND GETKEYS` and `COMMAND GETKEYSANDFLAGS`.
//!
//! Redis reads a command's key specs first (its own data, which we carry
//! in `reference.json`); where a spec cannot say (SORT's STORE is
//! "unknown", a numkeys argument that is not a clean integer, a keyword
//! at the very end of the line) it falls back to the command's own key
//! finder. The fallbacks disagree with the specs in small ways (a
//! ZUNIONSTORE destination comes last, `numkeys` is read as C's `atoi`)
//! and clients see those replies, so both paths are kept as Redis has
//! them rather than merged into one.

use bytes::Bytes;
use serde_json::Value as Json;

/// Redis's key-spec flags as bits, named in the order Redis prints them
/// (`addReplyFlagsForKeyArgs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyFlags(u16);

const FLAG_NAMES: [&str; 11] = [
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
];

impl KeyFlags {
    /// The bits of the named flags (unknown names are ignored).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> KeyFlags {
        KeyFlags(names.into_iter().fold(0, |bits, n| {
            bits | FLAG_NAMES
                .iter()
                .position(|f| *f == n)
                .map_or(0, |i| 1 << i)
        }))
    }

    /// The names of the set flags, in Redis's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        FLAG_NAMES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
    }

    // Bits by position in FLAG_NAMES.
    const ACCESS: u16 = 1 << 4;
    const UPDATE: u16 = 1 << 5;
    const INSERT: u16 = 1 << 6;
    const DELETE: u16 = 1 << 7;
    const NOT_KEY: u16 = 1 << 8;
    const INCOMPLETE: u16 = 1 << 9;
    const VARIABLE: u16 = 1 << 10;

    /// The command reads the key's value (`access`): ACL `%R~` covers it.
    pub fn reads(self) -> bool {
        self.0 & Self::ACCESS != 0
    }

    /// The command changes the key (`insert`, `delete`, `update`): ACL
    /// `%W~` covers it.
    pub fn writes(self) -> bool {
        self.0 & (Self::INSERT | Self::DELETE | Self::UPDATE) != 0
    }
}

/// One key argument: its position in the command line (the command name
/// is 0) and Redis's flags for it (`RW`, `access`, `update`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyArg {
    /// Position in the command line.
    pub pos: usize,
    /// Key-spec flags, as COMMAND GETKEYSANDFLAGS prints them.
    pub flags: KeyFlags,
}

/// The keys of one command line: inline up to four, so finding them
/// (every command in cluster mode routes by them) allocates nothing for
/// almost every command.
pub type Keys4 = smallvec::SmallVec<[KeyArg; 4]>;

/// Whether the command takes keys at all (Redis's doesCommandHaveKeys):
/// a key spec that names real keys, or a key finder of its own.
pub fn has_keys(name: &str, specs: &[Json]) -> bool {
    Specs::parse(name, specs).has_keys()
}

/// A command's key specs, read once from the reference so that finding
/// keys (every request of a user with key patterns) walks no JSON.
pub struct Specs {
    name: String,
    specs: Vec<Spec>,
    /// A spec names real keys.
    real: bool,
    /// A spec's flags depend on the arguments.
    variable: bool,
}

impl Specs {
    /// Parses the key specs of the command whose full name is `name`.
    pub fn parse(name: &str, specs: &[Json]) -> Specs {
        let specs: Vec<Spec> = specs.iter().map(Spec::parse).collect();
        Specs {
            name: name.to_string(),
            real: specs.iter().any(|s| s.flags.0 & KeyFlags::NOT_KEY == 0),
            variable: specs.iter().any(|s| s.flags.0 & KeyFlags::VARIABLE != 0),
            specs,
        }
    }

    /// Whether the command takes keys at all.
    pub fn has_keys(&self) -> bool {
        self.real || FINDERS.contains(&self.name.as_str())
    }

    /// The keys of `args`, as [`find`] finds them.
    pub fn find(&self, args: &[Bytes]) -> Keys4 {
        if self.real && !self.variable {
            if let Some(keys) = by_specs(&self.specs, args) {
                return keys;
            }
        }
        finder(&self.name, args)
            .map(Keys4::from_vec)
            .unwrap_or_default()
    }
}

/// Finds the keys of `args` (`args[0]` is the command name; a
/// subcommand's line starts at the container's name) for the command
/// whose full name is `name` (`zunionstore`, `object|encoding`), from its
/// key specs `specs` (Redis's COMMAND INFO key-spec entries). Empty when
/// the line is malformed: Redis then answers "Invalid arguments specified
/// for command".
///
/// ```
/// use rampart_server::cmd::getkeys::find;
/// let line: Vec<bytes::Bytes> = ["sort", "src", "store", "dst"]
///     .iter().map(|s| bytes::Bytes::from(*s)).collect();
/// let keys = find("sort", &[], &line);
/// assert_eq!(keys.iter().map(|k| k.pos).collect::<Vec<_>>(), [1, 3]);
/// ```
pub fn find(name: &str, specs: &[Json], args: &[Bytes]) -> Keys4 {
    Specs::parse(name, specs).find(args)
}

/// One key spec, read from the reference's typed JSON.
struct Spec {
    flags: KeyFlags,
    begin: Begin,
    keys: Keys,
}

enum Begin {
    Index(i64),
    Keyword { word: String, from: i64 },
    Unknown,
}

enum Keys {
    Range { last: i64, step: i64, limit: i64 },
    KeyNum { idx: i64, first: i64, step: i64 },
    Unknown,
}

/// A field of a typed reference map (`{"t":"map","v":[[k, v], …]}`).
fn field<'a>(node: &'a Json, name: &str) -> Option<&'a Json> {
    node["v"]
        .as_array()?
        .iter()
        .find(|kv| kv[0]["v"] == name)
        .map(|kv| &kv[1])
}

fn int(node: &Json, name: &str) -> i64 {
    field(node, name).and_then(|v| v["v"].as_i64()).unwrap_or(0)
}

impl Spec {
    fn parse(node: &Json) -> Spec {
        let flags = KeyFlags::from_names(
            field(node, "flags")
                .and_then(|f| f["v"].as_array())
                .into_iter()
                .flatten()
                .filter_map(|f| f["v"].as_str()),
        );
        let kind = |part: Option<&Json>| -> (String, Json) {
            let part = part.cloned().unwrap_or_default();
            let kind = field(&part, "type")
                .and_then(|t| t["v"].as_str())
                .unwrap_or("unknown")
                .to_string();
            (kind, field(&part, "spec").cloned().unwrap_or_default())
        };
        let (bs, bspec) = kind(field(node, "begin_search"));
        let begin = match bs.as_str() {
            "index" => Begin::Index(int(&bspec, "index")),
            "keyword" => Begin::Keyword {
                word: field(&bspec, "keyword")
                    .and_then(|k| k["v"].as_str())
                    .unwrap_or("")
                    .to_string(),
                from: int(&bspec, "startfrom"),
            },
            _ => Begin::Unknown,
        };
        let (fk, fspec) = kind(field(node, "find_keys"));
        let keys = match fk.as_str() {
            "range" => Keys::Range {
                last: int(&fspec, "lastkey"),
                step: int(&fspec, "keystep").max(1),
                limit: int(&fspec, "limit"),
            },
            "keynum" => Keys::KeyNum {
                idx: int(&fspec, "keynumidx"),
                first: int(&fspec, "firstkey"),
                step: int(&fspec, "keystep").max(1),
            },
            _ => Keys::Unknown,
        };
        Spec { flags, begin, keys }
    }

    fn has(&self, flag: u16) -> bool {
        self.flags.0 & flag != 0
    }
}

/// Redis's key-spec search. `None` where a spec is unknown, incomplete or
/// out of bounds for this line: the caller falls back to the command's
/// own finder, as Redis does.
fn by_specs(specs: &[Spec], args: &[Bytes]) -> Option<Keys4> {
    let argc = args.len() as i64;
    let mut keys = Keys4::new();
    for spec in specs {
        if spec.has(KeyFlags::NOT_KEY) {
            continue;
        }
        let mut first = match &spec.begin {
            Begin::Index(i) => *i,
            Begin::Keyword { word, from } => {
                // Forward from `from`, or backward from the end when it
                // is negative; the last argument itself is never
                // examined going forward (it could not be followed by a
                // key anyway).
                let (start, end) = if *from > 0 {
                    (*from, argc - 1)
                } else {
                    (argc + from, 1)
                };
                let mut found = None;
                let mut i = start;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if args[i as usize].eq_ignore_ascii_case(word.as_bytes()) {
                        found = Some(i + 1);
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                match found {
                    Some(f) => f,
                    None => continue,
                }
            }
            Begin::Unknown => return None,
        };
        let (last, step) = match spec.keys {
            Keys::Range { last, step, limit } => {
                let last = if last >= 0 {
                    first + last
                } else if limit == 0 {
                    argc + last
                } else {
                    first + ((argc - first) / limit + last)
                };
                (last, step)
            }
            Keys::KeyNum {
                idx,
                first: off,
                step,
            } => {
                let at = first + idx;
                if at < 0 || at >= argc {
                    return None;
                }
                let n = crate::num::parse_i64(&args[at as usize]).filter(|n| *n >= 0)?;
                first += off;
                (first + n - 1, step)
            }
            Keys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push(KeyArg {
                pos: i as usize,
                flags: spec.flags,
            });
            i += step;
        }
        if spec.has(KeyFlags::INCOMPLETE) {
            return None;
        }
    }
    Some(keys)
}

fn key(pos: usize, flags: &[&str]) -> KeyArg {
    KeyArg {
        pos,
        flags: KeyFlags::from_names(flags.iter().copied()),
    }
}

/// The commands Rampart has that carry a key finder of their own.
const FINDERS: &[&str] = &[
    "sort",
    "sort_ro",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zunion",
    "zinter",
    "zdiff",
    "zintercard",
    "sintercard",
    "lmpop",
    "zmpop",
    "blmpop",
    "bzmpop",
    "georadius",
    "georadiusbymember",
    "set",
    "bitfield",
];

/// The command's own key finder (Redis's getkeys_proc), for the commands
/// in [`FINDERS`]. `None`: the command has none.
fn finder(name: &str, args: &[Bytes]) -> Option<Vec<KeyArg>> {
    let is = |a: &Bytes, w: &str| a.eq_ignore_ascii_case(w.as_bytes());
    Some(match name {
        "sort" => {
            let mut keys = vec![key(1, &["RO", "access"])];
            let mut store = None;
            let mut i = 2;
            while i < args.len() {
                if is(&args[i], "limit") {
                    i += 2;
                } else if is(&args[i], "get") || is(&args[i], "by") {
                    i += 1;
                } else if is(&args[i], "store") && i + 1 < args.len() {
                    // The last STORE wins, as in SORT itself.
                    store = Some(i + 1);
                }
                i += 1;
            }
            keys.extend(store.map(|p| key(p, &["OW", "update"])));
            keys
        }
        "sort_ro" => vec![key(1, &["RO", "access"])],
        "zunionstore" | "zinterstore" | "zdiffstore" => numkeys(args, Some(1), 2, 3),
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
            numkeys(args, None, 1, 2)
        }
        "blmpop" | "bzmpop" => numkeys(args, None, 2, 3),
        "georadius" | "georadiusbymember" => {
            let mut store = None;
            let mut i = 5;
            while i < args.len() {
                if (is(&args[i], "store") || is(&args[i], "storedist")) && i + 1 < args.len() {
                    store = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            let mut keys = vec![key(1, &[])];
            keys.extend(store.map(|p| key(p, &[])));
            keys
        }
        "set" => {
            let get = args.iter().skip(3).any(|a| is(a, "get"));
            vec![if get {
                key(1, &["RW", "access", "update"])
            } else {
                key(1, &["OW", "update"])
            }]
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < args.len() {
                let rest = args.len() - i - 1;
                if is(&args[i], "get") && rest >= 2 {
                    i += 2;
                } else if (is(&args[i], "set") || is(&args[i], "incrby")) && rest >= 3 {
                    readonly = false;
                    break;
                } else if is(&args[i], "overflow") && rest >= 1 {
                    i += 1;
                } else {
                    // A syntax error: safer to call it a write.
                    readonly = false;
                    break;
                }
                i += 1;
            }
            vec![if readonly {
                key(1, &["RO", "access"])
            } else {
                key(1, &["RW", "access", "update"])
            }]
        }
        _ => return None,
    })
}

/// `[dest] numkeys key…` read as Redis's fallback does: `numkeys` through
/// C's `atoi`, no keys when it is out of range, the destination last.
fn numkeys(args: &[Bytes], dest: Option<usize>, count_at: usize, first: usize) -> Vec<KeyArg> {
    let Some(count) = args.get(count_at) else {
        return Vec::new();
    };
    let n = atoi(count);
    if n < 1 || n > args.len() as i64 - first as i64 {
        return Vec::new();
    }
    let mut keys: Vec<KeyArg> = (0..n as usize).map(|i| key(first + i, &[])).collect();
    keys.extend(dest.map(|d| key(d, &[])));
    keys
}

/// C's `atoi`: leading blanks, a sign, then as many digits as there are.
fn atoi(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let mut n: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add((s[i] - b'0') as i64);
        i += 1;
    }
    // atoi's result is an int: keep what a 32-bit value would hold.
    let n = if neg { -n } else { n };
    n as i32 as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn atoi_reads_a_prefix() {
        assert_eq!(atoi(b"2x"), 2);
        assert_eq!(atoi(b"  -3"), -3);
        assert_eq!(atoi(b"+4"), 4);
        assert_eq!(atoi(b"x"), 0);
    }

    #[test]
    fn sort_store_is_the_last_one_outside_option_arguments() {
        let pos = |s: &str| match finder("sort", &line(s)) {
            Some(k) => k.iter().map(|k| k.pos).collect::<Vec<_>>(),
            None => vec![],
        };
        assert_eq!(pos("sort src store a store b"), [1, 5]);
        assert_eq!(pos("sort src limit 0 store store x"), [1, 6]);
        assert_eq!(pos("sort src get store store x"), [1, 5]);
        assert_eq!(pos("sort src store"), [1]);
    }
}
