//! Async pods: tokio code running inside emulated pods, on tokio-shaped sockets over the packet
//! dataplane, in virtual time.
//!
//! An [`AsyncSim`] owns a [`Sim`], or a whole living cluster ([`AsyncSim::from_cluster`]:
//! Services, cluster DNS and NetworkPolicy keep working), and a current-thread tokio runtime
//! whose clock is paused. [`AsyncSim::spawn_in`] starts a task in a pod (a namespace with a
//! [`SmolStack`](crate::stack::SmolStack)); inside it, [`TcpListener`], [`TcpStream`] and
//! [`UdpSocket`] have tokio's method names and signatures and are bound to that pod's stack,
//! the streams implement `tokio::io::AsyncRead` and `AsyncWrite` (so `copy_bidirectional`,
//! codecs and hyper's `TokioIo` work), names resolve through a pluggable [`Resolve`] hook
//! ([`lookup_host`]; in a cluster the [`DnsResolver`] asks the cluster DNS with the pod's
//! resolv.conf, as `getaddrinfo` does), and `tokio::time::sleep`, `timeout` and `interval`
//! follow the engine's clock. [`spawn`] starts another task in the current pod.
//!
//! **Guarantees:**
//! - *Virtual time only.* The driver ([`runtime`]) moves tokio's paused clock and the engine's
//!   clock together, so `tokio::time::Instant::now()` minus its start always equals
//!   [`Sim::now`] minus the engine time at [`AsyncSim::new`]. A 30 s timeout costs no real time.
//!   tokio's timers keep their millisecond resolution (they fire on the first tick boundary at
//!   or after their deadline); engine events keep theirs (nanoseconds).
//! - *Determinism.* Pod tasks run on kns's own executor, in the order they were woken (FIFO),
//!   inside a single tokio task, so tokio's scheduler never chooses between them. Wakes come
//!   from the engine (which is ordered by time and sequence) and from tokio's timer wheel
//!   (deterministic given the clock). The one random choice left is `tokio::select!`'s first
//!   branch: a thread-local generator that each runtime entry reseeds from the runtime's seed,
//!   which tokio draws from the OS unless the runtime is given one, allowed only with `--cfg
//!   tokio_unstable`. Built with that flag (`RUSTFLAGS="--cfg tokio_unstable"`), [`AsyncSim`]
//!   seeds it from the scenario seed and [`SELECT_IS_SEEDED`] is true; without it, write
//!   `biased;` in `select!`s whose branches can be ready at the same poll.
//! - *Pod lifetime.* [`AsyncSim::kill_pod`] drops the pod's tasks and resets its connections
//!   (RST to every peer); [`AsyncSim::delete_pod`] does that and deletes the namespace.
//! - Tasks handed to `tokio::spawn` run too, but belong to no pod (they cannot create sockets)
//!   and are not ordered with the pod tasks: use [`spawn`].
//!
//! **Errors** are those of Linux sockets: `ConnectionRefused` (RST or ICMP port unreachable),
//! `TimedOut` (no answer to SYNs for 127 s, Linux's `tcp_syn_retries = 6`), `HostUnreachable`
//! and `NetworkUnreachable` (ICMP), `AddrInUse`, `ConnectionReset`, `BrokenPipe`; a full send
//! buffer makes a write pending until the peer acknowledges data.

mod dns;
mod icmp;
mod lookup;
pub(crate) mod runtime;
mod tcp;
mod udp;

use std::cell::{Ref, RefMut};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use kns_core::model::PodId;

use crate::cluster::{ClusterError, ClusterNet};
use crate::net::{IpError, NetnsId, Sim};
use crate::stack::{AppCx, StackError};
use crate::time::Time;

pub use dns::{DnsResolver, DnsResolverError};
pub use lookup::{Hosts, Resolve, ResolveFuture, Target, ToSocketAddrs, lookup_host};
pub use tcp::{
    CONNECT_TIMEOUT, OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpListener, TcpStream, WriteHalf,
};
pub use udp::UdpSocket;

use runtime::{Host, Installed, Stop, TaskId, World, current_pod, try_with_world};

/// Whether `tokio::select!`'s branch order is seeded from the scenario seed (this crate was
/// built with `--cfg tokio_unstable`); see the module documentation.
pub const SELECT_IS_SEEDED: bool = cfg!(tokio_unstable);

/// Errors of the async driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AioError {
    /// The task did not finish before the time limit.
    #[error("task not finished at the time limit {limit} (seed {seed})")]
    TimeLimit {
        /// The virtual time the run stopped at.
        limit: Time,
        /// The simulation's seed.
        seed: u64,
    },
    /// The task was dropped before it finished (its pod was killed or it was aborted).
    #[error(transparent)]
    Join(#[from] JoinError),
}

/// A [`Sim`] whose pods run async tasks; see the module documentation.
pub struct AsyncSim {
    world: Rc<World>,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for AsyncSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSim")
            .field("now", &self.now())
            .field("tasks", &self.task_count())
            .finish_non_exhaustive()
    }
}

impl AsyncSim {
    /// Takes over `sim`. Its pods are the namespaces that have a [`SmolStack`](crate::stack::SmolStack) attached.
    pub fn new(sim: Sim) -> AsyncSim {
        let seed = sim.seed();
        AsyncSim::with_host(Host::Bare(Box::new(sim)), seed)
    }

    /// Takes over a living cluster: pod tasks run in its pods (every pod has a socket stack),
    /// while its Services (kube-proxy), cluster DNS server and NetworkPolicy agent keep
    /// working. Names resolve through the cluster DNS with each pod's resolv.conf
    /// ([`DnsResolver`]), as `getaddrinfo` does in a real pod.
    pub fn from_cluster(mut net: ClusterNet) -> AsyncSim {
        let seed = net.sim().seed();
        let resolver_seed = net.sim_mut().child_seed();
        let mut asim = AsyncSim::with_host(Host::Cluster(Box::new(net)), seed);
        asim.set_resolver(DnsResolver::new(resolver_seed));
        asim
    }

    fn with_host(host: Host, seed: u64) -> AsyncSim {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_time().start_paused(true);
        #[cfg(tokio_unstable)]
        builder.rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()));
        let _ = seed;
        // A current-thread runtime with only a timer driver opens no file and starts no
        // thread, so building it cannot fail.
        let runtime = builder.build().expect("a current-thread runtime without I/O always builds");
        AsyncSim { world: Rc::new(World::new(host)), runtime }
    }

    /// The simulation.
    pub fn sim(&self) -> Ref<'_, Sim> {
        self.world.sim()
    }

    /// The simulation, to change the topology, add rules or drive it directly (tokio's clock
    /// catches up at the next run).
    pub fn sim_mut(&mut self) -> RefMut<'_, Sim> {
        self.world.sim_mut()
    }

    /// The living cluster, if this was built with [`AsyncSim::from_cluster`].
    pub fn cluster(&self) -> Option<Ref<'_, ClusterNet>> {
        Ref::filter_map(self.world.host.borrow(), |h| match h {
            Host::Cluster(net) => Some(&**net),
            Host::Bare(_) => None,
        })
        .ok()
    }

    /// The living cluster, to change policies, Services or pods between runs (for example
    /// [`ClusterNet::set_policies`]: connections already open survive, new ones obey).
    pub fn cluster_mut(&mut self) -> Option<RefMut<'_, ClusterNet>> {
        RefMut::filter_map(self.world.host.borrow_mut(), |h| match h {
            Host::Cluster(net) => Some(&mut **net),
            Host::Bare(_) => None,
        })
        .ok()
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.world.sim().now()
    }

    /// Replaces the resolver that names go through (the default is an empty [`Hosts`]).
    pub fn set_resolver(&mut self, resolver: impl Resolve + 'static) {
        *self.world.resolver.borrow_mut() = Arc::new(resolver);
    }

    /// Starts `future` as a task of `pod`. It first runs at the next run, at the current
    /// virtual time, and is dropped if the pod is killed.
    pub fn spawn_in<F>(&mut self, pod: NetnsId, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_on(&self.world, pod, future)
    }

    /// Runs tasks and the network until `t`.
    pub fn run_until(&mut self, t: Time) {
        self.drive(t, &mut || false);
    }

    /// Runs tasks and the network for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now() + d;
        self.run_until(t);
    }

    /// Runs until every task has finished, or until `limit` of virtual time has passed;
    /// returns whether every task finished.
    pub fn run_until_tasks_done(&mut self, limit: Duration) -> bool {
        let end = self.now() + limit;
        let world = self.world.clone();
        self.drive(end, &mut || world.task_count() == 0) == Stop::Done
    }

    /// Runs until at most `left` tasks remain (servers that never finish), or until `limit`
    /// of virtual time has passed; returns whether that many finished.
    pub fn run_until_tasks_done_except(&mut self, left: usize, limit: Duration) -> bool {
        let end = self.now() + limit;
        let world = self.world.clone();
        self.drive(end, &mut || world.task_count() <= left) == Stop::Done
    }

    /// Runs `future` as a task of `pod` (other tasks run meanwhile) until it finishes, for at
    /// most `limit` of virtual time.
    pub fn block_on<F>(
        &mut self,
        pod: NetnsId,
        future: F,
        limit: Duration,
    ) -> Result<F::Output, AioError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let handle = self.spawn_in(pod, future);
        self.wait(&handle, limit)?;
        match handle.try_take() {
            Some(result) => Ok(result?),
            None => Err(AioError::TimeLimit { limit: self.now(), seed: self.sim().seed() }),
        }
    }

    /// Runs until the task of `handle` has finished (or was dropped), for at most `limit`.
    pub fn wait<T>(&mut self, handle: &JoinHandle<T>, limit: Duration) -> Result<(), AioError> {
        let end = self.now() + limit;
        let state = handle.state.clone();
        let done = self.drive(end, &mut || lock(&state).result.is_some());
        if done == Stop::Done || handle.is_finished() {
            Ok(())
        } else {
            Err(AioError::TimeLimit { limit: self.now(), seed: self.sim().seed() })
        }
    }

    /// Kills a pod's processes: drops its tasks and resets its TCP connections (an RST to
    /// every peer, sent now), closes its listeners and UDP sockets. The namespace stays.
    /// Returns how many tasks were dropped.
    pub fn kill_pod(&mut self, pod: NetnsId) -> usize {
        let _installed = Installed::new(&self.world);
        let futures = self.world.take_tasks(pod);
        let dropped = futures.len();
        reset_sockets(&self.world, pod);
        // Sockets of the old epoch ignore their destructors, so dropping the futures now
        // sends nothing more.
        drop(futures);
        let mut sim = self.world.sim_mut();
        sim.kick(pod);
        let now = sim.now();
        sim.run_until(now);
        dropped
    }

    /// Deletes a pod: [`AsyncSim::kill_pod`], then `ip netns del` of its namespace. Resets
    /// leave before the namespace goes (through zero-latency veths they reach the node at
    /// once). In a living cluster use [`AsyncSim::delete_cluster_pod`], which also runs CNI DEL
    /// and updates endpoints.
    pub fn delete_pod(&mut self, name: &str) -> Result<usize, IpError> {
        let pod = self.world.sim().netns(Some(name))?;
        let dropped = self.kill_pod(pod);
        self.world.sim_mut().netns_del(name)?;
        self.world.pods.borrow_mut().remove(&pod);
        Ok(dropped)
    }

    /// Deletes a pod of the living cluster as kubelet does: [`AsyncSim::kill_pod`] (its tasks
    /// go, its peers get resets), then [`ClusterNet::delete_pod`] (CNI DEL, the namespace, and
    /// the pod leaves its Services' endpoints and the DNS records). Returns how many tasks
    /// were dropped.
    pub fn delete_cluster_pod(&mut self, pod: PodId) -> Result<usize, ClusterError> {
        let ns = self
            .cluster()
            .ok_or_else(|| ClusterError::NotFound("not a living cluster".into()))?
            .pod_ns(pod)
            .ok_or_else(|| ClusterError::NotFound(format!("pod {pod:?} is not running")))?;
        let dropped = self.kill_pod(ns);
        self.cluster_mut().expect("checked above").delete_pod(pod)?;
        self.world.pods.borrow_mut().remove(&ns);
        Ok(dropped)
    }

    /// Number of live tasks.
    pub fn task_count(&self) -> usize {
        self.world.task_count()
    }

    /// How many times tasks were polled so far.
    pub fn task_polls(&self) -> u64 {
        self.world.polls.get()
    }

    fn drive(&mut self, limit: Time, done: &mut dyn FnMut() -> bool) -> Stop {
        let _installed = Installed::new(&self.world);
        let world = self.world.clone();
        self.runtime.block_on(runtime::drive(world, limit, done))
    }
}

impl Drop for AsyncSim {
    fn drop(&mut self) {
        // Task destructors close sockets through the world: keep it reachable meanwhile.
        let _installed = Installed::new(&self.world);
        let pods: Vec<NetnsId> = self.world.pods.borrow().keys().copied().collect();
        for pod in pods {
            drop(self.world.take_tasks(pod));
        }
    }
}

/// Starts `future` as a task of the current pod, like `tokio::spawn` (no `Send` needed).
/// Fails outside a pod task.
pub fn spawn<F>(future: F) -> io::Result<JoinHandle<F::Output>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let pod = current_pod().ok_or_else(outside_pod)?;
    try_with_world(|w| spawn_on(w, pod, future)).ok_or_else(outside_pod)
}

/// The engine's current time, with its full (nanosecond) resolution; `None` outside a run.
pub fn now() -> Option<Time> {
    try_with_world(|w| w.sim().now())
}

/// The pod whose task is running, if any.
pub fn pod() -> Option<NetnsId> {
    current_pod()
}

fn spawn_on<F>(world: &World, pod: NetnsId, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let state = Arc::new(Mutex::new(JoinState { result: None, waker: None }));
    let mut completion = Completion { state: state.clone(), done: false };
    let task = world.spawn(
        pod,
        Box::pin(async move {
            let output = future.await;
            completion.finish(Ok(output));
        }),
    );
    JoinHandle { state, task, pod }
}

/// Why a task has no output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The task was dropped before it finished: aborted, or its pod was killed.
    #[error("task was cancelled")]
    Cancelled,
}

impl JoinError {
    /// Whether the task was cancelled (always, since panics propagate out of the run).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }
}

struct JoinState<T> {
    result: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stores a task's output, or `Cancelled` if the task is dropped first.
struct Completion<T> {
    state: Arc<Mutex<JoinState<T>>>,
    done: bool,
}

impl<T> Completion<T> {
    fn finish(&mut self, result: Result<T, JoinError>) {
        self.done = true;
        let waker = {
            let mut s = lock(&self.state);
            s.result = Some(result);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Err(JoinError::Cancelled));
        }
    }
}

/// A handle to a pod task, like tokio's: await it for the task's output.
pub struct JoinHandle<T> {
    state: Arc<Mutex<JoinState<T>>>,
    task: TaskId,
    pod: NetnsId,
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("pod", &self.pod)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished or was dropped.
    pub fn is_finished(&self) -> bool {
        lock(&self.state).result.is_some()
    }

    /// Takes the task's output once it has finished.
    pub fn try_take(&self) -> Option<Result<T, JoinError>> {
        lock(&self.state).result.take()
    }

    /// The pod the task runs in.
    pub fn pod(&self) -> NetnsId {
        self.pod
    }

    /// Drops the task (from inside a run; outside one, kill its pod instead).
    pub fn abort(&self) {
        let future = try_with_world(|w| w.remove_task(self.task, self.pod)).flatten();
        drop(future);
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = lock(&self.state);
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

// ---- helpers shared by the socket types ----

/// The error of a socket operation outside a pod task.
pub(crate) fn outside_pod() -> io::Error {
    io::Error::other("kns aio sockets work only inside a pod task of an AsyncSim run")
}

/// A pod as a socket sees it: its namespace and the epoch the socket was created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PodRef {
    pub(crate) ns: NetnsId,
    pub(crate) epoch: u32,
}

impl PodRef {
    /// The pod of the running task.
    pub(crate) fn current() -> io::Result<PodRef> {
        let ns = current_pod().ok_or_else(outside_pod)?;
        let epoch = try_with_world(|w| w.pods.borrow_mut().entry(ns).or_default().epoch)
            .ok_or_else(outside_pod)?;
        Ok(PodRef { ns, epoch })
    }

    /// Runs `f` on the pod's stack; fails if the pod was killed since the socket was made.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&World, &mut AppCx<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        try_with_world(|w| {
            if w.pods.borrow().get(&self.ns).map(|p| p.epoch) != Some(self.epoch) {
                return Err(io::Error::from(io::ErrorKind::ConnectionReset));
            }
            w.with_stack(self.ns, |stack, now| stack.with_cx(now, |cx| f(w, cx)))
        })
        .unwrap_or_else(|| Err(outside_pod()))
    }

    /// Has the pod's stack polled now (after a change).
    pub(crate) fn kick(&self) {
        try_with_world(|w| w.kick(self.ns));
    }

    /// Whether the socket still belongs to a live pod of the current world.
    pub(crate) fn alive(&self) -> bool {
        try_with_world(|w| w.pods.borrow().get(&self.ns).map(|p| p.epoch) == Some(self.epoch))
            .unwrap_or(false)
    }
}

/// The `io::Error` of a stack error.
pub(crate) fn stack_error(e: StackError) -> io::Error {
    use io::ErrorKind as K;
    let kind = match &e {
        StackError::PortInUse { .. } => K::AddrInUse,
        StackError::PortsExhausted => K::AddrNotAvailable,
        StackError::NoSourceAddress(_) => K::NetworkUnreachable,
        StackError::NotUnicast(_) | StackError::PortZero => K::InvalidInput,
        StackError::NoSuchSocket => K::NotConnected,
        StackError::TcpConnect(smoltcp::socket::tcp::ConnectError::Unaddressable) => {
            K::NetworkUnreachable
        }
        StackError::UdpSend(smoltcp::socket::udp::SendError::Unaddressable) => K::InvalidInput,
        _ => K::Other,
    };
    io::Error::new(kind, e)
}

/// Resets every socket of `pod` and bumps its epoch.
fn reset_sockets(world: &World, pod: NetnsId) {
    let state = {
        let mut pods = world.pods.borrow_mut();
        let Some(p) = pods.get_mut(&pod) else { return };
        p.epoch = p.epoch.wrapping_add(1);
        p.icmp_errors.clear();
        p.icmp_waiters.clear();
        (
            std::mem::take(&mut p.tcp),
            std::mem::take(&mut p.listeners),
            std::mem::take(&mut p.udp),
            p.icmp.take(),
        )
    };
    let (tcp, listeners, udp, icmp) = state;
    // A pod whose namespace is already gone has nothing left to reset.
    let _ = world.with_stack(pod, |stack, now| {
        stack.with_cx(now, |cx| {
            for l in listeners {
                cx.tcp_unlisten(l);
            }
            for h in tcp {
                cx.tcp_abort(h);
            }
            for h in udp {
                cx.remove(h);
            }
            if let Some(h) = icmp {
                cx.remove(h);
            }
        });
        Ok(())
    });
}

impl World {
    /// Removes one task; returns its future, to be dropped once nothing is borrowed.
    pub(crate) fn remove_task(
        &self,
        task: TaskId,
        pod: NetnsId,
    ) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        if let Some(p) = self.pods.borrow_mut().get_mut(&pod) {
            p.tasks.remove(&task);
        }
        self.remove_task_slot(task)
    }
}
