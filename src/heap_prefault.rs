//! The analysis thread's fresh heap, faulted in by the reading thread.
//!
//! The main thread analyses (all of it for text and JSON, 11 of 16 buckets for the table) and
//! its memory comes from malloc's main heap, which grows at its end as connections pile up
//! (on the benchmark, connections open or unanswered until their timeouts: about 36 MiB over
//! the run). Each time malloc extends the heap, the first touch of each new page has the
//! kernel clear it, on the thread that touches it: in huge pages (see `huge_pages.rs`), 2 MiB
//! at a time. perf found 35–80 ms of the analysis thread's 0.5 s in `clear_page_erms` in slow
//! spells of the machine, about 1 ms in fast ones.
//!
//! So malloc is told to extend the heap further than it needs each time (`M_TOP_PAD`), and
//! the reading thread, which has time to spare on the other core, asks the kernel after each
//! batch to fault in the heap at least half a huge page past the analysis thread's last
//! fresh connection box (`MADV_POPULATE_WRITE`: each page made present as if written, without
//! writing, so pages malloc already uses are left as they are), before the analysis gets
//! there. Only the first page of each extension is beyond its reach: malloc writes a header
//! there as it extends the heap. So for JSON and Zeek the pad is 32 MiB, which only reserves
//! address space: on the benchmark the heap is extended twice instead of 11 times.
//!
//! Measured: with a 2 MiB pad, the analysis thread's time in `clear_page_erms` fell from
//! 1–82 ms to 0–15 ms, and JSON's median time went 513 → 482 ms in one series of alternating
//! rounds, and 601 → 596 and 524 → 522 ms in two later ones (what that saves depends on how
//! slowly the kernel clears pages at the moment, which varies from minute to minute on the
//! benchmark's machine), for 5 MiB more peak memory (51 → 56 MiB); the table, whose reading
//! thread analyses a share too, 429 → 416, 432 → 412, 517 → 456 and 418 → 407 ms, with the
//! same peak memory. With 32 MiB and the faulting in kept a huge page ahead: the analysis
//! thread's `clear_page_erms` from 1–44 to 0–1 ms, its CPU time 0.547 → 0.503 s (median of
//! 10 pairs, shorter in 7), JSON's median 625 → 597 ms in a slow spell (10 rounds), for 1–1.5
//! MiB more peak memory. Half a huge page ahead, as now, the peak is where it was (58.6–59.6
//! MiB, pcapng 59.7–60.0), and the analysis thread's `clear_page_erms` 0–2 ms in 5 runs of
//! 6 (24 ms in one, where malloc outran the reading thread).
//!
//! Linux with glibc only (and the kernel from 5.14, for `MADV_POPULATE_WRITE`); elsewhere
//! these do nothing.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod linux {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A huge page.
    const HUGE_PAGE: usize = 2 << 20;

    /// The end of the heap that is faulted in, as far as this module knows; 0 while off.
    pub(super) static FAULTED_TO: AtomicUsize = AtomicUsize::new(0);

    /// The heap's end when the reading thread last looked: addresses at or above it are not
    /// the main heap's (another thread's arena).
    static HEAP_END: AtomicUsize = AtomicUsize::new(0);

    /// The highest fresh allocation of the main heap noted so far.
    pub(super) static USED_TO: AtomicUsize = AtomicUsize::new(0);

    /// malloc asks for huge pages for its heap (`huge_pages.rs`).
    static HUGE: AtomicBool = AtomicBool::new(false);

    /// The heap's end (the program break). The system call with 0 only reports it: unlike
    /// `sbrk`, which reads a variable of malloc's, it is safe beside malloc on another thread.
    fn heap_end() -> usize {
        // SAFETY: brk(0) changes nothing.
        unsafe { libc::syscall(libc::SYS_brk, 0) as usize }
    }

    pub fn enable(pad: usize) {
        // SAFETY: sets one of malloc's parameters; 1 is success.
        if unsafe { libc::mallopt(libc::M_TOP_PAD, pad as libc::c_int) } == 1 {
            let huge = std::env::var("GLIBC_TUNABLES")
                .is_ok_and(|t| t.contains(crate::huge_pages::TUNABLE_ON));
            HUGE.store(huge, Ordering::Relaxed);
            let end = heap_end();
            HEAP_END.store(end, Ordering::Relaxed);
            FAULTED_TO.store(end, Ordering::Relaxed);
        }
    }

    pub fn note_fresh(at: usize) {
        // Only the main heap's addresses count, which only the main thread allocates: with the
        // table, the reading thread's boxes come from its own arena, above the heap's end.
        // So one thread stores here, and a plain store will do.
        if at < HEAP_END.load(Ordering::Relaxed) && at > USED_TO.load(Ordering::Relaxed) {
            USED_TO.store(at, Ordering::Relaxed);
        }
    }

    pub fn fault_in_growth() {
        let done = FAULTED_TO.load(Ordering::Relaxed);
        if done == 0 {
            return;
        }
        let end = heap_end();
        HEAP_END.store(end, Ordering::Relaxed);
        let wanted = fault_in_to(end, USED_TO.load(Ordering::Relaxed));
        if wanted > done {
            // malloc asks for huge pages right after it extends the heap; should this come in
            // between, the pages faulted in now would be small ones for good.
            fault_in(done & !4095, wanted, HUGE.load(Ordering::Relaxed));
            FAULTED_TO.store(wanted, Ordering::Relaxed);
        } else if end < done {
            // The heap shrank: what is given back comes back as fresh pages.
            FAULTED_TO.store(end, Ordering::Relaxed);
        }
    }

    /// How far to fault in the heap ending at `end` when the last fresh allocation noted is
    /// at `used`: at least half a huge page past it, to the end of a huge page (the analysis
    /// allocates a few kilobytes between two batches, and a huge page is faulted in whole).
    pub(super) fn fault_in_to(end: usize, used: usize) -> usize {
        end.min(((used + HUGE_PAGE / 2) | (HUGE_PAGE - 1)) + 1)
    }

    /// Has the kernel make the pages of `[start, end)` (`start` page-aligned) present as if
    /// written, writing nothing; in huge pages if `huge`. Memory in use there is left as it
    /// is. A failure (an older kernel; part of the range unmapped meanwhile, as when malloc
    /// trims its heap) only leaves the faults to whoever touches the pages first.
    pub(super) fn fault_in(start: usize, end: usize, huge: bool) {
        let at = start as *mut libc::c_void;
        // SAFETY: neither call changes a byte of memory; on a range that is not mapped they
        // fail and change nothing.
        unsafe {
            if huge {
                libc::madvise(at, end - start, libc::MADV_HUGEPAGE);
            }
            libc::madvise(at, end - start, libc::MADV_POPULATE_WRITE);
        }
    }
}

/// Has malloc extend its heaps `pad` bytes further than it needs, for [`fault_in_growth`] to
/// fault in ahead of their use. Called by the main thread, which analyses, before the reading
/// thread starts.
///
/// The analysis thread touches the first page of each extension of the main heap itself
/// (malloc writes a header there at once), so the fewer extensions the better; the rest is
/// only address space until it is faulted in. But the pad applies to the other threads'
/// heaps too, and the memory freed at a heap's end is given back only beyond it.
pub fn enable(pad: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    linux::enable(pad);
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = pad;
}

/// Notes a fresh allocation of the analysis thread (a new connection's box), for
/// [`fault_in_growth`] to keep ahead of. Addresses not in the main heap are ignored.
#[inline]
pub fn note_fresh<T>(fresh: &T) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    linux::note_fresh(fresh as *const T as usize);
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = fresh;
}

/// Called by the reading thread after each batch: faults in the heap's growth up to at least
/// half a huge page past the last fresh allocation noted, if [`enable`] was called.
pub fn fault_in_growth() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    linux::fault_in_growth();
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// How many of the pages of `len` bytes at `start` are in memory.
    fn resident_pages(start: usize, len: usize) -> usize {
        let mut flags = vec![0u8; len.div_ceil(4096)];
        // SAFETY: `flags` has a byte for every page of the range.
        let r = unsafe { libc::mincore(start as *mut libc::c_void, len, flags.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        flags.iter().filter(|&&f| f & 1 == 1).count()
    }

    /// What the reading thread does to the heap's growth, on a mapping of this test's own
    /// (moving the process's break here would race with malloc on the test threads): the
    /// pages become present, and what was written is still there.
    #[test]
    fn fault_in_makes_pages_present_without_writing() {
        const LEN: usize = 4 << 20;
        // SAFETY: a fresh private anonymous mapping, this test's alone.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(start, libc::MAP_FAILED);
        let start = start as usize;
        // SAFETY: inside the mapping.
        unsafe { (start as *mut u64).write(0x5eed) };
        assert!(
            resident_pages(start, LEN) < LEN / 4096,
            "not yet all present"
        );
        super::linux::fault_in(start, start + LEN, false);
        assert_eq!(resident_pages(start, LEN), LEN / 4096, "all present");
        // SAFETY: as above.
        assert_eq!(unsafe { (start as *const u64).read() }, 0x5eed);
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(start as *mut libc::c_void, LEN) };
    }

    /// The heap is faulted in at least half a huge page past the last allocation noted, to a
    /// huge page's end, never past the heap's end.
    #[test]
    fn faults_in_half_a_huge_page_ahead_within_the_heap() {
        use super::linux::fault_in_to;
        const MIB: usize = 1 << 20;
        assert_eq!(fault_in_to(64 * MIB, 20 * MIB + 100), 22 * MIB);
        assert_eq!(fault_in_to(64 * MIB, 21 * MIB - 1), 22 * MIB);
        assert_eq!(fault_in_to(64 * MIB, 21 * MIB), 24 * MIB);
        assert_eq!(fault_in_to(64 * MIB, 22 * MIB - 1), 24 * MIB);
        assert_eq!(fault_in_to(21 * MIB, 20 * MIB + 100), 21 * MIB);
    }

    /// Without `enable`, no allocation is noted: the heap's end is not known.
    #[test]
    fn without_enable_nothing_is_noted() {
        let fresh = Box::new([0u64; 16]);
        note_fresh(&*fresh);
        assert_eq!(
            super::linux::USED_TO.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    /// Without `enable`, the reading thread's call does nothing.
    #[test]
    fn without_enable_nothing_is_tracked() {
        fault_in_growth();
        assert_eq!(
            super::linux::FAULTED_TO.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}
