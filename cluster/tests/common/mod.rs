//! Real redis-server processes, a RESP client, and a cluster bus proxy that
//! records every message passing through it.
#![allow(dead_code, clippy::unwrap_used)]

use rampart_cluster::msg::{Framer, DEFAULT_MAX_MSG_LEN, NAME_LEN};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Polls `f` until it returns true; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    pub fn text(&self) -> String {
        match self {
            Reply::Status(s) => s.clone(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
    pub fn ok(&self) {
        assert_eq!(self, &Reply::Status("OK".into()));
    }
}

/// A blocking RESP2 client, enough for test commands and pipelines.
pub struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    pub fn connect(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).unwrap();
    }

    pub fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                Reply::Bulk(Some(b))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                Reply::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            _ => panic!("bad RESP line {line:?}"),
        }
    }

    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args);
        self.read()
    }
}

/// A redis-server started by this test, killed (by its own handle) on drop.
pub struct Server {
    pub port: u16,
    pub cport: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    /// Starts `redis-server` in cluster mode on free ports in a temp dir and
    /// waits until it answers PING. Panics (failing the test) if it cannot.
    pub fn start_cluster_node(extra: &[String]) -> Server {
        let port = free_port();
        let cport = free_port();
        Self::start_on(port, cport, extra)
    }

    pub fn start_on(port: u16, cport: u16, extra: &[String]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &cport.to_string(),
            "--cluster-config-file",
            "nodes.conf",
            "--dir",
            dir.path().to_str().unwrap(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            "redis.log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend_from_slice(extra);
        let child = Command::new("redis-server")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let mut s = Server {
            port,
            cport,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = Conn::connect(port) {
                if c.cmd(&["PING"]) == Reply::Status("PONG".into()) {
                    return s;
                }
            }
            if let Some(Ok(Some(status))) = s.child.as_mut().map(|c| c.try_wait()) {
                panic!("redis-server exited at start: {status}; log: {}", s.log());
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on {port}; log: {}",
                s.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.port).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Kills the process (only this one, by its handle) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message seen by a [`BusProxy`].
#[derive(Clone, Debug)]
pub struct Captured {
    pub at: Instant,
    pub bytes: Vec<u8>,
    /// Sent towards the proxied node (by a peer), rather than by it.
    pub to_node: bool,
    /// Whether the proxy dropped it instead of forwarding it.
    pub dropped: bool,
}

/// Drop PING/PONG/MEET from `from` to `to` while set.
#[derive(Clone, Copy, Debug)]
pub struct DropRule {
    pub from: [u8; NAME_LEN],
    pub to: [u8; NAME_LEN],
}

/// A TCP proxy in front of one node's bus port: every bus connection to the
/// node goes through it (the node announces the proxy's port as its bus
/// port), and it cuts both directions into messages, records them, and
/// forwards them (or drops the ones a [`DropRule`] names).
pub struct BusProxy {
    pub port: u16,
    pub captured: Arc<Mutex<Vec<Captured>>>,
    pub errors: Arc<Mutex<Vec<String>>>,
    pub node_id: Arc<Mutex<Option<[u8; NAME_LEN]>>>,
    pub drop_rule: Arc<Mutex<Option<DropRule>>>,
    stop: Arc<AtomicBool>,
}

impl BusProxy {
    pub fn start(target_port: u16) -> BusProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let p = BusProxy {
            port: listener.local_addr().unwrap().port(),
            captured: Arc::default(),
            errors: Arc::default(),
            node_id: Arc::default(),
            drop_rule: Arc::default(),
            stop: Arc::default(),
        };
        let (captured, errors, node_id, drop_rule, stop) = (
            p.captured.clone(),
            p.errors.clone(),
            p.node_id.clone(),
            p.drop_rule.clone(),
            p.stop.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => return,
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue; // the node is gone: the peer sees a closed link
                };
                let peer: Arc<Mutex<Option<[u8; NAME_LEN]>>> = Arc::default();
                for to_node in [true, false] {
                    let (src, dst) = if to_node {
                        (client.try_clone().unwrap(), server.try_clone().unwrap())
                    } else {
                        (server.try_clone().unwrap(), client.try_clone().unwrap())
                    };
                    let pipe = Pipe {
                        to_node,
                        captured: captured.clone(),
                        errors: errors.clone(),
                        node_id: node_id.clone(),
                        peer: peer.clone(),
                        drop_rule: drop_rule.clone(),
                    };
                    thread::spawn(move || pipe.run(src, dst));
                }
            }
        });
        p
    }

    pub fn set_node_id(&self, id: &str) {
        *self.node_id.lock().unwrap() = Some(id.as_bytes().try_into().unwrap());
    }

    pub fn set_drop(&self, rule: Option<DropRule>) {
        *self.drop_rule.lock().unwrap() = rule;
    }

    pub fn messages(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }
}

impl Drop for BusProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Pipe {
    to_node: bool,
    captured: Arc<Mutex<Vec<Captured>>>,
    errors: Arc<Mutex<Vec<String>>>,
    node_id: Arc<Mutex<Option<[u8; NAME_LEN]>>>,
    peer: Arc<Mutex<Option<[u8; NAME_LEN]>>>,
    drop_rule: Arc<Mutex<Option<DropRule>>>,
}

impl Pipe {
    fn run(self, mut src: TcpStream, mut dst: TcpStream) {
        let mut framer = Framer::new(DEFAULT_MAX_MSG_LEN);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            loop {
                let frame = match framer.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        self.errors.lock().unwrap().push(format!("framing: {e}"));
                        let _ = dst.shutdown(Shutdown::Both);
                        return;
                    }
                };
                let mut sender = [0u8; NAME_LEN];
                sender.copy_from_slice(&frame[40..80]);
                if self.to_node {
                    *self.peer.lock().unwrap() = Some(sender);
                }
                let to = if self.to_node {
                    *self.node_id.lock().unwrap()
                } else {
                    *self.peer.lock().unwrap()
                };
                let ty = u16::from_be_bytes([frame[12], frame[13]]);
                let dropped = ty <= 2
                    && matches!(*self.drop_rule.lock().unwrap(),
                        Some(r) if r.from == sender && Some(r.to) == to);
                self.captured.lock().unwrap().push(Captured {
                    at: Instant::now(),
                    bytes: frame.clone(),
                    to_node: self.to_node,
                    dropped,
                });
                if !dropped && dst.write_all(&frame).is_err() {
                    return;
                }
            }
        }
        let _ = dst.shutdown(Shutdown::Both);
    }
}
