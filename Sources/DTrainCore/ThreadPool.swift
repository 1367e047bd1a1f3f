import Synchronization
import CDTrainSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of worker threads that, together with the calling thread, run the chunks of one
/// job at a time (`parallelFor`, `parallelChunks`).
///
/// A job is published by storing its closure's address and chunk count and bumping a generation
/// in `ticket` (high 32 bits: generation, low 32 bits: next chunk). Threads claim chunks with a
/// compare-exchange on `ticket`, so a chunk runs exactly once and any thread may run any chunk;
/// results cannot depend on which thread ran what, because chunk boundaries are fixed by the
/// caller. Idle workers spin briefly on `ticket`, then sleep on a condition variable; the caller
/// runs chunks too and then waits (spin, then sleep) until every claimed chunk has finished.
///
/// Nothing is allocated per job: the non-escaping body is handed to the workers as its function and
/// context pointers (`dtrain_closure`), and its captures, on the caller's stack, outlive the job
/// because the caller waits for its last chunk.
///
/// One job at a time: a call made while a job is running (from inside a chunk body, or from
/// another thread) fails `tryAcquire` and runs its chunks itself, serially.
final class ThreadPool: @unchecked Sendable {
    /// Worker threads (the caller is the extra thread).
    let workers: Int

    /// Generation (high 32 bits) and next unclaimed chunk (low 32 bits) of the current job.
    private let ticket = Atomic<UInt64>(0)
    /// The current job's closure (function and context pointers) and its chunk count.
    private let jobFunction = Atomic<UInt>(0)
    private let jobContext = Atomic<UInt>(0)
    private let jobChunks = Atomic<Int>(0)
    /// Chunks of the current job not yet finished.
    private let pending = Atomic<Int>(0)
    /// Workers asleep on `wake`; 1 while the caller sleeps on `done`.
    private let sleepers = Atomic<Int>(0)
    private let callerSleeping = Atomic<Int>(0)
    /// Held by the thread whose job is running.
    private let busy = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []
    /// The last published generation (read and written only by the thread holding `busy`).
    private var generation: UInt64 = 0
    private var stopped = false

    /// How long an idle worker, and a caller waiting for workers, poll before sleeping on a
    /// condition variable: `DTRAIN_POOL_SPIN_US` microseconds, default 50.
    let spinNanoseconds: UInt64
    /// Pause-hinted polls before the polling starts to yield (a few microseconds).
    static let pauseSpins = 256

    private static let closedIndex: UInt64 = 0xFFFF_FFFF

    init(workers: Int) {
        precondition(workers >= 1, "a thread pool needs at least one worker")
        self.workers = workers
        let spinMicroseconds = getenv("DTRAIN_POOL_SPIN_US").flatMap { UInt64(String(cString: $0)) } ?? 50
        spinNanoseconds = spinMicroseconds * 1000
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
        threads.reserveCapacity(workers)
        for _ in 0..<workers {
            let start = WorkerStart(pool: Unmanaged.passUnretained(self))
            let arg = Unmanaged.passRetained(start).toOpaque()
            #if canImport(Glibc)
            var thread = pthread_t()
            #else
            var thread: pthread_t?
            #endif
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.takeUnretainedValue().workerLoop()
                return nil
            }, arg)
            precondition(rc == 0, "dtrain: cannot start worker thread (error \(rc))")
            #if canImport(Glibc)
            threads.append(thread)
            #else
            threads.append(thread!)
            #endif
        }
    }

    deinit {
        stop()
        pthread_cond_destroy(done)
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        done.deallocate()
        wake.deallocate()
        mutex.deallocate()
    }

    /// Waits for a running job, then ends and joins the workers. Later `tryAcquire` calls fail.
    func stop() {
        if stopped { return }
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            sched_yield()
        }
        stopping.store(true, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
        stopped = true
    }

    /// True while some thread's job is running (a `run` call now would return false).
    var isBusy: Bool { busy.load(ordering: .relaxed) }

    /// Takes the pool for one job; false when another job is running (the caller then runs its
    /// chunks itself). Every successful call is followed by `run` and `release`.
    @inline(__always)
    func tryAcquire() -> Bool {
        busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    @inline(__always)
    func release() { busy.store(false, ordering: .releasing) }

    /// Runs `body(i)` for every i in 0..<chunks on the workers and the calling thread, and returns
    /// when all have finished. The caller holds the pool (`tryAcquire`).
    func run(chunks: Int, _ body: (Int) -> Void) {
        precondition(chunks >= 0 && UInt64(chunks) < ThreadPool.closedIndex, "too many chunks: \(chunks)")
        let closure = closureParts(body)
        // Close the previous job's ticket first, so that a thread still holding it cannot claim a
        // chunk of this one with stale fields.
        let g = generation
        ticket.store((g << 32) | ThreadPool.closedIndex, ordering: .sequentiallyConsistent)
        jobFunction.store(UInt(bitPattern: closure.function), ordering: .releasing)
        jobContext.store(UInt(bitPattern: closure.context), ordering: .releasing)
        jobChunks.store(chunks, ordering: .releasing)
        pending.store(chunks, ordering: .releasing)
        let next = (g &+ 1) & 0xFFFF_FFFF
        generation = next
        ticket.store(next << 32, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)
        }
        work(generation: next)
        waitForPending()
    }

    /// Claims and runs chunks of job `g` until none is left (or a newer job replaced it).
    @inline(__always)
    private func work(generation g: UInt64) {
        while true {
            let t = ticket.load(ordering: .acquiring)
            if t >> 32 != g { return }
            let i = Int(truncatingIfNeeded: t & 0xFFFF_FFFF)
            let chunks = jobChunks.load(ordering: .acquiring)
            if i >= chunks { return }
            let function = jobFunction.load(ordering: .acquiring)
            let context = jobContext.load(ordering: .acquiring)
            // Fails if another thread claimed chunk i, or the ticket was closed for a new job
            // (in which case the fields just read may belong to that job and are discarded).
            guard ticket.compareExchange(expected: t, desired: t &+ 1, ordering: .acquiringAndReleasing).exchanged else {
                continue
            }
            dtrain_closure_invoke(dtrain_closure(function: UnsafeRawPointer(bitPattern: function),
                                                 context: UnsafeRawPointer(bitPattern: context)), i)
            if pending.subtract(1, ordering: .sequentiallyConsistent).newValue == 0,
               callerSleeping.load(ordering: .sequentiallyConsistent) != 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_signal(done)
                pthread_mutex_unlock(mutex)
            }
        }
    }

    /// The caller's wait for the chunks other threads claimed.
    @inline(__always)
    private func waitForPending() {
        if pending.load(ordering: .acquiring) == 0 { return }
        if spin(until: { pending.load(ordering: .acquiring) == 0 }) { return }
        pthread_mutex_lock(mutex)
        callerSleeping.store(1, ordering: .sequentiallyConsistent)
        while pending.load(ordering: .sequentiallyConsistent) != 0 { pthread_cond_wait(done, mutex) }
        callerSleeping.store(0, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
    }

    /// Polls `ready` with pause hints for a few microseconds, then yielding the processor between
    /// polls (other runnable threads, OpenBLAS's included, go first) until `spinNanoseconds` have
    /// passed. True once `ready` holds; false when the time is up.
    @inline(__always)
    private func spin(until ready: () -> Bool) -> Bool {
        for _ in 0..<ThreadPool.pauseSpins {
            if ready() { return true }
            dtrain_cpu_relax()
        }
        let deadline = monotonicNanoseconds() &+ spinNanoseconds
        while true {
            if ready() { return true }
            if monotonicNanoseconds() > deadline { return false }
            sched_yield()
        }
    }

    fileprivate func workerLoop() {
        var seen: UInt64 = 0
        while let g = waitForJob(after: seen) {
            seen = g
            work(generation: g)
        }
    }

    /// Spins, then sleeps, until a generation other than `seen` is published; nil when stopping.
    private func waitForJob(after seen: UInt64) -> UInt64? {
        if spin(until: { ticket.load(ordering: .acquiring) >> 32 != seen || stopping.load(ordering: .relaxed) }) {
            return stopping.load(ordering: .relaxed) ? nil : ticket.load(ordering: .acquiring) >> 32
        }
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        var g = ticket.load(ordering: .sequentiallyConsistent) >> 32
        while g == seen && !stopping.load(ordering: .sequentiallyConsistent) {
            pthread_cond_wait(wake, mutex)
            g = ticket.load(ordering: .sequentiallyConsistent) >> 32
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
        return stopping.load(ordering: .sequentiallyConsistent) ? nil : g
    }
}

private final class WorkerStart {
    let pool: Unmanaged<ThreadPool>
    init(pool: Unmanaged<ThreadPool>) { self.pool = pool }
}


/// The function and context pointers of a closure (see dtrain_support.h).
@_silgen_name("dtrain_closure_parts")
private func closureParts(_ body: (Int) -> Void) -> dtrain_closure
