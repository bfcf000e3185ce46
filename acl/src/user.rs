//! Users and the user table.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::selector::{worst, ChannelRef, Denied, KeyRef, Selector};

/// Why a rule was refused, worded as `ACLSetUserStringError` words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// EINVAL
    Syntax,
    /// ENOENT
    Unknown,
    /// EEXIST
    KeysAfterAll,
    /// EISDIR
    ChannelsAfterAll,
    /// ENODEV
    NoSuchPassword,
    /// EBADMSG
    BadHash,
    /// EALREADY
    Duplicate,
    /// ECHILD
    FirstArgOfSub,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleError::Syntax => "Syntax error",
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::Duplicate => "Duplicate user found. A user can only be defined once in config files",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        })
    }
}

/// One ACL user.
///
/// ```
/// use rampart_acl::{Catalog, User};
/// let cat = Catalog::default();
/// let mut u = User::new(b"alice", &cat, false);
/// for op in ["on", ">secret", "~cache:*"] {
///     u.apply(&cat, op.as_bytes(), false).unwrap();
/// }
/// assert!(u.check_password(b"secret"));
/// assert_eq!(u.describe(&cat), b"on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~cache:* resetchannels -@all");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    name: Vec<u8>,
    enabled: bool,
    nopass: bool,
    /// `Some(true)`: sanitize-payload; `Some(false)`: skip-sanitize-payload.
    sanitize: Option<bool>,
    /// SHA-256 hex of each password.
    passwords: Vec<String>,
    /// The root selector first.
    selectors: Vec<Selector>,
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

impl User {
    /// A new user as `ACLCreateUser` makes one: off, no passwords, no
    /// permissions (channels per `acl-pubsub-default`).
    pub fn new(name: &[u8], cat: &Catalog, allchannels: bool) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(cat, allchannels)],
        }
    }

    /// The `default` user of a fresh server: on, nopass, everything.
    pub fn default_user(cat: &Catalog) -> User {
        let mut u = User::new(b"default", cat, false);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(cat, op.as_bytes(), false);
        }
        u
    }

    /// The user's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Whether the user may authenticate (`on`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether any password works (`nopass`).
    pub fn nopass(&self) -> bool {
        self.nopass
    }

    /// `skip-sanitize-payload`: RESTORE from this user is not sanitized.
    pub fn skips_sanitize(&self) -> bool {
        self.sanitize == Some(false)
    }

    /// Password hashes, as ACL GETUSER lists them.
    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }

    /// The selectors, root first.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// Whether the user may run anything at all without per-request
    /// checks (the default user's usual state).
    pub fn unrestricted(&self) -> bool {
        self.selectors[0].unrestricted()
    }

    /// Applies one rule (`ACLSetUser`). `allchannels` is
    /// `acl-pubsub-default allchannels`, which `reset` and new selectors
    /// follow.
    pub fn apply(&mut self, cat: &Catalog, op: &[u8], allchannels: bool) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if op.is_empty() {
            return Ok(());
        }
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                crate::hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                crate::hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            let at = self.passwords.iter().position(|p| *p == hash);
            self.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(cat, allchannels);
            let inner = &op[1..op.len() - 1];
            // Unbalanced quotes inside leave an empty selector, as
            // sdssplitargs failing does in Redis.
            for rule in rampart_keyspace::sds::split_args(inner).unwrap_or_default() {
                if !rule.is_empty() {
                    s.apply(cat, &rule)?;
                }
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.nopass = false;
            self.passwords.clear();
            self.enabled = false;
            self.sanitize = Some(true);
            self.selectors.truncate(1);
            let root = &mut self.selectors[0];
            for op in ["resetkeys", "resetchannels", "-@all"] {
                root.apply(cat, op.as_bytes())?;
            }
            if allchannels {
                root.apply(cat, b"allchannels")?;
            }
        } else {
            self.selectors[0].apply(cat, op)?;
        }
        Ok(())
    }

    /// The user in rule form, as ACL LIST and ACL files show it after
    /// `user <name> ` (`ACLDescribeUser`).
    pub fn describe(&self, cat: &Catalog) -> Vec<u8> {
        let mut out = Vec::new();
        for (set, name) in [
            (self.enabled, "on"),
            (!self.enabled, "off"),
            (self.nopass, "nopass"),
            (self.sanitize == Some(false), "skip-sanitize-payload"),
            (self.sanitize == Some(true), "sanitize-payload"),
        ] {
            if set {
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
            }
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.selectors[0].describe(cat));
        for s in &self.selectors[1..] {
            out.extend_from_slice(b" (");
            out.extend_from_slice(&s.describe(cat));
            out.push(b')');
        }
        out
    }

    /// User flags in ACL GETUSER's order.
    pub fn flags(&self) -> Vec<&'static str> {
        [
            (self.enabled, "on"),
            (!self.enabled, "off"),
            (self.nopass, "nopass"),
            (self.sanitize == Some(false), "skip-sanitize-payload"),
            (self.sanitize == Some(true), "sanitize-payload"),
        ]
        .into_iter()
        .filter(|f| f.0)
        .map(|f| f.1)
        .collect()
    }

    /// `ACLCheckUserCredentials` for a user already found: off users never
    /// pass, nopass users always do, others need one of their passwords.
    pub fn check_password(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hash = crate::hash_password(pass);
        // Constant-time over the hash, as Redis compares them.
        self.passwords.iter().fold(false, |ok, p| {
            let diff = p
                .bytes()
                .zip(hash.bytes())
                .fold(0u8, |d, (a, b)| d | (a ^ b));
            ok | (diff == 0 && p.len() == hash.len())
        })
    }

    /// `ACLCheckAllUserCommandPerm`: may this user run command `id` with
    /// `args`? `keys` computes the key arguments once, when a selector
    /// needs them (`None`: the command takes no keys).
    pub fn check(
        &self,
        cat: &Catalog,
        id: usize,
        args: &[impl AsRef<[u8]>],
        mut keys: impl FnMut() -> Option<Vec<KeyRef>>,
        channels: &[ChannelRef],
    ) -> Result<(), Denied> {
        let mut cache: Option<Option<std::rc::Rc<[KeyRef]>>> = None;
        let mut lazy = || cache.get_or_insert_with(|| keys().map(Into::into)).clone();
        let mut err = None;
        for s in &self.selectors {
            match s.check(cat, id, args, &mut lazy, channels) {
                Ok(()) => return Ok(()),
                Err(e) => err = Some(worst(err, e)),
            }
        }
        Err(err.unwrap_or(Denied::Command))
    }

    /// `ACLUserCheckCmdWithUnrestrictedKeyAccess`: may the user run the
    /// command and reach every key with this access (SCAN-like and
    /// FLUSHALL-like commands need it, as the scripting and key-space
    /// commands ask)?
    pub fn check_with_all_keys(
        &self,
        cat: &Catalog,
        id: usize,
        args: &[impl AsRef<[u8]>],
        mut keys: impl FnMut() -> Option<Vec<KeyRef>>,
        read: bool,
        write: bool,
    ) -> bool {
        let mut cache: Option<Option<std::rc::Rc<[KeyRef]>>> = None;
        let mut lazy = || cache.get_or_insert_with(|| keys().map(Into::into)).clone();
        self.selectors.iter().any(|s| {
            s.check(cat, id, args, &mut lazy, &[]).is_ok() && s.all_keys_access(read, write)
        })
    }

    /// Whether the user may use `channel` in any selector
    /// (`ACLUserCheckChannelPerm`).
    pub fn check_channel(&self, channel: &[u8], pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.check_channel(channel, pattern))
    }

    /// Whether pub/sub clients of `old` may lose channels under `self`
    /// (`ACLKillPubsubClientsIfNeeded`'s quick test): false when the new
    /// rules allow every channel or are a superset of the old ones.
    pub fn channels_shrank_from(&self, old: &User) -> bool {
        if self.selectors.iter().any(Selector::all_channels) {
            return false;
        }
        let new: Vec<&Vec<u8>> = self.selectors.iter().flat_map(|s| s.channels()).collect();
        old.selectors
            .iter()
            .any(|s| s.all_channels() || s.channels().iter().any(|c| !new.contains(&c)))
    }
}

/// Joins selector rules split over several arguments (`(~a` `+get)`) into
/// one (`ACLMergeSelectorArguments`). `Err(i)`: the selector starting at
/// argument `i` never closes.
pub fn merge_selectors(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, &op) in args.iter().enumerate() {
        if let Some((_, sel)) = &mut open {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(open.take().map(|o| o.1).unwrap_or_default());
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((i, op.to_vec()));
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((i, _)) => Err(i),
        None => Ok(out),
    }
}

/// The user table, ordered by name as Redis's radix tree lists them.
#[derive(Clone, Debug)]
pub struct Users {
    map: BTreeMap<Vec<u8>, Arc<User>>,
}

impl Users {
    /// A table with only the default user.
    pub fn new(cat: &Catalog) -> Users {
        let mut map = BTreeMap::new();
        map.insert(b"default".to_vec(), Arc::new(User::default_user(cat)));
        Users { map }
    }

    /// A table from loaded users; a missing `default` is created as
    /// Redis does after ACL LOAD.
    pub fn from_map(map: BTreeMap<Vec<u8>, User>, cat: &Catalog) -> Users {
        let mut map: BTreeMap<Vec<u8>, Arc<User>> =
            map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        map.entry(b"default".to_vec())
            .or_insert_with(|| Arc::new(User::default_user(cat)));
        Users { map }
    }

    /// User `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<User>> {
        self.map.get(name)
    }

    /// Every user, by name.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.map.values().map(|u| &**u)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: the default user exists.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes user `name`.
    pub fn remove(&mut self, name: &[u8]) -> Option<Arc<User>> {
        self.map.remove(name)
    }

    /// Inserts or replaces a user.
    pub fn put(&mut self, user: User) {
        self.map.insert(user.name.clone(), Arc::new(user));
    }

    /// `ACL SETUSER name rules…` (`ACLStringSetUser`): the rules are
    /// applied to a copy of the user (or a new one) and the result is
    /// returned only if every rule is valid, so a bad rule changes
    /// nothing. The error is Redis's reply text (without `ERR `).
    pub fn set_user(
        &self,
        cat: &Catalog,
        name: &[u8],
        rules: &[&[u8]],
        allchannels: bool,
    ) -> Result<User, String> {
        let rules = merge_selectors(rules).map_err(|i| {
            format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(rules[i])
            )
        })?;
        let mut u = match self.map.get(name) {
            Some(u) => User::clone(u),
            None => User::new(name, cat, allchannels),
        };
        for r in &rules {
            u.apply(cat, r, allchannels).map_err(|e| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {e}",
                    String::from_utf8_lossy(r)
                )
            })?;
        }
        Ok(u)
    }
}
