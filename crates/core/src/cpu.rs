//! Run-time CPU feature checks shared by the crates that compile hot loops for several
//! instruction sets with hand-written `#[target_feature]` wrappers chosen at run time.
//!
//! New code should let `multiversion` compile and choose the clones instead (as
//! [`Seq::fill_normals`](crate::keyed::Seq::fill_normals) does: no `unsafe`, the same speed),
//! and keep hand-written intrinsics and dispatch only where a bench shows they pay.

/// Whether the CPU has the AVX-512 subset the vectorised loops are compiled for: F, BW, VL and
/// DQ (their wrappers enable `"avx2,avx512f,avx512bw,avx512vl,avx512dq"`). `false` off x86-64.
/// `std` caches the detection, so this is cheap enough to call per call of a loop.
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX2. `false` off x86-64.
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
