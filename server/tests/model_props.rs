//! Property tests: set algebra and sorted-set ranges against simple models
//! (`BTreeSet`s and a sorted `Vec`), through the real command handlers, with
//! encoding thresholds drawn at random so compact and large representations
//! and the conversions between them are all exercised.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rampart_server::testkit::Kit;

/// Parses a RESP2 reply: arrays of bulk strings, integers, nil.
fn parse(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = reply.split("\r\n");
    while let Some(l) = lines.next() {
        match l.as_bytes().first() {
            Some(b'$') if l != "$-1" => out.push(lines.next().unwrap_or_default().to_string()),
            Some(b':') => out.push(l[1..].to_string()),
            _ => {}
        }
    }
    out
}

fn sorted(v: Vec<String>) -> Vec<String> {
    let mut v = v;
    v.sort();
    v
}

fn member() -> impl Strategy<Value = String> {
    // Integers (intset-able) and short words, from small pools so sets
    // overlap.
    prop_oneof![(0i64..40).prop_map(|i| i.to_string()), "[a-f]{1,3}",]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn set_algebra_matches_a_model(
        a in proptest::collection::vec(member(), 0..40),
        b in proptest::collection::vec(member(), 0..40),
        c in proptest::collection::vec(member(), 0..40),
        removed in proptest::collection::vec(member(), 0..10),
        intset_max in 1usize..20,
        listpack_max in 1usize..20,
        limit in 0usize..10,
    ) {
        let mut k = Kit::new();
        k.run(&["CONFIG", "SET", "set-max-intset-entries", &intset_max.to_string()]);
        k.run(&["CONFIG", "SET", "set-max-listpack-entries", &listpack_max.to_string()]);
        let mut model: Vec<BTreeSet<String>> = Vec::new();
        for (name, items) in [("s1", &a), ("s2", &b), ("s3", &c)] {
            let mut m = BTreeSet::new();
            for x in items.iter() {
                k.run(&["SADD", name, x]);
                m.insert(x.clone());
            }
            model.push(m);
        }
        for x in &removed {
            k.run(&["SREM", "s1", x]);
            model[0].remove(x);
        }
        let (m1, m2, m3) = (&model[0], &model[1], &model[2]);
        let inter: BTreeSet<String> = m1.iter().filter(|x| m2.contains(*x) && m3.contains(*x)).cloned().collect();
        let union: BTreeSet<String> = m1.iter().chain(m2).chain(m3).cloned().collect();
        let diff: BTreeSet<String> = m1.iter().filter(|x| !m2.contains(*x) && !m3.contains(*x)).cloned().collect();
        let v = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        prop_assert_eq!(sorted(parse(&k.run(&["SMEMBERS", "s1"]))), v(m1));
        prop_assert_eq!(parse(&k.run(&["SCARD", "s1"])), vec![m1.len().to_string()]);
        prop_assert_eq!(sorted(parse(&k.run(&["SINTER", "s1", "s2", "s3"]))), v(&inter));
        prop_assert_eq!(sorted(parse(&k.run(&["SUNION", "s1", "s2", "s3"]))), v(&union));
        prop_assert_eq!(sorted(parse(&k.run(&["SDIFF", "s1", "s2", "s3"]))), v(&diff));
        prop_assert_eq!(parse(&k.run(&["SINTERCARD", "3", "s1", "s2", "s3"])), vec![inter.len().to_string()]);
        let capped = if limit == 0 { inter.len() } else { inter.len().min(limit) };
        prop_assert_eq!(
            parse(&k.run(&["SINTERCARD", "3", "s1", "s2", "s3", "LIMIT", &limit.to_string()])),
            vec![capped.to_string()]
        );
        for (cmd, want) in [("SINTERSTORE", &inter), ("SUNIONSTORE", &union), ("SDIFFSTORE", &diff)] {
            prop_assert_eq!(parse(&k.run(&[cmd, "d", "s1", "s2", "s3"])), vec![want.len().to_string()]);
            prop_assert_eq!(sorted(parse(&k.run(&["SMEMBERS", "d"]))), v(want));
            let exists = parse(&k.run(&["EXISTS", "d"]));
            prop_assert_eq!(exists, vec![(!want.is_empty() as u8).to_string()]);
        }
        for x in union.iter().chain(removed.iter()) {
            prop_assert_eq!(
                parse(&k.run(&["SISMEMBER", "s2", x])),
                vec![(m2.contains(x) as u8).to_string()]
            );
        }
    }
}

/// Redis's score text for the scores these tests use (integers and halves).
fn score_text(s: f64) -> String {
    if s == s.trunc() {
        format!("{}", s as i64)
    } else {
        format!("{s}")
    }
}

/// A rank argument as Redis resolves it (negative from the end), clamped.
fn resolve(i: i64, len: usize) -> i64 {
    if i < 0 {
        (len as i64 + i).max(0)
    } else {
        i
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sorted_set_ranges_match_a_model(
        adds in proptest::collection::vec(("[a-h]{1,2}", -6i64..6), 0..60),
        removes in proptest::collection::vec("[a-h]{1,2}", 0..8),
        listpack_max in 0usize..12,
        (start, stop) in (-12i64..12, -12i64..12),
        (min, max) in (-14i64..14, -14i64..14),
        (min_ex, max_ex) in (any::<bool>(), any::<bool>()),
        (offset, count) in (0i64..6, -1i64..6),
    ) {
        let mut k = Kit::new();
        k.run(&["CONFIG", "SET", "zset-max-listpack-entries", &listpack_max.to_string()]);
        // Model: member -> score; halves make ties and non-integers.
        let mut model: std::collections::BTreeMap<String, f64> = Default::default();
        for (m, s) in &adds {
            let s = *s as f64 / 2.0;
            k.run(&["ZADD", "z", &score_text(s), m]);
            model.insert(m.clone(), s);
        }
        for m in &removes {
            k.run(&["ZREM", "z", m]);
            model.remove(m);
        }
        let mut ordered: Vec<(f64, String)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
        ordered.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.1.cmp(&b.1)));
        let len = ordered.len();
        let with_scores = |v: &[(f64, String)]| -> Vec<String> {
            v.iter().flat_map(|(s, m)| [m.clone(), score_text(*s)]).collect()
        };
        prop_assert_eq!(parse(&k.run(&["ZRANGE", "z", "0", "-1", "WITHSCORES"])), with_scores(&ordered));
        prop_assert_eq!(parse(&k.run(&["ZCARD", "z"])), vec![len.to_string()]);
        // Rank ranges.
        // As Redis: a negative start is clamped to 0, a negative end is not.
        let b = if stop < 0 { len as i64 + stop } else { stop }.min(len as i64 - 1);
        let a = resolve(start, len);
        let want: Vec<String> = if a > b || a >= len as i64 {
            vec![]
        } else {
            ordered[a as usize..=b as usize].iter().map(|x| x.1.clone()).collect()
        };
        prop_assert_eq!(parse(&k.run(&["ZRANGE", "z", &start.to_string(), &stop.to_string()])), want.clone());
        let mut rev: Vec<String> = ordered.iter().rev().map(|x| x.1.clone()).collect();
        let want_rev: Vec<String> = if a > b || a >= len as i64 { vec![] } else { rev.drain(a as usize..=b as usize).collect() };
        prop_assert_eq!(parse(&k.run(&["ZREVRANGE", "z", &start.to_string(), &stop.to_string()])), want_rev);
        // Score ranges, inclusive or exclusive, with LIMIT.
        let (lo, hi) = (min as f64 / 2.0, max as f64 / 2.0);
        let arg = |v: f64, ex: bool| format!("{}{}", if ex { "(" } else { "" }, score_text(v));
        let inside = |s: f64| (if min_ex { s > lo } else { s >= lo }) && (if max_ex { s < hi } else { s <= hi });
        let in_range: Vec<(f64, String)> = ordered.iter().filter(|x| inside(x.0)).cloned().collect();
        prop_assert_eq!(
            parse(&k.run(&["ZRANGEBYSCORE", "z", &arg(lo, min_ex), &arg(hi, max_ex), "WITHSCORES"])),
            with_scores(&in_range)
        );
        prop_assert_eq!(parse(&k.run(&["ZCOUNT", "z", &arg(lo, min_ex), &arg(hi, max_ex)])), vec![in_range.len().to_string()]);
        let limited: Vec<String> = in_range
            .iter()
            .skip(offset as usize)
            .take(if count < 0 { usize::MAX } else { count as usize })
            .map(|x| x.1.clone())
            .collect();
        prop_assert_eq!(
            parse(&k.run(&["ZRANGEBYSCORE", "z", &arg(lo, min_ex), &arg(hi, max_ex), "LIMIT", &offset.to_string(), &count.to_string()])),
            limited
        );
        let rev_in: Vec<String> = in_range.iter().rev().map(|x| x.1.clone()).collect();
        prop_assert_eq!(parse(&k.run(&["ZREVRANGEBYSCORE", "z", &arg(hi, max_ex), &arg(lo, min_ex)])), rev_in);
        // Ranks of every member, and of one that is absent.
        for (i, (_, m)) in ordered.iter().enumerate() {
            prop_assert_eq!(parse(&k.run(&["ZRANK", "z", m])), vec![i.to_string()]);
            prop_assert_eq!(parse(&k.run(&["ZREVRANK", "z", m])), vec![(len - 1 - i).to_string()]);
        }
        prop_assert_eq!(parse(&k.run(&["ZRANK", "z", "zzz"])), Vec::<String>::new());
        // Lexicographic ranges over the same members at one score.
        for (_, m) in &ordered {
            k.run(&["ZADD", "lex", "0", m]);
        }
        let names: Vec<String> = model.keys().cloned().collect();
        let (l, h) = ("[b", "(f");
        let lex: Vec<String> = names.iter().filter(|m| m.as_str() >= "b" && m.as_str() < "f").cloned().collect();
        prop_assert_eq!(parse(&k.run(&["ZRANGEBYLEX", "lex", l, h])), lex.clone());
        prop_assert_eq!(parse(&k.run(&["ZLEXCOUNT", "lex", l, h])), vec![lex.len().to_string()]);
        // Removing a score range leaves the rest.
        let removed = parse(&k.run(&["ZREMRANGEBYSCORE", "z", &arg(lo, min_ex), &arg(hi, max_ex)]));
        prop_assert_eq!(removed, vec![in_range.len().to_string()]);
        let rest: Vec<(f64, String)> = ordered.iter().filter(|x| !inside(x.0)).cloned().collect();
        prop_assert_eq!(parse(&k.run(&["ZRANGE", "z", "0", "-1", "WITHSCORES"])), with_scores(&rest));
    }
}
