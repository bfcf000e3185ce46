//! The `cjson` library as Redis bundles it (lua-cjson 2.1): numbers as
//! `%.14g`, an empty table as `{}`, JSON null as `cjson.null` (a NULL
//! light userdata), errors with lua-cjson's texts.

use std::ffi::c_void;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use crate::fmt::fmt_g;
use crate::lua_error;

const MAX_DEPTH: usize = 1000;

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

fn append_number(lua: &Lua, out: &mut Vec<u8>, v: &Value, n: f64) -> mlua::Result<()> {
    if n.is_nan() || n.is_infinite() {
        return Err(lua_error(
            lua,
            &format!("Cannot serialise {}: must not be NaN or Inf", type_name(v)),
        ));
    }
    out.extend_from_slice(fmt_g(n, 14).as_bytes());
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
fn array_length(lua: &Lua, t: &Table) -> mlua::Result<Option<usize>> {
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
    if max > (items * 2) as f64 && max > 10.0 {
        return Err(lua_error(
            lua,
            "Cannot serialise table: excessively sparse array",
        ));
    }
    Ok(Some(max as usize))
}

fn append(lua: &Lua, out: &mut Vec<u8>, v: &Value, depth: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => append_string(out, &s.as_bytes()),
        Value::Number(_) | Value::Integer(_) => {
            append_number(lua, out, v, number_of(v).unwrap_or(0.0))?
        }
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(lua_error(
                    lua,
                    &format!("Cannot serialise, excessive nesting ({depth})"),
                ));
            }
            match array_length(lua, t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let e: Value = t.raw_get(i)?;
                        append(lua, out, &e, depth)?;
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
                                append_number(lua, out, &k, number_of(&k).unwrap_or(0.0))?;
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
                        append(lua, out, &e, depth)?;
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
        match c {
            b'"' => self.string(),
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
            b'+' | b'i' | b'I' | b'n' | b'N' if is_invalid_number(rest) => number(self),
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
        if self.depth > MAX_DEPTH {
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

fn decode(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
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

fn encode(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    if args.len() != 1 {
        return Err(lua_error(
            lua,
            "bad argument #1 to 'encode' (expected 1 argument)",
        ));
    }
    let mut out = Vec::new();
    append(lua, &mut out, args.front().unwrap_or(&Value::Nil), 0)?;
    lua.create_string(&out)
}

/// The `cjson` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("encode", lua.create_function(encode)?)?;
    t.set("decode", lua.create_function(decode)?)?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    // The configuration calls are accepted; Redis's defaults stay in force.
    for name in [
        "encode_sparse_array",
        "encode_max_depth",
        "decode_max_depth",
        "encode_number_precision",
        "encode_keep_buffer",
        "encode_invalid_numbers",
        "decode_invalid_numbers",
    ] {
        t.set(name, lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    }
    Ok(t)
}
