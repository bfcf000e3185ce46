//! Real clients against Rampart: `redis-cli`, `redis-benchmark` and the
//! `redis` crate. Each test starts its own server on a free port.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use rampart_tests::{require_tool, run_with_timeout, Rampart};

/// Runs `redis-cli -p PORT args...` and returns its trimmed stdout.
fn redis_cli(server: &Rampart, args: &[&str]) -> Result<String> {
    let cli = require_tool("redis-cli")?;
    let out = run_with_timeout(
        Command::new(cli)
            .args(["-h", "127.0.0.1", "-p", &server.port().to_string()])
            .args(args),
        Duration::from_secs(20),
    )?;
    ensure!(
        out.status.success(),
        "redis-cli {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

#[test]
fn redis_cli_ping() -> Result<()> {
    let server = Rampart::start(&[])?;
    assert_eq!(
        redis_cli(&server, &["ping"])?,
        "PONG",
        "log:\n{}",
        server.log()
    );
    Ok(())
}

#[test]
fn redis_cli_set_get_round_trip() -> Result<()> {
    let server = Rampart::start(&[])?;
    assert_eq!(
        redis_cli(&server, &["SET", "cli:key", "hello world"])?,
        "OK"
    );
    assert_eq!(redis_cli(&server, &["GET", "cli:key"])?, "hello world");
    // redis-cli prints a nil reply to a pipe as an empty line.
    assert_eq!(redis_cli(&server, &["GET", "cli:missing"])?, "");
    Ok(())
}

#[test]
fn redis_benchmark_runs_clean() -> Result<()> {
    let server = Rampart::start(&[])?;
    let bench = require_tool("redis-benchmark")?;
    let out = run_with_timeout(
        Command::new(bench).args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port().to_string(),
            "-t",
            "set,get,incr,mset",
            "-n",
            "10000",
            "-q",
        ]),
        Duration::from_secs(180),
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "redis-benchmark failed ({}):\n{text}",
        out.status
    );
    // -q prints one "TEST: N requests per second" line per test, with
    // progress lines separated by \r; anything that mentions an error (or
    // the warning printed when CONFIG GET fails) is a failure.
    let bad: Vec<&str> = text
        .split(['\r', '\n'])
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("err") || lower.contains("warning")
        })
        .collect();
    ensure!(
        bad.is_empty(),
        "redis-benchmark reported errors:\n{}\nfull output:\n{text}",
        bad.join("\n")
    );
    // The final line per test is "SET: N requests per second, ..." (MSET
    // says "MSET (10 keys): ...").
    for test in ["SET", "GET", "INCR", "MSET"] {
        ensure!(
            text.split(['\r', '\n']).any(|l| {
                let l = l.trim_start();
                l.starts_with(test)
                    && l[test.len()..].starts_with([':', ' '])
                    && l.contains("requests per second")
            }),
            "no result line for {test}:\n{text}"
        );
    }
    Ok(())
}

#[test]
fn redis_crate_pipelined_commands() -> Result<()> {
    let server = Rampart::start(&[])?;
    let mut conn = server.redis_conn()?;
    let () = redis::cmd("SET").arg("rs:a").arg("1").query(&mut conn)?;
    let a: String = redis::cmd("GET").arg("rs:a").query(&mut conn)?;
    assert_eq!(a, "1");

    let (ok, values, n, m): (String, Vec<Option<String>>, i64, i64) = redis::pipe()
        .cmd("MSET")
        .arg("rs:b")
        .arg("2")
        .arg("rs:c")
        .arg("3")
        .cmd("MGET")
        .arg("rs:a")
        .arg("rs:b")
        .arg("rs:missing")
        .arg("rs:c")
        .cmd("INCR")
        .arg("rs:a")
        .cmd("INCR")
        .arg("rs:counter")
        .query(&mut conn)?;
    assert_eq!(ok, "OK");
    assert_eq!(
        values,
        vec![
            Some("1".to_string()),
            Some("2".to_string()),
            None,
            Some("3".to_string())
        ]
    );
    assert_eq!((n, m), (2, 1));

    // A long pipeline in one write: replies must come back in order.
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("INCR").arg("rs:many");
        pipe.cmd("SET").arg(format!("rs:k{i}")).arg(i).ignore();
    }
    let counts: Vec<i64> = pipe.query(&mut conn)?;
    assert_eq!(counts, (1..=1000).collect::<Vec<i64>>());
    let last: String = redis::cmd("GET").arg("rs:k999").query(&mut conn)?;
    assert_eq!(last, "999");
    Ok(())
}
