//! LOLWUT [VERSION v] [args]: Redis 5's Schotter, Redis 6's skyline, or
//! the version line, dispatched on the version as lolwut.c does.

use super::flags::*;
use super::{err, spec, CommandSpec, Ctx};

/// A canvas of small colour indices, as lolwut.c's `lwCanvas`.
struct Canvas {
    width: i64,
    height: i64,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i64, height: i64, bg: u8) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![bg; (width.max(0) * height.max(0)) as usize],
        }
    }

    fn draw(&mut self, x: i64, y: i64, color: u8) {
        if !(0..self.width).contains(&x) || !(0..self.height).contains(&y) {
            return;
        }
        self.pixels[(x + y * self.width) as usize] = color;
    }

    fn get(&self, x: i64, y: i64) -> u8 {
        if !(0..self.width).contains(&x) || !(0..self.height).contains(&y) {
            return 0;
        }
        self.pixels[(x + y * self.width) as usize]
    }

    fn line(&mut self, mut x1: i64, mut y1: i64, x2: i64, y2: i64, color: u8) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.draw(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    fn square(&mut self, x: i64, y: i64, size: f32, angle: f32, color: u8) {
        let size = (size / std::f32::consts::SQRT_2).round();
        let mut k = std::f32::consts::FRAC_PI_4 + angle;
        let mut px = [0i64; 4];
        let mut py = [0i64; 4];
        for (p, q) in px.iter_mut().zip(py.iter_mut()) {
            *p = (k.sin() * size + x as f32).round() as i64;
            *q = (k.cos() * size + y as f32).round() as i64;
            k += std::f32::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }
}

/// C's `rand()`: 0..=RAND_MAX (2^31 - 1).
fn crand() -> i64 {
    (rand::random::<u32>() >> 1) as i64
}

const RAND_MAX: f32 = 2_147_483_647.0;

/// Georg Nees' Schotter: rows of squares more and more disordered.
fn schotter(cols: i64, per_row: i64, per_col: i64) -> Canvas {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i64 + padding * 2;
    let mut c = Canvas::new(width, height, 0);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0) as i64 + padding;
            let mut sy = (y as f32 * side + side / 2.0) as i64 + padding;
            let mut angle = 0.0;
            if y > 1 {
                let mut r = [0f32; 3];
                for v in r.iter_mut() {
                    *v = crand() as f32 / RAND_MAX / per_col as f32 * y as f32;
                }
                for v in r.iter_mut() {
                    if crand() % 2 == 1 {
                        *v = -*v;
                    }
                }
                angle = r[0];
                sx = (sx as f32 + r[1] * side / 3.0) as i64;
                sy = (sy as f32 + r[2] * side / 3.0) as i64;
            }
            c.square(sx, sy, side, angle, 1);
        }
    }
    c
}

/// The canvas as Braille characters, 2x4 pixels each.
fn render_braille(c: &Canvas) -> String {
    let mut text = String::new();
    let mut y = 0;
    while y < c.height {
        let mut x = 0;
        while x < c.width {
            let bits = [
                (0, 0),
                (0, 1),
                (0, 2),
                (1, 0),
                (1, 1),
                (1, 2),
                (0, 3),
                (1, 3),
            ];
            let mut byte = 0u32;
            for (i, (dx, dy)) in bits.iter().enumerate() {
                if c.get(x + dx, y + dy) != 0 {
                    byte |= 1 << i;
                }
            }
            text.push(char::from_u32(0x2800 + byte).unwrap_or(' '));
            x += 2;
        }
        if y != c.height - 1 {
            text.push('\n');
        }
        y += 4;
    }
    text
}

/// One skyscraper of lolwut6.c's skyline.
fn skyscraper(c: &mut Canvas, xoff: i64, width: i64, height: i64, windows: bool, color: u8) {
    let starty = c.height - 1;
    let endy = starty - height + 1;
    let mut y = starty;
    while y >= endy {
        for x in xoff..xoff + width {
            if y == endy && (x <= xoff + 1 || x >= xoff + width - 2) {
                continue;
            }
            let mut col = color;
            if windows && x > xoff + 1 && x < xoff + width - 2 && y > endy + 1 && y < starty - 1 {
                let relx = x - (xoff + 1);
                let rely = y - (endy + 1);
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        col = (1 + crand() % 2) as u8;
                        if col != color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        col = c.get(x - 1, y);
                    }
                }
            }
            c.draw(x, y, col);
        }
        y -= 1;
    }
}

/// The city skyline of Redis 6's LOLWUT.
fn skyline(c: &mut Canvas) {
    let h = c.height;
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < c.width {
            offset += crand() % 8;
            let width = 10 + crand() % 9;
            let height = if color == 2 {
                h / 2 + crand() % h / 2
            } else {
                h / 2 + crand() % h / 3
            };
            skyscraper(c, offset, width, height, false, color);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < c.width {
        offset += crand() % 8;
        let mut width = 5 + crand() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + crand() % h / 2;
        skyscraper(c, offset, width, height, true, 0);
        offset += width + 5;
    }
}

/// The canvas as coloured spaces (ANSI escapes), one per pixel.
fn render_ansi(c: &Canvas) -> String {
    let mut text = String::new();
    for y in 0..c.height {
        for x in 0..c.width {
            let ce = match c.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.push_str("\x1b[");
            text.push_str(ce);
            text.push_str(" \x1b[0m");
        }
        if y != c.height - 1 {
            text.push('\n');
        }
    }
    text
}

/// Parses the optional numeric arguments as `getLongFromObjectOrReply`.
fn longs(ctx: &mut Ctx<'_>, args: &[bytes::Bytes], defaults: &mut [i64]) -> bool {
    for (d, a) in defaults.iter_mut().zip(args) {
        match crate::num::parse_i64(a) {
            Some(n) => *d = n,
            None => {
                ctx.out.error(err::NOT_INT);
                return false;
            }
        }
    }
    true
}

/// `LOLWUT [VERSION v] [args]`
fn lolwut(ctx: &mut Ctx<'_>) {
    let mut version = crate::REDIS_VERSION.as_bytes().to_vec();
    let mut rest = &ctx.args[1..];
    if ctx.args.len() >= 3 && ctx.args[1].eq_ignore_ascii_case(b"version") {
        match crate::num::parse_i64(&ctx.args[2]) {
            Some(n) => version = format!("{}.0.0", n as u32).into_bytes(),
            None => return ctx.out.error(err::NOT_INT),
        }
        rest = &ctx.args[3..];
    }
    let b = |i: usize| version.get(i).copied().unwrap_or(0);
    let rest = rest.to_vec();
    let caption_v = crate::REDIS_VERSION;
    if (b(0) == b'5' && b(1) == b'.' && b(2) != b'9')
        || (b(0) == b'4' && b(1) == b'.' && b(2) == b'9')
    {
        let mut a = [66i64, 8, 12];
        if !longs(ctx, &rest, &mut a) {
            return;
        }
        let cols = a[0].clamp(1, 1000);
        let per_row = a[1].clamp(1, 200);
        let per_col = a[2].clamp(1, 200);
        let mut text = render_braille(&schotter(cols, per_row, per_col));
        text.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
        text.push_str(caption_v);
        text.push('\n');
        ctx.out.verbatim(text.as_bytes());
    } else if (b(0) == b'6' && b(1) == b'.' && b(2) != b'9')
        || (b(0) == b'5' && b(1) == b'.' && b(2) == b'9')
    {
        let mut a = [80i64, 20];
        if !longs(ctx, &rest, &mut a) {
            return;
        }
        let mut c = Canvas::new(a[0].clamp(1, 1000), a[1].clamp(1, 1000), 3);
        skyline(&mut c);
        let mut text = render_ansi(&c);
        text.push_str("\nDedicated to the 8 bit game developers of past and present.\nOriginal 8 bit image from Plaguemon by hikikomori. Redis ver. ");
        text.push_str(caption_v);
        text.push('\n');
        ctx.out.verbatim(text.as_bytes());
    } else {
        let text = format!("Redis ver. {caption_v}\n");
        ctx.out.verbatim(text.as_bytes());
    }
}

/// The LOLWUT command.
pub static COMMANDS: &[CommandSpec] = &[spec(
    "lolwut",
    -1,
    READONLY | FAST,
    (0, 0, 0),
    "server",
    lolwut,
)];
