//! Plaintext kept out of core dumps and swap: `allow-core-dumps` and
//! `lock-memory`, checked in /proc of the real server process.

use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};
use rampart_tests::{rampart_bin, Rampart, ServerProcess};

fn info_field(srv: &ServerProcess, field: &str) -> Result<String> {
    let raw = srv.conn()?.cmd(&["INFO", "server"])?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::to_string)
        .with_context(|| format!("no {field} in INFO server"))
}

/// The soft core-size limit from /proc/PID/limits ("0", "unlimited", …).
fn core_limit(pid: u32) -> Result<String> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .context("no core line in limits")?;
    Ok(line["Max core file size".len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in status"))?;
    Ok(line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?)
}

#[test]
fn core_dumps_are_off_unless_allowed() -> Result<()> {
    // Started with a generous core limit, so only Rampart can lower it.
    let off = Rampart::start_wrapped(&["prlimit", "--core=unlimited", "--"], &[])?;
    ensure!(
        core_limit(off.pid())? == "0",
        "core limit {}",
        core_limit(off.pid())?
    );
    ensure!(info_field(&off, "core_dumps")? == "disabled");
    let on = Rampart::start_wrapped(
        &["prlimit", "--core=unlimited", "--"],
        &["--allow-core-dumps", "yes"],
    )?;
    ensure!(core_limit(on.pid())? == "unlimited");
    ensure!(info_field(&on, "core_dumps")? == "enabled");
    Ok(())
}

fn is_root() -> Result<bool> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

#[test]
fn lock_memory_locks_touched_pages() -> Result<()> {
    ensure!(
        is_root()?,
        "this test locks memory, which needs root or CAP_IPC_LOCK (CI runs as root)"
    );
    let srv = Rampart::start(&["--lock-memory", "required"])?;
    ensure!(info_field(&srv, "mem_locked")? == "1");
    // Touch some memory: it must be locked as it is faulted in.
    let mut c = srv.conn()?;
    let big = "x".repeat(1 << 20);
    for i in 0..16 {
        c.cmd(&["SET", &format!("k{i}"), &big])?;
    }
    let locked = status_kb(srv.pid(), "VmLck:")?;
    ensure!(locked >= 16 * 1024, "VmLck {locked} kB");
    let plain = Rampart::start(&[])?;
    ensure!(info_field(&plain, "mem_locked")? == "0");
    ensure!(status_kb(plain.pid(), "VmLck:")? == 0);
    Ok(())
}

#[test]
fn lock_memory_required_refuses_to_start_without_the_right() -> Result<()> {
    let bin = rampart_bin()?;
    // No CAP_IPC_LOCK (an unprivileged user) and no lockable memory.
    let mut cmd = Command::new("prlimit");
    cmd.arg("--memlock=0:0").arg("--");
    if is_root()? {
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]);
    }
    let out = cmd
        .arg(&bin)
        .args(["--port", "0", "--lock-memory", "required"])
        .stdin(Stdio::null())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(!out.status.success(), "started: {text}");
    ensure!(
        text.contains("Could not lock memory")
            && text.contains("lock-memory is 'required', exiting"),
        "{text}"
    );
    Ok(())
}
