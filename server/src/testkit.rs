//! Socket-free command tests: a server state and a client to run commands
//! against, with replies rendered as RESP text.

use std::sync::Arc;

use bytes::Bytes;

use crate::client::Client;
use crate::config::Config;
use crate::dispatch::execute;
use crate::resp::Out;
use crate::state::Server;

/// A server and one connected client, without sockets.
///
/// ```
/// use rampart_server::testkit::Kit;
/// let mut k = Kit::new();
/// assert_eq!(k.run(&["SET", "k", "v"]), "+OK\r\n");
/// assert_eq!(k.run(&["GET", "k"]), "$1\r\nv\r\n");
/// ```
pub struct Kit {
    /// The shared state.
    pub srv: Arc<Server>,
    /// The client.
    pub client: Client,
    out: Out,
}

impl Default for Kit {
    fn default() -> Self {
        Self::new()
    }
}

impl Kit {
    /// A fresh server with the default configuration.
    pub fn new() -> Kit {
        let srv = Arc::new(Server::new(Config::default()));
        // Scripts reach the server through it, as in a running server.
        let _ = srv.repl.me.set(Arc::downgrade(&srv));
        let handle = srv
            .clients
            .register("127.0.0.1:1".into(), "127.0.0.1:6379".into(), -1);
        Kit {
            srv,
            client: Client::new(handle, true),
            out: Out::new(2),
        }
    }

    /// Runs one command and returns its reply as RESP text (lossy UTF-8).
    pub fn run(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run_bytes(args.iter().map(|a| a.as_bytes()).collect()))
            .into_owned()
    }

    /// Runs one command with binary arguments and returns the raw reply.
    pub fn run_bytes(&mut self, args: Vec<&[u8]>) -> Vec<u8> {
        let mut args: Vec<Bytes> = args.into_iter().map(Bytes::copy_from_slice).collect();
        self.out.clear();
        self.out.proto = self.client.proto;
        let now = crate::state::now_us();
        execute(&self.srv, &mut self.client, &mut args, &mut self.out, now);
        self.out.buf().to_vec()
    }
}
