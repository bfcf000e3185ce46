//! `rampart-server [config-file] [--directive value ...]`: a drop-in for
//! `redis-server`.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rampart_server::config::{split_command_line, Config};
use rampart_server::state::Server;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(first) = args.first() {
        match first.as_str() {
            "-v" | "--version" => {
                println!(
                    "Rampart server v={} (Redis {} compatible)",
                    env!("CARGO_PKG_VERSION"),
                    rampart_server::REDIS_VERSION
                );
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!(
                    "Usage: rampart-server [/path/to/redis.conf] [options]\n\
                     \x20      rampart-server - (read config from stdin)\n\
                     \x20      rampart-server -v or --version\n\n\
                     Examples:\n\
                     \x20      rampart-server (run with defaults: port 6379)\n\
                     \x20      rampart-server /etc/redis/6379.conf\n\
                     \x20      rampart-server --port 7777\n\
                     \x20      rampart-server /etc/myredis.conf --loglevel verbose"
                );
                return ExitCode::SUCCESS;
            }
            _ => {}
        }
    }
    // `--import-rdb PATH` is Rampart's own, so it is taken out before the
    // rest is read as redis.conf directives.
    let mut args = args;
    let mut import = None;
    if let Some(i) = args.iter().position(|a| a == "--import-rdb") {
        if i + 1 >= args.len() {
            eprintln!("--import-rdb needs the path of a plain RDB file");
            return ExitCode::from(1);
        }
        import = Some(std::path::PathBuf::from(args.remove(i + 1)));
        args.remove(i);
    }
    let mut restore = None;
    if let Some(i) = args.iter().position(|a| a == "--restore-from") {
        if i + 1 >= args.len() {
            eprintln!("--restore-from needs a backup (s3://bucket/prefix/NAME or DIR/NAME)");
            return ExitCode::from(1);
        }
        restore = Some(args.remove(i + 1));
        args.remove(i);
    }
    let set_aside = match args
        .iter()
        .position(|a| a == "--set-aside-unreadable-snapshot")
    {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let (file, extra) = split_command_line(&args);
    let config = Config::default();
    if let Err(e) = config.load(file.as_deref(), &extra) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    if let Err(e) = init_logging(&config) {
        eprintln!("Can't open the log file: {e}");
        return ExitCode::from(1);
    }
    rampart_server::crash::install();
    rampart_server::crash::configure(&config);
    // As Redis: a supervisor manages the process, so daemonize is ignored.
    let supervised = rampart_server::supervise::detect(&config);
    if config.flag("daemonize") && !supervised {
        match rampart_server::supervise::daemonize(&config) {
            Ok(pidfile) => config.force("pidfile", &pidfile),
            Err(e) => {
                eprintln!("{e:#}");
                return ExitCode::from(1);
            }
        }
    }
    tracing::info!("oO0OoO0OoO0Oo Rampart is starting oO0OoO0OoO0Oo");
    // Before any thread starts or any secret is read.
    if let Err(e) = rampart_server::harden::apply(&config) {
        tracing::error!("{e:#}");
        eprintln!("{e:#}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rampart")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Can't start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(run(config, import, set_aside, restore)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{e:#}");
            1
        }
    };
    // Exit as Redis does, without tearing the runtime down: dropping it
    // while a task runs inside block_in_place (the clock's expiry sweep, a
    // snapshot) lets that task poll a timer on a runtime being shut down,
    // which panics. Everything worth keeping is saved and logged by now
    // (the log writers are unbuffered).
    std::process::exit(code)
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match config.get("loglevel").as_deref() {
        Some("debug") => tracing::Level::DEBUG,
        Some("verbose") => tracing::Level::DEBUG,
        Some("warning") => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    };
    let logfile = config.get("logfile").unwrap_or_default();
    let writer = if logfile.is_empty() {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stdout)
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logfile)?;
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f))
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer);
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::from_level(level))
        .with(fmt)
        .with(rampart_server::supervise::SyslogLayer::from_config(config)?)
        .init();
    Ok(())
}

async fn run(
    config: Config,
    import: Option<std::path::PathBuf>,
    set_aside: bool,
    restore: Option<String>,
) -> anyhow::Result<()> {
    // Before anything listens: a SIGTERM sent as soon as the port answers
    // must find the handler, not the default action.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let port = config.int("port");
    let binds = config.get("bind").unwrap_or_default();
    let pidfile = config.get("pidfile").unwrap_or_default();
    let keys = rampart_server::encryption::open(&config).await?;
    let mut srv = Server::new(config);
    srv.keys = keys.map(Arc::new);
    let srv = Arc::new(srv);
    let _ = srv.persist.runtime.set(tokio::runtime::Handle::current());
    let requirepass = srv.config.get("requirepass").unwrap_or_default();
    if !requirepass.is_empty() {
        rampart_server::acl::set_requirepass(&srv, &requirepass);
    }
    if let Err(e) = rampart_server::acl::load_at_startup(&srv) {
        tracing::warn!("{e}");
        anyhow::bail!("ACL errors at startup");
    }
    let tls_port = srv.config.int("tls-port");
    if rampart_server::tls::Tls::wanted(&srv.config) {
        if let Err(e) = srv.tls.configure(&srv.config) {
            anyhow::bail!("Failed to configure TLS: {e}");
        }
    }
    let mut listeners = Vec::new();
    for (p, tls) in [(port, false), (tls_port, true)] {
        if p != 0 {
            for l in rampart_server::listen::open(&binds, p)? {
                listeners.push((l, tls));
            }
        }
    }
    if listeners.is_empty() {
        anyhow::bail!("Configured to not listen anywhere, exiting.");
    }
    // INFO's tcp_port is the TLS port when there is no plain one, as in Redis.
    let shown = if port != 0 { port } else { tls_port };
    srv.port.store(shown as u64, Ordering::Relaxed);
    if !pidfile.is_empty() {
        if let Err(e) = std::fs::write(&pidfile, format!("{}\n", std::process::id())) {
            tracing::warn!("Failed to write PID file {pidfile}: {e}");
        }
    }
    tracing::info!(
        "Rampart {} (Redis {} compatible) started, pid={}, port={}{}",
        env!("CARGO_PKG_VERSION"),
        rampart_server::REDIS_VERSION,
        std::process::id(),
        port,
        if tls_port != 0 {
            format!(", tls-port={tls_port}")
        } else {
            String::new()
        }
    );
    tracing::info!(
        "Data directory {}, snapshot {}, keys {}",
        srv.config.get("dir").unwrap_or_default(),
        rampart_server::persist::snapshot_path(&srv).display(),
        srv.keys
            .as_ref()
            .map(|k| k.describe())
            .unwrap_or_else(|| "none (encryption-at-rest no)".into())
    );
    rampart_server::supervise::banner(&srv, port, tls_port);
    {
        let srv = srv.clone();
        tokio::task::spawn_blocking(move || {
            rampart_server::persist::startup(&srv, import.as_deref(), set_aside, restore.as_deref())
        })
        .await??;
    }
    // Connection threads: `io-threads` when given; else one per core but
    // one, which is left to snapshot encoding, replication and the clients
    // a small machine also runs (measured on 2 cores with redis-benchmark
    // beside the server: with one thread every line of set/get/incr/mset
    // at -P1 and -P16 ran at least as fast as redis-server; with two, the
    // benchmark lost CPU to the server and GET -P16 fell to 0.85x).
    let cores = if srv.config.given("io-threads") {
        srv.config.int("io-threads").max(1) as usize
    } else {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = n.saturating_sub(1).max(1);
        srv.config.force("io-threads", &n.to_string());
        n
    };
    let cores = Arc::new(rampart_server::cores::Cores::start(&srv, cores)?);
    // Before the first client is served: whoever sees PING answered can
    // scrape.
    rampart_server::metrics::start(&srv).await?;
    rampart_server::cluster::start(&srv)?;
    rampart_server::listen::serve(&srv, cores, listeners);
    tokio::spawn(rampart_server::cron::run(srv.clone()));
    rampart_server::repl::start(&srv);
    rampart_server::slowlog::configure(&srv);
    rampart_server::latency::configure(&srv);
    rampart_server::evict::configure(&srv);
    rampart_server::client_mem::configure(&srv);
    srv.pubsub.configure(&srv.config);
    rampart_server::tracking::configure(&srv);
    rampart_server::info::mark_startup(&srv);
    tracing::info!("Ready to accept connections tcp");
    if tls_port != 0 {
        tracing::info!("Ready to accept connections tls");
    }
    rampart_server::supervise::ready(&srv);
    // Redis's serverCron checks an initiated shutdown 10 times a second.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        // SHUTDOWN may have finished while this task was busy.
        if srv.shutdown_ctl.finished() {
            break;
        }
        let waiting = srv.shutdown_ctl.in_progress();
        let signal = tokio::select! {
            _ = term.recv() => {
                tracing::warn!("Received SIGTERM scheduling shutdown...");
                Some("shutdown-on-sigterm")
            }
            _ = int.recv() => {
                if srv.shutdown_ctl.signal() {
                    // As Redis: a second SIGINT means "now", without saving.
                    tracing::warn!("You insist... exiting now.");
                    std::process::exit(1);
                }
                tracing::warn!("Received SIGINT scheduling shutdown...");
                Some("shutdown-on-sigint")
            }
            _ = srv.shutdown.notified() => None,
            _ = srv.shutdown_ctl.wake.notified() => None,
            _ = tick.tick(), if waiting => None,
        };
        if srv.shutdown_ctl.finished() {
            break;
        }
        if let Some(name) = signal {
            srv.shutdown_ctl.signal();
            if srv.shutdown_ctl.in_progress() {
                // Already waiting for replicas: the signal changes nothing.
                continue;
            }
            let flags = rampart_server::shutdown::Flags::from_config(
                &srv.config.get(name).unwrap_or_default(),
            );
            let s = srv.clone();
            let done = tokio::task::spawn_blocking(move || {
                let _gate = s.keyspace.exclusive();
                rampart_server::shutdown::prepare(&s, flags, None)
            })
            .await?;
            if done == rampart_server::shutdown::Outcome::Exit {
                break;
            }
            continue;
        }
        if srv.shutdown_ctl.in_progress() {
            let s = srv.clone();
            let done = tokio::task::spawn_blocking(move || {
                let _gate = s.keyspace.exclusive();
                rampart_server::shutdown::step(&s)
            })
            .await?;
            if done {
                break;
            }
        }
    }
    srv.shutting_down.store(true, Ordering::Relaxed);
    srv.shutdown.notify_waiters();
    if !pidfile.is_empty() {
        tracing::info!("Removing the pid file.");
        let _ = std::fs::remove_file(&pidfile);
    }
    tracing::info!("Rampart is now ready to exit, bye bye...");
    Ok(())
}
