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
//! So malloc is told to extend the heap 2 MiB further than it needs each time (`M_TOP_PAD`),
//! and the reading thread, which has time to spare on the other core, checks where the heap
//! ends after each batch and asks the kernel to fault in what is new (`MADV_POPULATE_WRITE`:
//! each page made present as if written, without writing, so pages malloc already uses are
//! left as they are) before the analysis gets there. In every run measured, the analysis
//! thread's time in `clear_page_erms` fell from 1–82 ms to 0–15 ms. What that saves depends
//! on how slowly the kernel clears pages at the moment, which varies from minute to minute on
//! the benchmark's machine: JSON's median time went 513 → 482 ms in one series of alternating
//! rounds, and 601 → 596 and 524 → 522 ms in two later ones, for 5 MiB more peak memory (51 →
//! 56 MiB); the table, whose reading thread analyses a share too, 429 → 416, 432 → 412, 517 →
//! 456 and 418 → 407 ms, with the same peak memory.
//!
//! Linux with glibc only (and the kernel from 5.14, for `MADV_POPULATE_WRITE`); elsewhere
//! these do nothing.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod linux {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// How much further than it needs malloc extends the heap: one huge page, for the
    /// reading thread to fault in while the analysis uses the one before.
    const PAD: usize = 2 << 20;

    /// The end of the heap that is faulted in, as far as this module knows; 0 while off.
    static FAULTED_TO: AtomicUsize = AtomicUsize::new(0);

    /// malloc asks for huge pages for its heap (`huge_pages.rs`).
    static HUGE: AtomicBool = AtomicBool::new(false);

    /// The heap's end (the program break). The system call with 0 only reports it: unlike
    /// `sbrk`, which reads a variable of malloc's, it is safe beside malloc on another thread.
    fn heap_end() -> usize {
        // SAFETY: brk(0) changes nothing.
        unsafe { libc::syscall(libc::SYS_brk, 0) as usize }
    }

    pub fn enable() {
        // SAFETY: sets one of malloc's parameters; 1 is success.
        if unsafe { libc::mallopt(libc::M_TOP_PAD, PAD as libc::c_int) } == 1 {
            let huge = std::env::var("GLIBC_TUNABLES")
                .is_ok_and(|t| t.contains(crate::huge_pages::TUNABLE_ON));
            HUGE.store(huge, Ordering::Relaxed);
            FAULTED_TO.store(heap_end(), Ordering::Relaxed);
        }
    }

    pub fn fault_in_growth() {
        let done = FAULTED_TO.load(Ordering::Relaxed);
        if done == 0 {
            return;
        }
        let end = heap_end();
        if end > done {
            let start = done & !4095;
            // SAFETY: the range is the heap's own, and populating changes no byte of it. A
            // failure (an older kernel; the heap trimmed meanwhile) only leaves the faults to
            // the analysis.
            unsafe {
                let at = start as *mut libc::c_void;
                // malloc asks for huge pages right after it extends the heap; should this
                // come in between, the pages faulted in now would be small ones for good.
                if HUGE.load(Ordering::Relaxed) {
                    libc::madvise(at, end - start, libc::MADV_HUGEPAGE);
                }
                libc::madvise(at, end - start, libc::MADV_POPULATE_WRITE);
            }
        }
        // Also when the heap shrank: what is given back comes back as fresh pages.
        if end != done {
            FAULTED_TO.store(end, Ordering::Relaxed);
        }
    }
}

/// Has malloc's main heap grow ahead of its use, for [`fault_in_growth`]. Called by the
/// main thread, which analyses, before the reading thread starts.
pub fn enable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    linux::enable();
}

/// Called by the reading thread after each batch: faults in the heap's growth since the last
/// call, if [`enable`] was called.
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

    #[test]
    fn the_heaps_growth_is_faulted_in_without_being_written() {
        enable();
        // The heap grown by 4 MiB as malloc would grow it (malloc copes with a break moved
        // by someone else), its first word written, as malloc writes a chunk's header.
        const GROWTH: usize = 4 << 20;
        // SAFETY: the new range is this test's alone; nothing else refers to it.
        let start = unsafe { libc::sbrk(GROWTH as libc::intptr_t) } as usize;
        assert_ne!(start, usize::MAX, "sbrk failed");
        let start = start.next_multiple_of(4096);
        let len = GROWTH - 4096;
        // SAFETY: inside the range just added.
        unsafe { (start as *mut u64).write(0x5eed) };
        assert!(
            resident_pages(start, len) < len / 4096,
            "not yet faulted in"
        );
        fault_in_growth();
        assert_eq!(resident_pages(start, len), len / 4096, "all faulted in");
        // SAFETY: as above; the word written is still there.
        assert_eq!(unsafe { (start as *const u64).read() }, 0x5eed);
    }
}
