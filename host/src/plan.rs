//! Launch planning: how a `[batch, vocab]` top-k splits into chunks and
//! blocks. Pure arithmetic, shared by the launch wrappers and the tests.

use streamtopk_kernels::params::{Layout, MAX_THREADS, MIN_THREADS};

/// The seed's stage-2 candidate pool (k = 50 gives 10 chunks), kept as a
/// reference point; the default plan is [`auto_target_pool`].
pub const DEFAULT_TARGET_POOL: usize = 500;
/// Shortest chunk of the default plan, from the sweep in BENCHMARKS.md.
pub const AUTO_CHUNK: usize = 12288;
/// Chunk elements per unit of k in the default plan (the rank merge costs
/// grow with the square of the chunk count, so large k wants long chunks).
pub const AUTO_CHUNK_PER_K: usize = 30;
/// Environment variable that overrides the default target pool.
pub const TARGET_POOL_ENV: &str = "STREAMTOPK_TARGET_POOL";
/// Largest chunk the planner prefers, in bytes (its raw elements live in
/// shared memory): 32,768 16-bit or 16,384 f32 elements. Longer chunks only
/// when nothing else fits (f32 with k near 2048 at large vocab).
pub const MAX_CHUNK_BYTES: u32 = 65536;
/// Opt-in shared memory per block of sm_90 (H100), the default limit when no
/// device is at hand.
pub const SM90_SMEM_LIMIT: u32 = 232_448;
/// Chunk lengths are multiples of this (64 elements: whole 16-byte vectors
/// for every dtype, whole warps of vectors).
pub const CHUNK_ALIGN: u32 = 64;
/// Largest supported k.
pub const MAX_K: usize = 4096;
/// Largest supported row length (indices are `u32`).
pub const MAX_VOCAB: usize = i32::MAX as usize;
/// Largest supported batch (rows are the grid's y dimension).
pub const MAX_BATCH: usize = 65_535;

/// The target pool of the default plan: chunks of at least
/// `max(AUTO_CHUNK, AUTO_CHUNK_PER_K * k)` elements (measured best on the
/// H100 for the shapes in BENCHMARKS.md's sweep).
pub fn auto_target_pool(vocab: usize, k: usize) -> usize {
    k * vocab.div_ceil(AUTO_CHUNK.max(AUTO_CHUNK_PER_K * k))
}

/// How one top-k call is cut up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub vocab: u32,
    pub k: u32,
    /// Element size in bytes (2 or 4).
    pub size: u32,
    /// Elements per chunk (the last chunk of a row may be shorter).
    pub chunk_len: u32,
    /// Chunks per row (grid x); with one, a block owns a row and there is no merge.
    pub chunks: u32,
    /// Threads per block.
    pub threads: u32,
}

impl Plan {
    /// Plan for rows of `vocab` elements of `size` bytes, `k` of them wanted, aiming at a
    /// stage-2 pool of about `target_pool` candidates (`chunks * k`), with
    /// at most `smem_limit` bytes of shared memory per block. Inputs must
    /// already be validated (`1 <= k <= vocab`, `target_pool >= 1`); `None`
    /// when no chunking fits the shared memory.
    pub fn new(vocab: u32, k: u32, size: u32, target_pool: u32, smem_limit: u32) -> Option<Plan> {
        // Every chunk but the last holds at least k elements.
        let most = (vocab / k).max(1);
        let fewest = vocab.div_ceil(MAX_CHUNK_BYTES / size).min(most);
        let target = (target_pool / k).clamp(fewest, most);
        let fits = |chunks: &u32| {
            let plan = Plan::with_chunks(vocab, k, size, *chunks);
            plan.smem() <= smem_limit && (plan.chunks == 1 || plan.chunk_len >= k)
        };
        // Fewer chunks shrink the pool, more shorten the chunk: the nearest
        // count below the target that fits, else the nearest above; when no
        // count of chunks of at most MAX_CHUNK_BYTES fits (large k: a pool of
        // many lists outgrows the shared memory), longer chunks.
        let chunks = (fewest..=target)
            .rev()
            .find(fits)
            .or_else(|| (target + 1..=most.min(target + 256)).find(fits))
            .or_else(|| (1..fewest).rev().find(fits))?;
        Some(Plan::with_chunks(vocab, k, size, chunks))
    }

    /// The plan with about `chunks` chunks per row.
    fn with_chunks(vocab: u32, k: u32, size: u32, chunks: u32) -> Plan {
        let chunk_len = vocab
            .div_ceil(chunks)
            .next_multiple_of(CHUNK_ALIGN)
            .min(vocab);
        let chunks = vocab.div_ceil(chunk_len);
        // About four 16-byte vectors per thread.
        let threads = (chunk_len / 32)
            .next_power_of_two()
            .clamp(MIN_THREADS, MAX_THREADS);
        Plan {
            vocab,
            k,
            size,
            chunk_len,
            chunks,
            threads,
        }
    }

    /// Stage-2 candidates per row (`0` with one chunk: no stage 2).
    pub fn pool(&self) -> u32 {
        if self.chunks > 1 {
            self.chunks * self.k
        } else {
            0
        }
    }

    /// Dynamic shared memory of a launch.
    pub fn smem(&self) -> u32 {
        Layout::new(self.chunk_len, self.size, self.k, self.chunks).bytes
    }
}
