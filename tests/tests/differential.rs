//! Differential test: every file in `tests/corpus/` is run on a fresh
//! Rampart and a fresh `redis-server` 7.0, and the replies must be equal
//! byte for byte (see `rampart_tests::corpus` for the file format).
//!
//! One test per file, so `cargo test` names the family that differs; each
//! failure lists every mismatching line, not just the first.

use anyhow::Result;
use rampart_tests::corpus::{check_file, Report};

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() -> Result<(), Report> {
                check_file(concat!(stringify!($name), ".txt"))
            }
        )*

        /// A corpus file with no test above would silently never run.
        #[test]
        fn every_corpus_file_has_a_test() -> Result<()> {
            let known = [$(concat!(stringify!($name), ".txt")),*];
            let dir = rampart_tests::workspace_root().join("tests").join("corpus");
            for entry in std::fs::read_dir(&dir)? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if name.ends_with(".txt") {
                    anyhow::ensure!(
                        known.contains(&name.as_str()),
                        "tests/corpus/{name} has no test: add it to corpus_tests! in {}",
                        file!()
                    );
                }
            }
            Ok(())
        }
    };
}

corpus_tests!(
    acl,
    connection,
    strings,
    bitmap,
    keys,
    server,
    transactions,
    lists,
    zsets,
    hashes,
    sets,
    hyperloglog,
    dump,
    sort,
    geo,
    scripting,
    streams
);

/// SORT ... BY ... LIMIT with few distinct weights: the order of ties
/// comes from Redis's partial quicksort, so random lists are compared reply
/// for reply (a corpus would need thousands of lines to reach the inputs
/// where a near-copy of that quicksort goes another way).
#[test]
fn sort_by_limit_breaks_ties_as_redis() -> Result<()> {
    use rampart_tests::{Rampart, RedisOracle};
    let redis = RedisOracle::start()?;
    let rampart = Rampart::start(&[])?;
    let (mut a, mut b) = (redis.conn()?, rampart.conn()?);
    let mut seed = 7u64;
    let mut rnd = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut differ = Vec::new();
    let mut total = 0;
    for _ in 0..300 {
        let n = [5, 7, 8, 20, 41, 60, 100, 300][rnd(8) as usize];
        let w = [2, 3, 5, 10, 1000][rnd(5) as usize];
        let mut push = vec!["RPUSH".to_string(), "l".into()];
        let mut mset = vec!["MSET".to_string()];
        for i in 0..n {
            push.push(format!("e{i}"));
            mset.push(format!("w_e{i}"));
            mset.push(rnd(w).to_string());
        }
        for c in [&mut a, &mut b] {
            c.cmd(&["FLUSHALL"])?;
            c.cmd(&push)?;
            c.cmd(&mset)?;
        }
        for _ in 0..20 {
            let (off, count) = (rnd(n).to_string(), (1 + rnd(n)).to_string());
            let mut q = vec!["SORT", "l", "BY", "w_*"];
            match rnd(10) {
                0 | 1 => q.push("ALPHA"),
                2..=4 => q.push("DESC"),
                _ => {}
            }
            q.extend(["LIMIT", &off, &count]);
            total += 1;
            let (want, got) = (a.cmd(&q)?, b.cmd(&q)?);
            if want != got {
                differ.push(q.join(" "));
            }
        }
    }
    anyhow::ensure!(
        differ.is_empty(),
        "{} of {total} replies differ, e.g. {:?}",
        differ.len(),
        &differ[..differ.len().min(3)]
    );
    Ok(())
}
