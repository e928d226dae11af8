//! Command-line pieces shared by the binaries.

use crate::plan::MAX_K;
use crate::{DType, Error, Result, SamplerConfig, Sampling};

/// The sampler's flags (the per-row top-k is each binary's `--top-k`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct SamplingArgs {
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Nucleus (top-p) threshold (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Min-p threshold (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// Seed of the sampler's random numbers.
    #[arg(long, default_value_t = 0)]
    pub sample_seed: u64,
}

impl SamplingArgs {
    /// The sampler for `batch` rows of `vocab` logits of `dtype` with per-row
    /// `top_k` (0: off), and the rows' parameters, validated without a GPU.
    pub fn sampler(
        &self,
        batch: usize,
        vocab: usize,
        top_k: usize,
        dtype: DType,
    ) -> Result<(SamplerConfig, Sampling)> {
        let row = Sampling::new(self.temperature, top_k)
            .with_top_p(self.top_p)
            .with_min_p(self.min_p);
        if row.max_k(vocab) > MAX_K {
            return Err(Error::Sampling {
                row: 0,
                reason: format!(
                    "top-p / min-p with top-k off need a list of the whole vocabulary ({vocab}), above the largest supported k ({MAX_K}); set --top-k"
                ),
            });
        }
        let config = SamplerConfig::new(batch, vocab, row.max_k(vocab))
            .with_dtype(dtype)
            .with_seed(self.sample_seed);
        config.plan()?;
        Ok((config, row))
    }
}
