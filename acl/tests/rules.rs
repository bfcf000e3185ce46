//! Properties of rule application and description, on a catalog shaped
//! like Redis's (containers, subcommands, overlapping categories): what a
//! user's rules describe as, applied to a fresh user, gives the same user
//! (Redis asserts the same of its bitmap), and a bad rule changes nothing.

use proptest::prelude::*;
use rampart_acl::{category, Catalog, User, Users};

fn cats(names: &[&str]) -> u32 {
    names
        .iter()
        .map(|n| category(n).unwrap_or(0))
        .fold(0, |a, b| a | b)
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    c.add("get", cats(&["read", "string", "fast"]), false);
    c.add("set", cats(&["write", "string", "slow"]), false);
    c.add("del", cats(&["write", "keyspace", "slow"]), false);
    c.add("hset", cats(&["write", "hash", "fast"]), false);
    c.add("hget", cats(&["read", "hash", "fast"]), false);
    c.add(
        "keys",
        cats(&["read", "keyspace", "slow", "dangerous"]),
        false,
    );
    c.add(
        "flushall",
        cats(&["write", "keyspace", "slow", "dangerous"]),
        false,
    );
    c.add("select", cats(&["connection", "fast"]), false);
    c.add("auth", cats(&["connection", "fast"]), true);
    let config = c.add("config", cats(&["slow"]), false);
    c.add_sub(config, "get", cats(&["admin", "slow", "dangerous"]), false);
    c.add_sub(config, "set", cats(&["admin", "slow", "dangerous"]), false);
    let client = c.add("client", cats(&["slow"]), false);
    c.add_sub(client, "id", cats(&["connection", "slow"]), false);
    c.add_sub(
        client,
        "kill",
        cats(&["admin", "connection", "slow", "dangerous"]),
        false,
    );
    c.add("publish", cats(&["pubsub", "fast"]), false);
    c
}

fn rule() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "+get",
        "-get",
        "+set",
        "-set",
        "+del",
        "+hset",
        "-hget",
        "+keys",
        "-flushall",
        "+config",
        "-config",
        "+config|get",
        "-config|set",
        "+client|id",
        "-client",
        "+select|0",
        "+select|1",
        "+@read",
        "-@read",
        "+@write",
        "-@write",
        "+@hash",
        "-@string",
        "+@keyspace",
        "-@dangerous",
        "+@admin",
        "-@slow",
        "+@fast",
        "+@connection",
        "+@all",
        "-@all",
        "allcommands",
        "nocommands",
        "~a*",
        "%R~r*",
        "%W~w*",
        "allkeys",
        "resetkeys",
        "&ch",
        "allchannels",
        "resetchannels",
        "on",
        "off",
        ">p",
        "nopass",
        "resetpass",
        "(~s* +get)",
        "(+@hash -hget)",
        "clearselectors",
        "+nosuch",
        "-@nosuch",
        "~*",
        "%X~x",
    ]);
    words.prop_map(str::to_string)
}

proptest! {
    #[test]
    fn a_description_rebuilds_the_user(rules in prop::collection::vec(rule(), 0..14)) {
        let cat = catalog();
        let mut users = Users::new(&cat);
        for r in &rules {
            if let Ok(u) = users.set_user(&cat, b"u", &[r.as_bytes()], false) {
                users.put(u);
            }
        }
        let Some(u) = users.get(b"u") else { return Ok(()) };
        let described = u.describe(&cat);
        // Re-apply the description, split as an ACL file line is (the
        // selector's parts are merged back together).
        let words: Vec<&[u8]> = described.split(|&c| c == b' ').collect();
        let fresh = Users::new(&cat);
        let rebuilt = fresh.set_user(&cat, b"u", &words, false);
        prop_assert!(rebuilt.is_ok(), "{:?}", rebuilt.err());
        let rebuilt = rebuilt.unwrap_or_else(|_| User::new(b"u", &cat, false));
        // Same description (describing asserts the rules rebuild the exact
        // bitmap) and the same answers.
        prop_assert_eq!(rebuilt.describe(&cat), described.clone());
        for (line, keys) in [
            (&["get", "a1"][..], vec![(1, true, false)]),
            (&["set", "w1", "v"][..], vec![(1, false, true)]),
            (&["hset", "s1", "f", "v"][..], vec![(1, false, true)]),
            (&["select", "0"][..], vec![]),
            (&["config", "get", "x"][..], vec![]),
            (&["publish", "ch", "m"][..], vec![]),
        ] {
            let id = cat.lookup(if line[0] == "config" { b"config|get" } else { line[0].as_bytes() })
                .unwrap_or(usize::MAX);
            let refs = || Some(keys.iter().map(|&(pos, read, write)| rampart_acl::KeyRef { pos, read, write }).collect());
            let ch = [rampart_acl::ChannelRef { pos: 1, pattern: false }];
            let ch: &[rampart_acl::ChannelRef] = if line[0] == "publish" { &ch } else { &[] };
            prop_assert_eq!(rebuilt.check(&cat, id, line, refs, ch), u.check(&cat, id, line, refs, ch));
        }
    }

    #[test]
    fn a_bad_rule_changes_nothing(rules in prop::collection::vec(rule(), 0..8)) {
        let cat = catalog();
        let mut users = Users::new(&cat);
        let mut all: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
        if let Ok(u) = users.set_user(&cat, b"u", &all, false) {
            users.put(u);
        }
        let before = users.get(b"u").cloned();
        all.push(b"+nosuch");
        prop_assert!(users.set_user(&cat, b"u", &all, false).is_err());
        prop_assert_eq!(users.get(b"u").cloned(), before);
    }
}

#[test]
fn first_args_and_subcommands_check_as_redis() {
    let cat = catalog();
    let users = Users::new(&cat);
    let rules: Vec<&[u8]> = vec![
        b"on",
        b"nopass",
        b"-@all",
        b"+select|0",
        b"+config|get",
        b"~*",
    ];
    let u = users
        .set_user(&cat, b"u", &rules, false)
        .unwrap_or_else(|e| panic!("{e}"));
    let id = |n: &str| cat.lookup(n.as_bytes()).unwrap_or(usize::MAX);
    let none = || None;
    assert!(u
        .check(&cat, id("select"), &["select", "0"], none, &[])
        .is_ok());
    assert!(u
        .check(&cat, id("select"), &["SELECT", "1"], none, &[])
        .is_err());
    assert!(u
        .check(&cat, id("config|get"), &["config", "get", "x"], none, &[])
        .is_ok());
    assert!(u
        .check(
            &cat,
            id("config|set"),
            &["config", "set", "x", "y"],
            none,
            &[]
        )
        .is_err());
    // AUTH is no_auth: always allowed.
    assert!(u.check(&cat, id("auth"), &["auth", "x"], none, &[]).is_ok());
    assert!(!u.unrestricted());
    assert!(User::default_user(&cat).unrestricted());
}

proptest! {
    /// Any ACL file text, however broken, is accepted or refused with a
    /// message; never a panic.
    #[test]
    fn acl_file_parsing_never_panics(lines in prop::collection::vec(
        prop::collection::vec(prop::sample::select(vec![
            "user", "u", "default", "on", "off", ">p", "#abc", "(", ")", "(~a", "+get)", "~*",
            "%R~x", "%", "&", "+@all", "-@x", "+config|get|x", "+select|", "\"", "\t", "", "\u{0}",
        ]), 0..8).prop_map(|w| w.join(" ")), 0..6)) {
        let cat = catalog();
        let text = lines.join("\n");
        match rampart_acl::file::load(&text, "f.acl", &cat, false) {
            Ok(users) => prop_assert!(users.get(b"default").is_some()),
            Err(e) => prop_assert!(e.ends_with("no change to the previously active ACL rules was performed"), "{}", e),
        }
    }
}
