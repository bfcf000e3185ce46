//! The `cjson` library as Redis bundles it (lua-cjson 2.1): numbers as
//! `%.14g`, an empty table as `{}`, JSON null as `cjson.null` (a NULL
//! light userdata), errors with lua-cjson's texts.

use std::ffi::c_void;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use crate::fmt::fmt_g;
use crate::lua_error;

/// lua-cjson's configuration, set by `cjson.encode_*`/`decode_*` calls
/// and kept for the life of the VM, as Redis's (one Lua state across
/// scripts until SCRIPT FLUSH).
#[derive(Clone, Copy, Debug)]
struct Cfg {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    precision: i64,
    keep_buffer: bool,
    /// 0 off (error), 1 on (`inf`, `nan`), 2 `null`.
    encode_invalid: i64,
    decode_invalid: bool,
}

impl Default for Cfg {
    fn default() -> Cfg {
        Cfg {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            keep_buffer: true,
            encode_invalid: 0,
            decode_invalid: true,
        }
    }
}

type Shared = std::sync::Arc<std::sync::Mutex<Cfg>>;

fn cfg_of(shared: &Shared) -> Cfg {
    *shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut::<c_void>()))
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            8 => out.extend_from_slice(b"\\b"),
            9 => out.extend_from_slice(b"\\t"),
            10 => out.extend_from_slice(b"\\n"),
            12 => out.extend_from_slice(b"\\f"),
            13 => out.extend_from_slice(b"\\r"),
            0..=31 | 127 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        v => v.type_name(),
    }
}

fn append_number(lua: &Lua, cfg: &Cfg, out: &mut Vec<u8>, v: &Value, n: f64) -> mlua::Result<()> {
    let invalid = n.is_nan() || n.is_infinite();
    match cfg.encode_invalid {
        0 if invalid => {
            return Err(lua_error(
                lua,
                &format!("Cannot serialise {}: must not be NaN or Inf", type_name(v)),
            ))
        }
        // Some platforms print NaN as "-nan": lua-cjson writes it itself.
        1 if n.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        2 if invalid => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    out.extend_from_slice(fmt_g(n, cfg.precision as usize).as_bytes());
    Ok(())
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        _ => None,
    }
}

/// lua-cjson's `lua_array_length`: `Some(max index)` for a table whose
/// keys are all positive integers (and not too sparse), else `None`.
fn array_length(lua: &Lua, cfg: &Cfg, t: &Table) -> mlua::Result<Option<usize>> {
    let mut max = 0f64;
    let mut items = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        match number_of(&k) {
            Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                if k > max {
                    max = k;
                }
                items += 1;
            }
            _ => return Ok(None),
        }
    }
    let ratio = cfg.sparse_ratio as f64;
    if ratio > 0.0 && max > items as f64 * ratio && max > cfg.sparse_safe as f64 {
        if cfg.sparse_convert {
            // Encoded as an object instead.
            return Ok(None);
        }
        return Err(lua_error(
            lua,
            "Cannot serialise table: excessively sparse array",
        ));
    }
    Ok(Some(max as usize))
}

fn append(lua: &Lua, cfg: &Cfg, out: &mut Vec<u8>, v: &Value, depth: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => append_string(out, &s.as_bytes()),
        Value::Number(_) | Value::Integer(_) => {
            append_number(lua, cfg, out, v, number_of(v).unwrap_or(0.0))?
        }
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth as i64 > cfg.encode_max_depth {
                return Err(lua_error(
                    lua,
                    &format!("Cannot serialise, excessive nesting ({depth})"),
                ));
            }
            match array_length(lua, cfg, t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let e: Value = t.raw_get(i)?;
                        append(lua, cfg, out, &e, depth)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, e) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::Number(_) | Value::Integer(_) => {
                                out.push(b'"');
                                append_number(lua, cfg, out, &k, number_of(&k).unwrap_or(0.0))?;
                                out.extend_from_slice(b"\":");
                            }
                            Value::String(s) => {
                                append_string(out, &s.as_bytes());
                                out.push(b':');
                            }
                            other => {
                                return Err(lua_error(
                                    lua,
                                    &format!(
                                        "Cannot serialise {}: table key must be a number or string",
                                        type_name(other)
                                    ),
                                ))
                            }
                        }
                        append(lua, cfg, out, &e, depth)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(lua_error(
                lua,
                &format!("Cannot serialise {}: type not supported", type_name(other)),
            ))
        }
    }
    Ok(())
}

/// A decoding token.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

fn tok_name(t: Tok) -> &'static str {
    match t {
        Tok::ObjBegin => "T_OBJ_BEGIN",
        Tok::ObjEnd => "T_OBJ_END",
        Tok::ArrBegin => "T_ARR_BEGIN",
        Tok::ArrEnd => "T_ARR_END",
        Tok::Str => "T_STRING",
        Tok::Num(_) => "T_NUMBER",
        Tok::Bool(_) => "T_BOOLEAN",
        Tok::Null => "T_NULL",
        Tok::Colon => "T_COLON",
        Tok::Comma => "T_COMMA",
        Tok::End => "T_END",
        Tok::Error(e) => e,
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    depth: usize,
    cfg: Cfg,
    /// The last string token's bytes.
    s: Vec<u8>,
    /// Where the last token started.
    index: usize,
}

/// C's `strtod` on a prefix: the value and how many bytes it read.
pub fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let neg = match s.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = &s[i..];
    let lower: Vec<u8> = rest
        .iter()
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let sign = if neg { -1.0 } else { 1.0 };
    if lower.starts_with(b"infinity") {
        return Some((sign * f64::INFINITY, i + 8));
    }
    if lower.starts_with(b"inf") {
        return Some((sign * f64::INFINITY, i + 3));
    }
    if lower.starts_with(b"nan") {
        return Some((f64::NAN, i + 3));
    }
    if lower.starts_with(b"0x") {
        let mut j = i + 2;
        let mut v = 0f64;
        let start = j;
        while j < s.len() && s[j].is_ascii_hexdigit() {
            v = v * 16.0 + (s[j] as char).to_digit(16).unwrap_or(0) as f64;
            j += 1;
        }
        if j == start {
            return Some((0.0, i + 1));
        }
        return Some((sign * v, j));
    }
    let mut j = i;
    let digits = |j: &mut usize| {
        let st = *j;
        while *j < s.len() && s[*j].is_ascii_digit() {
            *j += 1;
        }
        *j - st
    };
    let mut n = digits(&mut j);
    if j < s.len() && s[j] == b'.' {
        j += 1;
        n += digits(&mut j);
    }
    if n == 0 {
        return None;
    }
    if j < s.len() && (s[j] == b'e' || s[j] == b'E') {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if digits(&mut k) > 0 {
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[..j]).ok()?;
    text.parse::<f64>().ok().map(|v| (v, j))
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn next(&mut self) -> Tok {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        self.index = self.pos;
        let c = self.at(self.pos);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return t;
        }
        if c == 0 {
            // A NUL ends the text, as the C string the parser walks.
            return Tok::End;
        }
        let data = self.data;
        let rest = &data[self.pos..];
        let number = |p: &mut Self| match strtod(rest) {
            Some((v, used)) if used > 0 => {
                p.pos += used;
                Tok::Num(v)
            }
            _ => Tok::Error("invalid number"),
        };
        let invalid_ok = self.cfg.decode_invalid;
        match c {
            b'"' => self.string(),
            b'-' | b'0'..=b'9' if !invalid_ok && is_invalid_number(rest) => {
                Tok::Error("invalid number")
            }
            b'-' | b'0'..=b'9' => number(self),
            b't' if rest.starts_with(b"true") => {
                self.pos += 4;
                Tok::Bool(true)
            }
            b'f' if rest.starts_with(b"false") => {
                self.pos += 5;
                Tok::Bool(false)
            }
            b'n' if rest.starts_with(b"null") => {
                self.pos += 4;
                Tok::Null
            }
            b'+' | b'i' | b'I' | b'n' | b'N' if invalid_ok && is_invalid_number(rest) => {
                number(self)
            }
            _ => Tok::Error("invalid token"),
        }
    }

    fn string(&mut self) -> Tok {
        self.pos += 1;
        self.s.clear();
        loop {
            let c = self.at(self.pos);
            if c == b'"' {
                break;
            }
            if c == 0 {
                self.index = self.pos;
                return Tok::Error("unexpected end of string");
            }
            if c == b'\\' {
                let e = self.at(self.pos + 1);
                let ch = match e {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => 9,
                    b'n' => 10,
                    b'f' => 12,
                    b'r' => 13,
                    b'u' => {
                        if self.unicode().is_none() {
                            self.index = self.pos;
                            return Tok::Error("invalid unicode escape code");
                        }
                        continue;
                    }
                    _ => {
                        self.index = self.pos;
                        return Tok::Error("invalid escape code");
                    }
                };
                self.s.push(ch);
                self.pos += 2;
                continue;
            }
            self.s.push(c);
            self.pos += 1;
        }
        self.pos += 1;
        Tok::Str
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            v = v * 16 + (self.at(at + i) as char).to_digit(16)?;
        }
        Some(v)
    }

    fn unicode(&mut self) -> Option<()> {
        let mut cp = self.hex4(self.pos + 2)?;
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return None;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return None;
            }
            let low = self.hex4(self.pos + 8)?;
            if low & 0xFC00 != 0xDC00 {
                return None;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut buf = [0u8; 4];
        let n = match cp {
            0..=0x7F => {
                buf[0] = cp as u8;
                1
            }
            0x80..=0x7FF => {
                buf[0] = ((cp >> 6) | 0xC0) as u8;
                buf[1] = ((cp & 0x3F) | 0x80) as u8;
                2
            }
            0x800..=0xFFFF => {
                buf[0] = ((cp >> 12) | 0xE0) as u8;
                buf[1] = (((cp >> 6) & 0x3F) | 0x80) as u8;
                buf[2] = ((cp & 0x3F) | 0x80) as u8;
                3
            }
            _ => {
                buf[0] = ((cp >> 18) | 0xF0) as u8;
                buf[1] = (((cp >> 12) & 0x3F) | 0x80) as u8;
                buf[2] = (((cp >> 6) & 0x3F) | 0x80) as u8;
                buf[3] = ((cp & 0x3F) | 0x80) as u8;
                4
            }
        };
        self.s.extend_from_slice(&buf[..n]);
        self.pos += len;
        Some(())
    }

    fn fail(&self, lua: &Lua, expected: &str, t: Tok) -> mlua::Error {
        lua_error(
            lua,
            &format!(
                "Expected {expected} but found {} at character {}",
                tok_name(t),
                self.index + 1
            ),
        )
    }

    fn descend(&mut self, lua: &Lua) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth as i64 > self.cfg.decode_max_depth {
            return Err(lua_error(
                lua,
                &format!(
                    "Found too many nested data structures ({}) at character {}",
                    self.depth, self.pos
                ),
            ));
        }
        Ok(())
    }

    fn value(&mut self, lua: &Lua, t: Tok) -> mlua::Result<Value> {
        Ok(match t {
            Tok::Str => Value::String(lua.create_string(&self.s)?),
            Tok::Num(n) => Value::Number(n),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => null(),
            Tok::ObjBegin => {
                self.descend(lua)?;
                let tbl = lua.create_table()?;
                let mut t = self.next();
                if t != Tok::ObjEnd {
                    loop {
                        if t != Tok::Str {
                            return Err(self.fail(lua, "object key string", t));
                        }
                        let key = lua.create_string(&self.s)?;
                        let c = self.next();
                        if c != Tok::Colon {
                            return Err(self.fail(lua, "colon", c));
                        }
                        let vt = self.next();
                        let v = self.value(lua, vt)?;
                        tbl.raw_set(key, v)?;
                        let e = self.next();
                        if e == Tok::ObjEnd {
                            break;
                        }
                        if e != Tok::Comma {
                            return Err(self.fail(lua, "comma or object end", e));
                        }
                        t = self.next();
                    }
                }
                self.depth -= 1;
                Value::Table(tbl)
            }
            Tok::ArrBegin => {
                self.descend(lua)?;
                let tbl = lua.create_table()?;
                let mut t = self.next();
                if t != Tok::ArrEnd {
                    let mut i = 1;
                    loop {
                        let v = self.value(lua, t)?;
                        tbl.raw_set(i, v)?;
                        i += 1;
                        let e = self.next();
                        if e == Tok::ArrEnd {
                            break;
                        }
                        if e != Tok::Comma {
                            return Err(self.fail(lua, "comma or array end", e));
                        }
                        t = self.next();
                    }
                }
                self.depth -= 1;
                Value::Table(tbl)
            }
            other => return Err(self.fail(lua, "value", other)),
        })
    }
}

/// lua-cjson's `json_is_invalid_number`: hex, leading zeros, inf, nan.
fn is_invalid_number(p: &[u8]) -> bool {
    let mut p = p;
    if p.first() == Some(&b'+') {
        return true;
    }
    if p.first() == Some(&b'-') {
        p = &p[1..];
    }
    if p.first() == Some(&b'0') {
        let c2 = p.get(1).copied().unwrap_or(0);
        return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
    }
    if p.first().is_some_and(|&c| c <= b'9') {
        return false;
    }
    let l: Vec<u8> = p.iter().take(3).map(|c| c.to_ascii_lowercase()).collect();
    l == b"inf" || l == b"nan"
}

fn decode(lua: &Lua, cfg: Cfg, args: MultiValue) -> mlua::Result<Value> {
    if args.len() != 1 {
        return Err(lua_error(
            lua,
            "bad argument #1 to 'decode' (expected 1 argument)",
        ));
    }
    let data: Vec<u8> = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Number(_) | Value::Integer(_))) => lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default(),
        other => {
            return Err(lua_error(
                lua,
                &format!(
                    "bad argument #1 to 'decode' (string expected, got {})",
                    other.map_or("no value", type_name)
                ),
            ))
        }
    };
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(lua_error(
            lua,
            "JSON parser does not support UTF-16 or UTF-32",
        ));
    }
    let mut p = Parser {
        data: &data,
        pos: 0,
        depth: 0,
        cfg,
        s: Vec::new(),
        index: 0,
    };
    let t = p.next();
    let v = p.value(lua, t)?;
    let end = p.next();
    if end != Tok::End {
        return Err(p.fail(lua, "the end", end));
    }
    Ok(v)
}

fn encode(lua: &Lua, cfg: Cfg, args: MultiValue) -> mlua::Result<mlua::String> {
    if args.len() != 1 {
        return Err(lua_error(
            lua,
            "bad argument #1 to 'encode' (expected 1 argument)",
        ));
    }
    let mut out = Vec::new();
    append(lua, &cfg, &mut out, args.front().unwrap_or(&Value::Nil), 0)?;
    lua.create_string(&out)
}

/// The arguments of a configuration call, padded with nil to `max` (more
/// is lua-cjson's "found too many arguments").
fn cfg_args(lua: &Lua, name: &str, args: MultiValue, max: usize) -> mlua::Result<Vec<Value>> {
    if args.len() > max {
        return Err(lua_error(
            lua,
            &format!(
                "bad argument #{} to '{name}' (found too many arguments)",
                max + 1
            ),
        ));
    }
    let mut v: Vec<Value> = args.into_iter().collect();
    v.resize(max, Value::Nil);
    Ok(v)
}

/// lua-cjson's `json_integer_option`: sets `*setting` from `v` unless nil
/// (its range error always names argument 1, as lua-cjson's does).
fn int_option(
    lua: &Lua,
    name: &str,
    v: &Value,
    setting: &mut i64,
    min: i64,
    max: i64,
) -> mlua::Result<Value> {
    if !v.is_nil() {
        let n = match v {
            Value::Integer(i) => *i,
            Value::Number(f) => *f as i64,
            Value::String(s) => match strtod(&s.as_bytes()) {
                Some((f, used)) if used == s.as_bytes().len() => f as i64,
                _ => return Err(bad_type(lua, name, "number", v)),
            },
            _ => return Err(bad_type(lua, name, "number", v)),
        };
        if n < min || n > max {
            return Err(lua_error(
                lua,
                &format!("bad argument #1 to '{name}' (expected integer between {min} and {max})"),
            ));
        }
        *setting = n;
    }
    Ok(Value::Integer(*setting))
}

fn bad_type(lua: &Lua, name: &str, want: &str, v: &Value) -> mlua::Error {
    let got = match v {
        Value::Nil => "no value",
        v => v.type_name(),
    };
    lua_error(
        lua,
        &format!("bad argument #1 to '{name}' ({want} expected, got {got})"),
    )
}

/// lua-cjson's `json_enum_option`: a boolean, or one of `options` by name;
/// answers a boolean while the setting is off/on, else its name.
fn enum_option(
    lua: &Lua,
    name: &str,
    v: &Value,
    setting: &mut i64,
    options: &[&str],
) -> mlua::Result<Value> {
    match v {
        Value::Nil => {}
        Value::Boolean(b) => *setting = i64::from(*b),
        Value::String(s) => {
            let s = s.as_bytes();
            match options.iter().position(|o| o.as_bytes() == &s[..]) {
                Some(i) => *setting = i as i64,
                None => {
                    return Err(lua_error(
                        lua,
                        &format!(
                            "bad argument #1 to '{name}' (invalid option '{}')",
                            String::from_utf8_lossy(&s)
                        ),
                    ))
                }
            }
        }
        v => return Err(bad_type(lua, name, "string", v)),
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        i => Value::String(lua.create_string(options[i as usize])?),
    })
}

const ON_OFF: &[&str] = &["off", "on"];

/// One configuration call on `cfg`.
fn configure(lua: &Lua, cfg: &mut Cfg, name: &str, args: MultiValue) -> mlua::Result<MultiValue> {
    let one = |v: Value| MultiValue::from_iter([v]);
    let flag = |b: bool| i64::from(b);
    Ok(match name {
        "encode_sparse_array" => {
            let a = cfg_args(lua, name, args, 3)?;
            let mut convert = flag(cfg.sparse_convert);
            let r1 = enum_option(lua, name, &a[0], &mut convert, ON_OFF)?;
            cfg.sparse_convert = convert == 1;
            let r2 = int_option(lua, name, &a[1], &mut cfg.sparse_ratio, 0, i32::MAX as i64)?;
            let r3 = int_option(lua, name, &a[2], &mut cfg.sparse_safe, 0, i32::MAX as i64)?;
            MultiValue::from_iter([r1, r2, r3])
        }
        "encode_max_depth" => {
            let a = cfg_args(lua, name, args, 1)?;
            one(int_option(
                lua,
                name,
                &a[0],
                &mut cfg.encode_max_depth,
                1,
                i32::MAX as i64,
            )?)
        }
        "decode_max_depth" => {
            let a = cfg_args(lua, name, args, 1)?;
            one(int_option(
                lua,
                name,
                &a[0],
                &mut cfg.decode_max_depth,
                1,
                i32::MAX as i64,
            )?)
        }
        "encode_number_precision" => {
            let a = cfg_args(lua, name, args, 1)?;
            one(int_option(lua, name, &a[0], &mut cfg.precision, 1, 14)?)
        }
        "encode_keep_buffer" => {
            // A buffer kept between calls or not: only the setting shows.
            let a = cfg_args(lua, name, args, 1)?;
            let mut keep = flag(cfg.keep_buffer);
            let r = enum_option(lua, name, &a[0], &mut keep, ON_OFF)?;
            cfg.keep_buffer = keep == 1;
            one(r)
        }
        "encode_invalid_numbers" => {
            let a = cfg_args(lua, name, args, 1)?;
            one(enum_option(
                lua,
                name,
                &a[0],
                &mut cfg.encode_invalid,
                &["off", "on", "null"],
            )?)
        }
        _ => {
            let a = cfg_args(lua, name, args, 1)?;
            let mut on = flag(cfg.decode_invalid);
            let r = enum_option(lua, name, &a[0], &mut on, ON_OFF)?;
            cfg.decode_invalid = on == 1;
            one(r)
        }
    })
}

/// Puts lua-cjson's configuration back to its defaults: SCRIPT FLUSH,
/// where Redis starts a fresh Lua state.
pub fn reset(lua: &Lua) {
    if let Some(shared) = lua.app_data_ref::<Shared>() {
        *shared.lock().unwrap_or_else(|e| e.into_inner()) = Cfg::default();
    }
}

/// The `cjson` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let shared: Shared = Shared::default();
    lua.set_app_data(shared.clone());
    let c = shared.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, args| encode(lua, cfg_of(&c), args))?,
    )?;
    let c = shared.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, args| decode(lua, cfg_of(&c), args))?,
    )?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    for name in [
        "encode_sparse_array",
        "encode_max_depth",
        "decode_max_depth",
        "encode_number_precision",
        "encode_keep_buffer",
        "encode_invalid_numbers",
        "decode_invalid_numbers",
    ] {
        let c = shared.clone();
        let f = lua.create_function(move |lua, args: MultiValue| {
            let mut cfg = c.lock().unwrap_or_else(|e| e.into_inner());
            configure(lua, &mut cfg, name, args)
        })?;
        t.set(name, f)?;
    }
    Ok(t)
}
