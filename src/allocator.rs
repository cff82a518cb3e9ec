//! The process's allocator: jemalloc, set up for a process that allocates
//! and frees a batch's worth of small strings and large vectors every few
//! milliseconds.
//!
//! glibc's malloc was tuned here first (two arenas, large buffers returned
//! to the system at once) to keep peak RSS down, but then every batch
//! mapped its large vectors afresh and paid a page fault per 4 KiB, and
//! small allocations went through `malloc_consolidate`. The same 1 M-event
//! run, same build, back to back (docs/performance.md, eighth session):
//! glibc tuned 42,113 events/s to visible and 104 MiB peak; jemalloc with
//! the settings below 54,648 events/s and 120 MiB (jemalloc's defaults:
//! 43,292 and 153 MiB). polars' own documentation recommends jemalloc or
//! mimalloc for the same reason.
//!
//! The settings: two arenas (threads share them, as glibc's two did), a
//! background thread that returns unused pages to the system, dirty pages
//! kept one second (the next batch reuses them instead of faulting them in
//! again) and none kept "muzzy". `_RJEM_MALLOC_CONF` in the environment
//! overrides any of them (jemalloc reads it after this string).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads this symbol (its `malloc_conf`, under the crate's `_rjem_`
/// prefix) before the first allocation.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 70] =
    b"narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";
