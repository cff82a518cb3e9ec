//! glibc's allocator, set up for a process that holds large batches.
//!
//! With glibc's defaults the pipeline peaked at about twice the memory it
//! uses (440–475 MiB against a heap of 130 MiB, 300,000 events): every
//! thread that allocates may get an arena of its own (up to eight per core),
//! and the threshold above which a buffer is mapped on its own grows with
//! each large buffer freed, so batch-sized vectors end up in arenas that
//! keep the memory. Two arenas and a fixed 128 KiB threshold (large buffers
//! go back to the system when freed) gave 221 MiB on the same run, at the
//! same speed (docs/performance.md).

/// (environment variable that overrides it, `mallopt` parameter, value)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SETTINGS: [(&str, libc::c_int, libc::c_int); 3] = [
    ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
    ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 << 10),
    ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 128 << 10),
];

/// Applies the settings, each unless its environment variable is set (the
/// variable wins, as glibc documents). Call it first thing in `main`,
/// before any thread starts.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in SETTINGS {
        if std::env::var_os(variable).is_none() {
            // SAFETY: `mallopt` only changes allocator parameters; it is
            // called before the process starts any other thread.
            #[allow(unsafe_code)]
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}
