//! Conversions between RESP and Lua values, as Redis's `script_lua.c`:
//! a script's return value becomes the reply, and Redis's error tables.
//! (A command's reply becomes the value `redis.call` returns on the raw
//! Lua stack, in `raw.rs`.)

use mlua::{Lua, Table, Value};

use crate::fmt::{c_i64, fmt_g};

/// Builds Redis's error table `{err = "<CODE> <msg>"}` from an error text
/// as `luaPushErrorBuff` does: a leading `-` means the text already starts
/// with its code; otherwise the code is `ERR`. Trailing CR/LF are trimmed.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let full = error_text(text);
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&full)?)?;
    Ok(t)
}

/// The `err` field [`error_table`] builds for `text`.
///
/// ```
/// use rampart_scripting::reply::error_text;
/// assert_eq!(error_text(b"-WRONGTYPE bad\r\n"), b"WRONGTYPE bad");
/// assert_eq!(error_text(b"oops"), b"ERR oops");
/// ```
pub fn error_text(text: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    // sdstrim removes the characters from both ends.
    let start = msg.iter().position(|b| !matches!(b, b'\r' | b'\n'));
    let msg = match start {
        Some(s) => {
            let end = msg
                .iter()
                .rposition(|b| !matches!(b, b'\r' | b'\n'))
                .map_or(s, |e| e + 1);
            &msg[s..end]
        }
        None => &[][..],
    };
    // The C builds it with pushstring: it stops at a NUL.
    let mut full = Vec::with_capacity(code.len() + 1 + msg.len());
    full.extend_from_slice(cstr(code));
    full.push(b' ');
    full.extend_from_slice(msg);
    cstr(&full).to_vec()
}

/// The bytes up to the first NUL, as C string functions see them.
pub fn cstr(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

pub(crate) fn parse_double(l: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(l).ok()?;
    match s {
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Writes RESP for the caller.
pub struct Writer {
    /// The reply so far.
    pub buf: Vec<u8>,
    /// The caller's protocol (2 or 3).
    pub proto: u8,
}

impl Writer {
    fn line(&mut self, kind: u8, s: &[u8]) {
        self.buf.push(kind);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn num(&mut self, kind: u8, n: i64) {
        self.line(kind, itoa::Buffer::new().format(n).as_bytes());
    }

    /// A bulk string.
    pub fn bulk(&mut self, s: &[u8]) {
        self.num(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The null reply in the caller's protocol.
    pub fn null(&mut self) {
        if self.proto == 3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// An error line; CR and LF become spaces, as `addReplyErrorLength`
    /// callers in Redis do, and a text without a leading `-` gets `-ERR `.
    pub fn error(&mut self, s: &[u8]) {
        let mut e: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        if e.first() != Some(&b'-') {
            let mut with = b"-ERR ".to_vec();
            with.append(&mut e);
            e = with;
        }
        self.buf.extend_from_slice(&e);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn double(&mut self, d: f64) {
        let s = fmt_g(d, 17);
        if self.proto == 3 {
            self.line(b',', s.as_bytes());
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// Patches in an aggregate's header once its length is known.
    fn header_at(&mut self, at: usize, kind: u8, n: i64) {
        let (kind, n) = match (kind, self.proto) {
            (b'%', 2) => (b'*', n * 2),
            (b'~', 2) => (b'*', n),
            _ => (kind, n),
        };
        let mut h = vec![kind];
        h.extend_from_slice(n.to_string().as_bytes());
        h.extend_from_slice(b"\r\n");
        self.buf.splice(at..at, h);
    }
}

/// Converts a script's return value into RESP, as Redis's
/// `luaReplyToRedisReply`. `script_resp` is the protocol the script chose
/// with `redis.setresp` (it decides how booleans come back).
pub fn lua_to_resp(w: &mut Writer, v: &Value, script_resp: u8, depth: usize) {
    // Redis grows the C stack per level and gives up with this error; a
    // table nested in itself would otherwise recurse forever.
    if depth > 10_000 {
        w.error(b"reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => w.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if script_resp == 2 {
                if *b {
                    w.buf.extend_from_slice(b":1\r\n");
                } else {
                    w.null();
                }
            } else if w.proto == 2 {
                w.num(b':', *b as i64);
            } else {
                w.buf
                    .extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            }
        }
        Value::Integer(n) => w.num(b':', *n),
        Value::Number(n) => w.num(b':', c_i64(*n)),
        Value::Table(t) => table_to_resp(w, t, script_resp, depth),
        _ => w.null(),
    }
}

fn raw_str(t: &Table, k: &str) -> Option<Vec<u8>> {
    match t.raw_get::<Value>(k).ok()? {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        // lua_type(...) == LUA_TSTRING: numbers do not count.
        _ => None,
    }
}

fn table_to_resp(w: &mut Writer, t: &Table, script_resp: u8, depth: usize) {
    if let Some(e) = raw_str(t, "err") {
        let mut s = b"-".to_vec();
        s.extend_from_slice(cstr(&e));
        return w.error(&s);
    }
    if let Some(ok) = raw_str(t, "ok") {
        let ok: Vec<u8> = cstr(&ok)
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        return w.line(b'+', &ok);
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        return w.double(d);
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        return w.double(d as f64);
    }
    if let Some(n) = raw_str(t, "big_number") {
        let n: Vec<u8> = n
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        if w.proto == 3 {
            return w.line(b'(', &n);
        }
        return w.bulk(&n);
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let (Some(fmt), Some(s)) = (raw_str(&v, "format"), raw_str(&v, "string")) {
            if w.proto == 3 {
                let mut ext = cstr(&fmt).to_vec();
                ext.resize(3, 0);
                w.num(b'=', s.len() as i64 + 4);
                w.buf.extend_from_slice(&ext);
                w.buf.push(b':');
                w.buf.extend_from_slice(&s);
                w.buf.extend_from_slice(b"\r\n");
            } else {
                w.bulk(&s);
            }
            return;
        }
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let at = w.buf.len();
        let mut n = 0;
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            lua_to_resp(w, &k, script_resp, depth + 1);
            lua_to_resp(w, &v, script_resp, depth + 1);
            n += 1;
        }
        return w.header_at(at, b'%', n);
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let at = w.buf.len();
        let mut n = 0;
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            lua_to_resp(w, &k, script_resp, depth + 1);
            n += 1;
        }
        return w.header_at(at, b'~', n);
    }
    let at = w.buf.len();
    let mut n = 0i64;
    loop {
        let v = t.raw_get::<Value>(n + 1).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        lua_to_resp(w, &v, script_resp, depth + 1);
        n += 1;
    }
    w.header_at(at, b'*', n);
}
