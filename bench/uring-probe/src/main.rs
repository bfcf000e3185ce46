//! A probe, not a product: the smallest server that answers
//! redis-benchmark's PING_MBULK (`*1\r\n$4\r\nPING\r\n` → `+PONG\r\n`;
//! every request gets PONG),
//! once with the connection loop Rampart uses (a current-thread tokio
//! runtime: readiness from epoll, then recv and send per connection) and
//! once on one io_uring ring (recv and send submitted for every connection
//! and reaped with one `io_uring_enter` per turn). The difference in server
//! CPU per request is what moving the connection runtimes to io_uring could
//! save before any of Rampart's own work.
//!
//!     uring-probe tokio|uring PORT

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

const REPLY: &[u8] = b"+PONG\r\n";

/// Length of the complete multibulk request at the start of `b`, if any.
fn request_len(b: &[u8]) -> Option<usize> {
    fn line(b: &[u8], at: usize) -> Option<(usize, usize)> {
        let cr = at + b.get(at..)?.iter().position(|&c| c == b'\r')?;
        let n = std::str::from_utf8(b.get(at + 1..cr)?).ok()?.parse().ok()?;
        Some((n, cr + 2))
    }
    let (n, mut at) = line(b, 0)?;
    for _ in 0..n {
        let (len, next) = line(b, at)?;
        at = next + len + 2;
    }
    (at <= b.len()).then_some(at)
}

/// Replies owed for what `buf` holds (PONG to every request: enough for
/// redis-benchmark, which only warns when CONFIG GET gets no array);
/// keeps an incomplete tail.
fn answer(buf: &mut Vec<u8>, out: &mut Vec<u8>) {
    let mut start = 0;
    while let Some(n) = request_len(&buf[start..]) {
        out.extend_from_slice(REPLY);
        start += n;
    }
    buf.drain(..start);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(port)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: uring-probe tokio|uring PORT");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap_or(0)))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    match mode.as_str() {
        "tokio" => run_tokio(listener),
        "uring" => run_uring(listener),
        _ => std::process::exit(2),
    }
}

fn run_tokio(listener: TcpListener) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut s = s;
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut out = Vec::with_capacity(16 * 1024);
                let mut chunk = vec![0u8; 16 * 1024];
                loop {
                    if s.readable().await.is_err() {
                        return;
                    }
                    // As Rampart's read_some: a read that leaves room took
                    // all there was, so it clears readiness too, sparing
                    // the recv that would fail with EAGAIN.
                    let mut got = None;
                    let r = s.try_io(tokio::io::Interest::READABLE, || {
                        let n = s.try_read(&mut chunk)?;
                        got = Some(n);
                        if n > 0 && n < chunk.len() {
                            Err(ErrorKind::WouldBlock.into())
                        } else {
                            Ok(())
                        }
                    });
                    let n = match (got, r) {
                        (Some(0), _) => return,
                        (Some(n), _) => n,
                        (None, Err(e)) if e.kind() == ErrorKind::WouldBlock => continue,
                        (None, _) => return,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    answer(&mut buf, &mut out);
                    if !out.is_empty() {
                        if s.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                }
            });
        }
    });
}

struct Conn {
    fd: RawFd,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    out: Vec<u8>,
}

const ACCEPT: u64 = u64::MAX;

fn run_uring(listener: TcpListener) {
    use io_uring::{opcode, types, IoUring};
    let mut ring = IoUring::new(1024).expect("io_uring");
    let lfd = listener.as_raw_fd();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let accept = opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
        .build()
        .user_data(ACCEPT);
    // SAFETY: the entry refers to no buffer.
    unsafe { ring.submission().push(&accept).expect("sq") };
    // user_data: connection index << 1 | 0 for recv, 1 for send.
    let push = |ring: &mut IoUring, e: io_uring::squeue::Entry| {
        // SAFETY: buffers live in `conns`, which outlives the operation
        // (an entry is only dropped after its completion).
        while unsafe { ring.submission().push(&e) }.is_err() {
            ring.submit().expect("submit");
        }
    };
    loop {
        ring.submit_and_wait(1).expect("enter");
        let done: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, res) in done {
            if ud == ACCEPT {
                if res >= 0 {
                    let fd = res;
                    let one: libc::c_int = 1;
                    // SAFETY: a plain setsockopt on a socket we own.
                    unsafe {
                        libc::setsockopt(
                            fd,
                            libc::IPPROTO_TCP,
                            libc::TCP_NODELAY,
                            &one as *const _ as *const _,
                            4,
                        );
                    }
                    let i = conns.len();
                    conns.push(Some(Conn {
                        fd,
                        buf: Vec::with_capacity(16 * 1024),
                        chunk: vec![0; 16 * 1024],
                        out: Vec::with_capacity(16 * 1024),
                    }));
                    let c = conns[i].as_mut().expect("conn");
                    push(&mut ring, next_op(c, i));
                }
                push(&mut ring, accept.clone());
                continue;
            }
            let i = (ud >> 1) as usize;
            let Some(c) = conns[i].as_mut() else { continue };
            let is_send = ud & 1 == 1;
            // A recv of 0 is the peer closing; any negative result an error.
            if res < 0 || (res == 0 && !is_send) {
                // SAFETY: our own descriptor, closed once.
                unsafe { libc::close(c.fd) };
                conns[i] = None;
                continue;
            }
            if is_send {
                c.out.drain(..res as usize);
            } else {
                c.buf.extend_from_slice(&c.chunk[..res as usize]);
                answer(&mut c.buf, &mut c.out);
            }
            push(&mut ring, next_op(c, i));
        }
    }
}

/// The connection's next operation: send what it owes, else read more.
/// `user_data` is the connection's index shifted left, low bit 1 for a send.
fn next_op(c: &mut Conn, i: usize) -> io_uring::squeue::Entry {
    use io_uring::{opcode, types};
    if c.out.is_empty() {
        opcode::Recv::new(types::Fd(c.fd), c.chunk.as_mut_ptr(), c.chunk.len() as u32)
            .build()
            .user_data((i as u64) << 1)
    } else {
        opcode::Send::new(types::Fd(c.fd), c.out.as_ptr(), c.out.len() as u32)
            .build()
            .user_data((i as u64) << 1 | 1)
    }
}
