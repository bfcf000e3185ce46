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
    geo
);
