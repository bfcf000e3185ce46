//! The commands ACL rules name: every command of Redis's table (whether or
//! not this server implements it, so `+publish` means what it means to
//! Redis and category arithmetic counts the same commands), with its
//! categories and subcommands.

use std::collections::HashMap;

/// Redis's ACL categories, in `ACLCommandCategories` order: the order of
/// `ACL CAT` and the order the describe heuristic tries them in.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of category `name` (any case), as [`Catalog::add`] takes them.
///
/// ```
/// assert_eq!(rampart_acl::category("READ"), Some(1 << 1));
/// assert_eq!(rampart_acl::category("all"), None);
/// ```
pub fn category(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// One command or subcommand.
#[derive(Debug)]
pub struct Command {
    /// Full lower-case name: `get`, `config|get`.
    pub name: String,
    /// Category bits (see [`category`]).
    pub categories: u32,
    /// Its container, for a subcommand.
    pub parent: Option<usize>,
    /// Its subcommands, for a container.
    pub subs: Vec<usize>,
    /// Allowed before authentication (AUTH, HELLO): never refused by
    /// command rules, as in Redis.
    pub no_auth: bool,
}

/// Every command ACL rules can name, by id.
///
/// ```
/// use rampart_acl::{category, Catalog};
/// let mut c = Catalog::default();
/// let get = c.add("get", category("read").unwrap(), false);
/// let config = c.add("config", 0, false);
/// let cget = c.add_sub(config, "get", category("admin").unwrap(), false);
/// assert_eq!(c.lookup(b"GET"), Some(get));
/// assert_eq!(c.lookup(b"config|get"), Some(cget));
/// assert_eq!(c.lookup(b"get|x"), None);
/// ```
#[derive(Debug, Default)]
pub struct Catalog {
    cmds: Vec<Command>,
    names: HashMap<String, usize>,
    top: Vec<usize>,
}

impl Catalog {
    /// Adds a top-level command; returns its id.
    pub fn add(&mut self, name: &str, categories: u32, no_auth: bool) -> usize {
        let id = self.push(name.to_ascii_lowercase(), categories, None, no_auth);
        self.top.push(id);
        id
    }

    /// Adds subcommand `name` of container `parent`; returns its id.
    pub fn add_sub(&mut self, parent: usize, name: &str, categories: u32, no_auth: bool) -> usize {
        let full = format!("{}|{}", self.cmds[parent].name, name.to_ascii_lowercase());
        let id = self.push(full, categories, Some(parent), no_auth);
        self.cmds[parent].subs.push(id);
        id
    }

    fn push(
        &mut self,
        name: String,
        categories: u32,
        parent: Option<usize>,
        no_auth: bool,
    ) -> usize {
        let id = self.cmds.len();
        self.names.insert(name.clone(), id);
        self.cmds.push(Command {
            name,
            categories,
            parent,
            subs: Vec::new(),
            no_auth,
        });
        id
    }

    /// Redis's `ACLLookupCommand`: `name` or `container|sub`, any case;
    /// `x|y` only when `x` has subcommands, and one level only.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        let mut parts = name.split('|');
        let base = *self.names.get(parts.next()?)?;
        match (parts.next(), parts.next()) {
            (None, _) => Some(base),
            (Some(_), Some(_)) => None,
            (Some(_), None)
                if self.cmds[base].subs.is_empty() || self.cmds[base].parent.is_some() =>
            {
                None
            }
            (Some(_), None) => self.names.get(&name).copied(),
        }
    }

    /// The command at `id`.
    pub fn get(&self, id: usize) -> &Command {
        &self.cmds[id]
    }

    /// Number of commands and subcommands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// Top-level command ids, in the order they were added.
    pub fn top(&self) -> &[usize] {
        &self.top
    }

    /// Full names of the commands (subcommands included) in category
    /// `bit`, as `ACL CAT <category>` lists them.
    pub fn in_category(&self, bit: u32) -> Vec<&str> {
        let mut out = Vec::new();
        for &id in &self.top {
            let c = &self.cmds[id];
            if c.categories & bit != 0 {
                out.push(c.name.as_str());
            }
            for &s in &c.subs {
                if self.cmds[s].categories & bit != 0 {
                    out.push(self.cmds[s].name.as_str());
                }
            }
        }
        out
    }
}
