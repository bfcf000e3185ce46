#!/usr/bin/env python3
"""Dumps COMMAND INFO and COMMAND DOCS of a running redis-server 7.0 as typed
JSON (server/src/cmd/reference.json).

The server renders COMMAND INFO's ACL categories, tips and key specs, and
the whole of COMMAND DOCS, from this file, so the texts are Redis's own;
arity, flags and key positions come from Rampart's command tables, and a
unit test checks them against this reference.

Usage: redis-server --port 16999 --daemonize yes --save '' &&
       python3 scripts/gen-command-reference.py 16999 > server/src/cmd/reference.json
"""
import json
import socket
import sys


def read_reply(f):
    line = f.readline()
    if not line:
        raise EOFError
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return {"t": "simple", "v": rest.decode()}
    if t == b"-":
        return {"t": "error", "v": rest.decode()}
    if t == b":":
        return {"t": "int", "v": int(rest)}
    if t == b"$":
        n = int(rest)
        data = f.read(n + 2)[:-2]
        return {"t": "bulk", "v": data.decode()}
    if t == b"_":
        return {"t": "null"}
    if t in (b"*", b"~"):
        n = int(rest)
        items = [read_reply(f) for _ in range(n)]
        return {"t": "arr" if t == b"*" else "set", "v": items}
    if t == b"%":
        n = int(rest)
        items = [[read_reply(f), read_reply(f)] for _ in range(n)]
        return {"t": "map", "v": items}
    if t == b"#":
        return {"t": "bool", "v": rest == b"t"}
    if t == b",":
        return {"t": "double", "v": rest.decode()}
    raise ValueError(f"unexpected reply type {t!r}")


def command(sock, f, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return read_reply(f)


def main():
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port))
    f = sock.makefile("rb")
    command(sock, f, "HELLO", "3")
    info = command(sock, f, "COMMAND", "INFO")
    docs = command(sock, f, "COMMAND", "DOCS")
    by_name = {}
    for entry in info["v"]:
        name = entry["v"][0]["v"]
        by_name[name] = {"info": entry}
    for k, v in docs["v"]:
        by_name.setdefault(k["v"], {})["docs"] = v
    json.dump(by_name, sys.stdout, sort_keys=True, separators=(",", ":"))


if __name__ == "__main__":
    main()
