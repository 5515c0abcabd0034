//! Keeping the analysis thread's core to itself, in the runs that have one analysis thread.
//!
//! Reading a file in the text or JSON format keeps three threads busy: the reader, the
//! analysis and the output thread. The analysis is the longest of the three and sets the
//! run's time; the other two wait by sleeping a moment and trying again (`handoff.rs`). Left
//! to the scheduler, a helper that woke up was often put on the analysis thread's core and
//! ran there first: in one JSON run of the benchmark capture, `perf sched` counted 915 such
//! preemptions, 75 ms off its core in all. So the analysis thread stays on the core it starts
//! on, and the helpers keep to the other cores: 22 preemptions, 14 ms. Medians of 24
//! alternating rounds on the benchmark capture: JSON 510 → 465 ms, text 524 → 489 ms (once
//! the table's threads at the end could use every core again), Zeek 670 → 647 ms; JSON on
//! the full-size capture about 690 → 540 ms (8 rounds).
//!
//! Only where the process may use two cores or more: started under `taskset` with one core,
//! nothing is changed. Linux only; elsewhere these do nothing.

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::OnceLock;

    /// All the process's cores, and those the helpers may use: all but the analysis
    /// thread's.
    static CORES: OnceLock<(libc::cpu_set_t, libc::cpu_set_t)> = OnceLock::new();

    fn allowed() -> Option<libc::cpu_set_t> {
        // SAFETY: a zeroed cpu_set_t is an empty set, and sched_getaffinity writes at most
        // the size it is given.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            (libc::sched_getaffinity(0, size, &mut set) == 0).then_some(set)
        }
    }

    fn set_allowed(set: &libc::cpu_set_t) {
        // SAFETY: `set` is a whole cpu_set_t. A failure leaves the thread where it may run
        // now, which is only slower.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
        }
    }

    pub fn reserve_for_analysis() {
        let Some(all) = allowed() else { return };
        // SAFETY: plain reads of the set and of the calling thread's core.
        let (count, core) = unsafe { (libc::CPU_COUNT(&all), libc::sched_getcpu()) };
        let Ok(core) = usize::try_from(core) else {
            return;
        };
        if count < 2 || core >= libc::CPU_SETSIZE as usize {
            return;
        }
        // SAFETY: a zeroed cpu_set_t is an empty set.
        let mut mine: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let mut others = all;
        // SAFETY: `core` is below CPU_SETSIZE, checked above.
        unsafe {
            libc::CPU_SET(core, &mut mine);
            libc::CPU_CLR(core, &mut others);
        }
        if CORES.set((all, others)).is_ok() {
            set_allowed(&mine);
        }
    }

    pub fn keep_off_analysis_core() {
        if let Some((_, others)) = CORES.get() {
            set_allowed(others);
        }
    }

    pub fn release_analysis_core() {
        if let Some((all, _)) = CORES.get() {
            set_allowed(all);
        }
    }
}

/// Keeps the calling thread (the analysis) on the core it runs on, and the threads that
/// call [`keep_off_analysis_core`] afterwards off it; does nothing when the process has a
/// single core. Once per process: a second call changes nothing.
pub fn reserve_for_analysis() {
    #[cfg(target_os = "linux")]
    linux::reserve_for_analysis();
}

/// Called by the analysis thread once the analysis is done: it may run on every core again,
/// and so may the threads it starts from then on (the table's, which render its rows in
/// parallel).
pub fn release_analysis_core() {
    #[cfg(target_os = "linux")]
    linux::release_analysis_core();
}

/// Called first thing by a helper thread (the reader, the output thread): keeps it off the
/// analysis thread's core, if one was reserved.
pub fn keep_off_analysis_core() {
    #[cfg(target_os = "linux")]
    linux::keep_off_analysis_core();
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The cores the calling thread may run on.
    fn my_cores() -> Vec<usize> {
        // SAFETY: as in `allowed`; CPU_ISSET reads the set.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    /// The only test that reserves a core (the reservation is once per process).
    #[test]
    fn the_analysis_core_is_kept_for_the_analysis_until_released() {
        let all = my_cores();
        reserve_for_analysis();
        let mine = my_cores();
        let helper = std::thread::spawn(|| {
            keep_off_analysis_core();
            my_cores()
        })
        .join()
        .unwrap();
        if all.len() < 2 {
            // One core: nothing to keep apart.
            assert_eq!((&mine, &helper), (&all, &all));
        } else {
            assert_eq!(mine.len(), 1);
            let others: Vec<usize> = all.iter().copied().filter(|&c| c != mine[0]).collect();
            assert_eq!(helper, others);
        }
        release_analysis_core();
        assert_eq!(my_cores(), all);
    }
}
