//! The accept loop and the per-connection read → execute → write loop.
//!
//! A connection reads what is available, runs every complete command in the
//! buffer, and writes all their replies with one write: pipelines cost one
//! syscall per batch, not per command. On plain TCP that write waits for
//! the end of the thread's turn, after its other ready clients have run,
//! so a client that waits on many connections gets their replies together
//! (Redis's `beforeSleep` writes; see [`crate::outbox`]).
//!
//! The loop is generic over the byte stream ([`ConnIo`]): plain TCP, or a
//! TLS session from [`crate::tls`]. Each is compiled separately, so the
//! plain path keeps its readiness-driven reads and `try_write`.

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::Client;
use crate::cmd::flags;
use crate::dispatch::execute;
use crate::resp::{Limits, Out, Parser};
use crate::state::{now_ms, now_us, Server};

const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Flush the reply buffer mid-pipeline past this size, so a long pipeline
/// of large replies does not pile up in memory.
const FLUSH_AT: usize = 64 * 1024;

/// What the request loop needs of a client's byte stream beyond reading
/// and writing: plain TCP ([`TcpStream`]) or a TLS session. Reads and
/// readiness take `&self`, as TcpStream's do, so the loop waits for input
/// and for room to write at once with the same futures it always used.
pub(crate) trait ConnIo: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {
    /// Reads what has arrived into `buf` (0 at end of stream).
    fn read_input<'a>(
        &'a self,
        buf: &'a mut BytesMut,
    ) -> impl Future<Output = std::io::Result<usize>> + Send + 'a;

    /// Resolves once the socket can take more output.
    fn writable(&self) -> impl Future<Output = std::io::Result<()>> + Send + '_;

    /// Writes what the socket takes now, without waiting: `WouldBlock`
    /// when it takes nothing.
    fn write_now(&self, data: &[u8]) -> std::io::Result<usize>;

    /// Pushes out output the stream itself still holds (TLS records
    /// sealed but not yet sent): true while some remains.
    fn push_held(&self) -> std::io::Result<bool>;

    /// Whether the stream itself holds output not yet sent.
    fn holds_output(&self) -> bool;

    /// Writes all of `data`, through to the socket.
    fn write_out<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a;

    /// Sets TCP_NODELAY on the socket underneath.
    fn set_nodelay(&self);

    /// The local address (as CLIENT LIST shows it) and the descriptor.
    fn local(&self) -> (String, i32);

    /// The socket's descriptor when replies may be written by descriptor
    /// at the end of the thread's turn ([`crate::outbox`]): plain TCP
    /// only, a TLS session seals its own records.
    fn deferrable_fd(&self) -> Option<i32> {
        None
    }

    /// Whether this is a TLS session (Redis's `connGetType(c->conn) ==
    /// CONN_TYPE_TLS`): in a `tls-cluster` a plaintext client is sent the
    /// nodes' plaintext ports instead.
    fn is_tls(&self) -> bool {
        false
    }
}

impl ConnIo for TcpStream {
    #[inline]
    fn read_input<'a>(
        &'a self,
        buf: &'a mut BytesMut,
    ) -> impl Future<Output = std::io::Result<usize>> + Send + 'a {
        read_some(self, buf)
    }

    #[inline]
    fn writable(&self) -> impl Future<Output = std::io::Result<()>> + Send + '_ {
        TcpStream::writable(self)
    }

    #[inline]
    fn write_now(&self, data: &[u8]) -> std::io::Result<usize> {
        self.try_write(data)
    }

    #[inline]
    fn push_held(&self) -> std::io::Result<bool> {
        Ok(false)
    }

    #[inline]
    fn holds_output(&self) -> bool {
        false
    }

    #[inline]
    fn write_out<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a {
        self.write_all(data)
    }

    fn set_nodelay(&self) {
        let _ = TcpStream::set_nodelay(self, true);
    }

    fn local(&self) -> (String, i32) {
        let laddr = self.local_addr().map(|a| a.to_string()).unwrap_or_default();
        (laddr, fd_of(self))
    }

    fn deferrable_fd(&self) -> Option<i32> {
        Some(fd_of(self)).filter(|fd| *fd >= 0)
    }
}

/// Accepts connections until shutdown, handing each to a per-core runtime;
/// `tls` says whether this is a `tls-port` listener.
pub async fn accept_loop(
    srv: Arc<Server>,
    listener: TcpListener,
    cores: Arc<crate::cores::Cores>,
    tls: bool,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = srv.shutdown.notified() => return,
        };
        match accepted {
            Ok((stream, peer)) => cores.hand_over(stream, peer, tls),
            Err(e) => {
                tracing::warn!("Accepting client connection: {e}");
                // Out of descriptors and the like: back off briefly.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn protected(srv: &Server, peer: &SocketAddr) -> bool {
    srv.config.flag("protected-mode")
        && srv.acl.users().get(b"default").is_some_and(|d| d.nopass())
        && srv.config.get("bind").as_deref() == Some("* -::*")
        && !peer.ip().is_loopback()
}

/// Serves one client connection, plain or TLS, until it ends.
pub(crate) async fn connection<S: ConnIo>(srv: Arc<Server>, mut stream: S, peer: SocketAddr) {
    stream.set_nodelay();
    srv.stats.connections.fetch_add(1, Ordering::Relaxed);
    if protected(&srv, &peer) {
        let _ = stream.write_out(DENIED.as_bytes()).await;
        srv.stats.rejected.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if srv.clients.len() as u64 >= srv.config.hot.maxclients.load(Ordering::Relaxed) {
        let _ = stream
            .write_out(b"-ERR max number of clients reached\r\n")
            .await;
        srv.stats.rejected.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let (laddr, fd) = stream.local();
    let handle = srv.clients.register(peer.to_string(), laddr, fd);
    let mut client = Client::new(handle.clone(), srv.acl.starts_authenticated());
    client.set_user(Some(crate::acl::default_user(&srv)));
    client.acl_epoch = 0;
    client.tls = stream.is_tls();
    /// Closes the outbox before the socket, however the loop ends.
    struct Closing<'a>(&'a Server, Arc<crate::state::ClientHandle>);
    impl Drop for Closing<'_> {
        fn drop(&mut self) {
            let sent = self.1.outbox.close();
            self.0.stats.net_out.add(sent as u64);
        }
    }
    let closing = Closing(&srv, handle.clone());
    if let Some(fd) = stream.deferrable_fd() {
        handle.outbox.open(fd);
    }
    let served = serve(&srv, &mut stream, &mut client).await;
    drop(closing);
    if let Some((h, pending)) = served {
        // PSYNC/SYNC: the connection is now a replica link.
        crate::repl::serve_replica(srv.clone(), stream, &mut client, h, pending).await;
    }
    crate::cmd::transaction::unwatch_all(&srv, &mut client);
    srv.pubsub.leave_all(&mut client);
    srv.tracking.disable(&handle);
    srv.monitors.remove(&handle);
    crate::client_mem::forget(&srv, &handle);
    srv.clients.remove(handle.id);
}

#[cfg(unix)]
fn fd_of(s: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

#[cfg(not(unix))]
fn fd_of(_: &TcpStream) -> i32 {
    -1
}

/// The request loop. Returns the PSYNC/SYNC hand-off (with any input read
/// after it) when the connection turns into a replica link.
async fn serve<S: ConnIo>(
    srv: &Arc<Server>,
    stream: &mut S,
    client: &mut Client,
) -> Option<(crate::repl::Handoff, BytesMut)> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut parser = Parser::default();
    let mut out = Out::new(2);
    loop {
        // One clock read per command: each starts when the one before it
        // ended (dispatch reads the clock as a command ends).
        let mut clock = now_us();
        // Run every complete command already buffered.
        loop {
            match parser.next(&mut buf, limits(srv, client)) {
                Ok(Some(mut args)) => {
                    // Messages that arrived before this command go out
                    // before its reply, as they would from Redis.
                    if client.handle.mailbox.has_mail() {
                        client.handle.mailbox.drain_into(&mut out);
                    }
                    if srv.pause.any() {
                        wait_if_paused(srv, &args, client).await;
                        clock = now_us();
                    }
                    clock = execute(srv, client, &mut args, &mut out, clock);
                    parser.recycle(args);
                    if out.proto != client.proto {
                        out.proto = client.proto;
                    }
                    if let Some(b) = client.blocked.take() {
                        if flush(srv, stream, &mut out, client).await.is_err() {
                            srv.hooks.blocked.remove(client.handle.id);
                            return None;
                        }
                        match wait_blocked(srv, stream, client, &mut buf, b).await {
                            Some(reply) => out.raw(&reply),
                            None => return None,
                        }
                        clock = now_us();
                    }
                    if let Some(h) = client.handoff.take() {
                        if flush(srv, stream, &mut out, client).await.is_err() {
                            return None;
                        }
                        return Some((h, buf));
                    }
                    if client.close {
                        break;
                    }
                    if out.len() >= FLUSH_AT {
                        srv.client_mem.note_peaks(
                            clock / 1_000_000,
                            buf.capacity() as u64,
                            out.len() as u64,
                        );
                        if let Some(l) = output_limits(srv, client) {
                            if !flush_some(srv, stream, &mut out, client, l) {
                                return None;
                            }
                        } else if flush(srv, stream, &mut out, client).await.is_err() {
                            return None;
                        }
                        clock = now_us();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.error(&format!("ERR {}", e.0));
                    srv.stats.error("ERR");
                    tracing::info!(
                        "Protocol error ({}) from client: id={} addr={}",
                        e.0,
                        client.handle.id,
                        client.handle.addr
                    );
                    client.close = true;
                    break;
                }
            }
        }
        srv.tracking
            .broadcast_pending(Some((&client.handle, &mut out)));
        if client.handle.mailbox.has_mail() {
            client.handle.mailbox.drain_into(&mut out);
        }
        srv.client_mem
            .note_peaks(clock / 1_000_000, buf.capacity() as u64, out.len() as u64);
        let flushed = if !client.close && !out.is_empty() && defer(client, &mut out) {
            true
        } else {
            match output_limits(srv, client) {
                Some(l) if !client.close => flush_some(srv, stream, &mut out, client, l),
                _ => flush(srv, stream, &mut out, client).await.is_ok(),
            }
        };
        if !flushed || client.close {
            return None;
        }
        let limit = srv.config.hot.query_buffer_limit.load(Ordering::Relaxed);
        if buf.len() as i64 > limit {
            tracing::warn!(
                "Closing client that reached max query buffer length: id={} addr={} (qbuf initial bytes: {:?})",
                client.handle.id,
                client.handle.addr,
                String::from_utf8_lossy(&buf[..buf.len().min(64)])
            );
            return None;
        }
        client.handle.qbuf.store(buf.len(), Ordering::Relaxed);
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        crate::client_mem::tally(
            srv,
            &client.handle,
            (buf.capacity() + out.capacity()) as u64,
        );
        let timeout = srv.config.hot.timeout.load(Ordering::Relaxed);
        let backlog = !out.is_empty() || stream.holds_output();
        // Resolves true when the client has been idle for `timeout`.
        // Under an output limit it also resolves (false) to go on writing
        // replies the client had not taken: they wait in `out` while its
        // commands keep being served, as in Redis, and the soft limit's
        // clock is looked at now and then.
        let idle = async {
            if backlog {
                tokio::select! {
                    _ = stream.writable() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                false
            } else if timeout == 0 || client.multi.is_some() || client.subs.any() {
                std::future::pending::<bool>().await
            } else {
                tokio::time::sleep(Duration::from_secs(timeout)).await;
                true
            }
        };
        tokio::select! {
            r = stream.read_input(&mut buf) => match r {
                Ok(0) | Err(_) => return None,
                Ok(n) => { srv.stats.net_in.add(n as u64); }
            },
            _ = client.handle.wake.notified() => {}
            timed_out = idle => if timed_out { return None },
        }
        if client.handle.killed.load(Ordering::Relaxed) {
            return None;
        }
    }
}

/// Reads what has arrived, once per readiness event, as Redis does. A read
/// that leaves room in the buffer took all there was, so it also clears the
/// socket's readiness; otherwise the next read would be a `recv` that fails
/// with EAGAIN: one syscall more per request for a client that waits for
/// each reply. Clearing is tied to the readiness seen before the read, so
/// data that arrives meanwhile still wakes us.
async fn read_some(stream: &TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        let room = buf.capacity() - buf.len();
        let mut got = None;
        let r = stream.try_io(Interest::READABLE, || {
            let n = stream.try_read_buf(buf)?;
            got = Some(n);
            if n > 0 && n < room {
                Err(ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match (got, r) {
            (Some(n), _) => return Ok(n),
            (None, Err(e)) if e.kind() != ErrorKind::WouldBlock => return Err(e),
            (None, _) => {}
        }
    }
}

/// The protocol limits for the client's next request.
fn limits(srv: &Server, client: &Client) -> Limits {
    Limits {
        max_bulk: srv.config.hot.proto_max_bulk_len.load(Ordering::Relaxed),
        unauthenticated: srv.acl.auth_required(client),
    }
}

/// Waits for a blocked command's reply: served by a write, timed out, or
/// unblocked. Input that arrives meanwhile stays buffered for later; a
/// closed or killed connection gives up its place in the queues.
async fn wait_blocked<S: ConnIo>(
    srv: &Server,
    stream: &mut S,
    client: &mut Client,
    buf: &mut BytesMut,
    mut b: crate::client::BlockState,
) -> Option<Vec<u8>> {
    let id = client.handle.id;
    loop {
        let deadline = b.deadline;
        let timer = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = &mut b.reply => return r.ok(),
            _ = timer => {
                if let Some(w) = srv.hooks.blocked.remove(id) {
                    let mut o = Out::new(w.proto);
                    (w.on_timeout)(&mut o);
                    return Some(o.buf().to_vec());
                }
                // A write served us first: its reply is on the way.
                return (&mut b.reply).await.ok();
            }
            _ = client.handle.wake.notified() => {
                if client.handle.killed.load(Ordering::Relaxed) {
                    srv.hooks.blocked.remove(id);
                    return None;
                }
                // A RESP3 client may block while subscribed: its messages
                // still go out meanwhile.
                if client.handle.mailbox.has_mail() {
                    let mail = client.handle.mailbox.take();
                    if stream.write_out(&mail).await.is_err() {
                        srv.hooks.blocked.remove(id);
                        return None;
                    }
                }
            }
            r = stream.read_buf(buf) => match r {
                Ok(0) | Err(_) => {
                    srv.hooks.blocked.remove(id);
                    return None;
                }
                Ok(n) => {
                    srv.stats.net_in.add(n as u64);
                }
            },
        }
    }
}

/// Leaves the batch's replies for the end of the thread's turn
/// ([`crate::outbox`], which counts them in `total_net_output_bytes` as
/// it sends them); false when they must be written now. Under an output
/// limit they count as unsent until then; what the socket does not take
/// comes back through `flush_some`, which applies the limit.
fn defer(client: &Client, out: &mut Out) -> bool {
    let n = out.len();
    let deferred = crate::outbox::defer(&client.handle, out.buf_mut());
    if deferred && client.subs.any() {
        client.handle.mailbox.unsent.store(n, Ordering::Relaxed);
    }
    deferred
}

async fn flush<S: ConnIo>(
    srv: &Server,
    stream: &mut S,
    out: &mut Out,
    client: &Client,
) -> std::io::Result<()> {
    // Replies still waiting for the turn's end go first.
    client.handle.outbox.take_back(out.buf_mut());
    if out.is_empty() {
        return Ok(());
    }
    // What the client has not taken shows in CLIENT LIST while we wait.
    let unsent = &client.handle.mailbox.unsent;
    unsent.store(out.len(), Ordering::Relaxed);
    match output_limits(srv, client) {
        None => stream.write_out(out.buf()).await?,
        Some(limits) => write_limited(stream, out.buf(), limits, client).await?,
    }
    unsent.store(0, Ordering::Relaxed);
    srv.stats.net_out.add(out.len() as u64);
    out.clear();
    Ok(())
}

/// Writes what the socket takes now, leaving the rest in `out`, under the
/// `normal` class of `client-output-buffer-limit`: what is left is the
/// client's output buffer. False when it is over the limit, and the
/// connection must close (logged as Redis logs it).
fn flush_some<S: ConnIo>(
    srv: &Server,
    stream: &S,
    out: &mut Out,
    client: &Client,
    limits: crate::repl::ObufLimits,
) -> bool {
    client.handle.outbox.take_back(out.buf_mut());
    while !out.is_empty() {
        match stream.write_now(out.buf()) {
            Ok(0) => return false,
            Ok(n) => {
                srv.stats.net_out.add(n as u64);
                out.consume(n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    if out.is_empty() && stream.push_held().is_err() {
        return false;
    }
    if client.subs.any() {
        // Publishers count what we hold unsent against the limit too.
        client
            .handle
            .mailbox
            .unsent
            .store(out.len(), Ordering::Relaxed);
    }
    !over_output_limit(out.len(), limits, client)
}

/// The output limits the client is under: Redis's `pubsub` class while it
/// is subscribed to anything, else `normal`. `None` when neither limit of
/// the class is set.
fn output_limits(srv: &Server, client: &Client) -> Option<crate::repl::ObufLimits> {
    if client.subs.any() {
        let l = srv.pubsub.limits();
        (l.hard != 0 || l.soft != 0).then_some(l)
    } else {
        srv.client_mem.output_limits()
    }
}

/// Whether `pending` bytes of output put the client over its limits, said
/// in Redis's log line when they do.
fn over_output_limit(pending: usize, limits: crate::repl::ObufLimits, client: &Client) -> bool {
    let over = limits.exceeded(
        pending as u64,
        &client.handle.mailbox.soft_since,
        now_ms() / 1000,
    );
    if over {
        tracing::warn!(
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            client.handle.id,
            client.handle.addr
        );
    }
    over
}

/// Writes `data` under the `normal` class of `client-output-buffer-limit`:
/// what the socket has not taken yet is the client's output buffer. Past
/// the hard limit, or past the soft limit for longer than its seconds, the
/// connection is closed with Redis's log line.
async fn write_limited<S: ConnIo>(
    stream: &mut S,
    data: &[u8],
    limits: crate::repl::ObufLimits,
    client: &Client,
) -> std::io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        if over_output_limit(data.len() - done, limits, client) {
            return Err(ErrorKind::WriteZero.into());
        }
        // Wake up now and then to look at the soft limit's clock while
        // the client is not reading.
        match tokio::time::timeout(Duration::from_millis(250), stream.write(&data[done..])).await {
            Ok(Ok(0)) => return Err(ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => done += n,
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
    }
    // A TLS session may still hold sealed records the socket has not
    // taken; a client killed meanwhile stops the wait.
    while stream.holds_output() {
        if client.handle.killed.load(Ordering::Relaxed) {
            return Err(ErrorKind::WriteZero.into());
        }
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(250), stream.flush()).await {
            r?;
        }
    }
    Ok(())
}

/// CLIENT PAUSE: hold the command until the pause ends (writes only, or
/// every command, depending on the mode); a shutdown waiting for replicas
/// holds writes the same way.
async fn wait_if_paused(srv: &Server, args: &[bytes::Bytes], client: &Client) {
    let writes = |id: usize| {
        let s = srv.commands.spec(id);
        s.has(flags::WRITE) || s.has(flags::MAY_REPLICATE)
    };
    // EXEC counts as a write when its transaction holds one, as in Redis.
    let is_write = || {
        srv.commands.top(&args[0]).is_some_and(|id| {
            writes(id)
                || (srv.commands.spec(id).name == "exec"
                    && client
                        .multi
                        .as_ref()
                        .is_some_and(|q| q.iter().any(|(id, _)| writes(*id))))
        })
    };
    loop {
        let until = srv.pause.until.load(Ordering::Relaxed);
        let now = now_ms();
        if until != 0 && until <= now {
            // Over: clear it, unless a new pause was set meanwhile.
            let _ =
                srv.pause
                    .until
                    .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        let by_client =
            until > now && (!srv.pause.writes_only.load(Ordering::Relaxed) || is_write());
        let by_server = srv.pause.writes_held() && is_write();
        if !by_client && !by_server {
            return;
        }
        let wait = if by_client { until - now } else { 100 };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = srv.pause.wake.notified() => {}
        }
    }
}
