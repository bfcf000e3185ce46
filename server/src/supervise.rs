//! Running under a process supervisor, as `redis-server` does: the one
//! place that knows how the process was started and tells its supervisor.
//!
//! - `supervised systemd|upstart|auto|no`: systemd gets `sd_notify`
//!   datagrams (`STATUS=…`, `READY=1`, `STOPPING=1`) on `$NOTIFY_SOCKET`, so
//!   a `Type=notify` unit is started only once clients can connect; upstart
//!   gets the `SIGSTOP` it waits for.
//! - `daemonize yes`: fork into the background before any thread exists
//!   (the runtime's threads would not survive a fork), unless a supervisor
//!   already manages the process.
//! - `syslog-enabled yes`: every log line also goes to the local syslog
//!   socket ([`SyslogLayer`]).
//! - The startup banner: what an operator checks first in a log.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::config::Config;
use crate::state::Server;

const NONE: u8 = 0;
const UPSTART: u8 = 1;
const SYSTEMD: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(NONE);

/// Where a daemon without a `pidfile` writes its PID, as Redis 7.0's
/// `CONFIG_DEFAULT_PID_FILE`.
pub const DEFAULT_PID_FILE: &str = "/var/run/redis.pid";

/// Applies `supervised` as Redis's `redisIsSupervised`: `auto` picks upstart
/// when `UPSTART_JOB` is set, systemd when `NOTIFY_SOCKET` is; a supervisor
/// that cannot be reached leaves the process unsupervised. Returns whether
/// it is supervised (then `daemonize` is ignored, as in Redis).
pub fn detect(config: &Config) -> bool {
    let mut mode = config.get("supervised").unwrap_or_default();
    if mode == "auto" {
        if std::env::var_os("UPSTART_JOB").is_some() {
            tracing::debug!("Upstart supervision detected.");
            mode = "upstart".into();
        } else if std::env::var_os("NOTIFY_SOCKET").is_some() {
            tracing::debug!("Systemd supervision detected.");
            mode = "systemd".into();
        }
    }
    match mode.as_str() {
        "upstart" => upstart(),
        "systemd" if notify("STATUS=Rampart is loading...\n") => {
            tracing::info!("Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit.");
            MODE.store(SYSTEMD, Ordering::Relaxed);
            true
        }
        _ => false,
    }
}

fn upstart() -> bool {
    if std::env::var_os("UPSTART_JOB").is_none() {
        tracing::warn!("upstart supervision requested, but UPSTART_JOB not found!");
        return false;
    }
    tracing::info!("supervised by upstart, will stop to signal readiness.");
    // Upstart's `expect stop` waits for this stop, then resumes the process.
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
    // Still single-threaded here, so changing the environment races nothing.
    std::env::remove_var("UPSTART_JOB");
    MODE.store(UPSTART, Ordering::Relaxed);
    true
}

/// INFO's `process_supervised`: `systemd`, `upstart` or `no`.
pub fn mode_name() -> &'static str {
    match MODE.load(Ordering::Relaxed) {
        SYSTEMD => "systemd",
        UPSTART => "upstart",
        _ => "no",
    }
}

/// Sends `msg` to systemd when supervised by it; a no-op otherwise.
///
/// ```no_run
/// rampart_server::supervise::tell_systemd("READY=1\n");
/// ```
pub fn tell_systemd(msg: &str) {
    if MODE.load(Ordering::Relaxed) == SYSTEMD {
        notify(msg);
    }
}

/// One `sd_notify` datagram to `$NOTIFY_SOCKET` (a path, or `@name` for an
/// abstract socket); logs as Redis does when it cannot be sent.
fn notify(msg: &str) -> bool {
    match send_notify(msg) {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!("systemd supervision error: NOTIFY_SOCKET not found!");
            false
        }
        Err(e) => {
            tracing::warn!("systemd supervision error: sd_notify: {e}");
            false
        }
    }
}

fn send_notify(msg: &str) -> io::Result<bool> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET").filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(msg.as_bytes(), &addr)?;
        }
        None => {
            socket.send_to(msg.as_bytes(), &path)?;
        }
    }
    Ok(true)
}

/// `daemonize yes` without a supervisor: the parent exits 0 and the
/// daemon goes on in a new session with its standard streams on
/// `/dev/null`, in the same directory and with the same umask (Redis's
/// `daemonize()` changes neither, and relative `dir`/`logfile` paths rely on
/// it). Must run before any thread is started. Returns the pidfile the
/// daemon writes: the configured one, else [`DEFAULT_PID_FILE`].
pub fn daemonize(config: &Config) -> anyhow::Result<String> {
    use rustix::fs::Mode;
    let cwd = std::env::current_dir()?;
    // umask can only be read by setting it: put the old value straight back.
    let mask = rustix::process::umask(Mode::empty());
    rustix::process::umask(mask);
    daemonize::Daemonize::new()
        .working_directory(cwd)
        .umask(mask.bits())
        .start()
        .map_err(|e| anyhow::anyhow!("Can't daemonize: {e}"))?;
    let pidfile = config.get("pidfile").unwrap_or_default();
    Ok(if pidfile.is_empty() {
        DEFAULT_PID_FILE.to_string()
    } else {
        pidfile
    })
}

/// The startup banner: version, mode and role, ports, encryption (provider
/// and key id, never key material), memory locking and core dumps.
pub fn banner(srv: &Server, port: i64, tls_port: i64) {
    let role = if srv.config.get("replicaof").unwrap_or_default().is_empty() {
        "master"
    } else {
        "replica"
    };
    // Redis's mode word: cluster or standalone (no sentinel here).
    let mode = if srv.config.flag("cluster-enabled") {
        "cluster"
    } else {
        "standalone"
    };
    tracing::info!(
        "Running mode={mode}, role={role}, port={port}, tls-port={tls_port}, supervised={}, version={} (Redis {} compatible)",
        mode_name(),
        env!("CARGO_PKG_VERSION"),
        crate::REDIS_VERSION
    );
    let encryption = match srv.keys.as_deref() {
        None => "off".to_string(),
        Some(rampart_kms::Provider::Local(l)) => {
            let key = l
                .keyring()
                .map(|r| r.key_id(r.primary_version()))
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            format!("on, provider=local, key-id={key}")
        }
        Some(rampart_kms::Provider::Aws(a)) => format!(
            "on, provider=aws, key-id={}",
            a.key_id().unwrap_or("(none)")
        ),
    };
    tracing::info!("Encryption at rest: {encryption}");
    tracing::info!(
        "Memory locked: {}, core dumps: {}",
        if crate::harden::mem_locked() {
            "yes"
        } else {
            "no"
        },
        if crate::harden::core_dumps_enabled() {
            "enabled"
        } else {
            "disabled"
        }
    );
}

/// Tells systemd the server is ready, with Redis's status text.
pub fn ready(srv: &Server) {
    if srv.config.get("replicaof").unwrap_or_default().is_empty() {
        tell_systemd("STATUS=Ready to accept connections\n");
    } else {
        tell_systemd("STATUS=Ready to accept connections in read-only mode. Waiting for MASTER <-> REPLICA sync\n");
    }
    tell_systemd("READY=1\n");
}

/// The syslog socket: `/dev/log`, or `$RAMPART_SYSLOG_SOCKET` (tests, and
/// containers that mount the host's socket elsewhere).
fn syslog_socket() -> PathBuf {
    std::env::var_os("RAMPART_SYSLOG_SOCKET")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/log"))
}

/// A `tracing` layer that sends each event to the local syslog socket as
/// an RFC 3164 line, `<PRI>Mmm dd hh:mm:ss ident[pid]: message`, with
/// Redis's level mapping (a notice is Rampart's INFO).
///
/// Sends never block: the socket is non-blocking, and a line the syslog
/// daemon has no room for is dropped rather than stalling a thread that
/// serves clients. The socket is not connected, so a restarted syslog
/// daemon is reached again without a reconnect.
pub struct SyslogLayer {
    socket: UnixDatagram,
    path: PathBuf,
    ident: String,
    facility: u8,
}

impl SyslogLayer {
    /// The layer for `syslog-enabled yes`, or `None` when it is off.
    pub fn from_config(config: &Config) -> io::Result<Option<Self>> {
        if !config.flag("syslog-enabled") {
            return Ok(None);
        }
        let facility = match config.get("syslog-facility").as_deref() {
            Some("user") => 1,
            Some(f) => f
                .strip_prefix("local")
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| *n <= 7)
                .map_or(16, |n| 16 + n),
            None => 16,
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Some(SyslogLayer {
            socket,
            path: syslog_socket(),
            ident: config.get("syslog-ident").unwrap_or_else(|| "redis".into()),
            facility,
        }))
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let severity = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 5,
            Level::DEBUG | Level::TRACE => 7,
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        let line = format!(
            "<{}>{} {}[{}]: {}",
            u32::from(self.facility) * 8 + severity,
            rfc3164_time(std::time::SystemTime::now()),
            self.ident,
            std::process::id(),
            message.0
        );
        let _ = self.socket.send_to(line.as_bytes(), &self.path);
    }
}

/// The event's `message` field, then any other fields as `name=value`.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = if field.name() == "message" {
            write!(self.0, "{value:?}")
        } else {
            write!(self.0, "{}={value:?}", field.name())
        };
    }
}

/// `Mmm dd hh:mm:ss` in UTC (no time zone database is read: containers
/// rarely have one, and syslog daemons stamp their own time anyway).
fn rfc3164_time(t: std::time::SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize % 12],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3164_time;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3164_dates() {
        assert_eq!(rfc3164_time(UNIX_EPOCH), "Jan  1 00:00:00");
        // 2024-02-29T13:05:09Z, a leap day.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_211_909);
        assert_eq!(rfc3164_time(t), "Feb 29 13:05:09");
        // 2026-12-31T23:59:59Z.
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3164_time(t), "Dec 31 23:59:59");
    }
}
