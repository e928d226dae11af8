//! Launch planning: how a `[batch, vocab]` top-k splits into chunks and
//! blocks. Pure arithmetic, shared by the launch wrappers and the tests.

use streamtopk_kernels::params::{pool_len, Layout, MAX_THREADS, MIN_THREADS};

/// Default size of a row's stage-2 candidate pool the chunking aims for
/// (the seed's heuristic: k = 50 gives 10 chunks).
pub const DEFAULT_TARGET_POOL: usize = 500;
/// Environment variable that overrides [`DEFAULT_TARGET_POOL`].
pub const TARGET_POOL_ENV: &str = "STREAMTOPK_TARGET_POOL";
/// Longest chunk the planner starts from (its keys live in shared memory:
/// 64 KiB, leaving room for three blocks per multiprocessor); longer only
/// when the stage-2 pool would not fit otherwise.
pub const MAX_CHUNK: u32 = 16384;
/// Opt-in shared memory per block of sm_90 (H100), the default limit when no
/// device is at hand.
pub const SM90_SMEM_LIMIT: u32 = 232_448;
/// Chunk lengths are multiples of this (64 elements: whole 16-byte vectors
/// for every dtype, whole warps of vectors).
pub const CHUNK_ALIGN: u32 = 64;
/// Largest supported k (its sort buffer lives in shared memory: 32 KiB).
pub const MAX_K: usize = 4096;
/// Largest supported row length (indices are `u32`).
pub const MAX_VOCAB: usize = i32::MAX as usize;

/// How one top-k call is cut up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub vocab: u32,
    pub k: u32,
    /// Elements per stage-1 chunk (the last chunk of a row may be shorter).
    pub chunk_len: u32,
    /// Chunks per row (stage-1 grid x).
    pub chunks: u32,
    /// Stage-2 candidates per row.
    pub pool: u32,
    pub stage1_threads: u32,
    pub stage2_threads: u32,
    /// Dynamic shared memory of stage 1 for f32 input (16-bit input needs less).
    pub stage1_smem: u32,
    pub stage2_smem: u32,
}

impl Plan {
    /// Plan for rows of `vocab` elements, `k` of them wanted, aiming at a
    /// stage-2 pool of about `target_pool` candidates, with at most
    /// `smem_limit` bytes of shared memory per block. Inputs must already be
    /// validated (`1 <= k <= vocab`, `target_pool >= 1`); `None` when no
    /// chunking fits the shared memory.
    pub fn new(vocab: u32, k: u32, target_pool: u32, smem_limit: u32) -> Option<Plan> {
        let len_for = |chunks: u32| vocab.div_ceil(chunks).next_multiple_of(CHUNK_ALIGN);
        let mut chunks = (target_pool / k).max(1).max(vocab.div_ceil(MAX_CHUNK));
        // Fewer, longer chunks until the stage-2 pool fits.
        while Layout::stage2(pool_len(vocab, len_for(chunks), k), k).bytes > smem_limit {
            if chunks == 1 {
                return None;
            }
            chunks -= 1;
        }
        let chunk_len = len_for(chunks);
        let stage1_smem = Layout::stage1(chunk_len, 4).bytes;
        if stage1_smem > smem_limit {
            return None;
        }
        let pool = pool_len(vocab, chunk_len, k);
        Some(Plan {
            vocab,
            k,
            chunk_len,
            chunks: vocab.div_ceil(chunk_len),
            pool,
            stage1_threads: if chunk_len >= 8192 { 512 } else { MIN_THREADS },
            stage2_threads: (k.next_power_of_two() / 2).clamp(MIN_THREADS, MAX_THREADS),
            stage1_smem,
            stage2_smem: Layout::stage2(pool, k).bytes,
        })
    }
}
