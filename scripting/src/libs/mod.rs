//! The libraries Redis adds to Lua, written in Rust: `bit`, `cjson`,
//! `struct`, `cmsgpack`, and Redis's deterministic `math.random`.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;

use std::sync::Arc;
use std::sync::Mutex;

use mlua::{Lua, Table, Value};

/// Redis's `redisLrand48`: the 48-bit LCG of `drand48`, so scripts get
/// the same sequence for a seed on every platform.
#[derive(Clone, Copy)]
pub struct Rand48(u64);

impl Default for Rand48 {
    fn default() -> Self {
        Rand48(0x1234_ABCD_330E)
    }
}

impl Rand48 {
    /// `redisSrand48(seed)`.
    pub fn seed(seed: i32) -> Rand48 {
        Rand48((((seed as u32) as u64) << 16) | 0x330E)
    }

    /// `redisLrand48()`: 31 random bits.
    ///
    /// ```
    /// let mut r = rampart_scripting::libs::Rand48::default();
    /// assert_eq!(r.next(), 851401618);
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & 0xFFFF_FFFF_FFFF;
        (self.0 >> 17) as i32
    }
}

fn arg_int(lua: &Lua, v: Option<&Value>, n: usize, fname: &str) -> mlua::Result<i32> {
    match v {
        Some(Value::Integer(i)) => Ok(crate::fmt::c_i32(*i as f64)),
        Some(Value::Number(d)) => Ok(crate::fmt::c_i32(*d)),
        Some(Value::String(s)) => {
            match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
                Some(d) => Ok(crate::fmt::c_i32(d)),
                None => Err(mlua::Error::runtime(format!(
                    "bad argument #{n} to '{fname}' (number expected, got string)"
                ))),
            }
        }
        other => Err(crate::lua_error(
            lua,
            &format!(
                "bad argument #{n} to '{fname}' (number expected, got {})",
                other.map_or("no value", |v| v.type_name())
            ),
        )),
    }
}

fn install_random(lua: &Lua, math: &Table) -> mlua::Result<()> {
    let state = Arc::new(Mutex::new(Rand48::default()));
    let s = state.clone();
    math.set(
        "random",
        lua.create_function(move |lua, args: mlua::MultiValue| {
            let mut g = s.lock().map_err(|_| mlua::Error::runtime("rand"))?;
            let r = (g.next() % i32::MAX) as f64 / i32::MAX as f64;
            drop(g);
            match args.len() {
                0 => Ok(r),
                1 => {
                    let u = arg_int(lua, args.front(), 1, "random")?;
                    if u < 1 {
                        return Err(crate::lua_error(
                            lua,
                            "bad argument #1 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * u as f64).floor() + 1.0)
                }
                2 => {
                    let l = arg_int(lua, args.front(), 1, "random")?;
                    let u = arg_int(lua, args.get(1), 2, "random")?;
                    if l > u {
                        return Err(crate::lua_error(
                            lua,
                            "bad argument #2 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * (u as f64 - l as f64 + 1.0)).floor() + l as f64)
                }
                _ => Err(crate::lua_error(lua, "wrong number of arguments")),
            }
        })?,
    )?;
    math.set(
        "randomseed",
        lua.create_function(move |lua, args: mlua::MultiValue| {
            let seed = arg_int(lua, args.front(), 1, "randomseed")?;
            if let Ok(mut g) = state.lock() {
                *g = Rand48::seed(seed);
            }
            Ok(())
        })?,
    )?;
    Ok(())
}

/// Adds the libraries to the globals.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let math: Table = g.get("math")?;
    install_random(lua, &math)?;
    g.set("bit", bit::open(lua)?)?;
    g.set("cjson", cjson::open(lua)?)?;
    g.set("struct", structlib::open(lua)?)?;
    g.set("cmsgpack", cmsgpack::open(lua)?)?;
    Ok(())
}
