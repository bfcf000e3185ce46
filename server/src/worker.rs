//! A thread of its own for one kind of work, started at its first job:
//! metrics scrapes (which must not take CPU from requests).

use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;

/// Work for a [`Worker`].
pub type Job = Box<dyn FnOnce() + Send>;

/// A named thread that runs jobs in the order they are given.
///
/// ```
/// use rampart_server::worker::Worker;
/// static W: Worker = Worker::new("doc-worker", false);
/// let (tx, rx) = std::sync::mpsc::channel();
/// assert!(W.run(Box::new(move || tx.send(6 * 7).unwrap())).is_ok());
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
pub struct Worker {
    name: &'static str,
    background: bool,
    jobs: OnceLock<Sender<Job>>,
}

impl Worker {
    /// A worker whose thread, once started, is called `name`; a
    /// `background` one runs only on a CPU nothing else wants
    /// (`SCHED_IDLE`), so its work never delays the connection threads.
    pub const fn new(name: &'static str, background: bool) -> Worker {
        Worker {
            name,
            background,
            jobs: OnceLock::new(),
        }
    }

    /// Runs `job` on the worker's thread. Returns the job if the thread
    /// could not be started, for the caller to run itself.
    pub fn run(&self, job: Job) -> Result<(), Job> {
        let tx = self.jobs.get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            let (background, name) = (self.background, self.name);
            let started = std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || {
                    crate::state::take_stripe();
                    if background {
                        if let Err(e) = rampart_sys::run_when_idle() {
                            // Only the preference is lost.
                            tracing::debug!("Could not make the {name} thread idle-only: {e}");
                        }
                    }
                    while let Ok(job) = rx.recv() {
                        // A panicking job loses its own reply channel (its
                        // caller sees it dropped), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = started {
                tracing::warn!("Could not start the {} thread: {e}", self.name);
            }
            tx
        });
        tx.send(job).map_err(|e| e.0)
    }
}
