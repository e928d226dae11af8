//! streamtopk: exact top-k (identical to `torch.topk`) for LLM decoding,
//! with the GPU kernels written in Rust and compiled to PTX.
//!
//! ```no_run
//! use cust::stream::{Stream, StreamFlags};
//! let kernels = streamtopk::load()?;
//! let stream = Stream::new(StreamFlags::NON_BLOCKING, None)?;
//! let mut topk = streamtopk::TopK::new(&kernels, streamtopk::TopKConfig::new(4, 50304, 50))?;
//! let logits = vec![half::bf16::from_f32(0.0); 4 * 50304];
//! let (values, indices) = topk.run_host(&stream, &logits, 4)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use streamtopk_host::*;
pub use streamtopk_kernels as kernels;

pub mod cli;
pub mod io;
pub mod reference;

/// The kernels' PTX, built by `build.rs` for `$STREAMTOPK_ARCH` (default `sm_90`).
pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/streamtopk.ptx"));

/// Load [`PTX`] on device 0 (initialises CUDA). Share the result between
/// threads and operators.
pub fn load() -> Result<std::sync::Arc<Kernels>> {
    Kernels::load(PTX, 0)
}
