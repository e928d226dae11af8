//! The top-k operator: a planned, preallocated two-stage launch.

use std::sync::Arc;

use cust::event::Event;
use cust::memory::{CopyDestination, DeviceBuffer, DeviceSlice};
use cust::stream::Stream;
use streamtopk_kernels::element::{DType, Element};
use streamtopk_kernels::params::{filter_words, mode, TopKParams};

use crate::error::{Error, Result};
use crate::kernels::{Kernels, Logit};
use crate::plan::{
    auto_target_pool, Limits, Plan, CLUSTER_ENV, FILTER_ENV, FILTER_MIN_VOCAB, FILTER_THREADS,
    MAX_BATCH, MAX_K, MAX_VOCAB, TARGET_POOL_ENV,
};

/// Shape of the work a [`TopK`] is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopKConfig {
    /// Largest batch a call may pass (sizes the workspace).
    pub max_batch: usize,
    /// Row length.
    pub vocab: usize,
    /// Values kept per row.
    pub k: usize,
    /// Element type of the logits the calls pass.
    pub dtype: DType,
    /// Stage-2 pool the chunking aims for; `None`: `$STREAMTOPK_TARGET_POOL`, else [`crate::plan::auto_target_pool`].
    pub target_pool: Option<usize>,
}

impl TopKConfig {
    /// Config for bf16 logits with the default target pool.
    pub fn new(max_batch: usize, vocab: usize, k: usize) -> Self {
        Self {
            max_batch,
            vocab,
            k,
            dtype: DType::BF16,
            target_pool: None,
        }
    }

    /// The same config for logits of `dtype`.
    pub fn with_dtype(self, dtype: DType) -> Self {
        Self { dtype, ..self }
    }

    /// Validate the config and plan its launches for an sm_90 device (no GPU needed).
    pub fn plan(&self) -> Result<Plan> {
        self.best_plan(&Limits::SM90)
    }

    /// The top-k plan for a device with `limits`: a cluster per row, else
    /// the filter body, else the chunked one.
    fn best_plan(&self, limits: &Limits) -> Result<Plan> {
        let chunked = self.plan_for(limits.smem)?;
        Ok(self
            .cluster_plan(limits, 0)
            .or_else(|| self.filter_plan(limits))
            .unwrap_or(chunked))
    }

    /// The filter plan ([`Plan::filter`], [`FILTER_THREADS`] threads) for
    /// rows of at least [`FILTER_MIN_VOCAB`], unless a `target_pool` (a
    /// chunking) is set; `$STREAMTOPK_FILTER` may turn it `off` or set the
    /// threads. The config must be valid.
    fn filter_plan(&self, limits: &Limits) -> Option<Plan> {
        if self.vocab < FILTER_MIN_VOCAB || self.target_pool.is_some() {
            return None;
        }
        let threads = match std::env::var(FILTER_ENV).ok().filter(|v| !v.is_empty()) {
            Some(v) => v.trim().parse().ok()?,
            None => FILTER_THREADS,
        };
        let (vocab, k, size) = (self.vocab as u32, self.k as u32, self.dtype.size() as u32);
        Plan::filter(vocab, k, size, threads, self.max_batch, limits)
    }

    /// The cluster-per-row plan for a device with `limits`, leaving `extra`
    /// bytes of shared memory to the caller, if `$STREAMTOPK_CLUSTER` (or,
    /// unset, the shape: [`Plan::auto_cluster`]) asks for one and it fits. A config with a `target_pool` (a
    /// chunking) gets none. The config must be valid.
    pub(crate) fn cluster_plan(&self, limits: &Limits, extra: u32) -> Option<Plan> {
        if self.target_pool.is_some() {
            return None;
        }
        let (vocab, k, size) = (self.vocab as u32, self.k as u32, self.dtype.size() as u32);
        let smem = limits.smem.saturating_sub(extra);
        match std::env::var(CLUSTER_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .as_deref()
        {
            Some("off") => None,
            Some(v) => {
                let (blocks, threads) = v.split_once(',')?;
                let blocks: u32 = blocks.trim().parse().ok()?;
                let threads: u32 = threads.trim().parse().ok()?;
                (threads <= limits.cluster_threads).then_some(())?;
                Plan::cluster(vocab, k, size, blocks, threads, smem)
            }
            None => Plan::auto_cluster(vocab, k, size, self.max_batch, &Limits { smem, ..*limits }),
        }
    }

    /// Validate the config and plan its chunked (two-stage) launch for
    /// blocks of at most `smem_limit` bytes of shared memory.
    pub(crate) fn plan_for(&self, smem_limit: u32) -> Result<Plan> {
        let TopKConfig {
            max_batch,
            vocab,
            k,
            ..
        } = *self;
        if max_batch == 0 {
            return Err(Error::BatchZero);
        }
        if max_batch > MAX_BATCH {
            return Err(Error::BatchAboveLimit {
                batch: max_batch,
                max: MAX_BATCH,
            });
        }
        if vocab == 0 {
            return Err(Error::VocabZero);
        }
        if vocab > MAX_VOCAB {
            return Err(Error::VocabAboveLimit {
                vocab,
                max: MAX_VOCAB,
            });
        }
        if k == 0 {
            return Err(Error::KZero);
        }
        if k > vocab {
            return Err(Error::KAboveVocab { k, vocab });
        }
        if k > MAX_K {
            return Err(Error::KAboveLimit { k, max: MAX_K });
        }
        let target_pool = match self.target_pool {
            Some(t) => t,
            None => std::env::var(TARGET_POOL_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| auto_target_pool(vocab, k)),
        };
        if target_pool == 0 {
            return Err(Error::TargetPoolZero);
        }
        let target_pool = target_pool.min(u32::MAX as usize) as u32;
        Plan::new(
            vocab as u32,
            k as u32,
            self.dtype.size() as u32,
            target_pool,
            smem_limit,
        )
        .ok_or(Error::ShapeTooLarge { vocab, k })
    }
}

/// Exact top-k of `[batch, vocab]` logits, identical to `torch.topk`
/// (values descending, ties by lower index, NaN largest).
///
/// Create once; each call then launches one to three kernels (by the
/// plan) on the given stream with
/// no allocation and no host synchronisation (so it can be captured in a
/// CUDA graph). The workspace is reused by
/// every call: calls on different streams must be ordered by the caller (or
/// use one `TopK` per stream).
pub struct TopK {
    kernels: Arc<Kernels>,
    config: TopKConfig,
    plan: Plan,
    workspace: Workspace,
}

/// The two-stage launch's per-row workspace (of [`TopK`] and the sampler).
pub(crate) struct Workspace {
    /// Stage-1 lists, `[max_batch, chunks * k]` sort words (the filter
    /// body's candidates, `[max_batch, plan.pool()]`).
    pool: DeviceBuffer<u64>,
    /// Per-row arrival counters (the filter body's words,
    /// `filter_words::WORDS` a row), zero between calls.
    arrivals: DeviceBuffer<u32>,
}

impl Workspace {
    /// The workspace of `max_batch` rows of `plan` (the context must be current).
    pub(crate) fn new(plan: &Plan, max_batch: usize) -> Result<Workspace> {
        let slots = (max_batch * plan.pool() as usize).max(1);
        // Zeroed once: the merge kernels copy a row's first words before
        // they know how many the filter wrote (and use only those).
        let pool = alloc("the stage-2 pool", slots, DeviceBuffer::zeroed)?;
        let words = max_batch * filter_words::WORDS as usize;
        let arrivals = alloc("the arrival counters", words, DeviceBuffer::zeroed)?;
        Ok(Workspace { pool, arrivals })
    }

    /// A fused launch's parameters over `input` (no top-k outputs set).
    pub(crate) fn params(&self, plan: &Plan, input: u64) -> TopKParams {
        TopKParams {
            input,
            pool: self.pool.as_device_ptr().as_raw(),
            arrivals: self.arrivals.as_device_ptr().as_raw(),
            values: 0,
            indices: 0,
            vocab: plan.vocab,
            chunk_len: plan.chunk_len,
            chunks: plan.chunks,
            k: plan.k,
            mode: mode::FUSED,
            sample_rank: plan.sample_rank,
            rounds: plan.filter_rounds,
        }
    }
}

/// Check a call's logits (`dtype`, `batch` rows, `len` elements) against an
/// operator built for `expected` logits of `vocab` columns and `max_batch` rows.
pub(crate) fn check_logits(
    expected: DType,
    max_batch: usize,
    vocab: usize,
    (dtype, batch, len): (DType, usize, usize),
) -> Result<()> {
    if dtype != expected {
        return Err(Error::DTypeMismatch {
            expected,
            got: dtype,
        });
    }
    if batch == 0 {
        return Err(Error::BatchZero);
    }
    if batch > max_batch {
        return Err(Error::BatchAboveMax {
            batch,
            max: max_batch,
        });
    }
    if len != batch * vocab {
        return Err(Error::LengthMismatch {
            what: "logits",
            expected: batch * vocab,
            got: len,
        });
    }
    Ok(())
}

impl TopK {
    /// Validate `config`, plan the launches and allocate the workspace.
    pub fn new(kernels: &Arc<Kernels>, config: TopKConfig) -> Result<TopK> {
        let plan = config.best_plan(&kernels.limits(config.dtype, false))?;
        kernels.make_current()?;
        let workspace = Workspace::new(&plan, config.max_batch)?;
        Ok(TopK {
            kernels: kernels.clone(),
            config,
            plan,
            workspace,
        })
    }

    /// The launch plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The configuration this was built with.
    pub fn config(&self) -> &TopKConfig {
        &self.config
    }

    /// Check a call's shapes against the config.
    fn check(
        &self,
        dtype: DType,
        batch: usize,
        logits: usize,
        values: usize,
        indices: usize,
    ) -> Result<()> {
        let c = &self.config;
        check_logits(c.dtype, c.max_batch, c.vocab, (dtype, batch, logits))?;
        let k = self.config.k;
        for (what, expected, got) in [
            ("values", batch * k, values),
            ("indices", batch * k, indices),
        ] {
            if expected != got {
                return Err(Error::LengthMismatch {
                    what,
                    expected,
                    got,
                });
            }
        }
        Ok(())
    }

    /// Top-k of `logits` (`[batch, vocab]`, row-major) into `values` and
    /// `indices` (`[batch, k]`), enqueued on `stream`.
    pub fn run<T: Logit>(
        &mut self,
        stream: &Stream,
        logits: &DeviceSlice<T>,
        batch: usize,
        values: &mut DeviceSlice<f32>,
        indices: &mut DeviceSlice<u32>,
    ) -> Result<()> {
        self.enqueue(stream, logits, batch, values, indices, None)
    }

    /// As [`TopK::run`] but with the stages in two launches, recording
    /// `marks[0]` before stage 1, `marks[1]` between the stages and `marks[2]`
    /// after stage 2 (per-stage timing). With one chunk per row, or a
    /// cluster per row, there is no stage 2 and `marks[1]`, `marks[2]` are
    /// recorded together. With the filter body `marks[1]` falls between
    /// its appending launches (`BOUND` or `SAMPLE` and `FILTER`, or `LOCAL`) and its
    /// merge launch (together when the `FILTER` launch merges).
    pub fn run_marked<T: Logit>(
        &mut self,
        stream: &Stream,
        logits: &DeviceSlice<T>,
        batch: usize,
        values: &mut DeviceSlice<f32>,
        indices: &mut DeviceSlice<u32>,
        marks: [&Event; 3],
    ) -> Result<()> {
        self.enqueue(stream, logits, batch, values, indices, Some(marks))
    }

    fn enqueue<T: Logit>(
        &mut self,
        stream: &Stream,
        logits: &DeviceSlice<T>,
        batch: usize,
        values: &mut DeviceSlice<f32>,
        indices: &mut DeviceSlice<u32>,
        marks: Option<[&Event; 3]>,
    ) -> Result<()> {
        let dtype: DType = T::Kernel::DTYPE;
        self.check(dtype, batch, logits.len(), values.len(), indices.len())?;
        self.kernels.make_current()?;
        let plan = self.plan;
        let mut p = TopKParams {
            values: values.as_device_ptr().as_raw(),
            indices: indices.as_device_ptr().as_raw(),
            ..self
                .workspace
                .params(&plan, logits.as_device_ptr().as_raw())
        };
        let batch = batch as u32;
        let smem = plan.smem();
        let grid = (plan.chunks, batch);
        if plan.cluster {
            if let Some(marks) = marks {
                marks[0].record(stream)?;
            }
            // SAFETY: `check` matched every length to the plan, which fits
            // the rows in the cluster's registers (`Plan::cluster`); the
            // cluster kernel touches no workspace.
            unsafe { self.kernels.topk_planned(dtype, &plan, batch, stream, &p)? };
            if let Some(marks) = marks {
                marks[1].record(stream)?;
                marks[2].record(stream)?;
            }
            return Ok(());
        }
        if plan.filter {
            if let Some(marks) = marks {
                marks[0].record(stream)?;
            }
            // Each launch: `check` matched every length to the
            // plan, which fits the blocks' shares in registers
            // (`Plan::filter`); the workspace holds max_batch >= batch rows
            // of the filter's pool and words, the words zero between calls
            // (each row's merge block resets its own); `&mut self` and
            // stream order keep other calls out and order the launches: the
            // BOUND (or SAMPLE) launch sets each row's bound before the
            // FILTER launch reads it, FILTER or LOCAL fills the pools before a
            // MERGE launch reads them (FILTER_MERGE: its rows' last blocks).
            let (append, merge) = if plan.single_pass {
                (mode::LOCAL, Some(mode::MERGE_LOCAL))
            } else {
                p.mode = if plan.sample_rank > 0 {
                    mode::SAMPLE
                } else {
                    mode::BOUND
                };
                // SAFETY: as said above.
                unsafe { self.kernels.topk_planned(dtype, &plan, batch, stream, &p)? };
                if plan.merge_launch {
                    (mode::FILTER, Some(mode::MERGE))
                } else {
                    (mode::FILTER_MERGE, None)
                }
            };
            p.mode = append;
            // SAFETY: as said above.
            unsafe { self.kernels.topk_planned(dtype, &plan, batch, stream, &p)? };
            if let Some(marks) = marks {
                marks[1].record(stream)?;
            }
            if let Some(merge) = merge {
                p.mode = merge;
                // SAFETY: as said above.
                unsafe { self.kernels.topk_planned(dtype, &plan, batch, stream, &p)? };
            }
            if let Some(marks) = marks {
                marks[2].record(stream)?;
            }
            return Ok(());
        }
        let Some(marks) = marks else {
            // SAFETY: `check` matched every length to the plan; the workspace
            // holds max_batch >= batch rows of pool and counters, the counters
            // are zero between launches (each row's last block resets its
            // own); `&mut self` keeps other calls on this workspace out until
            // this one is enqueued, and stream order keeps launches apart.
            return unsafe {
                self.kernels
                    .topk(dtype, grid, plan.threads, smem, stream, &p)
            };
        };
        marks[0].record(stream)?;
        if plan.chunks > 1 {
            p.mode = mode::STAGE1;
        }
        // SAFETY: as above; a STAGE1 launch leaves the counters alone.
        unsafe {
            self.kernels
                .topk(dtype, grid, plan.threads, smem, stream, &p)?
        };
        marks[1].record(stream)?;
        if plan.chunks > 1 {
            p.mode = mode::STAGE2;
            // SAFETY: as above; the pool was written by the STAGE1 launch
            // before it in stream order.
            unsafe {
                self.kernels
                    .topk(dtype, (1, batch), plan.threads, smem, stream, &p)?
            };
        }
        marks[2].record(stream)?;
        Ok(())
    }

    /// Convenience: copy `logits` from the host, run, and copy the results
    /// back (allocates; synchronises `stream`).
    pub fn run_host<T: Logit>(
        &mut self,
        stream: &Stream,
        logits: &[T],
        batch: usize,
    ) -> Result<(Vec<f32>, Vec<u32>)> {
        let k = self.config.k;
        self.check(T::Kernel::DTYPE, batch, logits.len(), batch * k, batch * k)?;
        self.kernels.make_current()?;
        let input = alloc("the logits", logits.len(), |_| {
            DeviceBuffer::from_slice(logits)
        })?;
        let mut values = alloc("the values", batch * k, DeviceBuffer::<f32>::zeroed)?;
        let mut indices = alloc("the indices", batch * k, DeviceBuffer::<u32>::zeroed)?;
        self.run(stream, &input, batch, &mut values, &mut indices)?;
        stream.synchronize()?;
        let mut v = vec![0f32; batch * k];
        let mut i = vec![0u32; batch * k];
        values.copy_to(&mut v[..])?;
        indices.copy_to(&mut i[..])?;
        Ok((v, i))
    }
}

/// Allocate `n` elements with `make`, naming the buffer in an out-of-memory error.
pub(crate) fn alloc<T>(
    what: &'static str,
    n: usize,
    make: impl FnOnce(usize) -> cust::error::CudaResult<DeviceBuffer<T>>,
) -> Result<DeviceBuffer<T>>
where
    T: cust::memory::DeviceCopy,
{
    make(n).map_err(|e| match e {
        cust::error::CudaError::OutOfMemory => Error::OutOfMemory {
            what,
            bytes: n as u128 * std::mem::size_of::<T>() as u128,
        },
        e => Error::Cuda(e),
    })
}
