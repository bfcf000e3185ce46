//! `rampart snapshot inspect|encrypt|decrypt|rewrap`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::{AtomicFile, KeyArgs, kms};
use crate::envelope::{self, MAX_CHUNK_LOG2, MIN_CHUNK_LOG2};
use crate::{
    AuditLog, EnvelopeParams, EnvelopeReader, EnvelopeWriter, Header, LocalProvider, Payload,
    Provider,
};

/// Snapshot subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Show an envelope's header, key slots, context and chunking (no key needed, no secrets shown).
    Inspect {
        /// Envelope file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Encrypt a file (e.g. a dump.rdb) into an envelope.
    Encrypt {
        /// Plaintext input.
        input: PathBuf,
        /// Encrypted output (written atomically).
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
        /// Dataset id the data key is bound to.
        #[arg(long, default_value = "default")]
        dataset: String,
        /// Payload type: snapshot, full-sync or backup.
        #[arg(long, default_value = "snapshot", value_parser = parse_payload)]
        payload: Payload,
        /// Chunk size as a power of two (16 = 64 KiB … 24 = 16 MiB).
        #[arg(long, default_value_t = envelope::DEFAULT_CHUNK_LOG2,
              value_parser = clap::value_parser!(u8).range(MIN_CHUNK_LOG2 as i64..=MAX_CHUNK_LOG2 as i64))]
        chunk_log2: u8,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Decrypt an envelope to a plain file (written atomically; nothing is left on error).
    Decrypt {
        /// Envelope input.
        input: PathBuf,
        /// Plaintext output.
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Replace an envelope's key slot with one for another key; the body is copied unchanged.
    Rewrap {
        /// Envelope file (rewritten atomically unless -o is given).
        file: PathBuf,
        /// Write the result here instead of replacing FILE.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        #[command(flatten)]
        to: RewrapTarget,
        #[command(flatten)]
        key: KeyArgs,
    },
}

/// Where a rewrap goes.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RewrapTarget {
    /// Rewrap to this local keyring's primary version.
    #[arg(long, value_name = "PATH")]
    to_key_file: Option<PathBuf>,
    /// Rewrap to this KMS key (id, ARN or alias).
    #[arg(long, value_name = "ID")]
    to_kms_key_id: Option<String>,
}

fn parse_payload(s: &str) -> Result<Payload, String> {
    Payload::parse(s).ok_or_else(|| format!("{s:?} is not one of snapshot, full-sync, backup"))
}

fn open_input(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

pub(crate) async fn run(cmd: SnapshotCmd) -> anyhow::Result<()> {
    match cmd {
        SnapshotCmd::Inspect { file, json } => inspect(&file, json),
        SnapshotCmd::Encrypt {
            input,
            output,
            dataset,
            payload,
            chunk_log2,
            key,
        } => {
            let provider = key.provider().await?;
            let params = EnvelopeParams::new(payload, &dataset).with_chunk_log2(chunk_log2);
            let (dk, slot) = provider.generate_data_key(&params.key_context()?).await?;
            let mut src = BufReader::new(open_input(&input)?);
            let mut out = AtomicFile::create(&output)?;
            let mut w = EnvelopeWriter::new(BufWriter::new(out.file()?), &params, dk, vec![slot])?;
            std::io::copy(&mut src, &mut w)
                .with_context(|| format!("encrypting {}", input.display()))?;
            w.finish()?.flush()?;
            out.commit()?;
            eprintln!(
                "encrypted {} -> {} ({})",
                input.display(),
                output.display(),
                provider.describe()
            );
            Ok(())
        }
        SnapshotCmd::Decrypt { input, output, key } => {
            let provider = key.provider().await?;
            let mut src = BufReader::new(open_input(&input)?);
            let header = Header::read_from(&mut src)
                .with_context(|| format!("reading {}", input.display()))?;
            let sk = provider.open_header(&header).await?;
            let mut reader = EnvelopeReader::new(src, header, sk).require_eof(true);
            let mut out = AtomicFile::create(&output)?;
            let mut w = BufWriter::new(out.file()?);
            std::io::copy(&mut reader, &mut w)
                .map_err(crate::Error::from)
                .with_context(|| format!("decrypting {}", input.display()))?;
            w.flush()?;
            drop(w);
            out.commit()?;
            eprintln!("decrypted {} -> {}", input.display(), output.display());
            Ok(())
        }
        SnapshotCmd::Rewrap {
            file,
            output,
            to,
            key,
        } => {
            let from = key.provider().await?;
            let target = match (&to.to_key_file, &to.to_kms_key_id) {
                (Some(path), _) => Provider::Local(LocalProvider::open(
                    path,
                    AuditLog::open(key.audit_log.as_deref())?,
                )?),
                (None, Some(id)) => Provider::Aws(
                    kms(
                        Some(id.clone()),
                        &key,
                        AuditLog::open(key.audit_log.as_deref())?,
                    )
                    .await?,
                ),
                (None, None) => anyhow::bail!("give --to-key-file PATH or --to-kms-key-id ID"),
            };
            let dest = output.unwrap_or_else(|| file.clone());
            let mut src = BufReader::new(open_input(&file)?);
            let mut out = AtomicFile::create(&dest)?;
            let mut w = BufWriter::new(out.file()?);
            let header = crate::rewrap_stream(&mut src, &mut w, &from, &target).await?;
            w.flush()?;
            drop(w);
            out.commit()?;
            let slots: Vec<String> = header.slots.iter().map(ToString::to_string).collect();
            eprintln!(
                "rewrapped {} -> {} (key slot: {})",
                file.display(),
                dest.display(),
                slots.join(", ")
            );
            Ok(())
        }
    }
}

fn inspect(path: &Path, json: bool) -> anyhow::Result<()> {
    let mut f = BufReader::new(open_input(path)?);
    let r = envelope::scan(&mut f).with_context(|| format!("reading {}", path.display()))?;
    let h = &r.header;
    if json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "format": "rampart-envelope-v1",
            "suite": 1,
            "payload": h.payload.as_str(),
            "chunk_log2": h.chunk_log2,
            "chunk_size": h.chunk_size(),
            "context": h.context.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "key_slots": h.slots.iter().map(|s| serde_json::json!({
                "provider": s.provider, "key_id": s.key_id, "wrapped_len": s.wrapped.len()
            })).collect::<Vec<_>>(),
            "header_len": r.header_len,
            "chunks": r.chunks,
            "plaintext_len": r.plaintext_len,
            "complete": r.complete && r.problem.is_none(),
            "problem": r.problem,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("file:        {}", path.display());
        println!(
            "format:      Rampart envelope v1, suite 1 (AES-256-GCM, HKDF-SHA-256, key commitment)"
        );
        println!("payload:     {} ({})", h.payload, h.payload as u8);
        println!("chunk size:  {} bytes (2^{})", h.chunk_size(), h.chunk_log2);
        println!("header:      {} bytes", r.header_len);
        println!("context:");
        for (k, v) in &h.context {
            println!("  {k} = {v}");
        }
        println!("key slots:   {}", h.slots.len());
        for (i, s) in h.slots.iter().enumerate() {
            println!(
                "  [{i}] provider={} key_id={} wrapped={} bytes",
                s.provider,
                s.key_id,
                s.wrapped.len()
            );
        }
        println!("chunks:      {}", r.chunks);
        println!("plaintext:   {} bytes", r.plaintext_len);
        match &r.problem {
            None => println!(
                "status:      complete (final chunk present; authenticity is checked on decrypt)"
            ),
            Some(p) => println!("status:      DAMAGED: {p}"),
        }
    }
    if let Some(p) = r.problem {
        anyhow::bail!("{}: {p}", path.display());
    }
    Ok(())
}
