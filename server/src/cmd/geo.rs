//! Geo commands: GEOADD GEODIST GEOHASH GEOPOS GEOSEARCH GEOSEARCHSTORE
//! GEORADIUS GEORADIUSBYMEMBER GEORADIUS_RO GEORADIUSBYMEMBER_RO, with
//! Redis 7.0's replies and error texts (`geo.c`, `geohash.c`,
//! `geohash_helper.c`).
//!
//! A geo set is a plain sorted set whose scores are 52-bit interleaved
//! geohashes (26 bits of latitude over [-85.05112878, 85.05112878], 26 of
//! longitude over [-180, 180]). Searches cover the shape with the cell of
//! the center and its eight neighbours at a step chosen from the radius,
//! scan each cell's score range and keep the points inside the shape.
//! Everything that decides which points are returned, in which order and
//! how numbers are printed follows Redis step by step (same floating-point
//! operations in the same order, glibc's stable merge sort for full sorts
//! and Redis's partial quicksort for `COUNT`), so replies match byte for
//! byte.

use bytes::Bytes;
use rampart_keyspace::zset::{ScoreRange, ZSet};

use super::flags::*;
use super::zset::{parse_score, read, store_result, zadd};
use super::{err, spec, CommandSpec, Ctx};

const G: &str = "geo";

// ---------------------------------------------------------------- geohash

const LONG_MIN: f64 = -180.0;
const LONG_MAX: f64 = 180.0;
const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
/// 26 bits per coordinate: 52-bit scores, exact in a double.
const STEP_MAX: u8 = 26;
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A geohash cell: `step` bits per coordinate, interleaved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Bits {
    bits: u64,
    step: u8,
}

impl Bits {
    const ZERO: Bits = Bits { bits: 0, step: 0 };

    /// Redis's `HASHISZERO`: a neighbour excluded from the search.
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The cell's first 52-bit score (`geohashAlign52Bits`).
    fn align52(&self) -> u64 {
        self.bits << (52 - u32::from(self.step) * 2)
    }
}

#[derive(Clone, Copy, Debug)]
struct Range {
    min: f64,
    max: f64,
}

const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The rectangle a cell covers.
#[derive(Clone, Copy, Debug)]
struct Area {
    lon: Range,
    lat: Range,
}

/// Spreads the bits of `x` to the even positions and those of `y` to the
/// odd ones.
fn interleave64(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// The inverse of [`interleave64`]: even bits in the low half, odd bits in
/// the high half.
fn deinterleave64(v: u64) -> u64 {
    fn squash(mut v: u64) -> u64 {
        v &= 0x5555_5555_5555_5555;
        v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
        v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
        (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF
    }
    squash(v) | (squash(v >> 1) << 32)
}

/// `geohashEncode`: `None` outside the ranges.
fn encode(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Bits> {
    if !(1..=32).contains(&step) {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_r.min) / (lat_r.max - lat_r.min) * scale;
    let lon_offset = (lon - lon_r.min) / (lon_r.max - lon_r.min) * scale;
    // Both offsets are in [0, 2^step]: C's double-to-uint32 truncation.
    Some(Bits {
        bits: interleave64(lat_offset as u32, lon_offset as u32),
        step,
    })
}

/// `geohashDecode` over the geo ranges.
fn decode(hash: Bits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    let lon_scale = LONG_RANGE.max - LONG_RANGE.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    // `ilato + 1` is uint32 arithmetic in C: it wraps.
    Some(Area {
        lat: Range {
            min: LAT_RANGE.min + (f64::from(ilato) * 1.0 / div) * lat_scale,
            max: LAT_RANGE.min + (f64::from(ilato.wrapping_add(1)) * 1.0 / div) * lat_scale,
        },
        lon: Range {
            min: LONG_RANGE.min + (f64::from(ilono) * 1.0 / div) * lon_scale,
            max: LONG_RANGE.min + (f64::from(ilono.wrapping_add(1)) * 1.0 / div) * lon_scale,
        },
    })
}

/// The center of a cell, clamped to the valid ranges
/// (`geohashDecodeToLongLatWGS84`).
fn decode_to_lonlat(hash: Bits) -> Option<(f64, f64)> {
    let area = decode(hash)?;
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

/// x86-64's `cvttsd2si`: truncation, or the "integer indefinite" value
/// for NaN and out-of-range inputs.
fn cvttsd2si(d: f64) -> i64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || !(-TWO63..TWO63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// C's `(uint64_t)double` as gcc compiles it for x86-64, so a score that
/// is not a geohash (negative, huge, infinite) decodes to the same cell as
/// in Redis.
fn c_double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d >= TWO63 {
        (cvttsd2si(d - TWO63) as u64) ^ (1 << 63)
    } else {
        cvttsd2si(d) as u64
    }
}

/// A member's position from its score (`decodeGeohash`).
fn decode_score(score: f64) -> Option<(f64, f64)> {
    decode_to_lonlat(Bits {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    })
}

/// The 52-bit score of a position (`geohashEncodeWGS84` + align).
fn encode_score(lon: f64, lat: f64) -> Option<u64> {
    encode(LONG_RANGE, LAT_RANGE, lon, lat, STEP_MAX).map(|h| h.align52())
}

fn move_x(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    hash.bits = x | y;
}

fn move_y(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> shift;
    hash.bits = x | y;
}

/// The eight neighbours of a cell.
#[derive(Clone, Copy, Debug)]
struct Neighbors {
    north: Bits,
    south: Bits,
    east: Bits,
    west: Bits,
    north_east: Bits,
    north_west: Bits,
    south_east: Bits,
    south_west: Bits,
}

fn neighbors(hash: Bits) -> Neighbors {
    let at = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        north_east: at(1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

/// The distance in meters between two points on the same meridian
/// (`geohashGetLatDistance`).
fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Great-circle distance in meters (haversine, Redis 7.0's
/// `geohashGetDistance`, which takes the meridian shortcut when the
/// longitudes give a zero sine).
fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// The precision of the nine cells of a search (`geohashEstimateStepsByRadius`).
fn estimate_steps(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

// ---------------------------------------------------------------- shapes

#[derive(Clone, Copy, Debug)]
enum Kind {
    Circle { radius: f64 },
    Rect { width: f64, height: f64 },
}

/// A search area: its center, its size in the request's unit, and the
/// unit's size in meters.
#[derive(Clone, Copy, Debug)]
struct Shape {
    kind: Kind,
    lon: f64,
    lat: f64,
    conversion: f64,
}

/// The nine cells of a search: the center's, then north, south, east,
/// west, north-east, north-west, south-east, south-west (zeroed when
/// useless), in the order Redis scans them.
fn search_cells(shape: &Shape) -> [Bits; 9] {
    let (h, w) = match shape.kind {
        Kind::Circle { radius } => (radius, radius),
        Kind::Rect { width, height } => (height / 2.0, width / 2.0),
    };
    let height = shape.conversion * h;
    let width = shape.conversion * w;
    let (longitude, latitude) = (shape.lon, shape.lat);
    // geohashBoundingBox
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let southern = latitude < 0.0;
    let min_lon = if southern {
        longitude - long_delta_bottom
    } else {
        longitude - long_delta_top
    };
    let max_lon = if southern {
        longitude + long_delta_bottom
    } else {
        longitude + long_delta_top
    };
    let min_lat = latitude - lat_delta;
    let max_lat = latitude + lat_delta;

    let radius_meters = match shape.kind {
        Kind::Circle { radius } => radius,
        Kind::Rect { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;

    let mut steps = estimate_steps(radius_meters, latitude);
    let cell = |steps: u8| -> Option<(Bits, Neighbors, Area)> {
        let hash = encode(LONG_RANGE, LAT_RANGE, longitude, latitude, steps)?;
        let n = neighbors(hash);
        let area = decode(hash)?;
        Some((hash, n, area))
    };
    // The center was validated (or decoded from a member), so it encodes;
    // should it not, Redis's zeroed hash decodes to nothing.
    let Some((mut hash, mut n, mut area)) = cell(steps) else {
        return [Bits::ZERO; 9];
    };
    let decrease = {
        let north = decode(n.north);
        let south = decode(n.south);
        let east = decode(n.east);
        let west = decode(n.west);
        north.is_some_and(|a| a.lat.max < max_lat)
            || south.is_some_and(|a| a.lat.min > min_lat)
            || east.is_some_and(|a| a.lon.max < max_lon)
            || west.is_some_and(|a| a.lon.min > min_lon)
    };
    if steps > 1 && decrease {
        steps -= 1;
        match cell(steps) {
            Some(c) => (hash, n, area) = c,
            None => return [Bits::ZERO; 9],
        }
    }
    if steps >= 2 {
        if area.lat.min < min_lat {
            n.south = Bits::ZERO;
            n.south_west = Bits::ZERO;
            n.south_east = Bits::ZERO;
        }
        if area.lat.max > max_lat {
            n.north = Bits::ZERO;
            n.north_east = Bits::ZERO;
            n.north_west = Bits::ZERO;
        }
        if area.lon.min < min_lon {
            n.west = Bits::ZERO;
            n.south_west = Bits::ZERO;
            n.north_west = Bits::ZERO;
        }
        if area.lon.max > max_lon {
            n.east = Bits::ZERO;
            n.south_east = Bits::ZERO;
            n.north_east = Bits::ZERO;
        }
    }
    [
        hash,
        n.north,
        n.south,
        n.east,
        n.west,
        n.north_east,
        n.north_west,
        n.south_east,
        n.south_west,
    ]
}

/// Whether a point (a member's score) is inside the shape: its position
/// and distance from the center (`geoWithinShape`).
fn within(shape: &Shape, score: f64) -> Option<(f64, f64, f64)> {
    let (x2, y2) = decode_score(score)?;
    let (x1, y1) = (shape.lon, shape.lat);
    let dist = match shape.kind {
        Kind::Circle { radius } => {
            let d = distance(x1, y1, x2, y2);
            if d > radius * shape.conversion {
                return None;
            }
            d
        }
        Kind::Rect { width, height } => {
            let width_m = width * shape.conversion;
            let height_m = height * shape.conversion;
            // The cheap latitude test first, as Redis.
            if lat_distance(y2, y1) > height_m / 2.0 {
                return None;
            }
            if distance(x2, y2, x1, y2) > width_m / 2.0 {
                return None;
            }
            distance(x1, y1, x2, y2)
        }
    };
    Some((x2, y2, dist))
}

/// One result of a search.
#[derive(Clone, Debug)]
struct Point {
    lon: f64,
    lat: f64,
    dist: f64,
    score: f64,
    member: Vec<u8>,
}

/// Appends the points of the nine cells that are inside the shape, in
/// scan order, stopping at `limit` points when it is not 0 (ANY).
fn points_in_shape(z: &ZSet, shape: &Shape, limit: usize, out: &mut Vec<Point>) {
    let cells = search_cells(shape);
    let mut last_processed = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        // With huge radii adjacent cells can be the same one: skip a cell
        // equal to the one scanned just before (not the center, as Redis).
        if last_processed != 0 && *cell == cells[last_processed] {
            continue;
        }
        if limit != 0 && out.len() >= limit {
            break;
        }
        let min = cell.align52() as f64;
        let max = Bits {
            bits: cell.bits.wrapping_add(1),
            step: cell.step,
        }
        .align52() as f64;
        let range = ScoreRange {
            min,
            minex: false,
            max,
            maxex: true,
        };
        let start = z.score_start(&range);
        for (m, s) in z.iter_from(start, false) {
            if !range.lte_max(s) {
                break;
            }
            if let Some((lon, lat, dist)) = within(shape, s) {
                out.push(Point {
                    lon,
                    lat,
                    dist,
                    score: s,
                    member: m.to_vec(),
                });
            }
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
        last_processed = i;
    }
}

// ---------------------------------------------------------------- sorting

/// Redis's `sort_gp_asc` (C qsort convention).
fn cmp_asc(a: &Point, b: &Point) -> i32 {
    if a.dist > b.dist {
        1
    } else if a.dist == b.dist {
        0
    } else {
        -1
    }
}

fn cmp_desc(a: &Point, b: &Point) -> i32 {
    -cmp_asc(a, b)
}

type Cmp = fn(&Point, &Point) -> i32;

/// glibc's `qsort` (a top-down stable merge sort, `msort_with_tmp`), so
/// equal distances keep their scan order as in Redis.
fn msort(v: &mut Vec<Point>, cmp: Cmp) {
    fn sort(v: &[Point], idx: &mut [usize], tmp: &mut Vec<usize>, cmp: Cmp) {
        let n = idx.len();
        if n <= 1 {
            return;
        }
        let n1 = n / 2;
        {
            let (b1, b2) = idx.split_at_mut(n1);
            sort(v, b1, tmp, cmp);
            sort(v, b2, tmp, cmp);
        }
        tmp.clear();
        let (mut i, mut j) = (0, n1);
        while i < n1 && j < n {
            if cmp(&v[idx[i]], &v[idx[j]]) <= 0 {
                tmp.push(idx[i]);
                i += 1;
            } else {
                tmp.push(idx[j]);
                j += 1;
            }
        }
        tmp.extend_from_slice(&idx[i..n1]);
        let merged = tmp.len();
        idx[..merged].copy_from_slice(tmp);
    }
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let mut tmp = Vec::with_capacity(v.len());
    sort(v, &mut idx, &mut tmp, cmp);
    let mut slots: Vec<Option<Point>> = std::mem::take(v).into_iter().map(Some).collect();
    v.extend(idx.into_iter().filter_map(|i| slots[i].take()));
}

/// Redis's partial sort over `cmp`, as [`crate::pqsort::pqsort`] wants it.
fn pqsort(v: &mut [Point], cmp: Cmp, lrange: usize, rrange: usize) {
    let cmp = |a: &Point, b: &Point| cmp(a, b).cmp(&0);
    crate::pqsort::pqsort(v, &cmp, lrange as i64, rrange as i64);
}

// ---------------------------------------------------------------- replies

/// C's `strcasecmp` against an argument: the argument ends at its first
/// NUL, as a C string does.
fn is(arg: &[u8], word: &str) -> bool {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    arg[..end].eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's distance format (`addReplyDoubleDistance`, which calls
/// `fixedpoint_d2string(…, 4)`): the value times 10^4 rounded with
/// `llrint` (ties to even, x86's "integer indefinite" for NaN and
/// overflow), printed with four decimals. Not quite `%.4f`: the product
/// is rounded, not the exact decimal value.
fn fmt_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let r = (d * 10000.0).round_ties_even();
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let svalue = if r.is_nan() || !(-TWO63..TWO63).contains(&r) {
        i64::MIN
    } else {
        r as i64
    };
    let sign = if svalue < 0 { "-" } else { "" };
    let value = svalue.unsigned_abs();
    format!("{sign}{}.{:04}", value / 10000, value % 10000)
}

/// `%.17Lf` without trailing zeros (Redis's `LD_STR_HUMAN`): a double
/// widens to a long double exactly, so its exact decimal expansion rounded
/// at 17 places is what Redis prints.
fn fmt_human(d: f64) -> String {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// A coordinate (`addReplyHumanLongDouble`): a bulk string in RESP2, a
/// double in RESP3.
fn reply_coord(ctx: &mut Ctx<'_>, d: f64) {
    let s = fmt_human(d);
    if ctx.out.resp3() {
        ctx.out.raw(format!(",{s}\r\n").as_bytes());
    } else {
        ctx.out.bulk(s.as_bytes());
    }
}

/// Meters per unit (`extractUnitOrReply`).
fn unit_or_reply(ctx: &mut Ctx<'_>, i: usize) -> Option<f64> {
    let u = &ctx.args[i];
    let f = if is(u, "m") {
        1.0
    } else if is(u, "km") {
        1000.0
    } else if is(u, "ft") {
        0.3048
    } else if is(u, "mi") {
        1609.34
    } else {
        ctx.out
            .error("ERR unsupported unit provided. please use M, KM, FT, MI");
        return None;
    };
    Some(f)
}

/// Argument `i` as a double (`getDoubleFromObjectOrReply` with a message).
fn double_or_reply(ctx: &mut Ctx<'_>, i: usize, msg: &str) -> Option<f64> {
    let v = parse_score(&ctx.args[i]);
    if v.is_none() {
        ctx.out.error(msg);
    }
    v
}

/// Arguments `i`, `i + 1` as a valid longitude, latitude
/// (`extractLongLatOrReply`).
fn lonlat_or_reply(ctx: &mut Ctx<'_>, i: usize) -> Option<(f64, f64)> {
    let lon = double_or_reply(ctx, i, err::NOT_FLOAT)?;
    let lat = double_or_reply(ctx, i + 1, err::NOT_FLOAT)?;
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        ctx.out.error(&format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        ));
        return None;
    }
    Some((lon, lat))
}

/// `radius unit` at `i` (`extractDistanceOrReply`): (radius, meters per unit).
fn radius_or_reply(ctx: &mut Ctx<'_>, i: usize) -> Option<(f64, f64)> {
    let r = double_or_reply(ctx, i, "ERR need numeric radius")?;
    if r < 0.0 {
        ctx.out.error("ERR radius cannot be negative");
        return None;
    }
    let conv = unit_or_reply(ctx, i + 1)?;
    Some((r, conv))
}

/// `width height unit` at `i` (`extractBoxOrReply`).
fn box_or_reply(ctx: &mut Ctx<'_>, i: usize) -> Option<(f64, f64, f64)> {
    let w = double_or_reply(ctx, i, "ERR need numeric width")?;
    let h = double_or_reply(ctx, i + 1, "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        ctx.out.error("ERR height or width cannot be negative");
        return None;
    }
    let conv = unit_or_reply(ctx, i + 2)?;
    Some((w, h, conv))
}

// ---------------------------------------------------------------- commands

/// `GEOADD key [NX|XX] [CH] longitude latitude member [...]`: ZADD with the
/// positions turned into scores, as Redis runs it (so ZADD's replies and
/// errors). It replicates as itself, which is deterministic; Redis
/// rewrites it to the ZADD it ran.
fn geoadd(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let mut longidx = 2;
    let (mut nx, mut xx) = (false, false);
    while longidx < args.len() {
        let a = &args[longidx];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        longidx += 1;
    }
    if !(args.len() - longidx).is_multiple_of(3) || (xx && nx) {
        return ctx.out.error(err::SYNTAX);
    }
    let mut zargs = Vec::with_capacity(longidx + (args.len() - longidx) / 3 * 2);
    zargs.push(Bytes::from_static(b"zadd"));
    zargs.extend(args[1..longidx].iter().cloned());
    for (k, e) in args[longidx..].chunks_exact(3).enumerate() {
        let Some((lon, lat)) = lonlat_or_reply(ctx, longidx + 3 * k) else {
            return;
        };
        // A validated position always encodes.
        let Some(bits) = encode_score(lon, lat) else {
            return ctx.out.error(err::SYNTAX);
        };
        zargs.push(Bytes::from(bits.to_string()));
        zargs.push(e[2].clone());
    }
    let mut sub = Ctx {
        srv: ctx.srv,
        client: &mut *ctx.client,
        out: &mut *ctx.out,
        args: &zargs,
        now: ctx.now,
        cmd: ctx.cmd,
        in_exec: ctx.in_exec,
        propagated: false,
    };
    zadd(&mut sub);
}

/// `GEODIST key member1 member2 [M|KM|FT|MI]`
fn geodist(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    let mut to_meter = 1.0;
    if args.len() == 5 {
        let Some(u) = unit_or_reply(ctx, 4) else {
            return;
        };
        to_meter = u;
    } else if args.len() > 5 {
        return ctx.out.error(err::SYNTAX);
    }
    read(ctx, &args[1], |ctx, z| {
        let Some(z) = z else {
            return ctx.out.null();
        };
        let (Some(s1), Some(s2)) = (z.score(&args[2]), z.score(&args[3])) else {
            return ctx.out.null();
        };
        match (decode_score(s1), decode_score(s2)) {
            (Some((x1, y1)), Some((x2, y2))) => {
                let d = distance(x1, y1, x2, y2) / to_meter;
                ctx.out.bulk(fmt_distance(d).as_bytes());
            }
            _ => ctx.out.null(),
        }
    });
}

/// `GEOHASH key [member ...]`: standard 11-character geohashes, computed
/// over latitudes [-90, 90] from the decoded position.
fn geohash(ctx: &mut Ctx<'_>) {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let args = ctx.args;
    read(ctx, &args[1], |ctx, z| {
        ctx.out.array(args.len() - 2);
        for m in &args[2..] {
            let pos = z.and_then(|z| z.score(m)).and_then(decode_score);
            let Some((lon, lat)) = pos else {
                ctx.out.null();
                continue;
            };
            let std_lat = Range {
                min: -90.0,
                max: 90.0,
            };
            // A decoded position is always inside the ranges.
            let bits = encode(LONG_RANGE, std_lat, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
            let mut buf = [b'0'; 11];
            for (i, c) in buf.iter_mut().enumerate().take(10) {
                let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
                *c = ALPHABET[idx as usize];
            }
            ctx.out.bulk(&buf);
        }
    });
}

/// `GEOPOS key [member ...]`
fn geopos(ctx: &mut Ctx<'_>) {
    let args = ctx.args;
    read(ctx, &args[1], |ctx, z| {
        ctx.out.array(args.len() - 2);
        for m in &args[2..] {
            match z.and_then(|z| z.score(m)).and_then(decode_score) {
                Some((lon, lat)) => {
                    ctx.out.array(2);
                    reply_coord(ctx, lon);
                    reply_coord(ctx, lat);
                }
                None => ctx.out.null_array(),
            }
        }
    });
}

/// Search around coordinates given as arguments (GEORADIUS).
const RADIUS_COORDS: u32 = 1 << 0;
/// Search around a member (GEORADIUSBYMEMBER).
const RADIUS_MEMBER: u32 = 1 << 1;
/// STORE and STOREDIST refused (the _RO variants).
const RADIUS_NOSTORE: u32 = 1 << 2;
/// GEOSEARCH's FROM*/BY* arguments.
const GEOSEARCH: u32 = 1 << 3;
/// GEOSEARCHSTORE: the destination first, STOREDIST without an argument.
const GEOSEARCHSTORE: u32 = 1 << 4;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// What a search decided while the source key was held.
enum Found {
    /// The reply is written (results or an error).
    Replied,
    /// Store these (member, score) pairs at the argument `dst`.
    Store {
        dst: usize,
        pairs: Vec<(Vec<u8>, f64)>,
    },
}

/// `GEORADIUS key longitude latitude radius M|KM|FT|MI [WITHCOORD]
/// [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key |
/// STOREDIST key]`
fn georadius(ctx: &mut Ctx<'_>) {
    search_generic(ctx, 1, RADIUS_COORDS);
}

/// `GEORADIUSBYMEMBER key member radius M|KM|FT|MI [options as GEORADIUS]`
fn georadiusbymember(ctx: &mut Ctx<'_>) {
    search_generic(ctx, 1, RADIUS_MEMBER);
}

/// `GEORADIUS_RO`: GEORADIUS without STORE.
fn georadius_ro(ctx: &mut Ctx<'_>) {
    search_generic(ctx, 1, RADIUS_COORDS | RADIUS_NOSTORE);
}

/// `GEORADIUSBYMEMBER_RO`: GEORADIUSBYMEMBER without STORE.
fn georadiusbymember_ro(ctx: &mut Ctx<'_>) {
    search_generic(ctx, 1, RADIUS_MEMBER | RADIUS_NOSTORE);
}

/// `GEOSEARCH key FROMMEMBER member | FROMLONLAT longitude latitude
/// BYRADIUS radius unit | BYBOX width height unit [ASC|DESC] [COUNT count
/// [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]`
fn geosearch(ctx: &mut Ctx<'_>) {
    search_generic(ctx, 1, GEOSEARCH);
}

/// `GEOSEARCHSTORE destination source FROMMEMBER … | FROMLONLAT … BYRADIUS …
/// | BYBOX … [ASC|DESC] [COUNT count [ANY]] [STOREDIST]`
fn geosearchstore(ctx: &mut Ctx<'_>) {
    search_generic(ctx, 2, GEOSEARCH | GEOSEARCHSTORE);
}

/// Every search command (Redis's `georadiusGeneric`): the source is looked
/// up and type-checked first, arguments are parsed while it is held, and a
/// store happens after it is released.
fn search_generic(ctx: &mut Ctx<'_>, src: usize, flags: u32) {
    let args = ctx.args;
    let found = read(ctx, &args[src], |ctx, z| search_in(ctx, z, src, flags));
    if let Some(Found::Store { dst, mut pairs }) = found {
        // A member found in two cells would be stored once.
        let mut seen = std::collections::HashSet::new();
        pairs.retain(|(m, _)| seen.insert(m.clone()));
        pairs.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let event = if flags & GEOSEARCH != 0 {
            "geosearchstore"
        } else {
            "georadiusstore"
        };
        store_result(ctx, &args[dst], pairs, event);
    }
}

fn search_in(ctx: &mut Ctx<'_>, z: Option<&ZSet>, src: usize, flags: u32) -> Found {
    let args = ctx.args;
    let mut store: Option<usize> = None;
    let mut storedist = false;
    let mut center: Option<(f64, f64)> = None;
    let mut kind: Option<Kind> = None;
    let mut conversion = 1.0;

    let base_args;
    if flags & RADIUS_COORDS != 0 {
        base_args = 6;
        let Some(xy) = lonlat_or_reply(ctx, 2) else {
            return Found::Replied;
        };
        center = Some(xy);
        let Some((radius, conv)) = radius_or_reply(ctx, 4) else {
            return Found::Replied;
        };
        kind = Some(Kind::Circle { radius });
        conversion = conv;
    } else if flags & RADIUS_MEMBER != 0 {
        base_args = 5;
        // Without a source the rest is still parsed, so the reply matches
        // the STORE option; the member and radius are not looked at.
        if let Some(z) = z {
            let Some(xy) = z.score(&args[2]).and_then(decode_score) else {
                ctx.out.error("ERR could not decode requested zset member");
                return Found::Replied;
            };
            center = Some(xy);
            let Some((radius, conv)) = radius_or_reply(ctx, 3) else {
                return Found::Replied;
            };
            kind = Some(Kind::Circle { radius });
            conversion = conv;
        }
    } else {
        base_args = src + 1;
        if flags & GEOSEARCHSTORE != 0 {
            store = Some(1);
        }
    }

    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let search = flags & GEOSEARCH != 0;
    let can_store = flags & (RADIUS_NOSTORE | GEOSEARCH) == 0;
    let remaining = args.len().saturating_sub(base_args);
    let mut i = 0;
    while i < remaining {
        let at = base_args + i;
        let arg = &args[at];
        if is(arg, "withdist") {
            withdist = true;
        } else if is(arg, "withhash") {
            withhash = true;
        } else if is(arg, "withcoord") {
            withcoords = true;
        } else if is(arg, "any") {
            any = true;
        } else if is(arg, "asc") {
            sort = Sort::Asc;
        } else if is(arg, "desc") {
            sort = Sort::Desc;
        } else if is(arg, "count") && i + 1 < remaining {
            let Some(c) = ctx.int_arg(at + 1) else {
                return Found::Replied;
            };
            if c <= 0 {
                ctx.out.error("ERR COUNT must be > 0");
                return Found::Replied;
            }
            count = c;
            i += 1;
        } else if is(arg, "store") && i + 1 < remaining && can_store {
            store = Some(at + 1);
            storedist = false;
            i += 1;
        } else if is(arg, "storedist") && i + 1 < remaining && can_store {
            store = Some(at + 1);
            storedist = true;
            i += 1;
        } else if is(arg, "storedist") && search && flags & GEOSEARCHSTORE != 0 {
            storedist = true;
        } else if is(arg, "frommember") && i + 1 < remaining && search && !fromloc {
            if let Some(z) = z {
                let Some(xy) = z.score(&args[at + 1]).and_then(decode_score) else {
                    ctx.out.error("ERR could not decode requested zset member");
                    return Found::Replied;
                };
                center = Some(xy);
            }
            frommember = true;
            i += 1;
        } else if is(arg, "fromlonlat") && i + 2 < remaining && search && !frommember {
            let Some(xy) = lonlat_or_reply(ctx, at + 1) else {
                return Found::Replied;
            };
            center = Some(xy);
            fromloc = true;
            i += 2;
        } else if is(arg, "byradius") && i + 2 < remaining && search && !bybox {
            let Some((radius, conv)) = radius_or_reply(ctx, at + 1) else {
                return Found::Replied;
            };
            kind = Some(Kind::Circle { radius });
            conversion = conv;
            byradius = true;
            i += 2;
        } else if is(arg, "bybox") && i + 3 < remaining && search && !byradius {
            let Some((width, height, conv)) = box_or_reply(ctx, at + 1) else {
                return Found::Replied;
            };
            kind = Some(Kind::Rect { width, height });
            conversion = conv;
            bybox = true;
            i += 3;
        } else {
            ctx.out.error(err::SYNTAX);
            return Found::Replied;
        }
        i += 1;
    }

    if store.is_some() && (withdist || withhash || withcoords) {
        let what = if flags & GEOSEARCHSTORE != 0 {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        ctx.out.error(&format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        ));
        return Found::Replied;
    }
    let name = String::from_utf8_lossy(&args[0]).into_owned();
    if search && !(frommember || fromloc) {
        ctx.out.error(&format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        ));
        return Found::Replied;
    }
    if search && !(byradius || bybox) {
        ctx.out.error(&format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        ));
        return Found::Replied;
    }
    if any && count == 0 {
        ctx.out
            .error("ERR the ANY argument requires COUNT argument");
        return Found::Replied;
    }

    let (Some(z), Some((lon, lat)), Some(kind)) = (z, center, kind) else {
        // No source key: an empty result.
        return match store {
            Some(dst) => Found::Store {
                dst,
                pairs: Vec::new(),
            },
            None => {
                ctx.out.array(0);
                Found::Replied
            }
        };
    };

    // COUNT without an order means the closest ones (not with ANY).
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let shape = Shape {
        kind,
        lon,
        lat,
        conversion,
    };
    let limit = if any {
        usize::try_from(count).unwrap_or(usize::MAX)
    } else {
        0
    };
    let mut points = Vec::new();
    points_in_shape(z, &shape, limit, &mut points);

    let total = points.len();
    let returned = match usize::try_from(count) {
        Ok(c) if c != 0 && c < total => c,
        _ => total,
    };
    if sort != Sort::None {
        let cmp: Cmp = if sort == Sort::Asc { cmp_asc } else { cmp_desc };
        if returned == total {
            msort(&mut points, cmp);
        } else {
            pqsort(&mut points, cmp, 0, returned - 1);
        }
    }
    points.truncate(returned);

    if let Some(dst) = store {
        let pairs = points
            .into_iter()
            .map(|p| {
                let score = if storedist {
                    p.dist / conversion
                } else {
                    p.score
                };
                (p.member, score)
            })
            .collect();
        return Found::Store { dst, pairs };
    }

    let options = usize::from(withdist) + usize::from(withcoords) + usize::from(withhash);
    ctx.out.array(returned);
    for p in &points {
        if options > 0 {
            ctx.out.array(options + 1);
        }
        ctx.out.bulk(&p.member);
        if withdist {
            ctx.out.bulk(fmt_distance(p.dist / conversion).as_bytes());
        }
        if withhash {
            // C's (long long) of the score: a search only finds scores
            // inside a cell's 52-bit range.
            ctx.out.int(cvttsd2si(p.score));
        }
        if withcoords {
            ctx.out.array(2);
            reply_coord(ctx, p.lon);
            reply_coord(ctx, p.lat);
        }
    }
    Found::Replied
}

// ---------------------------------------------------------------- table

const ONE: (i32, i32, i32) = (1, 1, 1);

/// The family's table (arity, flags and key positions as Redis 7.0's
/// COMMAND INFO). GEORADIUS and GEORADIUSBYMEMBER are MOVABLEKEYS (their
/// STORE key is found by parsing), which also runs them under the
/// exclusive gate.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("geoadd", -5, WRITE | DENYOOM, ONE, G, geoadd),
    spec("geodist", -4, READONLY, ONE, G, geodist),
    spec("geohash", -2, READONLY, ONE, G, geohash),
    spec("geopos", -2, READONLY, ONE, G, geopos),
    spec("geosearch", -7, READONLY, ONE, G, geosearch),
    spec("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), G, geosearchstore),
    spec("georadius", -6, WRITE | DENYOOM | MOVABLEKEYS, ONE, G, georadius),
    spec("georadiusbymember", -5, WRITE | DENYOOM | MOVABLEKEYS, ONE, G, georadiusbymember),
    spec("georadius_ro", -6, READONLY, ONE, G, georadius_ro),
    spec("georadiusbymember_ro", -5, READONLY, ONE, G, georadiusbymember_ro),
];

#[cfg(test)]
mod tests {
    //! Expected values were taken from redis-server 7.0.15.

    use super::*;
    use crate::testkit::Kit;

    fn pt(dist: f64, tag: usize) -> Point {
        Point {
            lon: 0.0,
            lat: 0.0,
            dist,
            score: tag as f64,
            member: tag.to_string().into_bytes(),
        }
    }

    #[test]
    fn scores_and_positions_match_redis() {
        assert_eq!(encode_score(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(encode_score(15.087269, 37.502669), Some(3479447370796909));
        // The corners set bits 52 and 53, as in Redis.
        assert_eq!(encode_score(180.0, 85.05112878), Some(13510798882111488));
        assert_eq!(encode_score(180.1, 0.0), None);
        let (lon, lat) = decode_score(3479099956230698.0).unwrap_or_default();
        assert_eq!(fmt_human(lon), "13.36138933897018433");
        assert_eq!(fmt_human(lat), "38.11555639549629859");
        let (lon, lat) = decode_score(13510798882111488.0).unwrap_or_default();
        assert_eq!(
            (fmt_human(lon).as_str(), fmt_human(lat).as_str()),
            ("180", "85.0511287799999991")
        );
    }

    #[test]
    fn scores_convert_like_x86_64() {
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
        assert_eq!(c_double_to_u64(-0.5), 0);
        assert_eq!(c_double_to_u64(f64::NAN), 1 << 63);
        assert_eq!(c_double_to_u64(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(c_double_to_u64(f64::INFINITY), 0);
        assert_eq!(c_double_to_u64(18446744073709551616.0), 0);
        assert_eq!(c_double_to_u64(9223372036854775808.0), 1 << 63);
        assert_eq!(c_double_to_u64(12345.9), 12345);
    }

    #[test]
    fn numbers_print_like_redis() {
        assert_eq!(fmt_distance(0.0), "0.0000");
        assert_eq!(fmt_distance(-0.0), "0.0000");
        assert_eq!(fmt_distance(166274.15156960033), "166274.1516");
        assert_eq!(fmt_distance(6.06429515983917e-5), "0.0001");
        assert_eq!(fmt_distance(0.01), "0.0100");
        assert_eq!(fmt_distance(f64::NAN), "-922337203685477.5808");
        assert_eq!(fmt_human(-0.0), "0");
        assert_eq!(fmt_human(-1e-20), "0");
        assert_eq!(fmt_human(2.5), "2.5");
        assert_eq!(fmt_human(-179.99999731779098), "-179.99999731779098511");
    }

    #[test]
    fn distances_use_the_meridian_shortcut() {
        let (x1, y1) = decode_score(3479099956230698.0).unwrap_or_default();
        let (x2, y2) = decode_score(3479447370796909.0).unwrap_or_default();
        assert_eq!(fmt_distance(distance(x1, y1, x2, y2)), "166274.1516");
        // Same longitude: R * |Δlat| (Redis 7.0), not the haversine.
        let d = distance(180.0, 0.6837534078733905, 180.0, 75.02023973971957);
        assert_eq!(crate::num::fmt_double(d), "8268172.3296918897");
    }

    #[test]
    fn steps_follow_the_radius() {
        assert_eq!(estimate_steps(0.0, 0.0), 26);
        assert_eq!(estimate_steps(200_000.0, 37.0), 6);
        assert_eq!(estimate_steps(200_000.0, 70.0), 5);
        assert_eq!(estimate_steps(200_000.0, -85.0), 4);
        assert_eq!(estimate_steps(f64::INFINITY, 0.0), 1);
        assert_eq!(estimate_steps(1e-300, 0.0), 26);
    }

    /// A tiny deterministic generator, so the sort tests need no crate.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn merge_sort_is_stable() {
        let mut seed = 7;
        for n in [0usize, 1, 2, 5, 33, 200] {
            let mut v: Vec<Point> = (0..n).map(|i| pt((lcg(&mut seed) % 5) as f64, i)).collect();
            msort(&mut v, cmp_asc);
            for w in v.windows(2) {
                assert!(
                    w[0].dist < w[1].dist || (w[0].dist == w[1].dist && w[0].score < w[1].score)
                );
            }
        }
    }

    #[test]
    fn partial_sort_orders_the_first_ranks() {
        let mut seed = 11;
        for round in 0..300 {
            let n = 1 + (lcg(&mut seed) % 120) as usize;
            let k = 1 + (lcg(&mut seed) as usize % n);
            let spread = 1 + lcg(&mut seed) % if round % 2 == 0 { 4 } else { 1000 };
            let mut v: Vec<Point> = (0..n)
                .map(|i| pt((lcg(&mut seed) % spread) as f64, i))
                .collect();
            let mut want: Vec<f64> = v.iter().map(|p| p.dist).collect();
            want.sort_by(f64::total_cmp);
            let desc = round % 3 == 0;
            if desc {
                want.reverse();
            }
            pqsort(&mut v, if desc { cmp_desc } else { cmp_asc }, 0, k - 1);
            let got: Vec<f64> = v[..k].iter().map(|p| p.dist).collect();
            assert_eq!(got, want[..k].to_vec(), "n={n} k={k}");
            let mut tags: Vec<f64> = v.iter().map(|p| p.score).collect();
            tags.sort_by(f64::total_cmp);
            assert_eq!(tags, (0..n).map(|i| i as f64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn partial_sort_breaks_ties_like_redis() {
        // Sorted input with ties (from the corpus): Redis keeps this order.
        let ranks = [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0];
        let mut v: Vec<Point> = ranks.iter().enumerate().map(|(i, &d)| pt(d, i)).collect();
        pqsort(&mut v, cmp_asc, 0, 3);
        let order: Vec<f64> = v[..4].iter().map(|p| p.score).collect();
        assert_eq!(order, vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn commands_reply_like_redis() {
        let mut k = Kit::new();
        assert_eq!(
            k.run(&[
                "GEOADD",
                "Sicily",
                "13.361389",
                "38.115556",
                "Palermo",
                "15.087269",
                "37.502669",
                "Catania"
            ]),
            ":2\r\n"
        );
        assert_eq!(
            k.run(&["GEODIST", "Sicily", "Palermo", "Catania", "km"]),
            "$8\r\n166.2742\r\n"
        );
        assert_eq!(
            k.run(&["GEOHASH", "Sicily", "Palermo", "nosuch"]),
            "*2\r\n$11\r\nsqc8b49rny0\r\n$-1\r\n"
        );
        assert_eq!(
            k.run(&[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "ASC",
                "COUNT",
                "1",
                "WITHDIST"
            ]),
            "*1\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n"
        );
        assert_eq!(
            k.run(&["GEOADD", "Sicily", "200", "100", "x"]),
            "-ERR invalid longitude,latitude pair 200.000000,100.000000\r\n"
        );
        assert_eq!(
            k.run(&["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"]),
            "-ERR the ANY argument requires COUNT argument\r\n"
        );
        assert_eq!(
            k.run(&[
                "geosearch",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "ASC",
                "WITHDIST"
            ]),
            "-ERR exactly one of BYRADIUS and BYBOX can be specified for geosearch\r\n"
        );
        assert_eq!(
            k.run(&[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "STOREDIST",
                "d",
                "COUNT",
                "9223372036854775807"
            ]),
            ":2\r\n"
        );
        assert_eq!(
            k.run(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
            "*4\r\n$7\r\nCatania\r\n$18\r\n56.441257870158204\r\n$7\r\nPalermo\r\n$18\r\n190.44242984775784\r\n"
        );
        assert_eq!(
            k.run(&["GEORADIUSBYMEMBER", "nokey", "x", "abc", "yd"]),
            "*0\r\n"
        );
    }
}
