//! Asking the CPU for memory before it is read.
//!
//! The analysis holds thousands of connections, a few kilobytes each, and a segment or a
//! deadline mostly finds its connection out of the cache: touched last some tens of thousands
//! of packets ago. Where the code knows early which memory it will read, it asks for all of
//! it at once, so that the cache misses overlap with each other and with other work instead
//! of coming one after another. Used for the index entries of the segments a few places
//! ahead in a batch and then for their connections, for the next deadlines' slots,
//! connections and index entries (the flow table), for Zeek's model of a connection while
//! the tracker runs, on the output thread for a batch's connections and their RTT samples,
//! and, to be written, for memory that comes back from the other core: the reading thread's
//! batch, the analysis thread's next spare connection box and its list of events (JSON).

/// Asks the CPU for every cache line of `value`, all at once; a hint, with no effect on what
/// the program computes.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = (value as *const T).cast::<i8>();
        for offset in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch is only a hint: it cannot fault and writes nothing, and the
            // addresses are within `value`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Asks the CPU for every cache line of the slice `values`, as [`prefetch`] does for one value.
#[inline(always)]
pub fn prefetch_slice<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = values.as_ptr().cast::<i8>();
        for offset in (0..std::mem::size_of_val(values)).step_by(64) {
            // SAFETY: as in `prefetch`; the addresses are within `values`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// Can this processor prefetch for writing (`prefetchw`, CPUID PRFCHW)? AMD's have for
/// decades, Intel's since Broadwell.
pub fn can_prefetch_write() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // Leaf 0x8000_0000 says which extended leaves exist; PRFCHW is bit 8 of ECX in
        // 0x8000_0001 (Linux's `3dnowprefetch` flag).
        use std::arch::x86_64::__cpuid;
        __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Asks the CPU for the cache line at `at` in order to write it (`prefetchw`): it comes
/// exclusive, taken from another core's cache if need be, before the write that needs it.
/// A hint: it cannot fault. Only where [`can_prefetch_write`].
#[inline(always)]
pub fn prefetch_write<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it cannot fault and writes nothing; callers check
    // `can_prefetch_write` first.
    unsafe {
        std::arch::asm!("prefetchw [{}]", in(reg) at, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// [`prefetch_write`] for every cache line of `value`.
#[inline(always)]
pub fn prefetch_write_all<T>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(64) {
        prefetch_write(start.wrapping_add(offset));
    }
}
