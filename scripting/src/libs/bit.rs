//! The `bit` library (Lua BitOp) as Redis bundles it: 32-bit operations
//! on Lua numbers, results as signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

/// `lua_tonumber` of a value: numbers, and strings that read as numbers.
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// BitOp's `barg`: the number rounded to an integer modulo 2^32, by the
/// same 2^52+2^51 addition the C does.
///
/// ```
/// assert_eq!(rampart_scripting::libs::bit::to_bits(-1.0), 0xffff_ffff);
/// assert_eq!(rampart_scripting::libs::bit::to_bits(2.5), 2);
/// ```
pub fn to_bits(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

fn barg(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<u32> {
    let v = args.get(i);
    let n = number(v);
    let b = to_bits(n.unwrap_or(0.0));
    if b == 0 && n.is_none() {
        let got = v.map_or("no value", |v| v.type_name());
        return Err(crate::lua_error(
            lua,
            &format!(
                "bad argument #{} to '{fname}' (number expected, got {got})",
                i + 1
            ),
        ));
    }
    Ok(b)
}

fn ret(b: u32) -> f64 {
    b as i32 as f64
}

/// The `bit` table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "tobit",
        lua.create_function(|lua, a: MultiValue| Ok(ret(barg(lua, &a, 0, "tobit")?)))?,
    )?;
    t.set(
        "bnot",
        lua.create_function(|lua, a: MultiValue| Ok(ret(!barg(lua, &a, 0, "bnot")?)))?,
    )?;
    type Op = fn(u32, u32) -> u32;
    let folds: [(&'static str, Op); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        t.set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let mut b = barg(lua, &a, 0, name)?;
                for i in (1..a.len()).rev() {
                    b = op(b, barg(lua, &a, i, name)?);
                }
                Ok(ret(b))
            })?,
        )?;
    }
    let shifts: [(&'static str, Op); 5] = [
        ("lshift", |b, n| b << n),
        ("rshift", |b, n| b >> n),
        ("arshift", |b, n| ((b as i32) >> n) as u32),
        ("rol", |b, n| b.rotate_left(n)),
        ("ror", |b, n| b.rotate_right(n)),
    ];
    for (name, op) in shifts {
        t.set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let b = barg(lua, &a, 0, name)?;
                let n = barg(lua, &a, 1, name)? & 31;
                Ok(ret(op(b, n)))
            })?,
        )?;
    }
    t.set(
        "bswap",
        lua.create_function(|lua, a: MultiValue| Ok(ret(barg(lua, &a, 0, "bswap")?.swap_bytes())))?,
    )?;
    t.set(
        "tohex",
        lua.create_function(|lua, a: MultiValue| {
            let mut b = barg(lua, &a, 0, "tohex")?;
            let mut n: i32 = if a.len() < 2 {
                8
            } else {
                barg(lua, &a, 1, "tohex")? as i32
            };
            let digits: &[u8; 16] = if n < 0 {
                n = n.wrapping_neg();
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            let n = n.clamp(0, 8) as usize;
            let mut buf = vec![0u8; n];
            for i in (0..n).rev() {
                buf[i] = digits[(b & 15) as usize];
                b >>= 4;
            }
            lua.create_string(&buf)
        })?,
    )?;
    Ok(t)
}
