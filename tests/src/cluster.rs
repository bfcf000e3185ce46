//! Small readers shared by the cluster tests (`tests/tests/cluster*.rs`):
//! replies as text, and one command on a fresh connection.

use anyhow::Result;

use crate::ServerProcess;

/// A reply as text: a bulk or verbatim string's contents without its
/// header line and final CRLF, any other reply as sent (CRLFs included).
///
/// ```
/// use rampart_tests::cluster::text;
/// assert_eq!(text(b"$5\r\nhello\r\n"), "hello");
/// assert_eq!(text(b"+OK\r\n"), "+OK\r\n");
/// ```
pub fn text(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply).into_owned();
    match s.split_once("\r\n") {
        Some((head, rest)) if head.starts_with('$') || head.starts_with('=') => {
            rest.trim_end_matches("\r\n").to_string()
        }
        _ => s,
    }
}

/// Sends one command on a new connection to `s` and returns its reply as
/// [`text`].
pub fn cmd(s: &ServerProcess, args: &[&str]) -> Result<String> {
    Ok(text(&s.conn()?.cmd(args)?))
}

/// How long a cluster may take to form or agree (a debug build on two
/// busy cores).
pub const CONVERGE: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether `n` says `cluster_state:ok`.
pub fn state_ok(n: &ServerProcess) -> Result<bool> {
    Ok(cmd(n, &["CLUSTER", "INFO"])?.contains("cluster_state:ok"))
}

/// `redis-cli --cluster create` of `nodes` (no replicas), then waits until
/// every node says the cluster is ok.
pub fn create(nodes: &[&ServerProcess]) -> Result<()> {
    let mut c = std::process::Command::new(crate::require_tool("redis-cli")?);
    c.arg("--cluster").arg("create");
    for n in nodes {
        c.arg(n.addr());
    }
    c.arg("--cluster-yes");
    let out = crate::run_with_timeout(&mut c, CONVERGE)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("[OK] All 16384 slots covered.") {
        anyhow::bail!(
            "redis-cli --cluster create failed: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    crate::wait_for("cluster_state:ok on every node", CONVERGE, || {
        Ok(nodes.iter().all(|n| state_ok(n).unwrap_or(false)))
    })
}

/// A cluster node's arguments: `--cluster-enabled yes`, an explicit bus
/// port (port + 10000 may be no port for the ephemeral ports tests get),
/// `--cluster-node-timeout timeout_ms`, then `extra`.
///
/// ```
/// let a = rampart_tests::cluster::node_args(17000, "5000", &["--save", ""]);
/// assert_eq!(a[..4], ["--cluster-enabled", "yes", "--cluster-port", "17000"]);
/// assert_eq!(a.len(), 8);
/// ```
pub fn node_args(bus: u16, timeout_ms: &str, extra: &[&str]) -> Vec<String> {
    let bus = bus.to_string();
    [
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        &bus,
        "--cluster-node-timeout",
        timeout_ms,
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}
