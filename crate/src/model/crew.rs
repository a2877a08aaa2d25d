//! The pool's threads, kept at hand for the length of one forward pass. A decode step has ~200
//! products of ~50 µs each (in wasm); between two of them rayon's threads go to sleep, and a
//! split would wait for a wake-up that costs as much as the product. During a pass
//! ([`with_crew`]) the other threads of rayon's pool instead spin on a shared board, and a
//! product ([`split`]) hands them its parts with an atomic add, as llama.cpp's threads wait for
//! the next op. Outside a pass, [`split`] is rayon's parallel loop.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Bits of [`Board::state`]: the job's epoch, its part count and the next part to claim, in one
/// word, so that a claim reads all three at once.
const PART_BITS: u32 = 20;
const PARTS_SHIFT: u32 = PART_BITS;
const EPOCH_SHIFT: u32 = 2 * PART_BITS;
const PART_MASK: u64 = (1 << PART_BITS) - 1;

type Part<'a> = &'a (dyn Fn(usize) + Sync + 'a);

/// One job at a time: the owner of the pass publishes it, and every thread takes parts until
/// none are left.
struct Board {
    state: AtomicU64,
    /// Parts claimed and not yet done, or not claimed yet.
    remaining: AtomicUsize,
    /// The job's parts. Written by the owner before it publishes the job (Release on `state`),
    /// read by a thread only after it claimed a part of that job (Acquire), and rewritten only
    /// once `remaining` is 0, after every claimed part is done.
    job: UnsafeCell<Option<Part<'static>>>,
    stop: AtomicBool,
}

// `job` is guarded by the protocol above.
unsafe impl Sync for Board {}

thread_local! {
    /// The board of the pass this thread runs, if any.
    static CURRENT: Cell<*const Board> = const { Cell::new(std::ptr::null()) };
}

impl Board {
    fn new() -> Self {
        Board { state: AtomicU64::new(0), remaining: AtomicUsize::new(0), job: UnsafeCell::new(None), stop: AtomicBool::new(false) }
    }

    /// Claims and runs parts of the job published now; returns its epoch once none are left.
    fn take_parts(&self) -> u64 {
        loop {
            let state = self.state.fetch_add(1, Ordering::AcqRel);
            let (epoch, parts, part) = (state >> EPOCH_SHIFT, (state >> PARTS_SHIFT) & PART_MASK, state & PART_MASK);
            if part >= parts {
                return epoch;
            }
            // SAFETY: this thread holds a claimed part of `epoch`'s job, so the job stays set
            // until `remaining` drops below this part's count (see `job`).
            let job = unsafe { (*self.job.get()).expect("a published job") };
            job(part as usize);
            self.remaining.fetch_sub(1, Ordering::Release);
        }
    }

    /// A helper's loop: waits for each new job and takes its parts, until the pass ends.
    fn help(&self) {
        let mut done = 0;
        while !self.stop.load(Ordering::Acquire) {
            if self.state.load(Ordering::Acquire) >> EPOCH_SHIFT == done {
                std::hint::spin_loop();
                continue;
            }
            done = self.take_parts();
        }
    }

    /// The owner's side: publishes `parts` parts of `job`, takes parts too, and returns once all
    /// are done.
    fn run(&self, parts: usize, job: Part<'_>) {
        assert!(parts as u64 <= PART_MASK / 2, "too many parts: {parts}");
        // SAFETY: the lifetime is erased for the board; the job is cleared below, before `job`'s
        // borrow ends, and no thread reads it after `remaining` reaches 0.
        let job: Part<'static> = unsafe { std::mem::transmute::<Part<'_>, Part<'static>>(job) };
        unsafe { *self.job.get() = Some(job) };
        self.remaining.store(parts, Ordering::Relaxed);
        let epoch = (self.state.load(Ordering::Relaxed) >> EPOCH_SHIFT) + 1;
        self.state.store(epoch << EPOCH_SHIFT | (parts as u64) << PARTS_SHIFT, Ordering::Release);
        self.take_parts();
        while self.remaining.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        unsafe { *self.job.get() = None };
    }
}

/// Ends the pass however `with_crew`'s closure returns: the helpers stop, the thread forgets
/// the board.
struct EndOfPass<'a>(&'a Board);

impl Drop for EndOfPass<'_> {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(std::ptr::null()));
        self.0.stop.store(true, Ordering::Release);
    }
}

/// Runs `pass` on a thread of rayon's pool (this one, when it is in the pool), with the pool's
/// other threads spinning for its products' parts until it returns. With one thread, or inside
/// a pass already, it just runs `pass`.
pub(crate) fn with_crew<R: Send>(pass: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    if threads <= 1 || CURRENT.with(|current| !current.get().is_null()) {
        return pass();
    }
    let board = &Board::new();
    rayon::scope(|scope| {
        let owner = rayon::current_thread_index();
        for _ in 1..threads {
            // A helper task that the owner itself picks up (after the pass, or while it waits
            // in rayon) must not spin: the pass that would stop it cannot go on.
            scope.spawn(move |_| {
                if rayon::current_thread_index() != owner {
                    board.help();
                }
            });
        }
        CURRENT.with(|current| current.set(board));
        let _end = EndOfPass(board);
        pass()
    })
}

/// Calls `part(0..parts)`, split between the threads: the crew of the pass this thread runs, or
/// rayon's pool outside a pass.
pub(crate) fn split(parts: usize, part: &(dyn Fn(usize) + Sync)) {
    let board = CURRENT.with(Cell::get);
    if board.is_null() {
        use rayon::prelude::*;
        return (0..parts).into_par_iter().for_each(part);
    }
    // SAFETY: the board outlives the pass, and `CURRENT` is cleared when the pass ends.
    unsafe { &*board }.run(parts, part);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Every part runs exactly once, on 1 to 4 threads, over many jobs in one pass, with
    /// rayon's own parallel loops in between (tract's ops run on them).
    #[test]
    fn every_part_runs_once_in_every_job_of_a_pass() {
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let sums = pool.install(|| {
                with_crew(|| {
                    (0..300)
                        .map(|job| {
                            let parts = 1 + job % 7;
                            let seen = Mutex::new(vec![0u32; parts]);
                            split(parts, &|p| seen.lock().unwrap()[p] += 1);
                            use rayon::prelude::*;
                            let between: u64 = (0..1000u64).into_par_iter().sum();
                            assert_eq!(between, 499_500);
                            seen.into_inner().unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            });
            for (job, seen) in sums.iter().enumerate() {
                assert!(seen.iter().all(|&n| n == 1), "{threads} threads, job {job}: {seen:?}");
            }
        }
    }

    /// From outside the pool (this test's own thread, rayon's global pool) the pass moves to a
    /// pool thread, and returns its result.
    #[test]
    fn a_pass_started_outside_the_pool_runs_on_it() {
        let done = AtomicUsize::new(0);
        let on_pool = with_crew(|| {
            split(64, &|_| {
                done.fetch_add(1, Ordering::Relaxed);
            });
            rayon::current_thread_index().is_some()
        });
        assert_eq!(done.load(Ordering::Relaxed), 64);
        assert_eq!(on_pool, rayon::current_num_threads() > 1);
    }
}
