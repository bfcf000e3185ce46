//! Pub/Sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH,
//! SSUBSCRIBE SUNSUBSCRIBE SPUBLISH, PUBSUB. Delivery and the registry
//! live in [`crate::pubsub`].

use super::flags::*;
use super::{container_spec, help, spec, subcommand_syntax_error, CommandSpec, Ctx};
use crate::pubsub::Kind;

fn subscribe_each(ctx: &mut Ctx<'_>, kind: Kind) {
    let ps = &ctx.srv.pubsub;
    for name in &ctx.args[1..] {
        ps.subscribe(ctx.client, kind, name, ctx.out);
    }
}

fn unsubscribe_each(ctx: &mut Ctx<'_>, kind: Kind) {
    let names = (ctx.args.len() > 1).then(|| &ctx.args[1..]);
    ctx.srv
        .pubsub
        .unsubscribe(ctx.client, kind, names, true, ctx.out);
}

/// `SUBSCRIBE channel [channel ...]`
fn subscribe(ctx: &mut Ctx<'_>) {
    subscribe_each(ctx, Kind::Channel);
}

/// `UNSUBSCRIBE [channel ...]`
fn unsubscribe(ctx: &mut Ctx<'_>) {
    unsubscribe_each(ctx, Kind::Channel);
}

/// `PSUBSCRIBE pattern [pattern ...]`
fn psubscribe(ctx: &mut Ctx<'_>) {
    subscribe_each(ctx, Kind::Pattern);
}

/// `PUNSUBSCRIBE [pattern ...]`
fn punsubscribe(ctx: &mut Ctx<'_>) {
    unsubscribe_each(ctx, Kind::Pattern);
}

/// `SSUBSCRIBE shardchannel [shardchannel ...]`
fn ssubscribe(ctx: &mut Ctx<'_>) {
    subscribe_each(ctx, Kind::Shard);
}

/// `SUNSUBSCRIBE [shardchannel ...]`
fn sunsubscribe(ctx: &mut Ctx<'_>) {
    unsubscribe_each(ctx, Kind::Shard);
}

/// PUBLISH and SPUBLISH: deliver, then send the command to replicas as
/// Redis does, so their subscribers receive it too. In cluster mode the
/// bus carries it instead (Redis's `clusterPropagatePublish`): to every
/// node for PUBLISH, to the nodes of this shard for SPUBLISH; the
/// replication stream then does not, or replicas would deliver it twice.
fn publish_as(ctx: &mut Ctx<'_>, shard: bool) {
    let n = ctx.srv.pubsub.publish(&ctx.args[1], &ctx.args[2], shard);
    let stream = &ctx.srv.hooks.stream;
    if let Some(bus) = ctx.srv.cluster.get() {
        bus.publish(&ctx.args[1], &ctx.args[2], shard);
    } else if stream.active() {
        let argv: Vec<&[u8]> = ctx.args.iter().map(|a| &a[..]).collect();
        stream.propagate(ctx.client.db, &argv);
    }
    ctx.propagated = true;
    ctx.out.int(n as i64);
}

/// `PUBLISH channel message`
fn publish(ctx: &mut Ctx<'_>) {
    publish_as(ctx, false);
}

/// `SPUBLISH shardchannel message`
fn spublish(ctx: &mut Ctx<'_>) {
    publish_as(ctx, true);
}

fn channels_as(ctx: &mut Ctx<'_>, shard: bool) {
    if ctx.args.len() > 3 {
        return subcommand_syntax_error(ctx);
    }
    let pattern = ctx.args.get(2).map(|p| &p[..]);
    let names = ctx.srv.pubsub.channel_names(shard, pattern);
    ctx.out.array(names.len());
    for n in &names {
        ctx.out.bulk(n);
    }
}

fn numsub_as(ctx: &mut Ctx<'_>, shard: bool) {
    ctx.out.array((ctx.args.len() - 2) * 2);
    for ch in &ctx.args[2..] {
        ctx.out.bulk(ch);
        ctx.out.int(ctx.srv.pubsub.numsub(shard, ch) as i64);
    }
}

/// `PUBSUB CHANNELS [pattern]`
fn channels(ctx: &mut Ctx<'_>) {
    channels_as(ctx, false);
}

/// `PUBSUB SHARDCHANNELS [pattern]`
fn shardchannels(ctx: &mut Ctx<'_>) {
    channels_as(ctx, true);
}

/// `PUBSUB NUMSUB [channel ...]`
fn numsub(ctx: &mut Ctx<'_>) {
    numsub_as(ctx, false);
}

/// `PUBSUB SHARDNUMSUB [shardchannel ...]`
fn shardnumsub(ctx: &mut Ctx<'_>) {
    numsub_as(ctx, true);
}

/// `PUBSUB NUMPAT`
fn numpat(ctx: &mut Ctx<'_>) {
    ctx.out.int(ctx.srv.pubsub.numpat() as i64);
}

/// `PUBSUB HELP`
fn pubsub_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
}

const G: &str = "pubsub";

static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "channels",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        channels,
    ),
    spec("help", 2, LOADING | STALE, (0, 0, 0), G, pubsub_help),
    spec("numpat", 2, PUBSUB | LOADING | STALE, (0, 0, 0), G, numpat),
    spec("numsub", -2, PUBSUB | LOADING | STALE, (0, 0, 0), G, numsub),
    spec(
        "shardchannels",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        shardchannels,
    ),
    spec(
        "shardnumsub",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        G,
        shardnumsub,
    ),
];

const SUB: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;

/// The Pub/Sub family.
pub static COMMANDS: &[CommandSpec] = &[
    spec("subscribe", -2, SUB, (0, 0, 0), G, subscribe),
    spec("unsubscribe", -1, SUB, (0, 0, 0), G, unsubscribe),
    spec("psubscribe", -2, SUB, (0, 0, 0), G, psubscribe),
    spec("punsubscribe", -1, SUB, (0, 0, 0), G, punsubscribe),
    spec("ssubscribe", -2, SUB, (1, -1, 1), G, ssubscribe),
    spec("sunsubscribe", -1, SUB, (1, -1, 1), G, sunsubscribe),
    spec(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (0, 0, 0),
        G,
        publish,
    ),
    spec(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (1, 1, 1),
        G,
        spublish,
    ),
    container_spec("pubsub", -2, 0, G, PUBSUB_SUBCOMMANDS),
];
