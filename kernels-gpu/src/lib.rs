//! Device crate of streamtopk.
//!
//! On every target it provides the ABI shared by host and device: key
//! encodings ([`element`]) and launch parameters / shared-memory layouts
//! ([`params`]). On `nvptx64` it also holds the device layer ([`device`]),
//! the block-level primitives ([`block`], [`load`]), the two stages
//! ([`stage1`], [`merge`]), the cluster-per-row path ([`cluster`]), the
//! two-launch filter path ([`filter`]) over register-held shares of rows
//! ([`slice`]), the sampler ([`sample`]) and the kernel entry points ([`kernel`]).
#![no_std]
#![cfg_attr(
    target_arch = "nvptx64",
    feature(
        abi_ptx,
        stdarch_nvptx,
        asm_experimental_arch,
        core_intrinsics,
        gpu_intrinsics,
        gpu_launch_sized_workgroup_mem
    )
)]

pub mod element;
pub mod params;
pub mod philox;

#[cfg(target_arch = "nvptx64")]
pub mod block;
#[cfg(target_arch = "nvptx64")]
pub mod cluster;
#[cfg(target_arch = "nvptx64")]
pub mod device;
#[cfg(target_arch = "nvptx64")]
pub mod filter;
#[cfg(target_arch = "nvptx64")]
pub mod kernel;
#[cfg(target_arch = "nvptx64")]
pub mod load;
#[cfg(target_arch = "nvptx64")]
pub mod merge;
#[cfg(target_arch = "nvptx64")]
pub mod sample;
#[cfg(target_arch = "nvptx64")]
pub mod slice;
#[cfg(target_arch = "nvptx64")]
pub mod stage1;

#[cfg(target_arch = "nvptx64")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    device::trap()
}
