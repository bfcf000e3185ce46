//! ACL files and `user` lines in redis.conf.

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::user::{merge_selectors, RuleError, User, Users};

/// Parses an ACL file (`ACLLoadFromFile`). Every line is `user <name>
/// rules…` or blank; arguments are separated by single spaces. Any error
/// rejects the whole file, with Redis's messages (`<file>:<line>: …`)
/// joined on one line and its closing warning, so the caller keeps the
/// users it had.
///
/// ```
/// use rampart_acl::{file, Catalog};
/// let cat = Catalog::default();
/// let users = file::load("user alice on nopass ~*\n", "users.acl", &cat, false).unwrap();
/// assert!(users.get(b"alice").unwrap().enabled());
/// assert!(users.get(b"default").is_some());
/// let err = file::load("alice on\n", "users.acl", &cat, false).unwrap_err();
/// assert!(err.starts_with("users.acl:1 should start with user keyword"));
/// ```
pub fn load(text: &str, filename: &str, cat: &Catalog, allchannels: bool) -> Result<Users, String> {
    let mut errors = String::new();
    let mut users: BTreeMap<Vec<u8>, User> = BTreeMap::new();
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = line.trim_matches([' ', '\t', '\r', '\n']);
        if line.is_empty() {
            continue;
        }
        let argv: Vec<&[u8]> = line.as_bytes().split(|&c| c == b' ').collect();
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!(
                "{filename}:{n} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = argv[1];
        if crate::has_spaces(name) {
            errors.push_str(&format!(
                "'{filename}:{n}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {n}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let mut u = User::new(name, cat, allchannels);
        let rules = match merge_selectors(&argv[2..]) {
            Ok(r) => r,
            Err(_) => {
                errors.push_str(&format!(
                    "{filename}:{n}: Unmatched parenthesis in selector definition."
                ));
                Vec::new()
            }
        };
        let mut syntax_error = false;
        for r in rules {
            let r: &[u8] = trim(&r);
            if let Err(e) = u.apply(cat, r, allchannels) {
                if e == RuleError::Unknown {
                    errors.push_str(&format!(
                        "{filename}:{n}: Error in applying operation '{}': {e}. ",
                        String::from_utf8_lossy(r)
                    ));
                } else if !syntax_error {
                    errors.push_str(&format!("{filename}:{n}: {e}. "));
                    syntax_error = true;
                }
            }
        }
        users.insert(name.to_vec(), u);
    }
    if errors.is_empty() {
        Ok(Users::from_map(users, cat))
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(errors)
    }
}

fn trim(r: &[u8]) -> &[u8] {
    let start = r
        .iter()
        .position(|c| !b"\t\r\n".contains(c))
        .unwrap_or(r.len());
    let end = r
        .iter()
        .rposition(|c| !b"\t\r\n".contains(c))
        .map_or(start, |e| e + 1);
    &r[start..end.max(start)]
}

/// The ACL file text for `users` (`ACLSaveToFile`): one `user` line each.
pub fn save(users: &Users, cat: &Catalog) -> Vec<u8> {
    let mut out = Vec::new();
    for u in users.iter() {
        out.extend_from_slice(&line(u, cat));
        out.push(b'\n');
    }
    out
}

/// `user <name> <rules>` for one user, as ACL LIST, ACL files and CONFIG
/// REWRITE write it.
pub fn line(u: &User, cat: &Catalog) -> Vec<u8> {
    let mut l = b"user ".to_vec();
    l.extend_from_slice(u.name());
    l.push(b' ');
    l.extend_from_slice(&u.describe(cat));
    l
}

/// Checks one redis.conf `user` line (`argv` starts with `user`) as
/// `ACLAppendUserForLoading` does, given the names of the `user` lines
/// before it. The error is Redis's fatal-config message, which names
/// `argv[i]` for the `i`th bad rule (an index into the rules, not into
/// `argv`: Redis's own off-by-two, kept so logs match). Unknown commands
/// are let through here and caught by [`apply_configured`].
pub fn check_conf_line(argv: &[&[u8]], earlier: &[Vec<u8>], cat: &Catalog) -> Result<(), String> {
    let fail = |i: usize, e: RuleError| {
        let at = argv
            .get(i)
            .map(|a| String::from_utf8_lossy(a))
            .unwrap_or_default();
        Err(format!("Error in user declaration '{at}': {e}"))
    };
    if argv.len() < 2 {
        return fail(0, RuleError::Syntax);
    }
    if earlier.iter().any(|n| n == argv[1]) {
        return fail(1, RuleError::Duplicate);
    }
    let rules = match merge_selectors(&argv[2..]) {
        Ok(r) => r,
        Err(i) => return fail(i, RuleError::Syntax),
    };
    let mut u = User::new(b"", cat, false);
    for (j, r) in rules.iter().enumerate() {
        match u.apply(cat, r, false) {
            Err(RuleError::Unknown) | Ok(()) => {}
            Err(e) => return fail(j, e),
        }
    }
    Ok(())
}

/// Builds the users of redis.conf `user` lines (`ACLLoadConfiguredUsers`):
/// `default` may be redefined (it is reset first); any other repeat, a
/// bad name or a bad rule is an error worded as Redis logs it.
pub fn apply_configured(
    lines: &[Vec<Vec<u8>>],
    cat: &Catalog,
    allchannels: bool,
) -> Result<Users, String> {
    let mut users = Users::new(cat);
    let mut seen: Vec<&[u8]> = Vec::new();
    for l in lines {
        let Some((name, rules)) = l.split_first() else {
            continue;
        };
        if crate::has_spaces(name) {
            return Err("Spaces not allowed in ACL usernames".into());
        }
        if seen.contains(&name.as_slice()) {
            return Err(format!(
                "Duplicate user '{}' found in the configuration: {}",
                String::from_utf8_lossy(name),
                RuleError::Duplicate
            ));
        }
        seen.push(name);
        let mut u = match users.get(name) {
            Some(d) => {
                let mut d = User::clone(d);
                let _ = d.apply(cat, b"reset", allchannels);
                d
            }
            None => User::new(name, cat, allchannels),
        };
        let rules: Vec<&[u8]> = rules.iter().map(Vec::as_slice).collect();
        let rules = merge_selectors(&rules).map_err(|_| {
            format!(
                "Unmatched parenthesis in acl selector for the user named '{}'",
                String::from_utf8_lossy(name)
            )
        })?;
        for r in &rules {
            u.apply(cat, r, allchannels).map_err(|e| {
                format!(
                    "Error loading ACL rule '{}' for the user named '{}': {e}",
                    String::from_utf8_lossy(r),
                    String::from_utf8_lossy(name)
                )
            })?;
        }
        users.put(u);
    }
    Ok(users)
}
