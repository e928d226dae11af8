//! Host side of streamtopk: module load ([`Kernels`]), launch planning
//! ([`plan`]), workspaces and typed launch wrappers ([`TopK`], [`Sampler`]), on `cust`.
//!
//! The PTX itself is built and embedded by the root crate `streamtopk`,
//! which re-exports everything here.

mod error;
mod graph;
mod kernels;
pub mod plan;
mod sample;
mod topk;

pub use error::{Error, Result};
pub use graph::Graph;
pub use kernels::{Kernels, Logit, KERNEL_NAMES};
pub use plan::Plan;
pub use sample::{RowParams, Sampler, SamplerConfig, Sampling};
pub use streamtopk_kernels::element::DType;
pub use topk::{TopK, TopKConfig};
