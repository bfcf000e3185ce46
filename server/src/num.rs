//! Number parsing and formatting with Redis's exact rules and texts.

/// Parses an i64 as Redis's `string2ll` (no spaces, no `+`, no leading
/// zeros).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    rampart_keyspace::value::parse_canonical_i64(s)
}

/// Parses a double as Redis's `getDoubleFromObject` (strtod, whole string,
/// no leading space, NaN refused).
///
/// ```
/// use rampart_server::num::parse_f64;
/// assert_eq!(parse_f64(b"1.5e3"), Some(1500.0));
/// assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
/// assert_eq!(parse_f64(b" 1"), None);
/// assert_eq!(parse_f64(b"nan"), None);
/// ```
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_start_matches(['+', '-']);
    if t.starts_with("nan") {
        return None;
    }
    let v: f64 = match t {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        _ => {
            // Rust accepts forms strtod refuses ("infinity" spelled oddly is
            // handled above); refuse a second sign, as strtod would.
            if lower.len() - t.len() > 1 {
                return None;
            }
            lower.parse().ok()?
        }
    };
    (!v.is_nan()).then_some(v)
}

/// Formats a double like C's `%.17g`, which Redis 7.0 uses for double
/// replies (`inf` and `-inf` spelled out).
///
/// ```
/// use rampart_server::num::fmt_double;
/// assert_eq!(fmt_double(1.1), "1.1000000000000001");
/// assert_eq!(fmt_double(3.0), "3");
/// assert_eq!(fmt_double(1e20), "1e+20");
/// assert_eq!(fmt_double(f64::INFINITY), "inf");
/// ```
pub fn fmt_double(d: f64) -> String {
    fmt_g(d, 17)
}

/// C's `%.<precision>g`.
pub fn fmt_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
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

/// Formats the result of INCRBYFLOAT: Redis prints a long double with
/// `%.17Lf` and strips trailing zeros; on a double the shortest round-trip
/// text gives the same digits for the values people use.
pub fn fmt_incrbyfloat(d: f64) -> String {
    let s = format!("{d}");
    if s.contains('e') {
        format!("{d:.17}").trim_end_matches('0').trim_end_matches('.').into()
    } else {
        s
    }
}

/// Parses a memory size as in redis.conf: `1gb`, `512mb`, `100k`, plain bytes.
///
/// ```
/// use rampart_server::num::parse_memory;
/// assert_eq!(parse_memory("1gb"), Some(1 << 30));
/// assert_eq!(parse_memory("1g"), Some(1_000_000_000));
/// assert_eq!(parse_memory("-1"), Some(-1));
/// ```
pub fn parse_memory(s: &str) -> Option<i64> {
    let l = s.to_ascii_lowercase();
    let units: [(&str, i64); 8] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = l.strip_suffix(suffix) {
            if suffix.is_empty() || !num.is_empty() {
                let n: i64 = num.parse().ok()?;
                return n.checked_mul(mul);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(-2.5), "-2.5");
        assert_eq!(fmt_double(1e-5), "1.0000000000000001e-05");
        assert_eq!(fmt_double(123456789.0), "123456789");
        assert_eq!(fmt_double(1e17), "1e+17");
        assert_eq!(fmt_double(12345678901234567.0), "12345678901234568");
    }

    #[test]
    fn incrbyfloat_format() {
        assert_eq!(fmt_incrbyfloat(10.6), "10.6");
        assert_eq!(fmt_incrbyfloat(5200.0), "5200");
        assert_eq!(fmt_incrbyfloat(1e21), "1000000000000000000000");
    }
}
