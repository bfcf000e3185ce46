//! LATENCY and LOLWUT against redis-server 7.0: the same replies where
//! they are deterministic, the same shape where times and random drawings
//! make them differ.

use anyhow::Result;
use rampart_tests::mask_digits;
use rampart_tests::notify::{both, s};
use rampart_tests::{RawConn, Reply};

const DEBUG: &[&str] = &[
    "--enable-debug-command",
    "yes",
    "--latency-monitor-threshold",
    "40",
];

/// The integers of a flat reply, in order.
fn ints(r: &Reply) -> Vec<i64> {
    match r {
        Reply::Scalar(b) if b.first() == Some(&b':') => {
            vec![String::from_utf8_lossy(&b[1..b.len() - 2])
                .parse()
                .unwrap_or(0)]
        }
        Reply::Scalar(_) => vec![],
        Reply::Aggregate(_, kids) => kids.iter().flat_map(ints).collect(),
    }
}

fn cmd(c: &mut RawConn, args: &[&str]) -> Result<String> {
    Ok(s(c.cmd(args)?))
}

#[test]
fn monitor_events_match_redis() -> Result<()> {
    both(DEBUG, |srv| {
        let mut t = Vec::new();
        let mut c = srv.conn()?;
        t.push(cmd(&mut c, &["LATENCY", "LATEST"])?);
        t.push(cmd(&mut c, &["LATENCY", "HISTORY", "command"])?);
        t.push(cmd(&mut c, &["LATENCY", "DOCTOR"])?);
        t.push(cmd(&mut c, &["LATENCY", "GRAPH", "nosuch"])?);
        t.push(cmd(&mut c, &["DEBUG", "SLEEP", "0.05"])?);
        // Other events (expire-cycle…) may pass the threshold on a loaded
        // machine: only `command` is compared.
        let all = Reply::parse(&c.cmd(&["LATENCY", "LATEST"])?)?;
        let latest = match &all {
            Reply::Aggregate(_, events) => events
                .iter()
                .find(|e| s(e.to_bytes()).contains("\r\ncommand\r\n"))
                .cloned()
                .unwrap_or(all.clone()),
            Reply::Scalar(_) => all.clone(),
        };
        let v = ints(&latest);
        t.push(format!(
            "latest ints {} max>=50 {}",
            v.len(),
            v.get(2).is_some_and(|&m| m >= 50) && v.get(1).is_some_and(|&m| m >= 50)
        ));
        t.push(mask_digits(&s(latest.to_bytes())));
        t.push(mask_digits(&cmd(
            &mut c,
            &["LATENCY", "HISTORY", "command"],
        )?));
        let graph = cmd(&mut c, &["LATENCY", "GRAPH", "command"])?;
        t.push(mask_digits(&graph));
        let doctor = cmd(&mut c, &["LATENCY", "DOCTOR"])?;
        t.push(mask_digits(&doctor));
        t.push(cmd(&mut c, &["LATENCY", "GRAPH", "Command"])?);
        t.push(cmd(&mut c, &["LATENCY", "RESET", "nosuch"])?);
        t.push(cmd(&mut c, &["LATENCY", "RESET", "COMMAND", "command"])?);
        t.push(cmd(&mut c, &["LATENCY", "LATEST"])?);
        t.push(cmd(&mut c, &["DEBUG", "SLEEP", "0.02"])?);
        t.push(cmd(&mut c, &["LATENCY", "RESET"])?);
        t.push(cmd(&mut c, &["LATENCY", "DOCTOR"])?);
        t.push(cmd(&mut c, &["HELLO", "3"]).map(|_| String::new())?);
        t.push(cmd(&mut c, &["LATENCY", "DOCTOR"])?);
        Ok(t)
    })
}

#[test]
fn doctor_disabled_help_and_errors_match_redis() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut c = srv.conn()?;
        for args in [
            &["LATENCY", "DOCTOR"][..],
            &["LATENCY", "HELP"],
            &["LATENCY"],
            &["LATENCY", "HISTORY"],
            &["LATENCY", "HISTORY", "a", "b"],
            &["LATENCY", "GRAPH", "nosuch"],
            &["LATENCY", "LATEST", "x"],
            &["LATENCY", "NOSUCH"],
            &["LATENCY", "RESET"],
            &["LATENCY", "HISTORY", "command"],
        ] {
            t.push(cmd(&mut c, args)?);
        }
        cmd(&mut c, &["HELLO", "3"])?;
        t.push(cmd(&mut c, &["LATENCY", "DOCTOR"])?);
        Ok(t)
    })
}

#[test]
fn histogram_and_latencystats_match_redis() -> Result<()> {
    for proto in ["2", "3"] {
        both(&[], |srv| {
            let mut t = Vec::new();
            let mut c = srv.conn()?;
            cmd(&mut c, &["HELLO", proto])?;
            cmd(&mut c, &["CONFIG", "RESETSTAT"])?;
            t.push(cmd(&mut c, &["LATENCY", "HISTOGRAM", "set"])?);
            for i in 0..5 {
                cmd(&mut c, &["SET", "k", i.to_string().as_str()])?;
            }
            cmd(&mut c, &["CONFIG", "GET", "maxmemory"])?;
            let h = Reply::parse(&c.cmd(&["LATENCY", "HISTOGRAM", "set", "config", "nosuch"])?)?;
            // How many buckets a command fills depends on how long its
            // calls took on each server: names, calls and keys only.
            let Reply::Aggregate(_, kids) = &h else {
                anyhow::bail!("not a map")
            };
            // Redis lists a container's subcommands in its hash order.
            let mut names: Vec<String> = kids
                .iter()
                .step_by(2)
                .map(|k| mask_digits(&s(k.to_bytes())))
                .collect();
            names.sort();
            t.push(format!("{names:?}"));
            for pair in kids.chunks(2) {
                let v = ints(&pair[1]);
                // calls, then key/cumulative pairs: keys as hdr prints
                // them, cumulative counts rising to calls.
                t.push(format!("calls {}", v[0]));
                let known = [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227];
                let ok = v[1..]
                    .chunks(2)
                    .all(|p| known.contains(&p[0]) || p[0] > 4227);
                let last = v.last().copied().unwrap_or(-1);
                t.push(format!(
                    "keys ok {ok} last cumulative is calls {}",
                    last == v[0]
                ));
            }
            let all = Reply::parse(&c.cmd(&["LATENCY", "HISTOGRAM"])?)?;
            let Reply::Aggregate(_, kids) = &all else {
                anyhow::bail!("not a map")
            };
            let mut names: Vec<String> = kids.iter().step_by(2).map(|k| s(k.to_bytes())).collect();
            names.sort();
            t.push(format!("{names:?}"));
            let info = cmd(&mut c, &["INFO", "latencystats"])?;
            let mut lines: Vec<String> = info
                .lines()
                .filter(|l| l.starts_with("latency_percentiles_usec_set:") || l.starts_with('#'))
                .map(|l| {
                    l.split(',')
                        .map(|f| {
                            let (k, v) = f.rsplit_once('=').unwrap_or((f, ""));
                            let frac = v.split_once('.').map(|(_, f)| f.len());
                            format!("{k}=<{frac:?}>")
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            lines.sort();
            t.push(format!("{lines:?}"));
            cmd(
                &mut c,
                &[
                    "CONFIG",
                    "SET",
                    "latency-tracking-info-percentiles",
                    "0 50 99.99 100",
                ],
            )?;
            let info = cmd(&mut c, &["INFO", "latencystats"])?;
            let line = info
                .lines()
                .find(|l| l.starts_with("latency_percentiles_usec_set:"))
                .unwrap_or("");
            t.push(mask_digits(line));
            cmd(&mut c, &["CONFIG", "SET", "latency-tracking", "no"])?;
            t.push(cmd(&mut c, &["INFO", "latencystats"])?);
            cmd(&mut c, &["CONFIG", "SET", "latency-tracking", "yes"])?;
            cmd(&mut c, &["CONFIG", "RESETSTAT"])?;
            t.push(cmd(&mut c, &["LATENCY", "HISTOGRAM", "set"])?);
            Ok(t)
        })?;
    }
    Ok(())
}

#[test]
fn lolwut_matches_redis() -> Result<()> {
    for proto in ["2", "3"] {
        both(&[], |srv| {
            let mut t = Vec::new();
            let mut c = srv.conn()?;
            cmd(&mut c, &["HELLO", proto])?;
            t.push(cmd(&mut c, &["LOLWUT"])?);
            t.push(cmd(&mut c, &["LOLWUT", "VERSION", "7"])?);
            t.push(cmd(&mut c, &["LOLWUT", "VERSION", "x"])?);
            t.push(cmd(&mut c, &["LOLWUT", "VERSION", "5", "x"])?);
            for args in [
                &["LOLWUT", "VERSION", "5"][..],
                &["LOLWUT", "VERSION", "5", "40", "4", "3"],
                &["LOLWUT", "VERSION", "6"],
                &["LOLWUT", "VERSION", "6", "30", "7"],
            ] {
                let r = cmd(&mut c, args)?;
                let lines: Vec<&str> = r.lines().collect();
                // The header carries the length, which the drawing's
                // dimensions fix; the captions are exact.
                // (Version 6's length and widths vary with its random
                // colours and shapes.)
                t.push(format!("{} lines", lines.len()));
                t.push(
                    lines
                        .iter()
                        .rev()
                        .take(1)
                        .copied()
                        .collect::<Vec<_>>()
                        .join("|"),
                );
                if args[2] == "5" {
                    let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
                    t.push(format!("{widths:?}"));
                }
                let braille = |ch: char| ('\u{2800}'..='\u{28ff}').contains(&ch);
                t.push(format!(
                    "{}",
                    r.chars().all(|ch| ch.is_ascii() || braille(ch))
                ));
            }
            Ok(t)
        })?;
    }
    Ok(())
}
