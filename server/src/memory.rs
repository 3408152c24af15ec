//! Allocator settings for a long-running server.

/// Returns big blocks to the OS as soon as they are freed.
///
/// glibc's malloc raises its mmap threshold each time an mmapped block is freed, so once a
/// 19 MiB Argon2 buffer (one per password hash) has come and gone, later ones are carved from
/// per-thread arenas and stay resident after use: a few dozen sign-ins left ~380 MiB behind on an
/// idle server (measured with `bench idle`). A fixed threshold keeps such blocks mmapped and
/// unmapped on free; the server then idles at ~27 MiB.
#[allow(unsafe_code)]
pub fn return_large_blocks_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
