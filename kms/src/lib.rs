//! rampart-kms: key providers (local keyring, AWS KMS) and the envelope format.
