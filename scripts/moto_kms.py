#!/usr/bin/env python3
"""Run moto_server with KMS key states enforced like real KMS.

moto 5.x lets Decrypt, Encrypt, GenerateDataKey and ReEncrypt succeed on a key
that is disabled or pending deletion. Real KMS refuses: DisabledException for a
disabled key, KMSInvalidStateException ("... is pending deletion.") for one
scheduled for deletion. Rampart's tests check that a stream whose key was
disabled cannot be decrypted, so this launcher patches moto's KMS backend
before starting the server.

It also lets the key-state calls (DisableKey, EnableKey, ScheduleKeyDeletion,
CancelKeyDeletion) take a key ARN, as real KMS does.

Usage: moto_kms.py [-H 127.0.0.1] [-p PORT]
"""

import sys

from moto.core.exceptions import JsonRESTError
from moto.kms import models


class DisabledException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("DisabledException", message)


class KMSInvalidStateException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("KMSInvalidStateException", message)


def _check_state(backend, key_id_or_arn):
    key_id = backend.any_id_to_key_id(key_id_or_arn)
    key = backend.keys.get(key_id)
    if key is None:
        return
    if key.key_state == "Disabled":
        raise DisabledException(f"{key.arn} is disabled.")
    if key.key_state == "PendingDeletion":
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
    if key.key_state != "Enabled":
        raise KMSInvalidStateException(f"{key.arn} is {key.key_state}.")


_orig_encrypt = models.KmsBackend.encrypt
_orig_decrypt = models.KmsBackend.decrypt


def _encrypt(self, key_id, plaintext, encryption_context):
    # GenerateDataKey and ReEncrypt's destination go through encrypt().
    _check_state(self, key_id)
    return _orig_encrypt(self, key_id, plaintext, encryption_context)


def _decrypt(self, ciphertext_blob, encryption_context, key_id=None):
    # ReEncrypt's source goes through decrypt(). The state is checked before
    # the plaintext leaves the backend.
    plaintext, arn = _orig_decrypt(self, ciphertext_blob, encryption_context, key_id)
    _check_state(self, arn)
    return plaintext, arn


models.KmsBackend.encrypt = _encrypt
models.KmsBackend.decrypt = _decrypt


def _accept_arn(name):
    # Real KMS takes a key ARN wherever it takes a key id; moto's key-state
    # calls only take the bare id (KeyError -> HTTP 500 on an ARN).
    orig = getattr(models.KmsBackend, name)

    def wrapper(self, key_id, *args, **kwargs):
        return orig(self, self.get_key_id(key_id), *args, **kwargs)

    setattr(models.KmsBackend, name, wrapper)


for _name in ("disable_key", "enable_key", "schedule_key_deletion", "cancel_key_deletion"):
    _accept_arn(_name)

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
