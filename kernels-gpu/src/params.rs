//! Launch parameters and shared-memory layouts: the host/device ABI.
//!
//! Each kernel takes one `#[repr(C)]` struct by value. Pointers travel as
//! `u64` device addresses so the struct is identical on host and device.

/// Radix digit width of the block select.
pub const RADIX_BITS: u32 = 8;
/// Histogram bins per radix pass.
pub const RADIX_BINS: u32 = 1 << RADIX_BITS;
/// Most threads a block of any kernel here may have (32 warps).
pub const MAX_THREADS: u32 = 1024;
/// Fewest threads a block may have (one histogram bin per thread).
pub const MIN_THREADS: u32 = RADIX_BINS;
/// Warps in the largest block.
pub const MAX_WARPS: u32 = MAX_THREADS / 32;

/// Word offsets (u32) of the block-select scratch at the start of the dynamic
/// shared memory of both stages.
pub mod smem {
    use super::{MAX_WARPS, RADIX_BINS};
    /// `RADIX_BINS` histogram counters.
    pub const HIST: u32 = 0;
    /// Per-warp totals of the histogram scan.
    pub const SCAN: u32 = HIST + RADIX_BINS;
    /// Per-warp counts of the ordered compaction (two per warp).
    pub const COMPACT: u32 = SCAN + MAX_WARPS;
    /// Broadcast words: chosen digit, remaining rank, done flag.
    pub const CONTROL: u32 = COMPACT + 2 * MAX_WARPS;
    /// Words in the header; rounded so what follows is 16-byte aligned.
    pub const HEADER_WORDS: u32 = (CONTROL + 4 + 3) & !3;
    /// Header size in bytes.
    pub const HEADER_BYTES: u32 = HEADER_WORDS * 4;
}

/// Parameters of stage 1 (`topk_stage1_<dtype>`).
///
/// Grid `(chunks, batch)`; block `threads` (multiple of 32, `MIN_THREADS..=MAX_THREADS`);
/// dynamic shared memory `Layout::stage1(chunk_len, dtype size).bytes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stage1Params {
    /// Logits `[batch, vocab]`, row-major, elements of the kernel's dtype.
    pub input: u64,
    /// Candidate keys, `[batch, pool]` u32.
    pub cand_keys: u64,
    /// Candidate indices, `[batch, pool]` u32.
    pub cand_idx: u64,
    /// Row length.
    pub vocab: u32,
    /// Elements per chunk (the last chunk of a row may be shorter).
    pub chunk_len: u32,
    /// Requested k.
    pub k: u32,
    /// Candidate slots per row (see [`pool_len`]).
    pub pool: u32,
}

/// Parameters of stage 2 (`topk_stage2_<dtype>`).
///
/// Grid `(batch)`; block `threads` (as stage 1); dynamic shared memory
/// `Layout::stage2(pool, k).bytes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stage2Params {
    /// Candidate keys written by stage 1, `[batch, pool]`.
    pub cand_keys: u64,
    /// Candidate indices written by stage 1, `[batch, pool]`.
    pub cand_idx: u64,
    /// Output values `[batch, k]` f32.
    pub values: u64,
    /// Output indices `[batch, k]` u32.
    pub indices: u64,
    /// Candidates per row.
    pub pool: u32,
    /// Requested k (`<= pool`).
    pub k: u32,
}

/// Candidates a chunk of `len` elements hands to stage 2.
pub const fn chunk_candidates(len: u32, k: u32) -> u32 {
    if len < k {
        len
    } else {
        k
    }
}

/// Candidate slots per row: chunk `c` writes at `c * chunk_candidates(chunk_len, k)`.
pub const fn pool_len(vocab: u32, chunk_len: u32, k: u32) -> u32 {
    let chunks = vocab.div_ceil(chunk_len);
    let last = vocab - (chunks - 1) * chunk_len;
    (chunks - 1) * chunk_candidates(chunk_len, k) + chunk_candidates(last, k)
}

/// Most groups `load::load_keys` makes of `n` elements of `size` bytes:
/// one per 16-byte vector, one per element before the first and after the last.
pub const fn max_groups(n: u32, size: u32) -> u32 {
    let per_vec = 16 / size;
    n / per_vec + 2 * per_vec
}

/// Byte offsets in the dynamic shared memory of one block top-k over `n`
/// keys loaded from elements of `size` bytes: the keys, their group
/// maxima, the `u64` sort buffer of `sort` words (stage 2; 0 in stage 1),
/// and the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub keys: u32,
    pub maxima: u32,
    pub sort: u32,
    pub bytes: u32,
}

impl Layout {
    pub const fn new(n: u32, size: u32, sort: u32) -> Layout {
        let keys = smem::HEADER_BYTES;
        let maxima = keys + 4 * n;
        let sort_at = (maxima + 4 * max_groups(n, size)).next_multiple_of(16);
        Layout { keys, maxima, sort: sort_at, bytes: sort_at + 8 * sort }
    }

    /// Stage 1 over chunks of `chunk_len` elements of `size` bytes.
    pub const fn stage1(chunk_len: u32, size: u32) -> Layout {
        Layout::new(chunk_len, size, 0)
    }

    /// Stage 2 over `pool` candidate keys, keeping `k`.
    pub const fn stage2(pool: u32, k: u32) -> Layout {
        Layout::new(pool, 4, sort_width(k))
    }
}

/// Sort width of stage 2: `k` rounded up to a power of two.
pub const fn sort_width(k: u32) -> u32 {
    k.next_power_of_two()
}
