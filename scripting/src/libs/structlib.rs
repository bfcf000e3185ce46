//! The `struct` library (Roberto Ierusalimschy's, as Redis bundles it):
//! `struct.pack`, `struct.unpack`, `struct.size` with native little
//! endianness, C type sizes of x86-64 and 8-byte maximum alignment.

use mlua::{Lua, MultiValue, Table, Value};

use crate::lua_error;

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

fn arg_error(lua: &Lua, n: usize, fname: &str, msg: &str) -> mlua::Error {
    lua_error(lua, &format!("bad argument #{n} to '{fname}' ({msg})"))
}

fn getnum(lua: &Lua, fmt: &[u8], i: &mut usize, df: usize) -> mlua::Result<usize> {
    if !fmt.get(*i).is_some_and(|c| c.is_ascii_digit()) {
        return Ok(df);
    }
    let mut a: usize = 0;
    while let Some(c) = fmt.get(*i).filter(|c| c.is_ascii_digit()) {
        let d = (c - b'0') as usize;
        if a > (i32::MAX as usize) / 10 || a * 10 > i32::MAX as usize - d {
            return Err(lua_error(lua, "integral size overflow"));
        }
        a = a * 10 + d;
        *i += 1;
    }
    Ok(a)
}

fn optsize(lua: &Lua, opt: u8, fmt: &[u8], i: &mut usize) -> mlua::Result<usize> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => getnum(lua, fmt, i, 1)?,
        b'i' | b'I' => {
            let sz = getnum(lua, fmt, i, 4)?;
            if sz > MAXINTSIZE {
                return Err(lua_error(
                    lua,
                    &format!("integral size {sz} is larger than limit of {MAXINTSIZE}"),
                ));
            }
            sz
        }
        _ => 0,
    })
}

fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn controloptions(
    lua: &Lua,
    opt: u8,
    fmt: &[u8],
    i: &mut usize,
    h: &mut Header,
    fname: &str,
) -> mlua::Result<()> {
    match opt {
        b' ' => Ok(()),
        b'>' => {
            h.little = false;
            Ok(())
        }
        b'<' => {
            h.little = true;
            Ok(())
        }
        b'!' => {
            let a = getnum(lua, fmt, i, MAXALIGN)?;
            if a == 0 || a & (a - 1) != 0 {
                return Err(lua_error(
                    lua,
                    &format!("alignment {a} is not a power of 2"),
                ));
            }
            h.align = a;
            Ok(())
        }
        _ => Err(arg_error(
            lua,
            1,
            fname,
            &format!("invalid format option '{}'", opt as char),
        )),
    }
}

fn check_number(lua: &Lua, args: &MultiValue, n: usize, fname: &str) -> mlua::Result<f64> {
    match args.get(n - 1) {
        Some(Value::Number(x)) => Ok(*x),
        Some(Value::Integer(x)) => Ok(*x as f64),
        Some(Value::String(s)) => match s.to_str().ok().and_then(|s| s.trim().parse().ok()) {
            Some(x) => Ok(x),
            None => Err(arg_error(lua, n, fname, "number expected, got string")),
        },
        other => Err(arg_error(
            lua,
            n,
            fname,
            &format!(
                "number expected, got {}",
                other.map_or("no value", |v| v.type_name())
            ),
        )),
    }
}

fn check_string(lua: &Lua, args: &MultiValue, n: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    match args.get(n - 1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Number(_) | Value::Integer(_))) => Ok(lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()),
        other => Err(arg_error(
            lua,
            n,
            fname,
            &format!(
                "string expected, got {}",
                other.map_or("no value", |v| v.type_name())
            ),
        )),
    }
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let fmt = check_string(lua, &args, 1, "pack")?;
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < fmt.len() && fmt[i] != 0 {
        let opt = fmt[i];
        i += 1;
        let mut size = optsize(lua, opt, &fmt, &mut i)?;
        let toalign = gettoalign(out.len(), &h, opt, size);
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                let mut value: u64 = if n < 0.0 {
                    crate::fmt::c_i64(n) as u64
                } else if n >= 18_446_744_073_709_551_616.0 || n.is_nan() {
                    0
                } else {
                    n as u64
                };
                let mut buf = vec![0u8; size];
                for k in 0..size {
                    let idx = if h.little { k } else { size - 1 - k };
                    buf[idx] = (value & 0xff) as u8;
                    value >>= 8;
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(lua, &args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                });
            }
            b'd' => {
                let d = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_string(lua, &args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(arg_error(lua, arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => controloptions(lua, opt, &fmt, &mut i, &mut h, "pack")?,
        }
    }
    lua.create_string(&out)
}

fn getinteger(buf: &[u8], little: bool, signed: bool) -> f64 {
    let size = buf.len();
    let mut l: u64 = 0;
    for k in 0..size {
        let b = if little { buf[size - 1 - k] } else { buf[k] };
        l = l.checked_shl(8).unwrap_or(0) | b as u64;
    }
    if !signed {
        return l as f64;
    }
    let mask = u64::MAX
        .checked_shl((size * 8).saturating_sub(1) as u32)
        .unwrap_or(0);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = check_string(lua, &args, 1, "unpack")?;
    let data = check_string(lua, &args, 2, "unpack")?;
    let ld = data.len();
    let mut pos = match args.get(2) {
        None | Some(Value::Nil) => 1usize,
        Some(_) => {
            let p = check_number(lua, &args, 3, "unpack")?;
            if p < 1.0 {
                return Err(arg_error(lua, 3, "unpack", "offset must be 1 or greater"));
            }
            p as usize
        }
    };
    pos -= 1;
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut out: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < fmt.len() && fmt[i] != 0 {
        let opt = fmt[i];
        i += 1;
        let mut size = optsize(lua, opt, &fmt, &mut i)?;
        pos += gettoalign(pos, &h, opt, size);
        if !(size <= ld && pos <= ld - size) {
            return Err(arg_error(lua, 2, "unpack", "data string too short"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let v = getinteger(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                out.push(Value::Number(v));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f as f64));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(d));
            }
            b'c' => {
                if size == 0 {
                    let prev = match out.last() {
                        Some(Value::Number(n)) => Some(*n),
                        Some(Value::Integer(n)) => Some(*n as f64),
                        Some(Value::String(s)) => {
                            s.to_str().ok().and_then(|s| s.trim().parse().ok())
                        }
                        _ => None,
                    };
                    let Some(n) = prev else {
                        return Err(lua_error(lua, "format 'c0' needs a previous size"));
                    };
                    out.pop();
                    size = n as usize;
                    if !(size <= ld && pos <= ld - size) {
                        return Err(arg_error(lua, 2, "unpack", "data string too short"));
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(lua_error(lua, "unfinished string in data"));
                };
                size = e + 1;
                out.push(Value::String(lua.create_string(&data[pos..pos + e])?));
            }
            _ => controloptions(lua, opt, &fmt, &mut i, &mut h, "unpack")?,
        }
        pos += size;
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_iter(out))
}

fn size(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let fmt = check_string(lua, &args, 1, "size")?;
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut pos = 0usize;
    let mut i = 0;
    while i < fmt.len() && fmt[i] != 0 {
        let opt = fmt[i];
        i += 1;
        let size = optsize(lua, opt, &fmt, &mut i)?;
        pos += gettoalign(pos, &h, opt, size);
        if opt == b's' {
            return Err(arg_error(lua, 1, "size", "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(lua, opt, &fmt, &mut i, &mut h, "size")?;
        }
        pos += size;
    }
    Ok(pos as f64)
}

/// The `struct` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", lua.create_function(pack)?)?;
    t.set("unpack", lua.create_function(unpack)?)?;
    t.set("size", lua.create_function(size)?)?;
    Ok(t)
}
