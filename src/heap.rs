//! Giving freed heap back to the system after a large batch: a big sync or import
//! transaction leaves hundreds of MiB freed but still held by the allocator, and an edge
//! box's RSS would otherwise stay at its peak.

/// The most malloc arenas the daemon keeps, unless `MALLOC_ARENA_MAX` says otherwise.
/// glibc gives busy threads arenas of their own, up to eight per core, and memory freed in
/// one arena is not reused by another: with tokio's blocking threads writing sled pages in
/// turn, a 100 000-user sync on a 2-core box peaked ~50 MiB higher with the default than
/// with two (`cargo bench --bench memory`).
const ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas (see `ARENAS`); call before threads start. Elsewhere nothing.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's tuning.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Returns free heap pages to the kernel (glibc's `malloc_trim`; elsewhere nothing).
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
