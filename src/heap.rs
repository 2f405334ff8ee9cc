//! Giving freed heap back to the system after a large batch: a big sync or import
//! transaction leaves hundreds of MiB freed but still held by the allocator, and an edge
//! box's RSS would otherwise stay at its peak.

/// Returns free heap pages to the kernel (glibc's `malloc_trim`; elsewhere nothing).
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
