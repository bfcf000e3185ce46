//! The RESP reader against raw bytes: malformed requests, inline commands,
//! requests split across writes and long pipelines go to both Rampart and
//! `redis-server`; the reply bytes, and whether the connection was closed,
//! must be the same.

use std::time::Duration;

use anyhow::{ensure, Result};
use rampart_tests::{escape, Rampart, RawConn, RedisOracle, ServerProcess};

/// How long to wait for a server to close a connection after a protocol
/// error.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `chunks` (pausing between them so they arrive as separate reads)
/// and collects everything until the server closes the connection.
fn send_expect_close(server: &ServerProcess, chunks: &[Vec<u8>]) -> Result<(Vec<u8>, bool)> {
    let mut conn = server.conn()?;
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The server may close while we are still writing: that is an
        // outcome to compare, not a harness failure.
        if conn.send_raw(chunk).is_err() {
            break;
        }
    }
    conn.read_until_close(CLOSE_TIMEOUT)
}

/// Sends `chunks`, reads `replies` replies, then checks the connection still
/// answers PING. Returns the replies' bytes.
fn send_expect_replies(
    server: &ServerProcess,
    chunks: &[Vec<u8>],
    replies: usize,
) -> Result<Vec<u8>> {
    let mut conn = server.conn()?;
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        conn.send_raw(chunk)?;
    }
    let mut out = Vec::new();
    for _ in 0..replies {
        out.extend(conn.read_reply()?);
    }
    let pong = conn.cmd(&["PING"])?;
    ensure!(
        pong == b"+PONG\r\n",
        "{}: connection not usable after the replies: {}",
        server.name(),
        escape(&pong)
    );
    Ok(out)
}

fn servers() -> Result<(RedisOracle, Rampart)> {
    Ok((RedisOracle::start()?, Rampart::start(&[])?))
}

/// Both servers still serve a new client after the bad one.
fn check_still_serving(oracle: &RedisOracle, rampart: &Rampart) -> Result<()> {
    for server in [&**oracle, &**rampart] {
        let mut conn: RawConn = server.conn()?;
        let pong = conn.cmd(&["PING"])?;
        ensure!(
            pong == b"+PONG\r\n",
            "{} does not serve a new client after protocol errors: {}\nlog:\n{}",
            server.name(),
            escape(&pong),
            server.log()
        );
    }
    Ok(())
}

#[test]
fn malformed_requests_get_redis_errors_and_close() -> Result<()> {
    let (oracle, rampart) = servers()?;
    let big_inline = vec![b'a'; 70_000];
    let mut big_mbulk = b"*".to_vec();
    big_mbulk.extend(vec![b'1'; 70_000]);
    let mut big_bulk_len = b"*1\r\n$".to_vec();
    big_bulk_len.extend(vec![b'1'; 70_000]);
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("multibulk length not a number", vec![b"*x\r\n".to_vec()]),
        (
            "multibulk length over INT_MAX",
            vec![b"*3000000000\r\n".to_vec()],
        ),
        ("element not a bulk string", vec![b"*1\r\n:5\r\n".to_vec()]),
        ("negative bulk length", vec![b"*1\r\n$-5\r\n".to_vec()]),
        ("bulk length not a number", vec![b"*1\r\n$abc\r\n".to_vec()]),
        (
            "bulk length over proto-max-bulk-len",
            vec![b"*1\r\n$600000000\r\n".to_vec()],
        ),
        (
            "second element malformed after a good one",
            vec![b"*2\r\n$4\r\nECHO\r\n+hi\r\n".to_vec()],
        ),
        (
            "unbalanced double quote inline",
            vec![b"SET a \"b\r\n".to_vec()],
        ),
        (
            "unbalanced single quote inline",
            vec![b"ECHO 'x\r\n".to_vec()],
        ),
        (
            "closing quote not followed by a space",
            vec![b"ECHO \"a\"b\r\n".to_vec()],
        ),
        (
            "inline request over 64 KiB without newline",
            vec![big_inline],
        ),
        ("multibulk count line over 64 KiB", vec![big_mbulk]),
        ("bulk count line over 64 KiB", vec![big_bulk_len]),
        (
            "good command then garbage in the same write",
            vec![b"PING\r\n*x\r\n".to_vec()],
        ),
    ];
    let mut failures = Vec::new();
    for (what, chunks) in &cases {
        let expected = send_expect_close(&oracle, chunks)?;
        let actual = send_expect_close(&rampart, chunks)?;
        if expected != actual {
            failures.push(format!(
                "{what}: sent {}\n    redis-server: {} (closed: {})\n    rampart:      {} (closed: {})",
                escape(&chunks.concat()[..chunks.concat().len().min(40)]),
                escape(&expected.0),
                expected.1,
                escape(&actual.0),
                actual.1
            ));
        }
    }
    check_still_serving(&oracle, &rampart)?;
    ensure!(
        failures.is_empty(),
        "{} protocol case(s) differ from redis-server:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

#[test]
fn inline_and_split_requests_like_redis() -> Result<()> {
    let (oracle, rampart) = servers()?;
    let mut one_mb = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n".to_vec();
    one_mb.extend(vec![b'x'; 1 << 20]);
    one_mb.extend(b"\r\n*2\r\n$6\r\nSTRLEN\r\n$3\r\nbig\r\n");
    let cases: Vec<(&str, Vec<Vec<u8>>, usize)> = vec![
        ("inline PING", vec![b"PING\r\n".to_vec()], 1),
        ("inline PING with LF only", vec![b"PING\n".to_vec()], 1),
        (
            "inline with double quotes",
            vec![b"SET a \"b c\"\r\nGET a\r\n".to_vec()],
            2,
        ),
        (
            "inline escapes",
            vec![b"ECHO \"x\\x41\\n\\\"\" 'y z'\r\nECHO \"\\x41\\t\"\r\n".to_vec()],
            2,
        ),
        (
            "inline with extra blanks",
            vec![b"  ECHO   spaced   \r\n".to_vec()],
            1,
        ),
        (
            "empty inline lines are ignored",
            vec![b"\r\n\r\n\nPING\r\n".to_vec()],
            1,
        ),
        (
            "empty and null multibulk are ignored",
            vec![b"*0\r\n*-1\r\nPING\r\n".to_vec()],
            1,
        ),
        ("inline unknown command", vec![b"NOPE a b\r\n".to_vec()], 1),
        (
            "command split inside a bulk",
            vec![b"*2\r\n$4\r\nEC".to_vec(), b"HO\r\n$2\r\nhi\r\n".to_vec()],
            1,
        ),
        (
            "command split inside a header",
            vec![
                b"*2\r".to_vec(),
                b"\n$4\r\nECHO\r\n$".to_vec(),
                b"2\r\nhi\r\n".to_vec(),
            ],
            1,
        ),
        (
            "inline command split across writes",
            vec![b"EC".to_vec(), b"HO split\r".to_vec(), b"\n".to_vec()],
            1,
        ),
        ("1 MiB bulk argument", vec![one_mb], 2),
    ];
    let mut failures = Vec::new();
    for (what, chunks, replies) in &cases {
        let expected = send_expect_replies(&oracle, chunks, *replies)?;
        let actual = match send_expect_replies(&rampart, chunks, *replies) {
            Ok(a) => a,
            Err(e) => format!("<{e:#}>").into_bytes(),
        };
        if expected != actual {
            failures.push(format!(
                "{what}:\n    redis-server: {}\n    rampart:      {}",
                escape(&expected),
                escape(&actual)
            ));
        }
    }
    check_still_serving(&oracle, &rampart)?;
    ensure!(
        failures.is_empty(),
        "{} request(s) answered differently from redis-server:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

#[test]
fn pipelined_write_like_redis() -> Result<()> {
    let (oracle, rampart) = servers()?;
    // Many commands in one write, RESP and inline mixed, with errors in
    // between: every reply must come back, in order.
    let mut batch = Vec::new();
    for i in 0..2000 {
        match i % 5 {
            0 => batch.extend(rampart_tests::encode_command(&[
                "SET".to_string(),
                format!("p{i}"),
                format!("v{i}"),
            ])),
            1 => batch.extend(rampart_tests::encode_command(&[
                "GET".to_string(),
                format!("p{}", i - 1),
            ])),
            2 => batch.extend(b"INCR counter\r\n"),
            3 => batch.extend(rampart_tests::encode_command(&["GET"])),
            _ => batch.extend(format!("ECHO e{i}\r\n").into_bytes()),
        }
    }
    let expected = send_expect_replies(&oracle, &[batch.clone()], 2000)?;
    let actual = send_expect_replies(&rampart, &[batch], 2000)?;
    if expected != actual {
        let at = expected
            .iter()
            .zip(&actual)
            .position(|(a, b)| a != b)
            .unwrap_or(expected.len().min(actual.len()));
        let from = at.saturating_sub(60);
        anyhow::bail!(
            "pipelined replies differ at byte {at}:\n    redis-server: ...{}\n    rampart:      ...{}",
            escape(&expected[from..(at + 60).min(expected.len())]),
            escape(&actual[from..(at + 60).min(actual.len())])
        );
    }
    check_still_serving(&oracle, &rampart)
}

/// Replies are written at the end of a connection thread's turn, by
/// descriptor (the server's outbox): connections that close with
/// replies unread while others open (and get the same descriptor numbers)
/// must never see each other's bytes, and a client that half-closes after
/// its requests gets every reply before the server closes, as from Redis.
#[test]
fn replies_reach_only_their_own_connection_through_churn() -> Result<()> {
    let (oracle, rampart) = servers()?;
    for server in [&*oracle, &*rampart] {
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..4).map(|t| s.spawn(move || churn(server, t))).collect();
            for w in workers {
                match w.join() {
                    Ok(r) => r?,
                    Err(_) => anyhow::bail!("a churn thread panicked"),
                }
            }
            Ok(())
        })?;
    }
    check_still_serving(&oracle, &rampart)
}

/// One thread of the churn: 150 connections, each sending 20 ECHOs of its
/// own tag and then leaving without reading, half-closing and reading to
/// the end, or reading each reply.
fn churn(server: &ServerProcess, t: usize) -> Result<()> {
    for i in 0..150 {
        let mut conn = server.conn()?;
        let tags: Vec<String> = (0..20).map(|j| format!("t{t}-i{i}-j{j}")).collect();
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for tag in &tags {
            batch.extend(rampart_tests::encode_command(&["ECHO", tag.as_str()]));
            expected.extend(format!("${}\r\n{tag}\r\n", tag.len()).into_bytes());
        }
        conn.send_raw(&batch)?;
        match i % 3 {
            0 => drop(conn),
            1 => {
                conn.shutdown_write()?;
                let (got, closed) = conn.read_until_close(CLOSE_TIMEOUT)?;
                ensure!(
                    got == expected && closed,
                    "{}: a half-closed client got {} (closed: {closed}), not its 20 replies",
                    server.name(),
                    escape(&got)
                );
            }
            _ => {
                let mut got = Vec::new();
                for _ in &tags {
                    got.extend(conn.read_reply()?);
                }
                ensure!(
                    got == expected,
                    "{}: replies of another connection: {}",
                    server.name(),
                    escape(&got)
                );
            }
        }
    }
    Ok(())
}

/// COMMAND alone (client libraries send it at connect) answers one entry
/// per command, and the connection goes on.
#[test]
fn command_alone_answers_every_command() -> Result<()> {
    let s = Rampart::start(&[])?;
    let mut c = s.redis_conn()?;
    let all: Vec<redis::Value> = redis::cmd("COMMAND").query(&mut c)?;
    let count: usize = redis::cmd("COMMAND").arg("COUNT").query(&mut c)?;
    assert_eq!(all.len(), count);
    assert!(count > 150, "{count}");
    let pong: String = redis::cmd("PING").query(&mut c)?;
    assert_eq!(pong, "PONG");
    Ok(())
}
