//! The `cmsgpack` library (lua-cmsgpack 0.4.0 as Redis bundles it):
//! MessagePack with integers in the smallest encoding, doubles as float32
//! when exact, tables as arrays when their keys are exactly 1..n.

use mlua::{Lua, MultiValue, Table, Value};

use crate::lua_error;

const MAX_NESTING: usize = 16;

fn put_len(out: &mut Vec<u8>, n: u64, fix: u8, fix_max: u64, b16: u8, b32: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.push(0xd9);
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_infinite() && crate::fmt::c_i64(n) as f64 == n {
        return encode_int(out, crate::fmt::c_i64(n));
    }
    let f = n as f32;
    if f as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        _ => None,
    }
}

fn is_array(t: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i64);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        match num(&k) {
            Some(n) if n > 0.0 && !n.is_infinite() && (n as i32) as f64 == n => {
                max = max.max(n as i64);
                count += 1;
            }
            _ => return Ok(false),
        }
    }
    Ok(max == count)
}

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(_) | Value::Integer(_) => encode_number(out, num(v).unwrap_or(0.0)),
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(t)? {
                let len = t.raw_len();
                put_len(out, len as u64, 0x90, 15, 0xdc, 0xdd);
                for j in 1..=len {
                    let e: Value = t.get(j)?;
                    encode(out, &e, level + 1)?;
                }
            } else {
                let mut pairs = Vec::new();
                for pair in t.pairs::<Value, Value>() {
                    pairs.push(pair?);
                }
                put_len(out, pairs.len() as u64, 0x80, 15, 0xde, 0xdf);
                for (k, e) in &pairs {
                    encode(out, k, level + 1)?;
                    encode(out, e, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    if args.is_empty() {
        return Err(lua_error(
            lua,
            "bad argument #0 to 'pack' (MessagePack pack needs input.)",
        ));
    }
    let mut out = Vec::new();
    for a in args.iter() {
        encode(&mut out, a, 0)?;
    }
    lua.create_string(&out)
}

enum DecErr {
    Eof,
    BadFmt,
    Lua(mlua::Error),
}

impl From<mlua::Error> for DecErr {
    fn from(e: mlua::Error) -> Self {
        DecErr::Lua(e)
    }
}

struct Cur<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cur<'_> {
    fn need(&self, n: usize) -> Result<(), DecErr> {
        if self.s.len() - self.pos < n {
            Err(DecErr::Eof)
        } else {
            Ok(())
        }
    }

    fn be(&self, at: usize, n: usize) -> u64 {
        self.s[self.pos + at..self.pos + at + n]
            .iter()
            .fold(0u64, |a, &b| (a << 8) | b as u64)
    }

    fn bytes(&mut self, lua: &Lua, hdr: usize, len: usize) -> Result<Value, DecErr> {
        self.need(hdr + len)?;
        let v = lua.create_string(&self.s[self.pos + hdr..self.pos + hdr + len])?;
        self.pos += hdr + len;
        Ok(Value::String(v))
    }

    fn array(&mut self, lua: &Lua, hdr: usize, len: usize) -> Result<Value, DecErr> {
        self.pos += hdr;
        let t = lua.create_table()?;
        for i in 1..=len {
            let v = self.value(lua)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, hdr: usize, len: usize) -> Result<Value, DecErr> {
        self.pos += hdr;
        let t = lua.create_table()?;
        for _ in 0..len {
            let k = self.value(lua)?;
            let v = self.value(lua)?;
            if k.is_nil() {
                return Err(DecErr::Lua(lua_error(lua, "table index is nil")));
            }
            t.set(k, v)?;
        }
        Ok(Value::Table(t))
    }

    fn value(&mut self, lua: &Lua) -> Result<Value, DecErr> {
        self.need(1)?;
        let c = self.s[self.pos];
        let n = |v: f64| Ok(Value::Number(v));
        let fixed = |cur: &mut Self, size: usize| -> Result<u64, DecErr> {
            cur.need(1 + size)?;
            let v = cur.be(1, size);
            cur.pos += 1 + size;
            Ok(v)
        };
        match c {
            0xcc => n(fixed(self, 1)? as f64),
            0xd0 => n(fixed(self, 1)? as u8 as i8 as f64),
            0xcd => n(fixed(self, 2)? as f64),
            0xd1 => n(fixed(self, 2)? as u16 as i16 as f64),
            0xce => n(fixed(self, 4)? as f64),
            0xd2 => n(fixed(self, 4)? as u32 as i32 as f64),
            0xcf => n(fixed(self, 8)? as f64),
            0xd3 => n(fixed(self, 8)? as i64 as f64),
            0xc0 => {
                self.pos += 1;
                Ok(Value::Nil)
            }
            0xc3 | 0xc2 => {
                self.pos += 1;
                Ok(Value::Boolean(c == 0xc3))
            }
            0xca => n(f32::from_bits(fixed(self, 4)? as u32) as f64),
            0xcb => n(f64::from_bits(fixed(self, 8)?)),
            0xd9 => {
                self.need(2)?;
                let l = self.be(1, 1) as usize;
                self.bytes(lua, 2, l)
            }
            0xda => {
                self.need(3)?;
                let l = self.be(1, 2) as usize;
                self.bytes(lua, 3, l)
            }
            0xdb => {
                self.need(5)?;
                let l = self.be(1, 4) as usize;
                self.bytes(lua, 5, l)
            }
            0xdc | 0xde => {
                self.need(3)?;
                let l = self.be(1, 2) as usize;
                if c == 0xdc {
                    self.array(lua, 3, l)
                } else {
                    self.map(lua, 3, l)
                }
            }
            0xdd | 0xdf => {
                self.need(5)?;
                let l = self.be(1, 4) as usize;
                if c == 0xdd {
                    self.array(lua, 5, l)
                } else {
                    self.map(lua, 5, l)
                }
            }
            _ if c & 0x80 == 0 => {
                self.pos += 1;
                n(c as f64)
            }
            _ if c & 0xe0 == 0xe0 => {
                self.pos += 1;
                n(c as i8 as f64)
            }
            _ if c & 0xe0 == 0xa0 => self.bytes(lua, 1, (c & 0x1f) as usize),
            _ if c & 0xf0 == 0x90 => self.array(lua, 1, (c & 0xf) as usize),
            _ if c & 0xf0 == 0x80 => self.map(lua, 1, (c & 0xf) as usize),
            _ => Err(DecErr::BadFmt),
        }
    }
}

fn check_string(lua: &Lua, args: &MultiValue, fname: &str) -> mlua::Result<Vec<u8>> {
    match args.front() {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Number(_) | Value::Integer(_))) => Ok(lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()),
        other => Err(lua_error(
            lua,
            &format!(
                "bad argument #1 to '{fname}' (string expected, got {})",
                other.map_or("no value", |v| v.type_name())
            ),
        )),
    }
}

fn opt_int(lua: &Lua, args: &MultiValue, i: usize, fname: &str, df: i64) -> mlua::Result<i64> {
    match args.get(i - 1) {
        None | Some(Value::Nil) => Ok(df),
        Some(v) => match num(v).or_else(|| match v {
            Value::String(s) => s.to_str().ok().and_then(|s| s.trim().parse().ok()),
            _ => None,
        }) {
            Some(n) => Ok(crate::fmt::c_i64(n)),
            None => Err(lua_error(
                lua,
                &format!(
                    "bad argument #{i} to '{fname}' (number expected, got {})",
                    v.type_name()
                ),
            )),
        },
    }
}

fn unpack_full(lua: &Lua, s: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let decode_all = limit == 0 && offset == 0;
    let len = s.len() as i64;
    if offset < 0 || limit < 0 {
        return Err(lua_error(
            lua,
            &format!("Invalid request to unpack with offset of {offset} and limit of {len}."),
        ));
    } else if offset > len {
        return Err(lua_error(
            lua,
            &format!("Start offset {offset} greater than input length {len}."),
        ));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut c = Cur {
        s,
        pos: offset as usize,
    };
    let mut out = Vec::new();
    let mut cnt = 0;
    while c.pos < s.len() && cnt < limit {
        match c.value(lua) {
            Ok(v) => out.push(v),
            Err(DecErr::Eof) => return Err(lua_error(lua, "Missing bytes in input.")),
            Err(DecErr::BadFmt) => return Err(lua_error(lua, "Bad data format in input.")),
            Err(DecErr::Lua(e)) => return Err(e),
        }
        cnt += 1;
    }
    if !decode_all {
        let next = if c.pos == s.len() { -1 } else { c.pos as i64 };
        out.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_iter(out))
}

/// The `cmsgpack` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", lua.create_function(pack)?)?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let s = check_string(lua, &args, "unpack")?;
            unpack_full(lua, &s, 0, 0)
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let offset = opt_int(lua, &args, 2, "unpack_one", 0)?;
            let s = check_string(lua, &args, "unpack_one")?;
            unpack_full(lua, &s, 1, offset)
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let limit = match args.get(1) {
                None | Some(Value::Nil) => {
                    return Err(lua_error(
                        lua,
                        "bad argument #2 to 'unpack_limit' (number expected, got no value)",
                    ))
                }
                _ => opt_int(lua, &args, 2, "unpack_limit", 0)?,
            };
            let offset = opt_int(lua, &args, 3, "unpack_limit", 0)?;
            let s = check_string(lua, &args, "unpack_limit")?;
            unpack_full(lua, &s, limit, offset)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}
