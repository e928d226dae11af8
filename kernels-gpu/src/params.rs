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

/// Parameters of the top-k kernel (`topk_<dtype>`).
///
/// Grid `(chunks, batch)`; block `threads` (multiple of 32,
/// `MIN_THREADS..=MAX_THREADS`); dynamic shared memory
/// `Layout::new(chunk_len, dtype size, k, chunks).bytes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopKParams {
    /// Logits `[batch, vocab]`, row-major, elements of the kernel's dtype.
    pub input: u64,
    /// Stage-1 candidates, `[batch, chunks * k]` sort words (unused when
    /// `chunks == 1`).
    pub pool: u64,
    /// Per-row arrival counters, `[batch]` u32: zero before and after every
    /// launch (the row's last block resets its counter).
    pub arrivals: u64,
    /// Output values `[batch, k]` f32.
    pub values: u64,
    /// Output indices `[batch, k]` u32.
    pub indices: u64,
    /// Row length.
    pub vocab: u32,
    /// Elements per chunk (the last chunk of a row may be shorter); at
    /// least `k` when `chunks > 1`.
    pub chunk_len: u32,
    /// Chunks per row (grid x).
    pub chunks: u32,
    /// Values kept per row (`1..=vocab`).
    pub k: u32,
    /// Which stages this launch runs ([`mode`]).
    pub mode: u32,
    /// Filter body, `SAMPLE` launch: the rank among its threads' sampled
    /// maxima that each row's block takes as the row's bound.
    pub sample_rank: u32,
    /// Filter body, `FILTER`, `FILTER_MERGE` and `LOCAL` launches: the
    /// chunks each block appends, one after another (its grid `ceil(chunks
    /// / rounds)` blocks a row; a `LOCAL` block bounds them all by its
    /// first chunk's bound); 0 counts as 1.
    pub rounds: u32,
}

/// 16-byte vectors of the row each thread of a `SAMPLE` launch reads,
/// spread evenly over the row ...
pub const SAMPLE_VECTORS: u32 = 3;
/// ... and its threads per block.
pub const SAMPLE_THREADS: u32 = 512;

/// What one launch of the top-k kernel does (the filter kernel: `BOUND` or
/// `SAMPLE`, then `FILTER`, `MERGE` or `FILTER_MERGE`; or `LOCAL`,
/// `MERGE_LOCAL`).
pub mod mode {
    /// Both stages: grid `(chunks, batch)`; the row's last block merges.
    pub const FUSED: u32 = 0;
    /// Stage 1 only: grid `(chunks, batch)`, every block writes its list to
    /// the pool (for per-stage timing; `chunks > 1`).
    pub const STAGE1: u32 = 1;
    /// Stage 2 only: grid `(1, batch)`, merges the pool a `STAGE1` launch wrote.
    pub const STAGE2: u32 = 2;
    /// Filter kernel, first launch: every block folds its bound into its
    /// row's [`super::filter_words::BOUND`].
    pub const BOUND: u32 = 3;
    /// Filter kernel, second launch: every block appends its elements at or
    /// above the row's bound to the row's pool.
    pub const FILTER: u32 = 4;
    /// Filter kernel without a `BOUND` launch: every block's bound is the
    /// k-th of its threads' largest keys, then as `FILTER`.
    pub const LOCAL: u32 = 5;
    /// Filter kernel, last launch: grid `(1, batch)`, each row's block sorts
    /// the pool a `FILTER` launch wrote.
    pub const MERGE: u32 = 6;
    /// As `MERGE`, after a `LOCAL` launch (its larger pool).
    pub const MERGE_LOCAL: u32 = 7;
    /// As `FILTER`, then the row's last block to arrive sorts the pool (as
    /// `MERGE`): no merge launch.
    pub const FILTER_MERGE: u32 = 8;
    /// Filter kernel, first launch of a sampling plan (instead of `BOUND`):
    /// grid `(1, batch)`, block [`super::SAMPLE_THREADS`]; each row's
    /// block sets the row's [`super::filter_words::BOUND`] from a sample
    /// of the row.
    pub const SAMPLE: u32 = 9;

    /// Whether a filter launch in `mode` is a merge launch (one block a row).
    pub const fn is_merge(mode: u32) -> bool {
        mode == MERGE || mode == MERGE_LOCAL
    }

    /// Whether a filter launch in `mode` uses a `LOCAL` launch's (larger)
    /// pool.
    pub const fn is_local(mode: u32) -> bool {
        mode == LOCAL || mode == MERGE_LOCAL
    }
}

/// Elements of `size` bytes in one 16-byte vector.
pub const fn per_vector(size: u32) -> u32 {
    16 / size
}

/// Most groups a chunk of `n` elements of `size` bytes makes: one per
/// 16-byte vector, one per element before the first and after the last.
pub const fn max_groups(n: u32, size: u32) -> u32 {
    n / per_vector(size) + 2 * per_vector(size)
}

/// Candidate slots of a chunk's sort buffer: its selected groups hold at
/// most `per_vector(size) * k` elements (and the chunk at most `chunk_len`),
/// rounded up to a power of two for the bitonic sort.
pub const fn candidate_capacity(chunk_len: u32, size: u32, k: u32) -> u32 {
    let most = per_vector(size) * k;
    let most = if most < chunk_len { most } else { chunk_len };
    most.next_power_of_two()
}

/// Byte offsets in the dynamic shared memory of the top-k kernel, after the
/// scratch header. Stage 1 uses the chunk's raw elements, the maximum key of
/// each group, the selected groups and the candidates' sort words; stage 2
/// (the row's last block) reuses the space from `raw` on for the row's pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub raw: u32,
    pub maxima: u32,
    pub selected: u32,
    pub candidates: u32,
    pub pool: u32,
    pub bytes: u32,
}

impl Layout {
    pub const fn new(chunk_len: u32, size: u32, k: u32, chunks: u32) -> Layout {
        let raw = smem::HEADER_BYTES;
        // One vector of slack so the 16-byte groups land aligned.
        let maxima = raw + ((chunk_len + per_vector(size)) * size).next_multiple_of(16);
        let selected = maxima + 4 * max_groups(chunk_len, size);
        let candidates = (selected + 4 * k).next_multiple_of(16);
        let stage1_end = candidates + 8 * candidate_capacity(chunk_len, size, k);
        let pool = raw;
        let stage2_end = if chunks > 1 { pool + 8 * chunks * k } else { 0 };
        Layout {
            raw,
            maxima,
            selected,
            candidates,
            pool,
            bytes: if stage1_end > stage2_end {
                stage1_end
            } else {
                stage2_end
            },
        }
    }
}

/// 16-byte vectors of its row each thread of a cluster kernel holds in
/// registers.
pub const CLUSTER_VECTORS: u32 = 5;
/// Most blocks in a cluster (16 is "non-portable": the host opts in).
pub const MAX_CLUSTER: u32 = 16;

/// Whether a block of `threads` threads holds `chunk_len` elements of
/// `size` bytes in registers, whatever their alignment (one more vector
/// for a chunk that starts mid-vector).
pub const fn cluster_fits(chunk_len: u32, size: u32, threads: u32) -> bool {
    let per_vec = per_vector(size);
    (chunk_len + per_vec - 1).div_ceil(per_vec) <= threads * CLUSTER_VECTORS
}

/// Most candidates the cluster kernel (and a row of the filter kernel)
/// gathers for a top `k`: room for the
/// elements at or above the filter bound (typically 2-3k on logits, see
/// [`crate::cluster`], in `C` equal regions, one a block) and for ties at
/// the k-th key before the exact select is needed; a power of two.
pub const fn cluster_capacity(k: u32) -> u32 {
    let room = 4 * k;
    let room = if room < 1024 { 1024 } else { room };
    room.next_power_of_two()
}

/// Word offsets in [`ClusterLayout::words`]: the cluster's filter bounds
/// and filtered counts (one word a block each, sent by each block to every
/// block), then the block's own fill counter of the filter's appends.
pub mod cluster_words {
    use super::MAX_CLUSTER;
    pub const BOUNDS: u32 = 0;
    pub const COUNTS: u32 = BOUNDS + MAX_CLUSTER;
    pub const FILTERED: u32 = COUNTS + MAX_CLUSTER;
    pub const WORDS: u32 = FILTERED + 1;
}

/// The cluster kernels' mbarriers, in [`ClusterLayout::bars`]: every
/// block's `BOUNDS`, `COUNTS` (its [`cluster_words`] have landed) and
/// `CANDIDATES` (the peers' sorted regions), and block 0's `RANKED` (the
/// row's top k, where the rows are gathered there).
pub mod cluster_bars {
    pub const BOUNDS: u32 = 0;
    pub const COUNTS: u32 = 8;
    pub const CANDIDATES: u32 = 16;
    pub const RANKED: u32 = 24;
    pub const BYTES: u32 = 32;
}

/// Byte offsets in the dynamic shared memory of the cluster kernels
/// ([`TopKParams`] with `chunks` = cluster size), after the scratch header:
/// each thread's largest key (the bound's), which the block reuses as
/// `dense` (`capacity` sort words: its sort's spare, block 0's exact
/// select), then the [`cluster_words`], the [`cluster_bars`] and the
/// `capacity` candidate slots (one region a block of the cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterLayout {
    pub maxima: u32,
    pub dense: u32,
    pub words: u32,
    pub bars: u32,
    pub candidates: u32,
    pub capacity: u32,
    pub bytes: u32,
}

impl ClusterLayout {
    pub const fn new(k: u32) -> ClusterLayout {
        let maxima = smem::HEADER_BYTES;
        let capacity = cluster_capacity(k);
        let scratch_end = maxima + 4 * MAX_THREADS;
        let dense_end = maxima + 8 * capacity;
        let words = if scratch_end > dense_end {
            scratch_end
        } else {
            dense_end
        };
        let bars = (words + 4 * cluster_words::WORDS).next_multiple_of(8);
        let candidates = (bars + cluster_bars::BYTES).next_multiple_of(16);
        ClusterLayout {
            maxima,
            dense: maxima,
            words,
            bars,
            candidates,
            capacity,
            bytes: candidates + 8 * capacity,
        }
    }
}

/// Threads per block of the filter body's default plan (a sweep of
/// 256-1024 after the merge launch, BENCHMARKS.md v10: 384 fastest or
/// within 2% on every shape, e.g. 256 x 262,144 k=50 0.0829 -> 0.0800 ms
/// from 512, 512 x 50,304 0.0456 -> 0.0415: three blocks fit an SM where
/// two of 512 did).
pub const FILTER_THREADS: u32 = 384;
/// Blocks of [`FILTER_THREADS`] threads one SM must hold at once.
pub const FILTER_BLOCKS_PER_SM: u32 = 3;
/// Registers of one SM (sm_90).
pub const SM_REGISTERS: u32 = 65_536;
/// Register cap of the filter kernels (`.maxnreg`, which the build writes
/// into their PTX): the most that lets [`FILTER_BLOCKS_PER_SM`] blocks
/// share an SM (registers go to threads 8 at a time). Without it ptxas
/// took 59 after the bucket sort went in (two blocks an SM).
pub const FILTER_MAX_REGISTERS: u32 =
    SM_REGISTERS / (FILTER_BLOCKS_PER_SM * FILTER_THREADS) / 8 * 8;
/// Register cap of the merge kernels (`topk_merge_<dtype>`, one block a
/// row): the most that lets a block of [`MAX_THREADS`] start.
pub const MERGE_MAX_REGISTERS: u32 = SM_REGISTERS / MAX_THREADS;

/// Word offsets in each row's `[row * filter_words::WORDS ..]` of the
/// `arrivals` buffer (the filter kernel's; the chunked kernel uses word
/// `row` alone): zero before and after every pair of launches.
pub mod filter_words {
    /// Blocks of the row done with their appends (`FILTER_MERGE`).
    pub const ARRIVED: u32 = 2;
    /// The row's filter bound after a `BOUND` launch: the smallest of the
    /// blocks' bounds, bit-inverted (folded with an atomic max).
    pub const BOUND: u32 = 0;
    /// Elements appended (past the capacity only counted; unused by
    /// `LOCAL` launches, which count in their pool regions).
    pub const FOUND: u32 = 1;
    /// Words per row.
    pub const WORDS: u32 = 3;
}

/// Fewest words of a `LOCAL` block's pool region ([`FilterLayout::room`]).
pub const LOCAL_MIN_ROOM: u32 = 32;

/// Byte offsets in the dynamic shared memory of the filter kernel
/// (`topk_filter_<dtype>`), after the scratch header: the threads' largest
/// keys of the bound (`4 * MAX_THREADS` bytes; with one word more, a
/// `LOCAL` block's fill counter, all a `BOUND`, `FILTER` or `LOCAL` launch
/// needs, `bound_bytes`), then for a merge the
/// candidates and as many spare words for their sort (`capacity` each:
/// `cluster_capacity(k)`, and after a `LOCAL` launch of `chunks` chunks a
/// row at least `2 * chunks * k`, rounded up to a power of two: each chunk
/// leaves a little more than its own top k). `pool`: the pool's words a
/// row (`capacity`; after a `LOCAL` launch a region of `room` words a
/// block, its count and up to `room - 1` sort words, room for twice the
/// top k of each of the block's `rounds` chunks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterLayout {
    pub maxima: u32,
    pub candidates: u32,
    pub spare: u32,
    pub capacity: u32,
    pub room: u32,
    pub pool: u32,
    pub bound_bytes: u32,
    pub bytes: u32,
}

impl FilterLayout {
    /// The layout for a top `k`; `local_chunks`: the chunks of a row in a
    /// `LOCAL` launch, else 0, `rounds` of them a block
    /// ([`TopKParams::rounds`]; 0 counts as 1).
    pub const fn new(k: u32, local_chunks: u32, rounds: u32) -> FilterLayout {
        let maxima = smem::HEADER_BYTES;
        let candidates = maxima + 4 * MAX_THREADS;
        let own = (2 * local_chunks * k).next_power_of_two();
        let capacity = cluster_capacity(k);
        let capacity = if own > capacity { own } else { capacity };
        let spare = candidates + 8 * capacity;
        // Room for twice the top k of each of a block's chunks and its
        // count, and for a few ties at the bound where k is small.
        let rounds = if rounds > 1 { rounds } else { 1 };
        let room = (2 * k * rounds + 1).next_power_of_two();
        let room = if room < LOCAL_MIN_ROOM {
            LOCAL_MIN_ROOM
        } else {
            room
        };
        let pool = if local_chunks > 0 {
            local_chunks.div_ceil(rounds) * room
        } else {
            capacity
        };
        FilterLayout {
            maxima,
            candidates,
            spare,
            capacity,
            room,
            pool,
            // A `LOCAL` block's fill counter: the candidates' first word.
            bound_bytes: candidates + 8,
            bytes: spare + 8 * capacity,
        }
    }
}

/// Parameters of the sampling kernel (`sample_<dtype>`).
///
/// Grid, block and the top-k part as [`TopKParams`] (`topk.k` is the
/// sampler's `max_k`, `topk.values` / `topk.indices` unused, `topk.mode`
/// [`mode::FUSED`]); dynamic shared memory `SampleLayout::after(base,
/// max_k).bytes` with `base` the top-k body's (`Layout` or `ClusterLayout`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleParams {
    pub topk: TopKParams,
    /// Output token ids, `[batch]` u32.
    pub tokens: u64,
    /// Per-row temperature, `[batch]` f32 (`0`: greedy).
    pub temperature: u64,
    /// Per-row top-k, `[batch]` u32 (`1..=max_k`, or [`TOP_K_OFF`]).
    pub top_k: u64,
    /// Per-row top-p, `[batch]` f32 in (0, 1] (`1`: off).
    pub top_p: u64,
    /// Per-row min-p, `[batch]` f32 in [0, 1] (`0`: off).
    pub min_p: u64,
    /// Per-chunk Gumbel winners of rows sampled over the whole vocabulary,
    /// `[batch, chunks]` words.
    pub best: u64,
    /// The call counter, one u64: read by every block, advanced by one by
    /// the launch's last row to finish.
    pub offset: u64,
    /// Rows finished in this launch, one u32: zero before and after.
    pub rows_done: u64,
    /// Philox key.
    pub seed: u64,
}

/// Per-row top-k meaning "no top-k" (the whole vocabulary).
pub const TOP_K_OFF: u32 = u32::MAX;

/// Shared memory of the sampling kernels: the top-k body's layout
/// (`base` bytes: [`Layout`] or [`ClusterLayout`]), then (for the block
/// that finishes the row) the row's sorted top `max_k` words and their
/// running probability mass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleLayout {
    pub sorted: u32,
    pub mass: u32,
    pub bytes: u32,
}

impl SampleLayout {
    pub const fn after(base: u32, k: u32) -> SampleLayout {
        let sorted = base.next_multiple_of(16);
        let mass = sorted + 8 * k;
        SampleLayout {
            sorted,
            mass,
            bytes: mass + 4 * k,
        }
    }

    /// Shared memory beyond the top-k layout's.
    pub const fn extra(k: u32) -> u32 {
        16 + 12 * k
    }
}
