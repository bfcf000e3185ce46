//! The smallest HTTP/1.1 server Prometheus needs: `GET /metrics`, one
//! request per connection, then close.
//!
//! Written on tokio rather than hyper because the server has no HTTP
//! server stack otherwise and a scrape needs none of it. Every request is
//! outside input: its head is capped at [`MAX_HEAD`] bytes and
//! [`HEAD_TIMEOUT`], at most [`MAX_CONNECTIONS`] are served at once, and
//! nothing in it can make the server panic.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::state::Server;

/// Largest request head read; Prometheus sends a few hundred bytes.
pub const MAX_HEAD: usize = 8192;
/// Time a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more connections wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 16;
/// Time allowed to write a response out.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (or `HEAD`): the exposition (`true` for HEAD).
    Metrics {
        /// A HEAD request: headers only.
        head: bool,
    },
    /// Any other path.
    NotFound,
    /// `/metrics` with a method other than GET or HEAD.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line.
    BadRequest,
}

/// Routes a request head (everything up to the blank line).
///
/// ```
/// use rampart_server::metrics::http::{route, Route};
/// assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics { head: false });
/// assert_eq!(route(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"), Route::Metrics { head: false });
/// assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
/// assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
/// assert_eq!(route(b"\xff\xfe garbage"), Route::BadRequest);
/// ```
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (path, method) {
        ("/metrics", "GET") => Route::Metrics { head: false },
        ("/metrics", "HEAD") => Route::Metrics { head: true },
        ("/metrics", _) => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// Accepts scrapes on `listener` until the server shuts down.
pub async fn serve(srv: Arc<Server>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = srv.shutdown.notified() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and the like: back off rather than spin.
                tracing::debug!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let srv = srv.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(&srv, stream).await {
                tracing::debug!("metrics: {e}");
            }
            drop(permit);
        });
    }
}

/// Reads up to the end of the request head; `None` when it is too long,
/// or the peer closed first.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

async fn handle(srv: &Arc<Server>, mut stream: TcpStream) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => {
            return respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
            )
            .await
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return respond(
                &mut stream,
                "408 Request Timeout",
                "text/plain",
                b"timeout\n",
            )
            .await
        }
    };
    match route(&head) {
        Route::Metrics { head } => {
            // On the metrics thread (see `start`), so rendering here is
            // what keeps it off the connection threads.
            let body = super::render(srv);
            let body = if head { Vec::new() } else { body.into_bytes() };
            respond(&mut stream, "200 OK", prometheus::TEXT_FORMAT, &body).await
        }
        Route::NotFound => {
            respond(&mut stream, "404 Not Found", "text/plain", b"not found\n").await
        }
        Route::MethodNotAllowed => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                b"GET only\n",
            )
            .await
        }
        Route::BadRequest => {
            respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // One buffer, so the response leaves in one send (the socket's buffer
    // takes a whole exposition) rather than a small segment for the head
    // and a second syscall for the body.
    let mut response = Vec::with_capacity(head.len() + body.len());
    response.extend_from_slice(head.as_bytes());
    response.extend_from_slice(body);
    let write = async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_strictly() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.0\n\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head: true }
        );
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metrics HTTP/2\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET  /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
        assert_eq!(route(b"GET metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
    }
}
