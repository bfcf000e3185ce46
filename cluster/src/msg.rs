//! The cluster bus codec: Redis 7.0's `clusterMsg` as it travels between
//! nodes, decoded into [`Msg`] and encoded back byte for byte, and a
//! [`Framer`] that cuts a byte stream into messages.
//!
//! # Format
//!
//! Every message starts with a 2256-byte header (`CLUSTERMSG_MIN_LEN`), all
//! integers big-endian (Redis's `htons`/`htonl`/`htonu64`):
//!
//! ```text
//!    0 sig "RCmb"        4 totlen u32      8 ver u16 (=1)   10 port u16
//!   12 type u16         14 count u16      16 currentEpoch u64
//!   24 configEpoch u64  32 offset u64     40 sender [40]   80 myslots [2048]
//! 2128 slaveof [40]   2168 myip [46]    2214 extensions u16
//! 2216 notused1 [30]  2246 pport u16    2248 cport u16  2250 flags u16
//! 2252 state u8       2253 mflags [3]   2256 body …
//! ```
//!
//! Bodies by type: PING/PONG/MEET carry `count` gossip entries of 104 bytes
//! and, when `mflags[0]` has [`MFLAG0_EXT_DATA`], `extensions` ping
//! extensions (u32 length incl. its 8-byte header, u16 type, u16 unused,
//! padded to 8 bytes); FAIL a 40-byte node name; PUBLISH/PUBLISHSHARD u32
//! channel length, u32 message length and both byte strings; UPDATE a u64
//! config epoch, a node name and a slot bitmap; MODULE a u64 module id, u32
//! length, u8 type and the payload; FAILOVER_AUTH_REQUEST/ACK and MFSTART
//! nothing. `totlen` must equal the length these imply (the checks of
//! Redis's `clusterProcessPacket`); a type Redis does not know is taken as is.
//!
//! Fields that Redis copies from fixed C buffers (node IPs, the unused
//! fields) are kept as raw arrays, bytes after the terminating NUL included,
//! so that re-encoding a decoded message gives back the very same bytes.

use crate::slot::{SlotSet, SLOT_BYTES};
use thiserror::Error;

/// The signature every bus message starts with ("Redis Cluster message bus").
pub const SIG: &[u8; 4] = b"RCmb";
/// The only bus protocol version Redis 7.0 speaks (`CLUSTER_PROTO_VER`).
pub const PROTO_VER: u16 = 1;
/// Length of a node name: 40 hex characters, no terminator.
pub const NAME_LEN: usize = 40;
/// Length of an IP field (`NET_IP_STR_LEN`), NUL-terminated inside.
pub const IP_LEN: usize = 46;
/// Header length, the smallest possible message (`CLUSTERMSG_MIN_LEN`).
pub const HEADER_LEN: usize = 2256;
/// Length of one gossip entry (`clusterMsgDataGossip`).
pub const GOSSIP_LEN: usize = 104;
/// Length of a FAIL body (`clusterMsgDataFail`).
pub const FAIL_BODY_LEN: usize = NAME_LEN;
/// Length of an UPDATE body (`clusterMsgDataUpdate`).
pub const UPDATE_BODY_LEN: usize = 8 + NAME_LEN + SLOT_BYTES;

/// `mflags[0]`: the sending master is paused for a manual failover.
pub const MFLAG0_PAUSED: u8 = 1 << 0;
/// `mflags[0]`: give a FAILOVER_AUTH_ACK even if the master is up (manual failover).
pub const MFLAG0_FORCEACK: u8 = 1 << 1;
/// `mflags[0]`: the PING/PONG/MEET carries ping extensions after its gossip.
pub const MFLAG0_EXT_DATA: u8 = 1 << 2;

/// Node flag bits as sent in the header and gossip `flags` (`CLUSTER_NODE_*`).
pub mod node_flags {
    /// The node is a master.
    pub const MASTER: u16 = 1;
    /// The node is a replica.
    pub const SLAVE: u16 = 2;
    /// Failure suspected, not yet agreed.
    pub const PFAIL: u16 = 4;
    /// The node is believed to be failing.
    pub const FAIL: u16 = 8;
    /// This node is the one describing itself.
    pub const MYSELF: u16 = 16;
    /// The first PING has not been exchanged yet.
    pub const HANDSHAKE: u16 = 32;
    /// The node's address is unknown.
    pub const NOADDR: u16 = 64;
    /// A MEET is to be sent to this node.
    pub const MEET: u16 = 128;
    /// Master eligible for replica migration.
    pub const MIGRATE_TO: u16 = 256;
    /// The replica will not try to fail over.
    pub const NOFAILOVER: u16 = 512;
}

/// Message type codes (`CLUSTERMSG_TYPE_*`).
pub mod msg_type {
    /// PING.
    pub const PING: u16 = 0;
    /// PONG, the reply to PING and MEET (and a broadcast of new config).
    pub const PONG: u16 = 1;
    /// MEET: a PING that makes the receiver add the sender.
    pub const MEET: u16 = 2;
    /// FAIL: mark a node as failing.
    pub const FAIL: u16 = 3;
    /// Pub/Sub PUBLISH propagation.
    pub const PUBLISH: u16 = 4;
    /// A replica asks masters for their vote.
    pub const FAILOVER_AUTH_REQUEST: u16 = 5;
    /// A master's vote.
    pub const FAILOVER_AUTH_ACK: u16 = 6;
    /// Another node's slot configuration.
    pub const UPDATE: u16 = 7;
    /// Pause clients for a manual failover.
    pub const MFSTART: u16 = 8;
    /// Module cluster API message.
    pub const MODULE: u16 = 9;
    /// Pub/Sub SPUBLISH propagation to a shard.
    pub const PUBLISHSHARD: u16 = 10;
}

/// Ping extension type of the announced hostname (`CLUSTERMSG_EXT_TYPE_HOSTNAME`).
pub const EXT_TYPE_HOSTNAME: u16 = 0;

/// A 40-byte node name as on the wire (hex characters when well formed).
pub type NodeName = [u8; NAME_LEN];

/// The message header: everything but `sig`, `totlen`, `ver` and `type`,
/// which [`encode`] derives.
///
/// `count` and `extensions` are written as given for every type except
/// PING/PONG/MEET, whose encoding sets them from the body (so a message
/// built by hand stays consistent, and a decoded one keeps whatever a sender
/// put there where Redis ignores it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Client port the sender announces (TLS port when TLS is on).
    pub port: u16,
    /// Gossip entry count for PING/PONG/MEET; unused by other types.
    pub count: u16,
    /// The sender's current epoch.
    pub current_epoch: u64,
    /// The sender's config epoch, or its master's if it is a replica.
    pub config_epoch: u64,
    /// Replication offset (master's, or processed offset of a replica).
    pub offset: u64,
    /// The sender's node name.
    pub sender: NodeName,
    /// Slots the sender serves (its master's if it is a replica).
    pub myslots: SlotSet,
    /// The sender's master's name, all zero for a master.
    pub slaveof: NodeName,
    /// Announced IP, NUL-terminated; all zero means "use the peer address".
    pub myip: [u8; IP_LEN],
    /// Number of ping extensions (meaningful with [`MFLAG0_EXT_DATA`]).
    pub extensions: u16,
    /// Reserved bytes, kept as received.
    pub notused1: [u8; 30],
    /// Plaintext client port when `port` is the TLS one.
    pub pport: u16,
    /// Cluster bus port.
    pub cport: u16,
    /// The sender's node flags ([`node_flags`]).
    pub flags: u16,
    /// Cluster state from the sender's view (0 ok, 1 fail).
    pub state: u8,
    /// Message flags (`MFLAG0_*` in byte 0).
    pub mflags: [u8; 3],
}

/// One gossip entry: what the sender knows about another node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossip {
    /// The node described.
    pub nodename: NodeName,
    /// When the sender last pinged it, in seconds (ms / 1000, truncated to u32).
    pub ping_sent: u32,
    /// When the sender last got its pong, in seconds.
    pub pong_received: u32,
    /// Its IP, NUL-terminated (bytes after the NUL are whatever the sender had).
    pub ip: [u8; IP_LEN],
    /// Its client port.
    pub port: u16,
    /// Its bus port.
    pub cport: u16,
    /// Its flags as the sender sees them.
    pub flags: u16,
    /// Its plaintext port.
    pub pport: u16,
    /// Reserved, kept as received.
    pub notused1: u16,
}

/// A ping extension (PING/PONG/MEET, Redis 7.0+).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingExt {
    /// The announced hostname (`cluster-announce-hostname`), without its NUL
    /// or padding; must not contain NUL itself.
    Hostname {
        /// The hostname bytes.
        hostname: Vec<u8>,
        /// The header's padding field, kept as received.
        unused: u16,
    },
    /// Any other extension, or a hostname extension whose bytes are not in
    /// the canonical form (so re-encoding it reproduces it exactly): the
    /// data after the 8-byte extension header, padding included.
    Other {
        /// Extension type.
        ext_type: u16,
        /// The header's padding field.
        unused: u16,
        /// Data, a multiple of 8 bytes long.
        data: Vec<u8>,
    },
}

/// PING, PONG and MEET bodies: gossip entries and extensions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PingBody {
    /// Gossip about other nodes.
    pub gossip: Vec<Gossip>,
    /// Ping extensions; non-empty sets [`MFLAG0_EXT_DATA`] on encoding.
    pub extensions: Vec<PingExt>,
}

/// A message body, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// PING.
    Ping(PingBody),
    /// PONG.
    Pong(PingBody),
    /// MEET.
    Meet(PingBody),
    /// FAIL: the sender declares `about` failing.
    Fail {
        /// The failing node.
        about: NodeName,
    },
    /// PUBLISH to every node.
    Publish {
        /// Channel name.
        channel: Vec<u8>,
        /// Message.
        message: Vec<u8>,
    },
    /// SPUBLISH to the nodes of the sender's shard.
    PublishShard {
        /// Channel name.
        channel: Vec<u8>,
        /// Message.
        message: Vec<u8>,
    },
    /// A replica asks for votes (header only).
    FailoverAuthRequest,
    /// A vote (header only).
    FailoverAuthAck,
    /// Start of a manual failover (header only).
    MfStart,
    /// Another node's slot configuration.
    Update {
        /// Its config epoch.
        config_epoch: u64,
        /// The slots' owner.
        nodename: NodeName,
        /// The slots it owns.
        slots: SlotSet,
    },
    /// A module message (opaque to the cluster).
    Module {
        /// The module's id, as the 8 raw bytes read big-endian (Redis sends
        /// it already "endian adjusted" and compares it as is).
        module_id: u64,
        /// Message type chosen by the module.
        module_type: u8,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A type Redis 7.0 does not know: Redis accepts any length for it.
    Unknown {
        /// The type code.
        msg_type: u16,
        /// Everything after the header.
        payload: Vec<u8>,
    },
}

impl Body {
    /// The wire type code of this body.
    ///
    /// ```
    /// use rampart_cluster::msg::{Body, msg_type};
    /// assert_eq!(Body::MfStart.msg_type(), msg_type::MFSTART);
    /// ```
    pub fn msg_type(&self) -> u16 {
        match self {
            Body::Ping(_) => msg_type::PING,
            Body::Pong(_) => msg_type::PONG,
            Body::Meet(_) => msg_type::MEET,
            Body::Fail { .. } => msg_type::FAIL,
            Body::Publish { .. } => msg_type::PUBLISH,
            Body::PublishShard { .. } => msg_type::PUBLISHSHARD,
            Body::FailoverAuthRequest => msg_type::FAILOVER_AUTH_REQUEST,
            Body::FailoverAuthAck => msg_type::FAILOVER_AUTH_ACK,
            Body::MfStart => msg_type::MFSTART,
            Body::Update { .. } => msg_type::UPDATE,
            Body::Module { .. } => msg_type::MODULE,
            Body::Unknown { msg_type, .. } => *msg_type,
        }
    }

    /// The gossip and extensions of a PING, PONG or MEET.
    pub fn ping(&self) -> Option<&PingBody> {
        match self {
            Body::Ping(p) | Body::Pong(p) | Body::Meet(p) => Some(p),
            _ => None,
        }
    }
}

/// One bus message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// The header fields.
    pub header: Header,
    /// The type and its body.
    pub body: Body,
}

/// Why bytes are not a valid bus message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer bytes than the header, or than `totlen`, needs.
    #[error("truncated cluster bus message: {have} bytes, {need} needed")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// The first four bytes are not "RCmb".
    #[error("bad cluster bus message signature")]
    BadSignature,
    /// `totlen` is below the header length.
    #[error("cluster bus message length {0} is below the header length")]
    TooShort(u32),
    /// More bytes than `totlen` says.
    #[error("cluster bus message says {totlen} bytes but {have} were given")]
    TrailingBytes {
        /// The message's `totlen`.
        totlen: u32,
        /// Bytes given.
        have: usize,
    },
    /// A protocol version other than 1.
    #[error("unsupported cluster bus protocol version {0}")]
    UnsupportedVersion(u16),
    /// `totlen` does not match what the type and its counts imply.
    #[error("cluster bus message of type {msg_type}: length {totlen}, expected {expected}")]
    BodyLength {
        /// Type code.
        msg_type: u16,
        /// The message's `totlen`.
        totlen: u32,
        /// The length the body implies.
        expected: u64,
    },
    /// A ping extension is shorter than its header, not padded to 8 bytes,
    /// or runs past the message.
    #[error("cluster bus message: bad ping extension #{index}")]
    BadExtension {
        /// Which extension (from 0).
        index: usize,
    },
}

/// Big-endian reader over bytes whose length was checked beforehand; every
/// read still checks, so a logic slip is an error and never a panic.
struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(DecodeError::Truncated {
            need: self.pos.saturating_add(n),
            have: self.buf.len(),
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.arr::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.arr()?))
    }
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
}

/// Decodes one whole message: `buf` must be exactly `totlen` bytes (what
/// [`Framer`] hands out). Never panics, whatever the bytes.
///
/// ```
/// use rampart_cluster::msg::{decode, encode, Body, Header, Msg};
/// let msg = Msg { header: Header::new(*b"0123456789abcdef0123456789abcdef01234567"), body: Body::MfStart };
/// let bytes = encode(&msg);
/// assert_eq!(bytes.len(), 2256);
/// assert_eq!(decode(&bytes), Ok(msg));
/// assert!(decode(&bytes[..100]).is_err());
/// ```
pub fn decode(buf: &[u8]) -> Result<Msg, DecodeError> {
    let mut rd = Rd { buf, pos: 0 };
    if buf.len() < 8 {
        return Err(DecodeError::Truncated {
            need: 8,
            have: buf.len(),
        });
    }
    if rd.arr::<4>()? != *SIG {
        return Err(DecodeError::BadSignature);
    }
    let totlen = rd.u32()?;
    if (totlen as usize) < HEADER_LEN {
        return Err(DecodeError::TooShort(totlen));
    }
    if buf.len() < totlen as usize {
        return Err(DecodeError::Truncated {
            need: totlen as usize,
            have: buf.len(),
        });
    }
    if buf.len() > totlen as usize {
        return Err(DecodeError::TrailingBytes {
            totlen,
            have: buf.len(),
        });
    }
    let ver = rd.u16()?;
    if ver != PROTO_VER {
        return Err(DecodeError::UnsupportedVersion(ver));
    }
    let port = rd.u16()?;
    let ty = rd.u16()?;
    let header = Header {
        port,
        count: rd.u16()?,
        current_epoch: rd.u64()?,
        config_epoch: rd.u64()?,
        offset: rd.u64()?,
        sender: rd.arr()?,
        myslots: SlotSet::from_bytes(&rd.arr()?),
        slaveof: rd.arr()?,
        myip: rd.arr()?,
        extensions: rd.u16()?,
        notused1: rd.arr()?,
        pport: rd.u16()?,
        cport: rd.u16()?,
        flags: rd.u16()?,
        state: rd.u8()?,
        mflags: rd.arr()?,
    };
    let body_bytes = rd.rest();
    let body = decode_body(ty, &header, body_bytes, totlen)?;
    Ok(Msg { header, body })
}

fn decode_body(ty: u16, h: &Header, bytes: &[u8], totlen: u32) -> Result<Body, DecodeError> {
    let mismatch = |expected_body: u64| DecodeError::BodyLength {
        msg_type: ty,
        totlen,
        expected: HEADER_LEN as u64 + expected_body,
    };
    let exact = |n: usize| {
        if bytes.len() == n {
            Ok(())
        } else {
            Err(mismatch(n as u64))
        }
    };
    let mut rd = Rd { buf: bytes, pos: 0 };
    Ok(match ty {
        msg_type::PING | msg_type::PONG | msg_type::MEET => {
            let ping = decode_ping(h, bytes, &mismatch)?;
            match ty {
                msg_type::PING => Body::Ping(ping),
                msg_type::PONG => Body::Pong(ping),
                _ => Body::Meet(ping),
            }
        }
        msg_type::FAIL => {
            exact(FAIL_BODY_LEN)?;
            Body::Fail { about: rd.arr()? }
        }
        msg_type::PUBLISH | msg_type::PUBLISHSHARD => {
            if bytes.len() < 8 {
                return Err(mismatch(8));
            }
            let clen = rd.u32()?;
            let mlen = rd.u32()?;
            // In u64: two u32 lengths cannot wrap around as they do in C.
            let want = 8 + u64::from(clen) + u64::from(mlen);
            if bytes.len() as u64 != want {
                return Err(mismatch(want));
            }
            let channel = rd.take(clen as usize)?.to_vec();
            let message = rd.take(mlen as usize)?.to_vec();
            if ty == msg_type::PUBLISH {
                Body::Publish { channel, message }
            } else {
                Body::PublishShard { channel, message }
            }
        }
        msg_type::FAILOVER_AUTH_REQUEST => {
            exact(0)?;
            Body::FailoverAuthRequest
        }
        msg_type::FAILOVER_AUTH_ACK => {
            exact(0)?;
            Body::FailoverAuthAck
        }
        msg_type::MFSTART => {
            exact(0)?;
            Body::MfStart
        }
        msg_type::UPDATE => {
            exact(UPDATE_BODY_LEN)?;
            Body::Update {
                config_epoch: rd.u64()?,
                nodename: rd.arr()?,
                slots: SlotSet::from_bytes(&rd.arr()?),
            }
        }
        msg_type::MODULE => {
            if bytes.len() < 13 {
                return Err(mismatch(13));
            }
            let module_id = rd.u64()?;
            let len = rd.u32()?;
            let module_type = rd.u8()?;
            let want = 13 + u64::from(len);
            if bytes.len() as u64 != want {
                return Err(mismatch(want));
            }
            Body::Module {
                module_id,
                module_type,
                payload: rd.take(len as usize)?.to_vec(),
            }
        }
        other => Body::Unknown {
            msg_type: other,
            payload: bytes.to_vec(),
        },
    })
}

fn decode_ping(
    h: &Header,
    bytes: &[u8],
    mismatch: &dyn Fn(u64) -> DecodeError,
) -> Result<PingBody, DecodeError> {
    let gossip_len = usize::from(h.count) * GOSSIP_LEN;
    if bytes.len() < gossip_len {
        return Err(mismatch(gossip_len as u64));
    }
    let mut rd = Rd { buf: bytes, pos: 0 };
    let mut gossip = Vec::with_capacity(usize::from(h.count));
    for _ in 0..h.count {
        gossip.push(Gossip {
            nodename: rd.arr()?,
            ping_sent: rd.u32()?,
            pong_received: rd.u32()?,
            ip: rd.arr()?,
            port: rd.u16()?,
            cport: rd.u16()?,
            flags: rd.u16()?,
            pport: rd.u16()?,
            notused1: rd.u16()?,
        });
    }
    let mut extensions = Vec::new();
    // As Redis 7.0: the extensions count is only looked at when the flag says
    // there are extensions; otherwise the gossip must end the message.
    if h.mflags[0] & MFLAG0_EXT_DATA != 0 {
        for index in 0..usize::from(h.extensions) {
            let rest = rd.rest().len();
            let bad = DecodeError::BadExtension { index };
            if rest < 8 {
                return Err(bad);
            }
            let len = rd.u32()? as usize;
            // Redis 7.0 accepts a zero length (and then reads the same
            // extension again); we require at least the extension's header.
            if len < 8 || !len.is_multiple_of(8) || len > rest {
                return Err(bad);
            }
            let ext_type = rd.u16()?;
            let unused = rd.u16()?;
            let data = rd.take(len - 8)?;
            extensions.push(decode_ext(ext_type, unused, data));
        }
    }
    if !rd.rest().is_empty() {
        // Redis's explen: header + gossip + the extensions it walked.
        return Err(mismatch(rd.pos as u64));
    }
    Ok(PingBody { gossip, extensions })
}

fn decode_ext(ext_type: u16, unused: u16, data: &[u8]) -> PingExt {
    if ext_type == EXT_TYPE_HOSTNAME {
        // Typed only when re-encoding gives back these exact bytes: the name,
        // a NUL, zero padding to the next multiple of 8.
        if let Some(nul) = data.iter().position(|&b| b == 0) {
            if data.len() == align8(nul + 1) && data[nul..].iter().all(|&b| b == 0) {
                return PingExt::Hostname {
                    hostname: data[..nul].to_vec(),
                    unused,
                };
            }
        }
    }
    PingExt::Other {
        ext_type,
        unused,
        data: data.to_vec(),
    }
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Encodes a message: `totlen` and the type from the body; for PING/PONG/MEET
/// also `count`, `extensions` and [`MFLAG0_EXT_DATA`] (set when there are
/// extensions). Counts and lengths beyond what the wire fields hold (65535
/// gossip entries or extensions, 4 GiB strings) are cut to fit, so the
/// output is always a message [`decode`] accepts.
///
/// ```
/// use rampart_cluster::msg::{decode, encode, Body, Header, Msg};
/// let msg = Msg {
///     header: Header::new([b'a'; 40]),
///     body: Body::Publish { channel: b"news".to_vec(), message: b"hi".to_vec() },
/// };
/// let bytes = encode(&msg);
/// assert_eq!(&bytes[..4], b"RCmb");
/// assert_eq!(u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize, bytes.len());
/// assert_eq!(decode(&bytes).unwrap(), msg);
/// ```
pub fn encode(msg: &Msg) -> Vec<u8> {
    let h = &msg.header;
    let mut count = h.count;
    let mut extensions = h.extensions;
    let mut mflags = h.mflags;
    let mut body = Vec::new();
    match &msg.body {
        Body::Ping(p) | Body::Pong(p) | Body::Meet(p) => {
            let gossip = &p.gossip[..p.gossip.len().min(usize::from(u16::MAX))];
            count = gossip.len() as u16;
            for g in gossip {
                body.extend_from_slice(&g.nodename);
                body.extend_from_slice(&g.ping_sent.to_be_bytes());
                body.extend_from_slice(&g.pong_received.to_be_bytes());
                body.extend_from_slice(&g.ip);
                for v in [g.port, g.cport, g.flags, g.pport, g.notused1] {
                    body.extend_from_slice(&v.to_be_bytes());
                }
            }
            let exts = &p.extensions[..p.extensions.len().min(usize::from(u16::MAX))];
            if !exts.is_empty() {
                mflags[0] |= MFLAG0_EXT_DATA;
                extensions = exts.len() as u16;
            } else if mflags[0] & MFLAG0_EXT_DATA != 0 {
                // The flag with no extensions: the count must say none.
                extensions = 0;
            }
            for e in exts {
                encode_ext(e, &mut body);
            }
        }
        Body::Fail { about } => body.extend_from_slice(about),
        Body::Publish { channel, message } | Body::PublishShard { channel, message } => {
            let c = &channel[..channel.len().min(u32::MAX as usize)];
            let m = &message[..message.len().min(u32::MAX as usize)];
            body.extend_from_slice(&(c.len() as u32).to_be_bytes());
            body.extend_from_slice(&(m.len() as u32).to_be_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(m);
        }
        Body::FailoverAuthRequest | Body::FailoverAuthAck | Body::MfStart => {}
        Body::Update {
            config_epoch,
            nodename,
            slots,
        } => {
            body.extend_from_slice(&config_epoch.to_be_bytes());
            body.extend_from_slice(nodename);
            body.extend_from_slice(slots.as_bytes());
        }
        Body::Module {
            module_id,
            module_type,
            payload,
        } => {
            let p = &payload[..payload.len().min(u32::MAX as usize)];
            body.extend_from_slice(&module_id.to_be_bytes());
            body.extend_from_slice(&(p.len() as u32).to_be_bytes());
            body.push(*module_type);
            body.extend_from_slice(p);
        }
        Body::Unknown { payload, .. } => body.extend_from_slice(payload),
    }
    // totlen is a u32: a body that does not fit is cut (only an Unknown
    // payload can get there; the others were capped above).
    body.truncate(u32::MAX as usize - HEADER_LEN);
    let totlen = (HEADER_LEN + body.len()) as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(SIG);
    out.extend_from_slice(&totlen.to_be_bytes());
    out.extend_from_slice(&PROTO_VER.to_be_bytes());
    out.extend_from_slice(&h.port.to_be_bytes());
    out.extend_from_slice(&msg.body.msg_type().to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&h.current_epoch.to_be_bytes());
    out.extend_from_slice(&h.config_epoch.to_be_bytes());
    out.extend_from_slice(&h.offset.to_be_bytes());
    out.extend_from_slice(&h.sender);
    out.extend_from_slice(h.myslots.as_bytes());
    out.extend_from_slice(&h.slaveof);
    out.extend_from_slice(&h.myip);
    out.extend_from_slice(&extensions.to_be_bytes());
    out.extend_from_slice(&h.notused1);
    out.extend_from_slice(&h.pport.to_be_bytes());
    out.extend_from_slice(&h.cport.to_be_bytes());
    out.extend_from_slice(&h.flags.to_be_bytes());
    out.push(h.state);
    out.extend_from_slice(&mflags);
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&body);
    out
}

fn encode_ext(e: &PingExt, out: &mut Vec<u8>) {
    let (ext_type, unused, data_len) = match e {
        PingExt::Hostname { hostname, unused } => {
            (EXT_TYPE_HOSTNAME, *unused, align8(hostname.len() + 1))
        }
        // Unpadded data from a hand-built value is padded, so the extension
        // stays 8-byte aligned as Redis requires.
        PingExt::Other {
            ext_type,
            unused,
            data,
        } => (*ext_type, *unused, align8(data.len())),
    };
    let len = (8 + data_len) as u32;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&ext_type.to_be_bytes());
    out.extend_from_slice(&unused.to_be_bytes());
    let start = out.len();
    match e {
        PingExt::Hostname { hostname, .. } => out.extend_from_slice(hostname),
        PingExt::Other { data, .. } => out.extend_from_slice(data),
    }
    out.resize(start + data_len, 0);
}

impl Header {
    /// A header for `sender` with every other field zero (a master with no
    /// slots, epoch 0, no announced IP).
    ///
    /// ```
    /// let h = rampart_cluster::msg::Header::new([b'0'; 40]);
    /// assert_eq!(h.config_epoch, 0);
    /// assert!(h.myslots.is_empty());
    /// ```
    pub fn new(sender: NodeName) -> Self {
        Header {
            port: 0,
            count: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender,
            myslots: SlotSet::new(),
            slaveof: [0; NAME_LEN],
            myip: [0; IP_LEN],
            extensions: 0,
            notused1: [0; 30],
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
        }
    }

    /// The announced IP up to its NUL (empty: the receiver uses the peer address).
    pub fn myip(&self) -> &[u8] {
        c_str(&self.myip)
    }

    /// The master's name, or `None` when `slaveof` is all zero (a master).
    pub fn slaveof(&self) -> Option<&NodeName> {
        (self.slaveof != [0; NAME_LEN]).then_some(&self.slaveof)
    }
}

impl Gossip {
    /// The node's IP up to its NUL.
    pub fn ip(&self) -> &[u8] {
        c_str(&self.ip)
    }
}

/// The bytes of a fixed C buffer up to its first NUL.
///
/// ```
/// assert_eq!(rampart_cluster::msg::c_str(b"10.0.0.1\0junk"), b"10.0.0.1");
/// ```
pub fn c_str(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

/// A default upper bound for one message: the largest PUBLISH a Redis client
/// can cause (two 512 MB bulk strings, `proto-max-bulk-len`'s default) plus
/// the header. Redis itself sets no bound; a link that claims more is cut.
pub const DEFAULT_MAX_MSG_LEN: u32 = 2 * 512 * 1024 * 1024 + HEADER_LEN as u32 + 8;

/// Why a byte stream cannot be cut into messages: the link must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The stream does not start with "RCmb".
    #[error("bad cluster bus message signature")]
    BadSignature,
    /// `totlen` is below the header length or above the limit.
    #[error("bad cluster bus message length {0}")]
    BadLength(u32),
}

/// The length of the message at the start of `buf` once all of it is there:
/// `Ok(None)` while more bytes are needed, `Ok(Some(totlen))` when
/// `buf[..totlen]` is a whole message. As Redis's `clusterReadHandler`, the
/// signature and length are checked as soon as 8 bytes have arrived, and a
/// `totlen` below the 2256-byte header is refused, as is one above `max_len`.
///
/// ```
/// use rampart_cluster::msg::{frame_len, FrameError};
/// let mut buf = b"RCmb".to_vec();
/// assert_eq!(frame_len(&buf, 1 << 20), Ok(None));
/// buf.extend_from_slice(&2256u32.to_be_bytes());
/// assert_eq!(frame_len(&buf, 1 << 20), Ok(None));
/// buf.resize(2256, 0);
/// assert_eq!(frame_len(&buf, 1 << 20), Ok(Some(2256)));
/// assert_eq!(frame_len(b"RCmb\0\0\0\x07", 1 << 20), Err(FrameError::BadLength(7)));
/// ```
pub fn frame_len(buf: &[u8], max_len: u32) -> Result<Option<usize>, FrameError> {
    let Some(head) = buf.get(..8) else {
        return Ok(None);
    };
    if &head[..4] != SIG {
        return Err(FrameError::BadSignature);
    }
    let totlen = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if (totlen as usize) < HEADER_LEN || totlen > max_len {
        return Err(FrameError::BadLength(totlen));
    }
    Ok((buf.len() >= totlen as usize).then_some(totlen as usize))
}

/// Accumulates bytes read from a bus link and hands out whole messages.
///
/// ```
/// use rampart_cluster::msg::{encode, Body, Framer, Header, Msg};
/// let bytes = encode(&Msg { header: Header::new([b'1'; 40]), body: Body::FailoverAuthAck });
/// let mut f = Framer::new(1 << 20);
/// f.push(&bytes[..10]);
/// assert_eq!(f.next_frame(), Ok(None));
/// f.push(&bytes[10..]);
/// assert_eq!(f.next_frame(), Ok(Some(bytes.clone())));
/// assert_eq!(f.next_frame(), Ok(None));
/// ```
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max_len: u32,
}

impl Default for Framer {
    /// A framer with [`DEFAULT_MAX_MSG_LEN`].
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_MSG_LEN)
    }
}

impl Framer {
    /// A framer refusing messages longer than `max_len` (see [`DEFAULT_MAX_MSG_LEN`]).
    pub fn new(max_len: u32) -> Self {
        Framer {
            buf: Vec::new(),
            max_len,
        }
    }

    /// Appends bytes read from the link.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message, if one is there. After an error the stream
    /// cannot be resynchronised (there are no delimiters): drop the link.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match frame_len(&self.buf, self.max_len)? {
            Some(n) => {
                let rest = self.buf.split_off(n);
                Ok(Some(std::mem::replace(&mut self.buf, rest)))
            }
            None => Ok(None),
        }
    }

    /// Bytes held that do not yet make a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ping() -> Msg {
        let mut header = Header::new(*b"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca");
        header.port = 30001;
        header.cport = 40001;
        header.current_epoch = 7;
        header.config_epoch = 3;
        header.offset = 12345;
        header.flags = node_flags::MASTER | node_flags::MYSELF;
        header.myslots.insert_range(0..=5460);
        header.myip[..9].copy_from_slice(b"127.0.0.1");
        let mut ip = [0u8; IP_LEN];
        ip[..9].copy_from_slice(b"127.0.0.1");
        ip[20] = 0x55; // garbage after the NUL must survive
        Msg {
            header,
            body: Body::Ping(PingBody {
                gossip: vec![Gossip {
                    nodename: [b'f'; 40],
                    ping_sent: 1,
                    pong_received: 2,
                    ip,
                    port: 30002,
                    cport: 40002,
                    flags: node_flags::SLAVE,
                    pport: 0,
                    notused1: 0,
                }],
                extensions: vec![
                    PingExt::Hostname {
                        hostname: b"node-1.example".to_vec(),
                        unused: 0,
                    },
                    PingExt::Other {
                        ext_type: 99,
                        unused: 7,
                        data: vec![1; 16],
                    },
                ],
            }),
        }
    }

    #[test]
    fn ping_layout_and_roundtrip() {
        let msg = sample_ping();
        let bytes = encode(&msg);
        // header + 1 gossip + hostname ext (8 + 16) + other ext (8 + 16)
        assert_eq!(bytes.len(), HEADER_LEN + GOSSIP_LEN + 24 + 24);
        assert_eq!(&bytes[14..16], &1u16.to_be_bytes()); // count
        assert_eq!(&bytes[2214..2216], &2u16.to_be_bytes()); // extensions
        assert_eq!(bytes[2253] & MFLAG0_EXT_DATA, MFLAG0_EXT_DATA);
        assert_eq!(&bytes[40..80], &msg.header.sender);
        assert_eq!(bytes[80], 0xff); // slot 0..7 in myslots
        assert_eq!(&bytes[2168..2177], b"127.0.0.1");
        assert_eq!(&bytes[2248..2250], &40001u16.to_be_bytes());
        let ext = &bytes[HEADER_LEN + GOSSIP_LEN..];
        assert_eq!(&ext[..4], &24u32.to_be_bytes());
        assert_eq!(&ext[8..22], b"node-1.example");
        let mut back = decode(&bytes).unwrap();
        assert_eq!(encode(&back), bytes);
        // encode set count/extensions/flag; the decoded header holds them.
        back.header.count = 0;
        back.header.extensions = 0;
        back.header.mflags[0] &= !MFLAG0_EXT_DATA;
        assert_eq!(back, msg);
    }

    #[test]
    fn every_type_roundtrips() {
        let h = Header::new([b'a'; 40]);
        let bodies = vec![
            Body::Pong(PingBody::default()),
            Body::Meet(PingBody::default()),
            Body::Fail { about: [b'b'; 40] },
            Body::Publish {
                channel: b"c".to_vec(),
                message: b"m".to_vec(),
            },
            Body::PublishShard {
                channel: vec![],
                message: b"mm".to_vec(),
            },
            Body::FailoverAuthRequest,
            Body::FailoverAuthAck,
            Body::MfStart,
            Body::Update {
                config_epoch: 9,
                nodename: [b'c'; 40],
                slots: (100..200).collect(),
            },
            Body::Module {
                module_id: 0x0102030405060708,
                module_type: 3,
                payload: b"xyz".to_vec(),
            },
            Body::Unknown {
                msg_type: 77,
                payload: b"whatever".to_vec(),
            },
        ];
        for body in bodies {
            let msg = Msg {
                header: h.clone(),
                body,
            };
            let bytes = encode(&msg);
            assert_eq!(decode(&bytes).as_ref(), Ok(&msg), "{:?}", msg.body);
            assert_eq!(encode(&decode(&bytes).unwrap()), bytes);
        }
    }

    #[test]
    fn length_checks() {
        let msg = Msg {
            header: Header::new([b'a'; 40]),
            body: Body::Fail { about: [b'b'; 40] },
        };
        let mut bytes = encode(&msg);
        bytes.push(0);
        assert!(matches!(
            decode(&bytes),
            Err(DecodeError::TrailingBytes { .. })
        ));
        // Fix totlen to cover the extra byte: now the FAIL body is too long.
        let n = bytes.len() as u32;
        bytes[4..8].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(
            decode(&bytes),
            Err(DecodeError::BodyLength { msg_type: 3, .. })
        ));
        // Publish lengths that would wrap a u32 sum.
        let mut p = encode(&Msg {
            header: Header::new([b'a'; 40]),
            body: Body::Publish {
                channel: vec![],
                message: vec![],
            },
        });
        p[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        p[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(decode(&p), Err(DecodeError::BodyLength { .. })));
        // Wrong version.
        let mut v = encode(&msg);
        v[9] = 2;
        assert_eq!(decode(&v), Err(DecodeError::UnsupportedVersion(2)));
    }

    #[test]
    fn bad_extensions_are_refused() {
        let bytes = encode(&sample_ping());
        let ext = HEADER_LEN + GOSSIP_LEN;
        for bad_len in [0u32, 4, 12, 1 << 20, 0x1_0018] {
            let mut b = bytes.clone();
            b[ext..ext + 4].copy_from_slice(&bad_len.to_be_bytes());
            assert_eq!(
                decode(&b),
                Err(DecodeError::BadExtension { index: 0 }),
                "{bad_len}"
            );
        }
        // One extension more than there are.
        let mut b = bytes.clone();
        b[2214..2216].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(decode(&b), Err(DecodeError::BadExtension { index: 2 }));
        // Without the flag, the extension bytes are trailing garbage.
        let mut b = bytes.clone();
        b[2253] &= !MFLAG0_EXT_DATA;
        assert!(matches!(decode(&b), Err(DecodeError::BodyLength { .. })));
    }

    #[test]
    fn odd_hostname_bytes_stay_opaque() {
        let mut bytes = encode(&sample_ping());
        let data = HEADER_LEN + GOSSIP_LEN + 8;
        bytes[data + 15] = 1; // non-zero padding after the NUL
        let msg = decode(&bytes).unwrap();
        let exts = &msg.body.ping().unwrap().extensions;
        assert!(matches!(exts[0], PingExt::Other { ext_type: 0, .. }));
        assert_eq!(encode(&msg), bytes);
    }

    #[test]
    fn framer_splits_a_stream() {
        let a = encode(&sample_ping());
        let b = encode(&Msg {
            header: Header::new([b'z'; 40]),
            body: Body::FailoverAuthRequest,
        });
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let mut f = Framer::new(DEFAULT_MAX_MSG_LEN);
        let mut got = Vec::new();
        for chunk in stream.chunks(333) {
            f.push(chunk);
            while let Some(m) = f.next_frame().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![a, b]);
        assert_eq!(f.buffered(), 0);
        let mut f = Framer::new(3000);
        f.push(b"RCmb\0\0\x10\0");
        assert_eq!(f.next_frame(), Err(FrameError::BadLength(4096)));
        let mut f = Framer::new(3000);
        f.push(b"RCmx\0\0\x10\0");
        assert_eq!(f.next_frame(), Err(FrameError::BadSignature));
    }
}
