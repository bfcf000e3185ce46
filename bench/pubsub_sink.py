#!/usr/bin/env python3
"""A crowd of listeners for bench/pubsub.sh: N connections that SUBSCRIBE
to a channel (mode `sub`) or turn on RESP3 BCAST tracking (mode `track`),
then read as fast as they can, counting what they receive (occurrences of
`needle` in the byte stream). Prints the count when stdin closes or on
SIGTERM. Counts what arrives, not what was sent, so a server that drops or
delays messages cannot look faster than it is."""
import selectors
import signal
import socket
import sys

port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
needle = b"message" if mode == "sub" else b"key:"
sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if mode == "sub":
        s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
    else:
        s.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*4\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\nON\r\n$5\r\nBCAST\r\n")
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, [b""])
    socks.append(s)
count = 0
done = False


def stop(*_):
    global done
    done = True


signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while not done:
    for key, _ in sel.select(timeout=0.2):
        try:
            data = key.fileobj.recv(1 << 20)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(key.fileobj)
            continue
        buf = key.data[0] + data
        count += buf.count(needle)
        # Keep a tail shorter than the needle: a match split across reads
        # is counted once, when its second half arrives.
        tail = len(needle) - 1
        key.data[0] = buf[-tail:]
print(count, flush=True)
