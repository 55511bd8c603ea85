//! The executor and the driver: pod tasks, their wakers, the world the sockets reach through a
//! thread-local while a run is in progress, and the loop that keeps tokio's paused clock and the
//! engine's clock equal.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::cluster::ClusterNet;
use crate::net::{NetnsId, Sim};
use crate::stack::{ListenerId, SmolStack, TcpHandle, UdpHandle};
use crate::time::Time;

use super::lookup::{Hosts, Resolve};

/// A task of the executor: an index into the slab and the generation of the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TaskId {
    index: u32,
    generation: u32,
}

/// What wakers share with the driver; `Send + Sync` because `Waker` demands it.
#[derive(Default)]
pub(crate) struct Shared {
    inner: Mutex<SharedInner>,
}

#[derive(Default)]
struct SharedInner {
    /// Tasks woken since the driver last looked, in wake order.
    ready: VecDeque<TaskId>,
    /// Pods whose ICMP error socket received something.
    icmp: Vec<NetnsId>,
    /// Something outside the executor (a socket operation) needs the driver.
    notified: bool,
    /// The driver's own waker while it waits for tokio to move the clock.
    driver: Option<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedInner> {
        // A poisoned lock only means a task panicked while holding it; the queue is still valid.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake_driver(mut inner: MutexGuard<'_, SharedInner>) {
        let driver = inner.driver.take();
        drop(inner);
        if let Some(w) = driver {
            w.wake();
        }
    }

    pub(crate) fn notify(&self) {
        let mut inner = self.lock();
        inner.notified = true;
        Self::wake_driver(inner);
    }
}

/// The waker of one task: queues the task once until it is polled again.
struct TaskWaker {
    id: TaskId,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            let mut inner = self.shared.lock();
            inner.ready.push_back(self.id);
            Shared::wake_driver(inner);
        }
    }
}

/// The waker registered on a pod's ICMP error socket: tells the driver to wake that pod's
/// waiters (smoltcp keeps one waker per socket, a pod may have many waiters).
pub(crate) struct IcmpWaker {
    pub(crate) pod: NetnsId,
    pub(crate) shared: Arc<Shared>,
}

impl Wake for IcmpWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut inner = self.shared.lock();
        inner.icmp.push(self.pod);
        Shared::wake_driver(inner);
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

struct Task {
    pod: NetnsId,
    /// Taken out while the task is being polled.
    future: Option<BoxFuture>,
    waker: Arc<TaskWaker>,
}

#[derive(Default)]
struct Tasks {
    slots: Vec<Option<Task>>,
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl Tasks {
    fn get_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        let i = id.index as usize;
        if self.generations.get(i) != Some(&id.generation) {
            return None;
        }
        self.slots[i].as_mut()
    }

    fn remove(&mut self, id: TaskId) -> Option<Task> {
        let i = id.index as usize;
        if self.generations.get(i) != Some(&id.generation) {
            return None;
        }
        let task = self.slots[i].take()?;
        self.generations[i] = self.generations[i].wrapping_add(1);
        self.free.push(id.index);
        Some(task)
    }
}

/// The sockets and tasks of one pod, so that deleting the pod can reset and drop them.
#[derive(Default)]
pub(crate) struct PodState {
    /// Bumped when the pod is killed: sockets of an older epoch are dead.
    pub(crate) epoch: u32,
    pub(crate) tasks: BTreeSet<TaskId>,
    pub(crate) tcp: BTreeSet<TcpHandle>,
    pub(crate) listeners: BTreeSet<ListenerId>,
    pub(crate) udp: BTreeSet<UdpHandle>,
    /// The raw ICMP socket that catches errors about this pod's connections (opened lazily).
    pub(crate) icmp: Option<crate::stack::IcmpHandle>,
    /// ICMP errors seen, by (IP protocol, local port, remote address), with the error they mean.
    pub(crate) icmp_errors: BTreeMap<(u8, u16, std::net::SocketAddr), std::io::ErrorKind>,
    /// Tasks waiting for an ICMP error.
    pub(crate) icmp_waiters: Vec<Waker>,
}

/// Everything a run can touch. Sockets reach it through [`with_world`].
pub(crate) struct World {
    /// The simulation, bare or inside a living cluster; reached through [`World::sim`].
    pub(crate) host: RefCell<Host>,
    tasks: RefCell<Tasks>,
    pub(crate) pods: RefCell<BTreeMap<NetnsId, PodState>>,
    pub(crate) resolver: RefCell<Arc<dyn Resolve>>,
    pub(crate) shared: Arc<Shared>,
    /// The engine time that tokio's clock started at (tokio's elapsed time plus this is the
    /// engine time whenever the driver is not in the middle of a step).
    origin: Time,
    /// tokio's clock at `origin`.
    tokio_origin: Cell<Option<tokio::time::Instant>>,
    /// Tasks polled so far (for statistics).
    pub(crate) polls: Cell<u64>,
}

/// What a world's simulation lives in.
pub(crate) enum Host {
    /// A [`Sim`] built by hand.
    Bare(Box<Sim>),
    /// A living cluster: its Services, cluster DNS and NetworkPolicy agent keep working while
    /// pod tasks run.
    Cluster(Box<ClusterNet>),
}

impl Host {
    pub(crate) fn sim(&self) -> &Sim {
        match self {
            Host::Bare(sim) => sim,
            Host::Cluster(net) => net.sim(),
        }
    }

    pub(crate) fn sim_mut(&mut self) -> &mut Sim {
        match self {
            Host::Bare(sim) => sim,
            Host::Cluster(net) => net.sim_mut(),
        }
    }
}

thread_local! {
    static WORLD: RefCell<Option<Rc<World>>> = const { RefCell::new(None) };
    static CURRENT_POD: Cell<Option<NetnsId>> = const { Cell::new(None) };
}

/// Installs a world as the thread's current one until dropped (restoring the previous one).
pub(crate) struct Installed(Option<Rc<World>>);

impl Installed {
    pub(crate) fn new(world: &Rc<World>) -> Installed {
        Installed(WORLD.with(|w| w.borrow_mut().replace(world.clone())))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.0.take();
        WORLD.with(|w| *w.borrow_mut() = previous);
    }
}

/// Runs `f` with the current world; `None` outside an [`AsyncSim`](super::AsyncSim) run.
pub(crate) fn try_with_world<R>(f: impl FnOnce(&World) -> R) -> Option<R> {
    let world = WORLD.with(|w| w.borrow().clone())?;
    Some(f(&world))
}

/// The pod whose task is being polled.
pub(crate) fn current_pod() -> Option<NetnsId> {
    CURRENT_POD.with(Cell::get)
}

struct PodGuard(Option<NetnsId>);

impl PodGuard {
    fn enter(pod: NetnsId) -> PodGuard {
        PodGuard(CURRENT_POD.with(|c| c.replace(Some(pod))))
    }
}

impl Drop for PodGuard {
    fn drop(&mut self) {
        CURRENT_POD.with(|c| c.set(self.0));
    }
}

/// tokio's timer wheel ticks every millisecond from the clock's origin.
const TICK: u64 = 1_000_000;

impl World {
    pub(crate) fn new(host: Host) -> World {
        let origin = host.sim().now();
        World {
            host: RefCell::new(host),
            tasks: RefCell::default(),
            pods: RefCell::default(),
            resolver: RefCell::new(Arc::new(Hosts::default())),
            shared: Arc::default(),
            origin,
            tokio_origin: Cell::new(None),
            polls: Cell::new(0),
        }
    }

    /// The simulation.
    pub(crate) fn sim(&self) -> Ref<'_, Sim> {
        Ref::map(self.host.borrow(), Host::sim)
    }

    /// The simulation, mutably.
    pub(crate) fn sim_mut(&self) -> RefMut<'_, Sim> {
        RefMut::map(self.host.borrow_mut(), Host::sim_mut)
    }

    /// The stack of `pod` and the current time, for a socket operation. Errors if the pod is
    /// gone or has no smoltcp stack.
    pub(crate) fn with_stack<R>(
        &self,
        pod: NetnsId,
        f: impl FnOnce(&mut SmolStack, Time) -> std::io::Result<R>,
    ) -> std::io::Result<R> {
        let mut sim = self.sim_mut();
        let now = sim.now();
        let stack = sim.stack_mut::<SmolStack>(pod).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotConnected, "the pod's network is gone")
        })?;
        f(stack, now)
    }

    /// Has the stack of `pod` polled at the current instant (it changed: data queued, a socket
    /// opened or closed), and makes sure the driver notices.
    pub(crate) fn kick(&self, pod: NetnsId) {
        self.sim_mut().kick(pod);
        self.shared.notify();
    }

    pub(crate) fn spawn(&self, pod: NetnsId, future: BoxFuture) -> TaskId {
        let mut tasks = self.tasks.borrow_mut();
        let index = match tasks.free.pop() {
            Some(i) => i,
            None => {
                tasks.slots.push(None);
                tasks.generations.push(0);
                u32::try_from(tasks.slots.len() - 1).expect("fewer than 2^32 tasks")
            }
        };
        let id = TaskId { index, generation: tasks.generations[index as usize] };
        let waker =
            Arc::new(TaskWaker { id, queued: AtomicBool::new(false), shared: self.shared.clone() });
        tasks.slots[index as usize] =
            Some(Task { pod, future: Some(future), waker: waker.clone() });
        drop(tasks);
        self.pods.borrow_mut().entry(pod).or_default().tasks.insert(id);
        Waker::from(waker).wake();
        id
    }

    /// Removes the tasks of `pod` and returns their futures, to be dropped by the caller once
    /// no part of the world is borrowed (their destructors close sockets).
    pub(crate) fn take_tasks(&self, pod: NetnsId) -> Vec<BoxFuture> {
        let ids = match self.pods.borrow_mut().get_mut(&pod) {
            Some(p) => std::mem::take(&mut p.tasks),
            None => return Vec::new(),
        };
        let mut tasks = self.tasks.borrow_mut();
        ids.into_iter().filter_map(|id| tasks.remove(id)).filter_map(|t| t.future).collect()
    }

    /// Removes a task from the slab; returns its future unless it is being polled.
    pub(crate) fn remove_task_slot(&self, id: TaskId) -> Option<BoxFuture> {
        self.tasks.borrow_mut().remove(id).and_then(|t| t.future)
    }

    /// Number of live tasks.
    pub(crate) fn task_count(&self) -> usize {
        let tasks = self.tasks.borrow();
        tasks.slots.len() - tasks.free.len()
    }

    fn poll_task(&self, id: TaskId) {
        let (pod, mut future, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(task) = tasks.get_mut(id) else { return };
            let Some(future) = task.future.take() else { return };
            task.waker.queued.store(false, Ordering::Release);
            (task.pod, future, task.waker.clone())
        };
        self.polls.set(self.polls.get() + 1);
        let waker = Waker::from(waker);
        let done = {
            let _pod = PodGuard::enter(pod);
            future.as_mut().poll(&mut Context::from_waker(&waker)).is_ready()
        };
        if done {
            let removed = self.tasks.borrow_mut().remove(id);
            if removed.is_some()
                && let Some(p) = self.pods.borrow_mut().get_mut(&pod)
            {
                p.tasks.remove(&id);
            }
            drop(removed);
            drop(future);
            return;
        }
        let mut tasks = self.tasks.borrow_mut();
        match tasks.get_mut(id) {
            Some(task) => task.future = Some(future),
            // The task's pod was killed while it ran: drop it once nothing is borrowed.
            None => {
                drop(tasks);
                drop(future);
            }
        }
    }

    /// Runs tasks and engine events at the current instant until neither has anything left.
    fn settle(&self) {
        loop {
            let mut progressed = false;
            loop {
                let next = {
                    let mut inner = self.shared.lock();
                    inner.notified = false;
                    let icmp = std::mem::take(&mut inner.icmp);
                    let next = inner.ready.pop_front();
                    drop(inner);
                    self.wake_icmp_waiters(icmp);
                    next
                };
                let Some(id) = next else { break };
                self.poll_task(id);
                progressed = true;
            }
            let mut sim = self.sim_mut();
            let now = sim.now();
            if sim.next_event_time().is_some_and(|t| t <= now) {
                sim.run_until(now);
                progressed = true;
            }
            drop(sim);
            if !progressed && !self.has_work() {
                return;
            }
        }
    }

    fn wake_icmp_waiters(&self, pods: Vec<NetnsId>) {
        if pods.is_empty() {
            return;
        }
        let mut wakers = Vec::new();
        {
            let mut states = self.pods.borrow_mut();
            for pod in pods {
                if let Some(p) = states.get_mut(&pod) {
                    wakers.append(&mut p.icmp_waiters);
                }
            }
        }
        for w in wakers {
            w.wake();
        }
    }

    fn has_work(&self) -> bool {
        let inner = self.shared.lock();
        !inner.ready.is_empty() || !inner.icmp.is_empty() || inner.notified
    }

    /// tokio's clock expressed as engine time.
    fn tokio_now(&self) -> Time {
        let origin = self.tokio_origin.get().expect("set at the start of every run");
        self.origin + tokio::time::Instant::now().duration_since(origin)
    }

    /// Time since the clock's origin, in nanoseconds.
    fn since_origin(&self, t: Time) -> u64 {
        t.as_nanos().saturating_sub(self.origin.as_nanos())
    }
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The caller's condition became true.
    Done,
    /// The time limit was reached.
    Limit,
}

/// The driver: the only future tokio's runtime polls (besides tasks user code hands to
/// `tokio::spawn`). It runs pod tasks and engine events instant by instant and moves both
/// clocks together:
///
/// - within a millisecond tick, the driver advances tokio's clock itself (no timer can fire
///   between two tick boundaries), straight to the next engine event;
/// - from a tick boundary, it sleeps until the tick of the next engine event and lets tokio's
///   auto-advance jump to the earlier of that and the next user timer, then brings the engine
///   to the same instant.
pub(crate) async fn drive(world: Rc<World>, limit: Time, done: &mut dyn FnMut() -> bool) -> Stop {
    if world.tokio_origin.get().is_none() {
        world.tokio_origin.set(Some(tokio::time::Instant::now()));
    }
    // The engine may have been run directly between two runs: catch tokio up.
    let lag = world.sim().now().saturating_since(world.tokio_now());
    if !lag.is_zero() {
        tokio::time::advance(lag).await;
    }
    let mut sleep = Box::pin(tokio::time::sleep(Duration::ZERO));
    loop {
        world.settle();
        if done() {
            return Stop::Done;
        }
        // Let tokio fire the timers due now and run its own tasks.
        tokio::task::yield_now().await;
        if world.has_work() {
            continue;
        }
        let now = world.sim().now();
        if now >= limit {
            return Stop::Limit;
        }
        let next_event = world.sim().next_event_time();
        let target = next_event.map_or(limit, |t| t.min(limit));
        let elapsed = world.since_origin(now);
        let boundary = world.origin + Duration::from_nanos((elapsed / TICK + 1) * TICK);
        if target < boundary {
            tokio::time::advance(target.saturating_since(now)).await;
            world.sim_mut().run_until(target);
            continue;
        }
        if !elapsed.is_multiple_of(TICK) {
            tokio::time::advance(boundary.saturating_since(now)).await;
            world.sim_mut().run_until(boundary);
            continue;
        }
        // On a tick boundary with nothing before the next one: let tokio jump.
        let floor = world.origin + Duration::from_nanos(world.since_origin(target) / TICK * TICK);
        let origin = world.tokio_origin.get().expect("set above");
        sleep.as_mut().reset(origin + floor.saturating_since(world.origin));
        std::future::poll_fn(|cx| {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let mut inner = world.shared.lock();
            if !inner.ready.is_empty() || !inner.icmp.is_empty() || inner.notified {
                return Poll::Ready(());
            }
            inner.driver = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        world.shared.lock().driver = None;
        let t = world.tokio_now();
        let mut sim = world.sim_mut();
        if t > sim.now() {
            sim.run_until(t);
        }
    }
}
