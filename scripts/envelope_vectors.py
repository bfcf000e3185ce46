#!/usr/bin/env python3
"""Independent Python implementation of Rampart envelope v1 (writer side),
used to generate kms/tests/vectors/envelope_v1.json. The Rust tests check
that the Rust writer produces the same bytes and the Rust reader decrypts
them: two implementations agreeing on every byte.

Needs the `cryptography` package (the moto venv has it):
  .venv/moto/bin/python scripts/envelope_vectors.py > kms/tests/vectors/envelope_v1.json
"""

import hashlib
import json
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"RAMPART\x01"


def header_prefix(payload, chunk_log2, salt, context):
    ctx = "\n".join(f"{k}={v}" for k, v in context).encode()
    return MAGIC + bytes([1, payload, chunk_log2]) + salt + struct.pack(">H", len(ctx)) + ctx


def slots_bytes(slots):
    out = bytes([len(slots)])
    for provider, key_id, wrapped in slots:
        p, k = provider.encode(), key_id.encode()
        out += bytes([len(p)]) + p + struct.pack(">H", len(k)) + k + struct.pack(">H", len(wrapped)) + wrapped
    return out


def envelope(data_key, salt, payload, chunk_log2, context, slots, plaintext):
    prefix = header_prefix(payload, chunk_log2, salt, context)
    info = b"rampart/v1" + hashlib.sha256(prefix).digest()
    okm = HKDF(algorithm=hashes.SHA256(), length=76, salt=salt, info=info).derive(data_key)
    key, nonce_base, commitment = okm[:32], okm[32:44], okm[44:]
    out = prefix + commitment + slots_bytes(slots)
    aead = AESGCM(key)
    size = 1 << chunk_log2
    i, pos = 0, 0
    while True:
        chunk = plaintext[pos : pos + size]
        # A full chunk is never final; the final chunk is shorter (maybe empty).
        last = len(chunk) < size
        nonce = nonce_base[:4] + bytes(a ^ b for a, b in zip(nonce_base[4:], struct.pack(">Q", i)))
        aad = struct.pack(">Q", i) + bytes([1 if last else 0])
        ct = aead.encrypt(nonce, chunk, aad)  # ciphertext || tag
        out += struct.pack(">I", len(chunk)) + ct
        pos += len(chunk)
        i += 1
        if last:
            return out, okm


def pattern(n):
    return bytes(i % 251 for i in range(n))


CASES = [
    ("empty", 1, 16, [("dataset", "vec")], b"", "bytes"),
    ("hello", 1, 16, [("dataset", "vec"), ("node", "n1"), ("created-at", "2025-01-01T00:00:00Z")],
     b"hello, rampart", "bytes"),
    ("one-full-chunk", 2, 16, [("dataset", "vec")], pattern(1 << 16), "pattern"),
    ("three-chunks-backup", 3, 16, [("dataset", "cache-prod"), ("node", "primary-a")],
     pattern((1 << 16) * 2 + 100), "pattern"),
]


def main():
    data_key = bytes(range(32))
    salt = bytes(range(0x40, 0x60))
    slots = [("local", "rk-0001020304050607/1", bytes([0xAA]) * 60)]
    vectors = []
    for name, payload, chunk_log2, context, pt, kind in CASES:
        stream, okm = envelope(data_key, salt, payload, chunk_log2, context, slots, pt)
        v = {
            "name": name,
            "data_key": data_key.hex(),
            "salt": salt.hex(),
            "payload": payload,
            "chunk_log2": chunk_log2,
            "context": [[k, val] for k, val in context],
            "slots": [{"provider": p, "key_id": k, "wrapped": w.hex()} for p, k, w in slots],
            "chunk_key": okm[:32].hex(),
            "nonce_base": okm[32:44].hex(),
            "commitment": okm[44:].hex(),
            "stream_len": len(stream),
            "stream_sha256": hashlib.sha256(stream).hexdigest(),
        }
        if kind == "bytes":
            v["plaintext"] = pt.hex()
            v["stream"] = stream.hex()
        else:
            v["plaintext_pattern"] = {"len": len(pt), "byte_i": "i % 251"}
        vectors.append(v)
    print(json.dumps({"format": "rampart envelope v1 test vectors", "vectors": vectors}, indent=2))


if __name__ == "__main__":
    main()
