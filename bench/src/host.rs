//! What a cgroup2 mount option costs every process on the host, not only
//! jit: `favordynmods` makes moving a process between cgroups cheap and
//! makes each fork, thread start and exit take a heavier lock (the
//! kernel's cgroup_threadgroup_rwsem stops being per-CPU).

use std::time::Instant;

/// `runs` times: fork a child that exits at once and reap it; then spawn a
/// thread that returns at once and join it. Nanoseconds per cycle.
pub fn fork_and_thread_cycles(runs: usize) -> std::io::Result<(Vec<u64>, Vec<u64>)> {
    let mut forks = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        // SAFETY: the child calls only _exit, which is async-signal-safe;
        // the parent reaps it before the next fork.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => return Err(std::io::Error::last_os_error()),
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            0 => unsafe { libc::_exit(0) },
            child => {
                let mut status = 0;
                // SAFETY: waits for our own child, into a valid int.
                if unsafe { libc::waitpid(child, &mut status, 0) } != child {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        forks.push(nanos(started));
    }
    let mut threads = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::thread::spawn(|| {})
            .join()
            .map_err(|_| std::io::Error::other("a benchmark thread panicked"))?;
        threads.push(nanos(started));
    }
    Ok((forks, threads))
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
