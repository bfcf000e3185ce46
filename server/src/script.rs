//! Glue between the server and the Lua engine (`rampart-scripting`): the
//! shared engine, and the [`Host`] through which a script's `redis.call`
//! runs commands under Redis's script rules (`scriptCall` in script.c).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use rampart_scripting::{Engine, Host, Watch};

use crate::client::Client;
use crate::cmd::flags;
use crate::resp::Out;
use crate::state::Server;

/// The Lua engine and what other threads read while a script runs.
pub struct Scripting {
    /// The VM and script cache; held for a whole script run (under the
    /// keyspace's exclusive gate).
    pub engine: Mutex<Option<Engine>>,
    /// The functions' VM (FUNCTION, FCALL): a VM of its own, as in Redis.
    pub functions: Mutex<Option<Engine>>,
    /// Busy and kill state: read without the lock (SCRIPT KILL, -BUSY).
    pub watch: Arc<Watch>,
    /// The running function's name and command (FUNCTION STATS).
    pub running: Mutex<Running>,
    /// What [`Scripting::note_functions`] last saw.
    functions_noted: FunctionsNoted,
}

/// The functions engine's figures, readable while a function holds it.
#[derive(Default)]
struct FunctionsNoted {
    functions: std::sync::atomic::AtomicUsize,
    libraries: std::sync::atomic::AtomicUsize,
    vm_bytes: std::sync::atomic::AtomicUsize,
}

/// The function running now, for FUNCTION STATS. Its buffers are kept
/// from call to call: FCALL fills them every time, for the rare reader.
#[derive(Default)]
pub struct Running {
    active: bool,
    name: String,
    command: Vec<Bytes>,
}

impl Running {
    /// A function `name` starts, called by `command`.
    pub fn start(&mut self, name: &str, command: &[Bytes]) {
        self.active = true;
        self.name.clear();
        self.name.push_str(name);
        self.command.clear();
        self.command.extend_from_slice(command);
    }

    /// The function returned (its command's arguments are let go).
    pub fn stop(&mut self) {
        self.active = false;
        self.command.clear();
    }

    /// The running function's name and command, if one runs.
    ///
    /// ```
    /// let mut r = rampart_server::script::Running::default();
    /// r.start("f", &["FCALL".into(), "f".into(), "0".into()]);
    /// assert_eq!(r.current().map(|(n, c)| (n, c.len())), Some(("f".to_string(), 3)));
    /// r.stop();
    /// assert!(r.current().is_none());
    /// ```
    pub fn current(&self) -> Option<(String, Vec<Bytes>)> {
        self.active
            .then(|| (self.name.clone(), self.command.clone()))
    }
}

impl Default for Scripting {
    fn default() -> Self {
        let watch = Arc::new(Watch::default());
        // A script runs on its caller's connection thread; past its time
        // limit, the thread's other clients go on on a fresh worker (see
        // `cores`), which answers them -BUSY or lets them SCRIPT KILL. The
        // pause lets that worker take the runtime before this thread could
        // take it back; the hook calls again a second later if it did.
        watch.on_busy(Box::new(|| {
            crate::persist::blocking(|| std::thread::sleep(std::time::Duration::from_millis(1)))
        }));
        let engine = match Engine::new(watch.clone()) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!("Lua engine unavailable: {e}");
                None
            }
        };
        let functions = Engine::new(watch.clone()).ok();
        Scripting {
            engine: Mutex::new(engine),
            functions: Mutex::new(functions),
            watch,
            running: Mutex::new(Running::default()),
            functions_noted: FunctionsNoted::default(),
        }
    }
}

impl Scripting {
    /// Runs `f` on the functions' engine (`None` when there is none) and
    /// notes its counts after, for readers that cannot wait for the lock.
    pub fn with_functions<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> Option<R> {
        let mut guard = self.functions.lock();
        let engine = guard.as_mut()?;
        let r = f(engine);
        self.note_functions(engine);
        Some(r)
    }

    /// Notes `engine`'s function and library counts and its VM's size
    /// (call it with the functions' lock held, after a change).
    fn note_functions(&self, engine: &Engine) {
        let noted = &self.functions_noted;
        noted
            .functions
            .store(engine.function_count(), Ordering::Relaxed);
        noted
            .libraries
            .store(engine.libraries().count(), Ordering::Relaxed);
        self.note_vm_size(engine);
    }

    /// Notes the functions' VM's size after a run (FCALL changes no
    /// library), with the functions' lock held.
    pub fn note_vm_size(&self, engine: &Engine) {
        let noted = &self.functions_noted;
        noted.vm_bytes.store(engine.vm_memory(), Ordering::Relaxed);
    }

    /// `(number_of_functions, number_of_libraries)` for INFO and FUNCTION
    /// STATS, also while a function runs (Redis counts them then too).
    pub fn function_counts(&self) -> (usize, usize) {
        let noted = &self.functions_noted;
        (
            noted.functions.load(Ordering::Relaxed),
            noted.libraries.load(Ordering::Relaxed),
        )
    }

    /// Bytes the functions' VM uses (INFO `used_memory_vm_functions`);
    /// while a function holds it, as it was last noted.
    pub fn functions_vm_memory(&self) -> usize {
        match self.functions.try_lock() {
            Some(g) => g.as_ref().map_or(0, |e| e.vm_memory()),
            None => self.functions_noted.vm_bytes.load(Ordering::Relaxed),
        }
    }

    /// `(used_memory_lua, used_memory_scripts_eval, number_of_cached_scripts)`
    /// for INFO, or zeros while a script holds the engine.
    pub fn memory(&self) -> (usize, usize, usize) {
        match self.engine.try_lock() {
            Some(g) => g.as_ref().map_or((0, 0, 0), |e| {
                (e.vm_memory(), e.scripts_memory(), e.cached_scripts())
            }),
            None => (0, 0, 0),
        }
    }
}

/// The floor of the Lua VMs' memory cap under a small `maxmemory`, so
/// ordinary scripts (and the cached ones the VM holds) still run.
const VM_CAP_FLOOR: usize = 64 << 20;
/// The cap without `maxmemory`: far beyond what any sane script uses.
const VM_CAP_DEFAULT: usize = 1 << 30;

/// The memory cap of each Lua VM (EVAL's and the functions'). Redis 7.0
/// has none: a script that allocates without bound ends with the whole
/// server killed for want of memory. Here it gets an error reply instead.
/// The cap follows `maxmemory` when one is set (a script should not hold
/// more than the whole dataset may), never below [`VM_CAP_FLOOR`] so
/// ordinary scripts still run under a small limit; without `maxmemory`
/// it is a generous fixed 1 GiB. Unlike Redis's (whose Lua allocates
/// outside its counted heap), the VMs' memory is part of `used_memory`
/// here, so a script near its cap counts against `maxmemory` until it
/// ends; the engine collects right after such a run. Read at each use,
/// so CONFIG SET maxmemory applies to the next script.
pub fn vm_memory_cap(srv: &Server) -> usize {
    match usize::try_from(srv.evictor.limit()).unwrap_or(usize::MAX) {
        0 => VM_CAP_DEFAULT,
        limit => limit.max(VM_CAP_FLOOR),
    }
}

/// What a running script may do, from its flags and the command that ran
/// it (Redis's `scriptRunCtx` flags).
pub struct RunRules {
    /// EVAL_RO / FCALL_RO, or a `no-writes` script.
    pub read_only: bool,
    /// The `allow-oom` flag.
    pub allow_oom: bool,
    /// Memory was over `maxmemory` when the script started.
    pub oom: bool,
    /// The `allow-cross-slot-keys` flag (or a script without a shebang).
    pub allow_cross_slot: bool,
    /// In cluster mode, the slot the script's keys so far hash to.
    pub slot: Option<u16>,
}

/// Runs a script's commands as the calling client would, but on a client
/// of its own (a SELECT in the script does not change the caller's db),
/// with the caller's user for ACL checks. It owns its handle on the
/// server: the engine keeps it for the run where its `redis.*`
/// functions, made once per VM, can reach it.
pub struct ScriptHost {
    srv: Arc<Server>,
    client: Client,
    /// The caller is our primary: its writes pass the replica rules.
    obey: bool,
    now: u64,
    rules: RunRules,
    /// Whether the script's next commands reach replicas
    /// (`redis.set_repl`).
    to_replicas: bool,
    /// The current call's arguments, a vector kept between calls.
    args: Vec<Bytes>,
}

impl ScriptHost {
    /// A host for a script called by `caller`, at the caller's clock `now`.
    pub fn new(srv: Arc<Server>, caller: &Client, now: u64, rules: RunRules) -> ScriptHost {
        let mut client = Client::new(caller.handle.clone(), true);
        client.db = caller.db;
        client.user = caller.user.clone();
        client.acl_open = caller.acl_open;
        client.acl_epoch = caller.acl_epoch;
        // Routing inside the script sees the caller's READONLY and ASKING.
        client.readonly = caller.readonly;
        client.asking = caller.asking;
        // The primary's link applies replication offsets per command it
        // runs: the script's own commands must not count.
        client.is_master = false;
        ScriptHost {
            srv,
            client,
            obey: caller.is_master,
            now,
            rules,
            to_replicas: true,
            args: Vec::new(),
        }
    }

    fn resolve(&self, args: &[Bytes]) -> Result<usize, &'static str> {
        const UNKNOWN: &str = "Unknown Redis command called from script";
        let reg = &self.srv.commands;
        let mut id = reg.top(&args[0]).ok_or(UNKNOWN)?;
        if !reg.spec(id).subcommands.is_empty() && args.len() >= 2 {
            id = reg.sub(id, &args[1]).ok_or(UNKNOWN)?;
        }
        let spec = reg.spec(id);
        let argc = args.len() as i32;
        if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
            return Err("Wrong number of args calling Redis command from script");
        }
        Ok(id)
    }

    /// Redis's `scriptVerifyWriteCommandAllow` and `scriptVerifyOOM`.
    fn write_rules(&self, spec: &crate::cmd::CommandSpec) -> Result<(), String> {
        let srv = &*self.srv;
        let watch = &srv.scripting.watch;
        if self.rules.read_only && spec.has(flags::WRITE | flags::MAY_REPLICATE) {
            return Err("Write commands are not allowed from read-only scripts.".into());
        }
        if spec.has(flags::WRITE) && !watch.is_dirty() {
            let hot = &srv.config.hot;
            if srv.repl.is_replica() && hot.replica_read_only.load(Ordering::Relaxed) && !self.obey
            {
                return Err("-READONLY You can't write against a read only replica.".into());
            }
            if crate::persist::writes_refused(srv) {
                return Err("-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.".into());
            }
            let min = hot.min_replicas_to_write.load(Ordering::Relaxed);
            let lag = hot.min_replicas_max_lag.load(Ordering::Relaxed);
            if !srv.repl.is_replica()
                && min > 0
                && lag > 0
                && (srv.repl.good_replicas(lag as u64) as i64) < min
            {
                return Err("-NOREPLICAS Not enough good replicas to write.".into());
            }
        }
        if !self.rules.allow_oom
            && self.rules.oom
            && !self.obey
            && !watch.is_dirty()
            && spec.has(flags::DENYOOM)
        {
            return Err(format!("-{}", crate::evict::OOM));
        }
        Ok(())
    }

    /// Runs one `redis.call` command, its arguments already in `args`.
    fn run(&mut self, args: &[Bytes], resp: u8, reply: &mut Vec<u8>) -> Result<(), Vec<u8>> {
        let srv = &*self.srv;
        let reject = |id: Option<usize>, e: String| {
            if let Some(id) = id {
                srv.commands.reject(id);
            }
            let code = if let Some(rest) = e.strip_prefix('-') {
                rest.split(' ').next().unwrap_or("ERR").to_string()
            } else {
                "ERR".to_string()
            };
            srv.stats.error(&code);
            Err(e.into_bytes())
        };
        let id = match self.resolve(args) {
            Ok(id) => id,
            Err(e) => return reject(None, e.into()),
        };
        let spec = srv.commands.spec(id);
        // DEBUG SET-DISABLE-DENY-SCRIPTS 1 lets test suites call them anyway.
        if spec.has(flags::NOSCRIPT) && !srv.debug.allow_noscript.load(Ordering::Relaxed) {
            return reject(
                Some(id),
                "This Redis command is not allowed from script".into(),
            );
        }
        if srv.repl.is_replica()
            && !spec.has(flags::STALE)
            && !srv
                .config
                .hot
                .replica_serve_stale_data
                .load(Ordering::Relaxed)
            && srv.repl.link().state != "connected"
        {
            return reject(
                Some(id),
                "Can not execute the command on a stale replica".into(),
            );
        }
        if let Some(why) = crate::acl::script_check(srv, &mut self.client, id, args) {
            return reject(Some(id), format!("The user executing the script {why}"));
        }
        if let Err(e) = self.write_rules(spec) {
            return reject(Some(id), e);
        }
        if spec.has(flags::WRITE) {
            srv.scripting.watch.set_dirty();
        }
        if let (Some(bus), false) = (srv.cluster.get(), self.obey) {
            match crate::cluster::route::script_check(srv, bus, &self.client, id, args) {
                Err(e) => return reject(Some(id), e.into()),
                Ok(Some(slot)) if !self.rules.allow_cross_slot => match self.rules.slot {
                    None => self.rules.slot = Some(slot),
                    Some(s) if s != slot => {
                        return reject(
                            Some(id),
                            "Script attempted to access keys that do not hash to the same slot"
                                .into(),
                        )
                    }
                    Some(_) => {}
                },
                Ok(_) => {}
            }
        }
        self.client.proto = resp;
        let mut out = Out::for_reply(resp, std::mem::take(reply));
        let start = crate::state::now_us();
        crate::repl::with_propagation(self.to_replicas, || {
            crate::dispatch::call(
                srv,
                &mut self.client,
                id,
                args,
                &mut out,
                self.now,
                start,
                true,
            )
        });
        *reply = out.into_bytes();
        Ok(())
    }
}

impl Host for ScriptHost {
    fn call(&mut self, argv: &[&[u8]], resp: u8, reply: &mut Vec<u8>) -> Result<(), Vec<u8>> {
        // The arguments as `Bytes`, as commands take them, into a vector
        // kept between calls. (One arena for all of them, split per
        // argument, cost more than an allocation each: callgrind.)
        let mut args = std::mem::take(&mut self.args);
        args.extend(argv.iter().map(|a| Bytes::copy_from_slice(a)));
        let result = self.run(&args, resp, reply);
        args.clear();
        self.args = args;
        result
    }

    fn log(&mut self, level: i32, msg: &[u8]) {
        let msg = String::from_utf8_lossy(msg);
        match level {
            0 => tracing::debug!("{msg}"),
            1 => tracing::info!("{msg}"),
            2 => tracing::info!("{msg}"),
            _ => tracing::warn!("{msg}"),
        }
    }

    fn set_repl(&mut self, flags: i32) {
        // Bit 2 is REPL_REPLICA; REPL_AOF (bit 1) changes nothing, as
        // Rampart has no AOF.
        self.to_replicas = flags & 2 != 0;
    }

    fn acl_check(&mut self, args: &[Vec<u8>]) -> Option<bool> {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let reg = &self.srv.commands;
        let mut id = reg.top(&args[0])?;
        if !reg.spec(id).subcommands.is_empty() && args.len() >= 2 {
            id = reg.sub(id, &args[1])?;
        }
        Some(crate::acl::allows(&self.srv, &mut self.client, id, &args))
    }
}
