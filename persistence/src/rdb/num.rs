//! Number texts as Redis 7.0 writes and reads them inside RDB values.

/// Redis 7.0's `d2string`: integral values inside (-2^52, 2^52) as
/// integers, `-0` and `0`, `inf`/`-inf`/`nan`, everything else as C's
/// `%.17g`. Used for sorted-set scores inside listpacks.
pub fn d2string(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    if v > -4503599627370495.0 && v < 4503599627370496.0 && v == (v as i64) as f64 {
        return itoa::Buffer::new().format(v as i64).to_string();
    }
    fmt_17g(v)
}

/// C's `%.17g` for a finite, non-zero double.
pub fn fmt_17g(d: f64) -> String {
    const P: i32 = 17;
    let sci = format!("{:.*e}", (P - 1) as usize, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..P).contains(&exp) {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (P - 1 - exp).max(0) as usize;
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

/// Parses a double as `strtod`/`sscanf("%lg")` would for the texts Redis
/// writes (decimal, exponent, `inf`, `-inf`, `nan`); leading blanks are
/// skipped. `None` for anything else.
pub fn parse_double(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if s.is_empty() || s.len() > 400 {
        return None;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let neg = s.starts_with('-');
    let lower = body.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => {
            return Some(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    // Only plain decimal syntax from here (Rust also accepts "inf" and
    // "nan" spellings, handled above).
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d2string_matches_redis() {
        assert_eq!(d2string(1.5), "1.5");
        assert_eq!(d2string(0.1), "0.10000000000000001");
        assert_eq!(d2string(3.0), "3");
        assert_eq!(d2string(-0.0), "-0");
        assert_eq!(d2string(1e20), "1e+20");
        assert_eq!(d2string(4503599627370496.0), "4503599627370496");
        assert_eq!(d2string(1e-7), "9.9999999999999995e-08");
        assert_eq!(d2string(f64::NEG_INFINITY), "-inf");
        assert_eq!(d2string(123456.789), "123456.789");
    }

    #[test]
    fn parses() {
        assert_eq!(parse_double(b"1.5"), Some(1.5));
        assert_eq!(parse_double(b" -2e3"), Some(-2000.0));
        assert_eq!(parse_double(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_double(b"nan").is_some_and(f64::is_nan));
        assert_eq!(parse_double(b"x"), None);
        assert_eq!(parse_double(b""), None);
    }
}
