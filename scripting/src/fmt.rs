//! C's `%.<n>g` number formatting, which Redis uses where Lua numbers
//! become text (`%.17g` for command arguments and doubles, `%.14g` in
//! cjson).

/// C's `%.<precision>g`.
///
/// ```
/// use rampart_scripting::fmt::fmt_g;
/// assert_eq!(fmt_g(0.1, 17), "0.10000000000000001");
/// assert_eq!(fmt_g(1e20, 14), "1e+20");
/// assert_eq!(fmt_g(3.0, 17), "3");
/// ```
pub fn fmt_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// C's `(long long)d` on x86-64: out of range and NaN give `i64::MIN`
/// (Redis replies a script's number that way), not Rust's saturation.
///
/// ```
/// use rampart_scripting::fmt::c_i64;
/// assert_eq!(c_i64(-3.7), -3);
/// assert_eq!(c_i64(1e30), i64::MIN);
/// ```
pub fn c_i64(d: f64) -> i64 {
    if d.is_finite() && d > -9.223_372_036_854_776e18 && d < 9.223_372_036_854_776e18 {
        d as i64
    } else {
        i64::MIN
    }
}

/// C's `(int)d` as Lua's `luaL_checkint` does it (x86-64 truncation,
/// `i32::MIN` when out of range).
pub fn c_i32(d: f64) -> i32 {
    if d.is_finite() && d > -2_147_483_649.0 && d < 2_147_483_648.0 {
        d as i32
    } else {
        i32::MIN
    }
}
