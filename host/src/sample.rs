//! The sampler: nanochat's `sample_next_token` (temperature, top-k,
//! softmax, multinomial) plus top-p and min-p, in one launch per call.

use std::sync::Arc;

use cust::memory::{CopyDestination, DeviceBuffer, DeviceSlice};
use cust::stream::Stream;
use streamtopk_kernels::element::{DType, Element};
use streamtopk_kernels::params::{SampleLayout, SampleParams, TOP_K_OFF};

use crate::error::{Error, Result};
use crate::kernels::{Kernels, Logit};
use crate::plan::{Limits, Plan};
use crate::topk::{alloc, check_logits, TopKConfig, Workspace};

/// Shape of the work a [`Sampler`] is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerConfig {
    /// Largest batch a call may pass.
    pub max_batch: usize,
    /// Row length.
    pub vocab: usize,
    /// Largest per-row top-k other than "off" (sizes the candidate lists).
    pub max_k: usize,
    /// Element type of the logits.
    pub dtype: DType,
    /// Key of the random numbers: the same seed and offset give the same tokens.
    pub seed: u64,
}

impl SamplerConfig {
    /// Config for bf16 logits, seed 0.
    pub fn new(max_batch: usize, vocab: usize, max_k: usize) -> Self {
        Self {
            max_batch,
            vocab,
            max_k,
            dtype: DType::BF16,
            seed: 0,
        }
    }

    /// The same config for logits of `dtype`.
    pub fn with_dtype(self, dtype: DType) -> Self {
        Self { dtype, ..self }
    }

    /// The same config with another seed.
    pub fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }

    /// Validate and plan for an sm_90 device (no GPU needed).
    pub fn plan(&self) -> Result<Plan> {
        let (chunked, cluster) = self.plans(&Limits::SM90)?;
        Ok(cluster.unwrap_or(chunked))
    }

    /// The chunked plan (any rows) and the cluster plan (rows with top-k on),
    /// if the shape and batch call for one.
    fn plans(&self, limits: &Limits) -> Result<(Plan, Option<Plan>)> {
        if self.max_k == 0 || self.max_k > self.vocab {
            if self.vocab == 0 {
                return Err(Error::VocabZero);
            }
            return Err(Error::MaxK {
                max_k: self.max_k,
                vocab: self.vocab,
            });
        }
        let topk = TopKConfig {
            max_batch: self.max_batch,
            vocab: self.vocab,
            k: self.max_k,
            dtype: self.dtype,
            target_pool: None,
        };
        let extra = SampleLayout::extra(self.max_k.min(u32::MAX as usize) as u32);
        let chunked = topk.plan_for(limits.smem.saturating_sub(extra))?;
        Ok((chunked, topk.cluster_plan(limits, extra)))
    }
}

/// How one row is sampled. `temperature == 0` is greedy (argmax); top-k
/// `0` (or `>= vocab`), top-p `1` and min-p `0` are off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
}

impl Sampling {
    /// nanochat's `sample_next_token(logits, rng, temperature, top_k)`
    /// (`top_k = 0` for None).
    pub fn new(temperature: f32, top_k: usize) -> Self {
        Self {
            temperature,
            top_k,
            top_p: 1.0,
            min_p: 0.0,
        }
    }

    /// Argmax (lowest index on ties, NaN first).
    pub fn greedy() -> Self {
        Self::new(0.0, 0)
    }

    /// The same with nucleus sampling at `top_p`.
    pub fn with_top_p(self, top_p: f32) -> Self {
        Self { top_p, ..self }
    }

    /// The same with min-p filtering at `min_p`.
    pub fn with_min_p(self, min_p: f32) -> Self {
        Self { min_p, ..self }
    }

    /// Whether top-k is off for rows of `vocab`.
    fn top_k_off(&self, vocab: usize) -> bool {
        self.top_k == 0 || self.top_k >= vocab
    }

    /// Whether top-p or min-p filters.
    fn filters(&self) -> bool {
        self.top_p < 1.0 || self.min_p > 0.0
    }

    /// The smallest `max_k` a sampler over rows of `vocab` needs for this
    /// row: its top-k; with top-k off, 1 (whole-row softmax) or, with top-p
    /// or min-p, the whole vocabulary.
    pub fn max_k(&self, vocab: usize) -> usize {
        match (self.top_k_off(vocab), self.filters()) {
            (false, _) => self.top_k,
            (true, true) => vocab,
            (true, false) => 1,
        }
    }
}

/// Per-row sampling parameters on the device, validated by
/// [`Sampler::params`]. Calls read them when they run, so one set serves
/// every call (and CUDA-graph replay) until it is dropped.
pub struct RowParams {
    /// Whether some row draws from its whole softmax (top-k off,
    /// temperature > 0): those calls take the chunked launch.
    whole_row: bool,
    temperature: DeviceBuffer<f32>,
    top_k: DeviceBuffer<u32>,
    top_p: DeviceBuffer<f32>,
    min_p: DeviceBuffer<f32>,
}

impl RowParams {
    /// Rows described.
    pub fn len(&self) -> usize {
        self.temperature.len()
    }

    /// Whether there are no rows (never: [`Sampler::params`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fused sampling of `[batch, vocab]` logits into `[batch]` token ids.
///
/// Each call is one kernel launch with no allocation and no host
/// synchronisation (capturable in a CUDA graph). Random numbers are
/// Philox-4x32-10 keyed by the config's seed, with counter (position, row,
/// offset); the offset lives on the device and every call advances it by
/// one, so a decode loop (or a graph replayed in one) never reuses numbers
/// and a rerun from the same seed and offset gives the same tokens, for
/// every batch size. Calls on one `Sampler` must be ordered (one stream).
pub struct Sampler {
    kernels: Arc<Kernels>,
    config: SamplerConfig,
    /// The launch of rows with top-k on: a cluster per row when it fits.
    plan: Plan,
    /// The launch of calls with a row that has top-k off.
    chunked: Plan,
    workspace: Workspace,
    best: DeviceBuffer<u64>,
    offset: DeviceBuffer<u64>,
    rows_done: DeviceBuffer<u32>,
}

impl Sampler {
    /// Validate `config`, plan and allocate the workspace (offset 0).
    pub fn new(kernels: &Arc<Kernels>, config: SamplerConfig) -> Result<Sampler> {
        let (chunked, cluster) = config.plans(&kernels.limits(config.dtype, true))?;
        kernels.make_current()?;
        let rows = config.max_batch;
        let workspace = Workspace::new(&chunked, rows)?;
        let best = alloc(
            "the Gumbel winners",
            rows * chunked.chunks as usize,
            DeviceBuffer::zeroed,
        )?;
        Ok(Sampler {
            kernels: kernels.clone(),
            config,
            plan: cluster.unwrap_or(chunked),
            chunked,
            workspace,
            best,
            offset: alloc("the offset", 1, DeviceBuffer::zeroed)?,
            rows_done: alloc("the row counter", 1, DeviceBuffer::zeroed)?,
        })
    }

    /// The launch plan of calls whose rows all have top-k on (its `k` is `max_k`).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The configuration this was built with.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Validate one row's parameters; `Err` names what is wrong.
    fn check_row(&self, s: &Sampling) -> std::result::Result<(), String> {
        let (vocab, max_k) = (self.config.vocab, self.config.max_k);
        if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
            return Err(format!(
                "temperature = {} must be finite and >= 0",
                s.temperature
            ));
        }
        if !(s.top_p > 0.0 && s.top_p <= 1.0) {
            return Err(format!("top_p = {} must be in (0, 1]", s.top_p));
        }
        if !(0.0..=1.0).contains(&s.min_p) {
            return Err(format!("min_p = {} must be in [0, 1]", s.min_p));
        }
        let off = s.top_k_off(vocab);
        if !off && s.top_k > max_k {
            return Err(format!(
                "top_k = {} is above the sampler's max_k ({max_k}); use 1..={max_k}, or 0 / {vocab} for off",
                s.top_k
            ));
        }
        if off && s.temperature > 0.0 && max_k < vocab && s.filters() {
            return Err(format!(
                "top_p / min_p act on the top-k list: set top_k in 1..={max_k} (the whole-vocabulary nucleus is not supported)"
            ));
        }
        Ok(())
    }

    /// Validate per-row parameters and upload them (allocates; synchronous).
    pub fn params(&self, rows: &[Sampling]) -> Result<RowParams> {
        if rows.is_empty() {
            return Err(Error::BatchZero);
        }
        if rows.len() > self.config.max_batch {
            return Err(Error::BatchAboveMax {
                batch: rows.len(),
                max: self.config.max_batch,
            });
        }
        for (row, s) in rows.iter().enumerate() {
            self.check_row(s)
                .map_err(|reason| Error::Sampling { row, reason })?;
        }
        let vocab = self.config.vocab;
        let top_k: Vec<u32> = rows
            .iter()
            .map(|s| {
                if s.top_k_off(vocab) {
                    if self.config.max_k == vocab {
                        vocab as u32
                    } else {
                        TOP_K_OFF
                    }
                } else {
                    s.top_k as u32
                }
            })
            .collect();
        self.kernels.make_current()?;
        let upload = |what, v: Vec<f32>| alloc(what, v.len(), |_| DeviceBuffer::from_slice(&v));
        Ok(RowParams {
            whole_row: rows
                .iter()
                .zip(&top_k)
                .any(|(s, &k)| k == TOP_K_OFF && s.temperature > 0.0),
            temperature: upload(
                "the temperatures",
                rows.iter().map(|s| s.temperature).collect(),
            )?,
            top_k: alloc("the top-k values", top_k.len(), |_| {
                DeviceBuffer::from_slice(&top_k)
            })?,
            top_p: upload("the top-p values", rows.iter().map(|s| s.top_p).collect())?,
            min_p: upload("the min-p values", rows.iter().map(|s| s.min_p).collect())?,
        })
    }

    /// The offset the next call uses (synchronous read).
    pub fn offset(&self) -> Result<u64> {
        self.kernels.make_current()?;
        let mut o = [0u64];
        self.offset.copy_to(&mut o[..])?;
        Ok(o[0])
    }

    /// Set the offset of the next call (synchronous; no call may be in flight).
    pub fn set_offset(&mut self, offset: u64) -> Result<()> {
        self.kernels.make_current()?;
        self.offset.copy_from(&[offset][..])?;
        Ok(())
    }

    /// Sample one token per row of `logits` (`[params.len(), vocab]`) into
    /// `tokens` (`[params.len()]`), enqueued on `stream`.
    pub fn sample<T: Logit>(
        &mut self,
        stream: &Stream,
        logits: &DeviceSlice<T>,
        params: &RowParams,
        tokens: &mut DeviceSlice<u32>,
    ) -> Result<()> {
        let dtype: DType = T::Kernel::DTYPE;
        let batch = params.len();
        self.check_logits((dtype, batch, logits.len()))?;
        if tokens.len() != batch {
            return Err(Error::LengthMismatch {
                what: "tokens",
                expected: batch,
                got: tokens.len(),
            });
        }
        self.kernels.make_current()?;
        let plan = if params.whole_row {
            self.chunked
        } else {
            self.plan
        };
        let p = SampleParams {
            topk: self
                .workspace
                .params(&plan, logits.as_device_ptr().as_raw()),
            tokens: tokens.as_device_ptr().as_raw(),
            temperature: params.temperature.as_device_ptr().as_raw(),
            top_k: params.top_k.as_device_ptr().as_raw(),
            top_p: params.top_p.as_device_ptr().as_raw(),
            min_p: params.min_p.as_device_ptr().as_raw(),
            best: self.best.as_device_ptr().as_raw(),
            offset: self.offset.as_device_ptr().as_raw(),
            rows_done: self.rows_done.as_device_ptr().as_raw(),
            seed: self.config.seed,
        };
        let smem = SampleLayout::after(plan.smem(), plan.k).bytes;
        // SAFETY: `check` matched the logits to the plan and `params` /
        // `tokens` hold `batch` rows; the workspace holds max_batch >= batch
        // rows of pool, counters and winners; counters are zero between
        // launches (the kernel resets them); `&mut self` and stream order
        // keep launches on this workspace apart.
        unsafe {
            self.kernels
                .sample(dtype, &plan, batch as u32, smem, stream, &p)
        }
    }

    fn check_logits(&self, call: (DType, usize, usize)) -> Result<()> {
        let c = &self.config;
        check_logits(c.dtype, c.max_batch, c.vocab, call)
    }

    /// Convenience: upload `logits` and `rows`, sample, and return the
    /// tokens (allocates; synchronises `stream`).
    pub fn sample_host<T: Logit>(
        &mut self,
        stream: &Stream,
        logits: &[T],
        rows: &[Sampling],
    ) -> Result<Vec<u32>> {
        let params = self.params(rows)?;
        self.check_logits((T::Kernel::DTYPE, rows.len(), logits.len()))?;
        let input = alloc("the logits", logits.len(), |_| {
            DeviceBuffer::from_slice(logits)
        })?;
        let mut tokens = alloc("the tokens", rows.len(), DeviceBuffer::<u32>::zeroed)?;
        self.sample(stream, &input, &params, &mut tokens)?;
        stream.synchronize()?;
        let mut out = vec![0u32; rows.len()];
        tokens.copy_to(&mut out[..])?;
        Ok(out)
    }
}
