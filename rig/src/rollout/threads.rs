//! Where a drill runs: the fake-server on a runtime of its own (two worker threads: at 100,000
//! devices its thread was the bottleneck), and the fleet split over a few worker threads, each
//! a single-threaded runtime with its own connection pool. Over TCP, fleet requests cross
//! threads only through their sockets; one shared multi-threaded runtime for everything spent
//! most of a check-in handing tasks from thread to thread. In process, each worker also serves
//! its own connections (hyper, the server's routes) on its runtime: a request never leaves the
//! thread, and the server's state is shared under its locks.
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::error::{Error, Result};
use super::fleet::{Shared, SimDevice};
use super::net::{Client, Transport};

/// The fake-server on a runtime of its own (two workers), started from a thread that keeps
/// it alive until shutdown. Derefs to its [`fake_server::ServerHandle`].
pub struct ServerThread {
    handle: Option<fake_server::ServerHandle>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    pub fn start(cfg: fake_server::Config) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-server".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-server")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(Error::runtime("server runtime", e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match fake_server::start(cfg).await {
                        Ok(h) => {
                            let _ = tx.send(Ok(h));
                            let _ = stopped.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                        }
                    }
                });
            })
            .map_err(|e| Error::runtime("server thread", e))?;
        let handle = rx
            .recv()
            .map_err(|e| Error::runtime("server thread", e))??;
        Ok(Self {
            handle: Some(handle),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub async fn shutdown(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl std::ops::Deref for ServerThread {
    type Target = fake_server::ServerHandle;
    fn deref(&self) -> &Self::Target {
        self.handle
            .as_ref()
            .unwrap_or_else(|| unreachable!("only shutdown takes the handle"))
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        drop(self.handle.take());
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Devices to wake: (when, index, device). Boxed: a device crosses threads and tasks on
/// every wake, and moving a pointer is cheaper than moving the device.
pub type Batch = Vec<(u64, u32, Box<SimDevice>)>;
/// Woken devices: (index, device, next wake).
pub type Woken = Vec<(u32, Box<SimDevice>, u64)>;

struct Job {
    batch: Batch,
    paused: bool,
    reply: oneshot::Sender<Woken>,
}

/// The fleet's worker threads. Device `i` always runs on worker `i % workers`.
pub struct Workers {
    jobs: Vec<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// `workers` threads, each with `concurrency / workers` requests in flight at most.
    pub fn start(
        workers: usize,
        transport: &Transport,
        shared: Arc<Shared>,
        concurrency: usize,
    ) -> Result<Self> {
        let workers = workers.max(1);
        let per = (concurrency / workers).max(1);
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for w in 0..workers {
            let (tx, rx) = mpsc::channel::<Job>();
            let shared = Arc::clone(&shared);
            let transport = transport.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::runtime("fleet runtime", e))?;
            let thread = std::thread::Builder::new()
                .name(format!("fleet-{w}"))
                .spawn(move || {
                    let client = Arc::new(Client::new(transport));
                    while let Ok(job) = rx.recv() {
                        let woken =
                            rt.block_on(run_batch(job.batch, job.paused, &shared, &client, per));
                        let _ = job.reply.send(woken);
                    }
                })
                .map_err(|e| Error::runtime("fleet thread", e))?;
            jobs.push(tx);
            threads.push(thread);
        }
        Ok(Self { jobs, threads })
    }

    /// Wakes every device of `batch` (split over the workers) and returns them.
    pub async fn wake(&self, batch: Batch, paused: bool) -> Result<Woken> {
        let n = self.jobs.len();
        let mut parts: Vec<Batch> = (0..n).map(|_| Vec::new()).collect();
        for entry in batch {
            parts[entry.1 as usize % n].push(entry);
        }
        let mut replies = Vec::new();
        for (part, jobs) in parts.into_iter().zip(&self.jobs) {
            if part.is_empty() {
                continue;
            }
            let (reply, rx) = oneshot::channel();
            jobs.send(Job {
                batch: part,
                paused,
                reply,
            })
            .map_err(|_| Error::runtime("fleet thread", "a worker stopped"))?;
            replies.push(rx);
        }
        let mut out = Vec::new();
        for rx in replies {
            out.extend(
                rx.await
                    .map_err(|_| Error::runtime("fleet thread", "a worker died"))?,
            );
        }
        Ok(out)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.jobs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Wakes a batch of devices with at most `concurrency` in flight on this thread's runtime.
async fn run_batch(
    batch: Batch,
    paused: bool,
    shared: &Arc<Shared>,
    client: &Arc<Client>,
    concurrency: usize,
) -> Woken {
    let mut out = Vec::with_capacity(batch.len());
    let mut set = tokio::task::JoinSet::new();
    let mut pending = batch.into_iter();
    loop {
        while set.len() < concurrency {
            let Some((t, i, mut dev)) = pending.next() else {
                break;
            };
            let shared = Arc::clone(shared);
            let client = Arc::clone(client);
            set.spawn(async move {
                let next = dev.wake(t, paused, &shared, &client).await;
                (i, dev, next)
            });
        }
        match set.join_next().await {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => tracing::error!("fleet device task failed: {e}"),
            None => break,
        }
    }
    out
}
