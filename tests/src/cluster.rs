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
