//! The engine against a fake host: conversions, errors, sandbox.

use rampart_scripting::{Engine, Host, RunOptions};

/// Replies canned RESP by command name.
struct Fake {
    logs: Vec<(i32, Vec<u8>)>,
}

impl Host for Fake {
    fn call(&mut self, args: &[&[u8]], resp: u8, reply: &mut Vec<u8>) -> Result<(), Vec<u8>> {
        let canned: &[u8] = match args[0] {
            b"ok" => b"+OK\r\n",
            b"int" => b":42\r\n",
            b"err" => b"-WRONGTYPE bad\r\n",
            b"nil" => b"$-1\r\n",
            b"echo" => {
                reply.extend_from_slice(format!("${}\r\n", args[1].len()).as_bytes());
                reply.extend_from_slice(args[1]);
                b"\r\n"
            }
            b"map" if resp == 3 => b"%1\r\n$1\r\na\r\n:1\r\n",
            b"map" => b"*2\r\n$1\r\na\r\n:1\r\n",
            b"dbl" => b",1.5\r\n",
            _ => return Err(b"Unknown Redis command called from script".to_vec()),
        };
        reply.extend_from_slice(canned);
        Ok(())
    }
    fn log(&mut self, level: i32, msg: &[u8]) {
        self.logs.push((level, msg.to_vec()));
    }
    fn set_repl(&mut self, _: i32) {}
    fn acl_check(&mut self, _: &[Vec<u8>]) -> Option<bool> {
        Some(true)
    }
}

fn eval(e: &mut Engine, body: &str, proto: u8) -> String {
    let (sha, _) = match e.load(body.as_bytes()) {
        Ok(x) => x,
        Err(err) => return format!("-{err}\r\n"),
    };
    let h = Box::new(Fake { logs: vec![] });
    let opts = RunOptions {
        eval: true,
        caller_proto: proto,
        name: &sha,
        from_master: false,
    };
    let Some(script) = e.script(&sha) else {
        return "-NOSCRIPT\r\n".to_string();
    };
    let out = e.eval_script(h, script, &[b"k1"], &[b"a1", b"a2"], &opts);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn conversions_and_errors() {
    let mut e = Engine::new(Default::default()).unwrap();
    let cases: &[(&str, u8, &str)] = &[
        ("return 1", 2, ":1\r\n"),
        ("return 3.99", 2, ":3\r\n"),
        ("return 'x'", 2, "$1\r\nx\r\n"),
        ("return true", 2, ":1\r\n"),
        ("return false", 2, "$-1\r\n"),
        ("return nil", 3, "_\r\n"),
        (
            "return {1,'a',{2}}",
            2,
            "*3\r\n:1\r\n$1\r\na\r\n*1\r\n:2\r\n",
        ),
        ("return {1,nil,3}", 2, "*1\r\n:1\r\n"),
        ("return KEYS[1]..ARGV[2]", 2, "$4\r\nk1a2\r\n"),
        ("return redis.call('ok')", 2, "+OK\r\n"),
        ("return redis.call('int')", 2, ":42\r\n"),
        (
            "return redis.call('echo', 0.1)",
            2,
            "$19\r\n0.10000000000000001\r\n",
        ),
        ("return redis.pcall('err')", 2, "-WRONGTYPE bad\r\n"),
        ("return {err='x'}", 2, "-x\r\n"),
        ("return redis.status_reply('FINE')", 2, "+FINE\r\n"),
        ("return redis.error_reply('MY err')", 2, "-MY err\r\n"),
        ("return redis.error_reply('oops')", 2, "-ERR oops\r\n"),
        (
            "redis.setresp(3) return redis.call('map')",
            3,
            "%1\r\n$1\r\na\r\n:1\r\n",
        ),
        (
            "redis.setresp(3) return redis.call('map')",
            2,
            "*2\r\n$1\r\na\r\n:1\r\n",
        ),
        (
            "redis.setresp(3) return redis.call('dbl')",
            2,
            "$3\r\n1.5\r\n",
        ),
        ("redis.setresp(3) return redis.call('dbl')", 3, ",1.5\r\n"),
        ("redis.setresp(3) return true", 3, "#t\r\n"),
        (
            "return redis.sha1hex('')",
            2,
            "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n",
        ),
        ("return bit.band(7, 3)", 2, ":3\r\n"),
        ("return bit.tohex(255, -4)", 2, "$4\r\n00FF\r\n"),
        (
            "return pcall(function() redis.call('nosuch') end)",
            2,
            "$-1\r\n",
        ),
        (
            "local ok, e = pcall(function() redis.call('nosuch') end) return e",
            2,
            "$44\r\nERR Unknown Redis command called from script\r\n",
        ),
    ];
    let mut bad = Vec::new();
    for (body, proto, want) in cases {
        let got = eval(&mut e, body, *proto);
        if got != *want {
            bad.push(format!("{body}: got {got:?} want {want:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn error_texts() {
    let mut e = Engine::new(Default::default()).unwrap();
    let cases: &[(&str, &str)] = &[
        ("error('boom')", "-ERR user_script:1: boom script: SHA, on @user_script:1.\r\n"),
        ("\nredis.call('nosuch')", "-ERR Unknown Redis command called from script script: SHA, on @user_script:2.\r\n"),
        ("redis.call('err')", "-WRONGTYPE bad script: SHA, on @user_script:1.\r\n"),
        ("a = 1", "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"),
        ("string.x = 1", "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"),
        ("os.exit()", "-ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: SHA, on @user_script:1.\r\n"),
        ("redis.log()", "-ERR redis.log() requires two arguments or more. script: SHA, on @user_script:1.\r\n"),
        ("return redis.sha1hex()", "-ERR wrong number of arguments script: SHA, on @user_script:1.\r\n"),
        ("error({err='MY boom'})", "-MY boom script: SHA, on @user_script:1.\r\n"),
        ("return loadstring(string.dump(function() return 1 end))", "$-1\r\n"),
        ("return x +", "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n"),
    ];
    let mut bad = Vec::new();
    for (body, want) in cases {
        let sha = rampart_scripting::sha1hex(body.as_bytes());
        let want = want.replace("SHA", &sha);
        let got = eval(&mut e, body, 2);
        if got != want {
            bad.push(format!("{body}: got {got:?} want {want:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn libraries() {
    let mut e = Engine::new(Default::default()).unwrap();
    let cases: &[(&str, &str)] = &[
        ("return cjson.encode({1, 'x', {a=true}})", "$18\r\n[1,\"x\",{\"a\":true}]\r\n"),
        ("return cjson.encode({})", "$2\r\n{}\r\n"),
        ("return cjson.encode(0.1)", "$3\r\n0.1\r\n"),
        ("return cjson.encode(1/3)", "$16\r\n0.33333333333333\r\n"),
        ("return cjson.encode('a/b')", "$6\r\n\"a\\/b\"\r\n"),
        ("return tostring(cjson.decode('[null]')[1] == cjson.null)", "$4\r\ntrue\r\n"),
        ("return cjson.decode('{\"k\":[1,2.5]}').k[2]", ":2\r\n"),
        ("return cjson.decode('\"\\\\u00e9\"')", "$2\r\n\u{e9}\r\n"),
        ("return struct.pack('>I2', 258)", "$2\r\n\x01\x02\r\n"),
        ("return {struct.unpack('<i4', struct.pack('<i4', -2))}", "*2\r\n:-2\r\n:5\r\n"),
        ("return struct.size('!8 b d')", ":16\r\n"),
        ("return {cmsgpack.pack({1, 2}):byte(1, -1)}", "*3\r\n:146\r\n:1\r\n:2\r\n"),
        ("return {cmsgpack.pack(-1, 200):byte(1, -1)}", "*3\r\n:255\r\n:204\r\n:200\r\n"),
        ("return cmsgpack.unpack(cmsgpack.pack({k='v'})).k", "$1\r\nv\r\n"),
        ("return {cmsgpack.unpack_one(cmsgpack.pack(1, 2))}", "*2\r\n:1\r\n:1\r\n"),
        ("return bit.tohex(bit.bnot(0))", "$8\r\nffffffff\r\n"),
        ("math.randomseed(1) local a = math.random(1000) math.randomseed(1) return a == math.random(1000)", ":1\r\n"),
    ];
    let mut bad = Vec::new();
    for (body, want) in cases {
        let got = eval(&mut e, body, 2);
        if got != *want {
            bad.push(format!("{body}: got {got:?} want {want:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Runs `body` as EVAL with `keys` and `args`, as the server would.
fn eval_with(e: &mut Engine, body: &str, keys: &[&[u8]], args: &[&[u8]]) -> Vec<u8> {
    let (sha, _) = match e.load(body.as_bytes()) {
        Ok(x) => x,
        Err(err) => return format!("-{err}\r\n").into_bytes(),
    };
    let opts = RunOptions {
        eval: true,
        caller_proto: 2,
        name: &sha,
        from_master: false,
    };
    let Some(script) = e.script(&sha) else {
        return b"-NOSCRIPT\r\n".to_vec();
    };
    e.eval_script(Box::new(Fake { logs: vec![] }), script, keys, args, &opts)
}

#[test]
fn keys_and_argv_carry_any_bytes() {
    let mut e = Engine::new(Default::default()).unwrap();
    let keys: &[&[u8]] = &[b"\xff\x00k", b""];
    let args: &[&[u8]] = &[b"a\r\nb", b"\xc3\x28"];
    assert_eq!(
        eval_with(
            &mut e,
            "return {#KEYS, #ARGV, KEYS[1], KEYS[2], ARGV[1], ARGV[2]}",
            keys,
            args
        ),
        b"*6\r\n:2\r\n:2\r\n$3\r\n\xff\x00k\r\n$0\r\n\r\n$4\r\na\r\nb\r\n$2\r\n\xc3\x28\r\n"
    );
    // Fresh tables each run: what one run leaves in them is gone.
    assert_eq!(
        eval_with(&mut e, "KEYS[2] = 'x' return #KEYS", &[b"k"], &[]),
        b":2\r\n"
    );
    assert_eq!(eval_with(&mut e, "return #KEYS", &[b"k"], &[]), b":1\r\n");
}

#[test]
fn garbage_of_many_runs_is_collected() {
    let mut e = Engine::new(Default::default()).unwrap();
    let body = "local t = {} for i = 1, 100 do t[i] = ARGV[1] .. i end return #t";
    let before = e.vm_memory();
    let mut peak = 0;
    // About 10 KB of garbage a run, 20 MB in all: without a collection
    // the VM would hold all of it.
    for _ in 0..2_000 {
        assert_eq!(
            eval_with(&mut e, body, &[], &[b"some garbage, "]),
            b":100\r\n"
        );
        peak = peak.max(e.vm_memory());
    }
    assert!(
        peak < before + 4 * 1024 * 1024,
        "VM grew from {before} to {peak} bytes"
    );
}
