//! DUMP and RESTORE: a key's value as Redis 7.0's serialization (RDB
//! encoding, RDB version, CRC-64), byte-identical to Redis's for the
//! compact encodings, and back.

use rampart_persistence::rdb;

use super::flags::*;
use super::{err, spec, CommandSpec, Ctx};

const G: &str = "generic";

const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
const BAD_TTL: &str = "ERR Invalid TTL value, must be >= 0";
const BAD_IDLE: &str = "ERR Invalid IDLETIME value, must be >= 0";
const BAD_FREQ: &str = "ERR Invalid FREQ value, must be >= 0 and <= 255";
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_FORMAT: &str = "ERR Bad data format";

/// `DUMP key`: the serialized value, or nil when the key does not exist.
fn dump(ctx: &mut Ctx<'_>) {
    let db = ctx.srv.keyspace.db(ctx.client.db);
    // lookupKeyRead: touches the key and counts a hit or a miss.
    let payload = db.get(&ctx.args[1], ctx.now, |n| {
        n.map(|n| rdb::dump_value(&n.value))
    });
    ctx.looked_up(&ctx.args[1], payload.is_some());
    match payload {
        Some(p) => ctx.out.bulk(&p),
        None => ctx.out.null(),
    }
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds]
/// [FREQ frequency]`, checking in Redis 7.0's order: options, an existing
/// key (BUSYKEY), the TTL, the payload's version and CRC, its contents. A
/// TTL already in the past creates nothing (and with REPLACE deletes the
/// old key). A relative TTL is propagated as an absolute one with ABSTTL,
/// as Redis does.
fn restore(ctx: &mut Ctx<'_>) {
    let mut replace = false;
    let mut absttl = false;
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let argc = ctx.args.len();
    let mut j = 4;
    while j < argc {
        let more = argc - j - 1;
        match ctx.opt(j).as_str() {
            "replace" => replace = true,
            "absttl" => absttl = true,
            "idletime" if more >= 1 && freq.is_none() => {
                let Some(v) = ctx.int_arg(j + 1) else {
                    return;
                };
                if v < 0 {
                    return ctx.out.error(BAD_IDLE);
                }
                idle = Some(v);
                j += 1;
            }
            "freq" if more >= 1 && idle.is_none() => {
                let Some(v) = ctx.int_arg(j + 1) else {
                    return;
                };
                if !(0..=255).contains(&v) {
                    return ctx.out.error(BAD_FREQ);
                }
                freq = Some(v);
                j += 1;
            }
            _ => return ctx.out.error(err::SYNTAX),
        }
        j += 1;
    }
    let db = ctx.srv.keyspace.db(ctx.client.db);
    let now = ctx.now;
    // lookupKeyWrite: an expired key counts as absent.
    if !replace && db.get(&ctx.args[1], now, |n| n.is_some()) {
        return ctx.out.error(BUSYKEY);
    }
    let Some(ttl) = ctx.int_arg(2) else {
        return;
    };
    if ttl < 0 {
        return ctx.out.error(BAD_TTL);
    }
    let value = match rdb::restore_value(&ctx.args[3], &ctx.limits()) {
        Ok(v) => v,
        Err(e) if e.is_payload_version_or_checksum() => return ctx.out.error(BAD_PAYLOAD),
        Err(_) => return ctx.out.error(BAD_FORMAT),
    };
    // Redis adds the TTL to the clock in a signed 64-bit integer: a sum
    // that overflows is negative, hence already expired.
    let expire_at = match ttl {
        0 => None,
        _ if absttl => Some(ttl),
        _ => Some((now as i64).wrapping_add(ttl)),
    };
    let key = &ctx.args[1][..];
    if expire_at.is_some_and(|at| at <= now as i64) {
        // Already expired: nothing is created; REPLACE still deletes.
        let deleted = replace && db.write(key, now, |s| s.remove()).is_some();
        if deleted {
            let del: &[u8] = if ctx.srv.config.flag("lazyfree-lazy-server-del") {
                b"UNLINK"
            } else {
                b"DEL"
            };
            ctx.propagate(&[del, key]);
            ctx.notify(crate::pubsub::class::GENERIC, "del", key);
        } else {
            ctx.propagated = true;
        }
        return ctx.out.ok();
    }
    let expire_at = expire_at.map(|at| at as u64);
    // Redis keeps the idle time under an LRU policy and the frequency
    // under an LFU one, and drops the other (objectSetLRUOrLFU).
    let lfu = ctx.srv.keyspace.access.lfu();
    let idle = idle.filter(|_| !lfu);
    let freq = freq.filter(|_| lfu);
    db.write(key, now, |s| {
        if replace {
            s.remove();
        }
        s.insert(value, expire_at);
        if let Some(n) = s.node() {
            if let Some(secs) = idle {
                n.set_idle_secs(now, secs as u64);
            }
            if let Some(f) = freq {
                n.set_freq(now, f as u8);
            }
        }
    });
    if let (Some(at), false) = (expire_at, absttl) {
        // Propagate the TTL as an absolute time, with ABSTTL appended.
        let at = itoa::Buffer::new().format(at).to_string();
        let mut argv: Vec<&[u8]> = ctx.args.iter().map(|a| &a[..]).collect();
        argv[2] = at.as_bytes();
        argv.push(b"ABSTTL");
        ctx.propagate(&argv);
    }
    ctx.notify(crate::pubsub::class::GENERIC, "restore", key);
    ctx.out.ok();
}

const ONE: (i32, i32, i32) = (1, 1, 1);

/// The family's table (arity, flags and key positions as Redis 7.0's
/// COMMAND INFO).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("dump", 2, READONLY, ONE, G, dump),
    spec("restore", -4, WRITE | DENYOOM, ONE, G, restore),
];

#[cfg(test)]
mod tests {
    //! Expected replies were taken from redis-server 7.0.15.

    use crate::testkit::Kit;

    fn dump(k: &mut Kit, key: &str) -> Vec<u8> {
        let r = k.run_bytes(vec![b"DUMP", key.as_bytes()]);
        let start = r.iter().position(|&b| b == b'\n').expect("a bulk") + 1;
        r[start..r.len() - 2].to_vec()
    }

    #[test]
    fn dump_matches_redis_bytes() {
        let mut k = Kit::new();
        k.run(&["SET", "foo", "bar"]);
        k.run(&["SET", "n", "123"]);
        assert_eq!(
            dump(&mut k, "foo"),
            b"\x00\x03bar\n\x00\xe6\xbeI`\xeef\xfd\x17".to_vec()
        );
        assert_eq!(
            dump(&mut k, "n"),
            b"\x00\xc0{\n\x00H\xe2S\xe1\x00zg\xb9".to_vec()
        );
        assert_eq!(k.run(&["DUMP", "nokey"]), "$-1\r\n");
    }

    #[test]
    fn restore_round_trips_and_checks() {
        let mut k = Kit::new();
        k.run(&["RPUSH", "l", "a", "b", "1"]);
        let p = dump(&mut k, "l");
        let restore = |k: &mut Kit, args: &[&[u8]]| {
            let mut v: Vec<&[u8]> = vec![b"RESTORE"];
            v.extend_from_slice(args);
            String::from_utf8_lossy(&k.run_bytes(v)).into_owned()
        };
        assert_eq!(restore(&mut k, &[b"l2", b"0", &p]), "+OK\r\n");
        assert_eq!(
            k.run(&["LRANGE", "l2", "0", "-1"]),
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n1\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l2", b"0", &p]),
            "-BUSYKEY Target key name already exists.\r\n"
        );
        assert_eq!(restore(&mut k, &[b"l2", b"0", &p, b"REPLACE"]), "+OK\r\n");
        assert_eq!(
            restore(&mut k, &[b"l3", b"-1", &p]),
            "-ERR Invalid TTL value, must be >= 0\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"x", &p]),
            "-ERR value is not an integer or out of range\r\n"
        );
        let mut bad = p.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &bad]),
            "-ERR DUMP payload version or checksum are wrong\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"IDLETIME", b"-1"]),
            "-ERR Invalid IDLETIME value, must be >= 0\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"FREQ", b"256"]),
            "-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"IDLETIME", b"1", b"FREQ", b"1"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            restore(&mut k, &[b"l3", b"0", &p, b"IDLETIME", b"100"]),
            "+OK\r\n"
        );
        assert_eq!(k.run(&["OBJECT", "IDLETIME", "l3"]), ":100\r\n");
        // A TTL in the past creates nothing; with REPLACE it deletes.
        assert_eq!(restore(&mut k, &[b"gone", b"1", &p, b"ABSTTL"]), "+OK\r\n");
        assert_eq!(k.run(&["EXISTS", "gone"]), ":0\r\n");
        assert_eq!(
            restore(&mut k, &[b"l3", b"1", &p, b"ABSTTL", b"REPLACE"]),
            "+OK\r\n"
        );
        assert_eq!(k.run(&["EXISTS", "l3"]), ":0\r\n");
        assert_eq!(restore(&mut k, &[b"t", b"100000", &p]), "+OK\r\n");
        let pttl = k.run(&["PTTL", "t"]);
        assert!(pttl.starts_with(":99") || pttl == ":100000\r\n", "{pttl}");
        // A valid footer around a bad body.
        let mut body = b"\x0f\x00".to_vec();
        body.extend_from_slice(&[10, 0]);
        let crc = rampart_persistence::rdb::Crc64::checksum(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            restore(&mut k, &[b"s", b"0", &body]),
            "-ERR Bad data format\r\n"
        );
    }
}
