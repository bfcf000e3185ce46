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
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
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
}

/// Whether `body` (sign removed, lower case) is a whole number strtold
/// would consume entirely: decimal `d*.d*[e[+-]d+]` or hex `0xh*.h*[p[+-]d+]`.
fn strtold_syntax(body: &str) -> bool {
    let (hex, rest, exp_char): (bool, &str, char) = match body.strip_prefix("0x") {
        Some(r) => (true, r, 'p'),
        None => (false, body, 'e'),
    };
    let (mant, exp) = match rest.split_once(exp_char) {
        Some((m, e)) => (m, Some(e)),
        None => (rest, None),
    };
    let digit = |c: char| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return false;
    }
    if !int.chars().all(digit) || !frac.chars().all(digit) {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    }
}

/// An x87 80-bit extended-precision number, the `long double` Redis uses
/// for INCRBYFLOAT on x86-64, emulated in software so results match Redis
/// digit for digit on any machine.
///
/// ```
/// use rampart_server::num::LongDouble;
/// let a = LongDouble::parse(b"0.1").unwrap();
/// let b = LongDouble::parse(b"0.2").unwrap();
/// assert_eq!(a.add(&b).unwrap().to_human_string(), "0.3");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LongDouble(rustc_apfloat::ieee::X87DoubleExtended);

impl LongDouble {
    /// Zero.
    pub fn zero() -> LongDouble {
        use rustc_apfloat::Float;
        LongDouble(rustc_apfloat::ieee::X87DoubleExtended::ZERO)
    }

    /// Parses like Redis's `string2ld` (strtold over the whole string; no
    /// leading space; NaN, overflow and underflow to zero refused).
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        use rustc_apfloat::{Float, Round, Status};
        type X = rustc_apfloat::ieee::X87DoubleExtended;
        if s.is_empty() || s.len() >= 5 * 1024 {
            return None;
        }
        let text = std::str::from_utf8(s).ok()?;
        if text.starts_with(|c: char| c.is_ascii_whitespace()) {
            return None;
        }
        let lower = text.to_ascii_lowercase();
        let (neg, body) = match lower.as_bytes()[0] {
            b'-' => (true, &lower[1..]),
            b'+' => (false, &lower[1..]),
            _ => (false, &lower[..]),
        };
        if body == "inf" || body == "infinity" {
            let inf = X::INFINITY;
            return Some(LongDouble(if neg { -inf } else { inf }));
        }
        if !strtold_syntax(body) {
            return None;
        }
        // strtold takes hex floats without a binary exponent; apfloat wants one.
        let text = if body.starts_with("0x") && !body.contains('p') {
            format!("{lower}p0")
        } else {
            lower.clone()
        };
        let parsed = X::from_str_r(&text, Round::NearestTiesToEven).ok()?;
        let v = parsed.value;
        if v.is_nan() || v.is_infinite() {
            return None;
        }
        if v.is_zero() && parsed.status.contains(Status::UNDERFLOW) {
            return None;
        }
        Some(LongDouble(v))
    }

    /// `self + other`, or `None` when the result is NaN or infinite.
    pub fn add(&self, other: &LongDouble) -> Option<LongDouble> {
        use rustc_apfloat::Float;
        let r = (self.0 + other.0).value;
        (!r.is_nan() && !r.is_infinite()).then_some(LongDouble(r))
    }

    /// Formats as Redis's `ld2string(…, LD_STR_HUMAN)`: `%.17Lf`, then
    /// trailing zeros (and a trailing dot) removed, "-0" printed as "0".
    pub fn to_human_string(&self) -> String {
        use num_bigint::BigUint;
        use rustc_apfloat::Float;
        let bits = self.0.to_bits();
        let neg = (bits >> 79) & 1 == 1;
        let exp = ((bits >> 64) & 0x7fff) as i64;
        let sig = (bits & 0xffff_ffff_ffff_ffff) as u64;
        // value = sig * 2^(e2); a denormal's exponent field 0 means 1-16383.
        let e2 = if exp == 0 {
            1 - 16383 - 63
        } else {
            exp - 16383 - 63
        };
        let scale = BigUint::from(10u32).pow(17);
        let mut n = BigUint::from(sig) * &scale;
        if e2 >= 0 {
            n <<= e2 as usize;
        } else {
            let shift = (-e2) as usize;
            let q: BigUint = &n >> shift;
            let r: BigUint = &n - (&q << shift);
            let half = BigUint::from(1u8) << (shift - 1);
            let odd = q.bit(0);
            n = if r > half || (r == half && odd) {
                q + 1u8
            } else {
                q
            };
        }
        let digits = n.to_string();
        let digits = format!("{digits:0>18}");
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        s.push_str(int);
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        if s == "-0" {
            s = "0".into();
        }
        s
    }
}

#[cfg(test)]
mod long_double_tests {
    use super::LongDouble;

    fn incr(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes())?;
        let b = LongDouble::parse(b.as_bytes())?;
        Some(a.add(&b)?.to_human_string())
    }

    #[test]
    fn matches_redis_on_x86_64() {
        // Results taken from redis-server 7.0 on x86-64.
        assert_eq!(incr("10.50", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("10.6", "-5").as_deref(), Some("5.6"));
        assert_eq!(incr("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(incr("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(incr("1", "-1").as_deref(), Some("0"));
        assert_eq!(incr("-0.5", "0.25").as_deref(), Some("-0.25"));
        assert_eq!(
            incr("1e30", "1").as_deref(),
            Some("1000000000000000000024696061952")
        );
        assert_eq!(incr("3.0", "1.5e-7").as_deref(), Some("3.00000015"));
        assert_eq!(incr("0x10", "1").as_deref(), Some("17"));
        assert_eq!(incr(".5", "1.").as_deref(), Some("1.5"));
        assert!(incr("inf", "1").is_none());
        assert!(LongDouble::parse(b"nan").is_none());
        assert!(LongDouble::parse(b" 1").is_none());
        assert!(LongDouble::parse(b"1e").is_none());
        assert!(LongDouble::parse(b"abc").is_none());
    }
}
