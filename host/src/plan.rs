//! Launch planning: how a `[batch, vocab]` top-k splits into chunks and
//! blocks. Pure arithmetic, shared by the launch wrappers and the tests.

use streamtopk_kernels::params::{
    pool_len, stage1_smem_bytes, stage2_smem_bytes, MAX_THREADS, MIN_THREADS,
};

/// Default size of a row's stage-2 candidate pool the chunking aims for
/// (the seed's heuristic: k = 50 gives 10 chunks).
pub const DEFAULT_TARGET_POOL: usize = 500;
/// Environment variable that overrides [`DEFAULT_TARGET_POOL`].
pub const TARGET_POOL_ENV: &str = "STREAMTOPK_TARGET_POOL";
/// Longest chunk (its keys live in shared memory: 64 KiB).
pub const MAX_CHUNK: u32 = 16384;
/// Chunk lengths are multiples of this (64 elements: whole 16-byte vectors
/// for every dtype, whole warps of vectors).
pub const CHUNK_ALIGN: u32 = 64;
/// Largest supported k (its sort buffer lives in shared memory: 128 KiB).
pub const MAX_K: usize = 16384;
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
    pub stage1_smem: u32,
    pub stage2_smem: u32,
}

impl Plan {
    /// Plan for rows of `vocab` elements, `k` of them wanted, aiming at a
    /// stage-2 pool of about `target_pool` candidates. Inputs must already
    /// be validated (`1 <= k <= vocab`, `target_pool >= 1`).
    pub fn new(vocab: u32, k: u32, target_pool: u32) -> Plan {
        let chunks = (target_pool / k).max(1);
        let chunk_len = vocab
            .div_ceil(chunks)
            .next_multiple_of(CHUNK_ALIGN)
            .min(MAX_CHUNK);
        let chunks = vocab.div_ceil(chunk_len);
        let stage1_threads = if chunk_len >= 8192 { 512 } else { MIN_THREADS };
        let stage2_threads = (k.next_power_of_two() / 2).clamp(MIN_THREADS, MAX_THREADS);
        Plan {
            vocab,
            k,
            chunk_len,
            chunks,
            pool: pool_len(vocab, chunk_len, k),
            stage1_threads,
            stage2_threads,
            stage1_smem: stage1_smem_bytes(chunk_len),
            stage2_smem: stage2_smem_bytes(k),
        }
    }
}
