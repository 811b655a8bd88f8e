#pragma once
// Every tuning constant of the runtime, in one place, each with its reason.
// They were chosen by measurement on 2-CPU x86-64 VMs (docs/design.md, bench/);
// change one only with a benchmark run that shows why.

#include <cstddef>

namespace skein::detail::tuning {

// --- waiting -----------------------------------------------------------------

/// Pauses a blocked thread spins before it parks (Parker), when the process
/// may use more than one CPU: a few microseconds, far cheaper than a park and
/// a cross-CPU wake-up (30-70 us on these VMs). On one CPU it does not spin:
/// the notifier cannot run meanwhile.
inline constexpr int kParkSpins = 256;

/// Pauses a short wait for another thread (spin_wait_step) spends before it
/// starts yielding its CPU: the awaited step is a few instructions, so a
/// longer wait means that thread was preempted, and yielding lets it run.
inline constexpr int kSpinLockPauses = 64;

/// A contended SpinLock backs off before each new look: kSpinLockBackoffFirst
/// pauses, doubling while below kSpinLockBackoffMax (about 500 pauses in
/// all), then yields the CPU between looks (at once on a single CPU).
inline constexpr unsigned kSpinLockBackoffFirst = 16;
inline constexpr unsigned kSpinLockBackoffMax = 512;

/// Tries of Mutex's uncontended path before it queues: critical sections are
/// usually short, and a brief spin beats a park and a wake-up.
inline constexpr int kMutexSpins = 64;

/// Pauses an EventLoop spins before it sleeps: a cross-thread post usually
/// arrives within microseconds.
inline constexpr int kLoopSpins = 128;

// --- the pool's scheduler ----------------------------------------------------

/// Rounds an idle worker keeps looking for work before it parks: the first
/// kWorkerPauseRounds with kPausesPerRound pauses each, the rest yielding its
/// CPU to whoever is producing the work.
inline constexpr int kWorkerSpinRounds = 24;
inline constexpr int kWorkerPauseRounds = 4;
inline constexpr int kPausesPerRound = 32;

/// A worker looks at the injection queue every this many tasks, even while
/// its own deque has work, so that tasks injected from outside (and woken
/// coroutines past the LIFO budget) are not starved by a busy worker. A prime,
/// so that it does not beat in step with a program's own periods.
inline constexpr unsigned kInjectionPollInterval = 61;

/// Tasks a worker may run in a row from its LIFO slot (the task the running
/// one just woke): two tasks waking each other would otherwise starve the
/// rest. Past it, the woken task goes to the back of the line.
inline constexpr unsigned kLifoBudget = 32;

/// Tasks moved at once from the injection queue to a worker's deque: one lock
/// round trip for many tasks.
inline constexpr std::size_t kInjectBatch = 32;

/// Threads outside a pool that get a deque of their own in it for the tasks
/// they start there (pushed without a lock, stolen by the workers); further
/// threads use the injection queue.
inline constexpr std::size_t kPoolExternalQueues = 8;

// --- coroutine frames --------------------------------------------------------

/// Frame sizes are rounded up to the next class: kFrameSmallest bytes, then
/// steps of kFrameGranule. These are the usable sizes of 64-bit glibc's chunks
/// (a chunk of 16k bytes holds 16k - 8), so a block malloc'd for a class wastes
/// nothing beyond malloc's own header. Each of the kFrameClasses classes
/// (frames up to 1 KiB) keeps up to kFramesPerClass freed frames per thread
/// for reuse, so that a task's frame costs no malloc in the steady state and
/// an idle thread does not hold much memory.
inline constexpr std::size_t kFrameSmallest = 24;
inline constexpr std::size_t kFrameGranule = 16;
inline constexpr std::size_t kFrameClasses = 64;
inline constexpr unsigned kFramesPerClass = 256;

/// Past kFramesPerClass, freed frames are gathered in batches of
/// kFrameBatch and handed to a process-wide depot (one lock round trip per
/// batch), from which a thread that allocates more frames than it frees
/// refills: a task started on one worker and ended on another costs no
/// malloc and no free. The depot keeps up to kFrameDepotBatches batches per
/// class (16K frames) and frees the rest.
inline constexpr unsigned kFrameBatch = 64;
inline constexpr unsigned kFrameDepotBatches = 256;

}  // namespace skein::detail::tuning
