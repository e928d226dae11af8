//! Launch planning: how a `[batch, vocab]` top-k splits into chunks and
//! blocks. Pure arithmetic, shared by the launch wrappers and the tests.

pub use streamtopk_kernels::params::FILTER_THREADS;
use streamtopk_kernels::params::{
    cluster_fits, per_vector, ClusterLayout, FilterLayout, Layout, CLUSTER_VECTORS,
    FILTER_BLOCKS_PER_SM, MAX_CLUSTER, MAX_THREADS, MIN_THREADS, SAMPLE_THREADS, SAMPLE_VECTORS,
};

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

/// Environment variable that picks the cluster-per-row body: `off`, or
/// `BLOCKS,THREADS` (blocks per cluster, threads per block) for sweeps.
pub const CLUSTER_ENV: &str = "STREAMTOPK_CLUSTER";
/// The default plan uses the cluster body for rows at least this long
/// where its grid fits one wave ([`CLUSTER_WAVE_THREADS`]).
pub const CLUSTER_MIN_VOCAB: usize = 16_384;
/// Threads a multiprocessor holds of the cluster kernels (56 registers a
/// thread: four blocks of 256 or two of 512). The default plan uses the
/// cluster body where `max_batch * blocks * threads` is at most this many a
/// multiprocessor: one wave (measured, BENCHMARKS.md v17: 33 x 50,304 k=50
/// 0.0066 ms against the filter body's 0.0091, 64 x 65,536 0.0101 /
/// 0.0115, 64 x 50,304 0.0100 / 0.0104; 96 x 50,304 even, 128 x 50,304 and
/// 64 x 128,256 in 8 x 512 slower).
pub const CLUSTER_WAVE_THREADS: u32 = 1024;
/// Threads per block of the default cluster plan for `k` above 256.
pub const CLUSTER_THREADS: u32 = 512;
/// Blocks and threads the default cluster plan tries for `k` up to 256, in
/// order; the first that fits the row wins (the sweep of BENCHMARKS.md v9:
/// fewer, shorter blocks where the row fits them) ...
pub const CLUSTER_SHAPES: [(u32, u32); 4] = [(8, 256), (8, 512), (16, 256), (16, 512)];
/// ... but for `k` above this in batches of up to [`CLUSTER_SHORT_BATCH`]
/// rows the first shape is skipped: each warp of a 256-thread block
/// offers more keys to the bound than its warp-maximum rounds take
/// (measured, BENCHMARKS.md v17: 1 x 50,304 k=200 0.0058 ms in 8 x 512
/// against 0.0062 in 8 x 256, 8 x 50,304 0.0060 / 0.0063, 1 x 50,304
/// k=150 0.0058 / 0.0060, k=128 even) ...
pub const CLUSTER_SHORT_MIN_K: u32 = 128;
/// ... (and 16 x 50,304 k=200 0.0074 against 0.0067: with more rows the
/// longer blocks lose).
pub const CLUSTER_SHORT_BATCH: usize = 8;

/// Environment variable that turns the filter body off (`off`) or sets its
/// threads per block (a number), for sweeps.
pub const FILTER_ENV: &str = "STREAMTOPK_FILTER";
/// The default plan uses the filter body (where no cluster plan is
/// preferred) for rows at least this long (one block's share).
pub const FILTER_MIN_VOCAB: usize = 16_384;
/// 16-byte vectors per thread of the filter body's blocks: all a block can
/// hold ([`CLUSTER_VECTORS`], less one vector of slack for a misaligned
/// start), or one fewer where that many leave each block's share of the
/// bound `ceil(k / chunks)` above 3/4 of its rank count (a weaker bound,
/// more candidates: 64 x 151,936 k=1024 0.040 -> 0.056 ms; elsewhere the
/// longer blocks measured faster, BENCHMARKS.md v8).
pub const FILTER_VECTORS: u32 = CLUSTER_VECTORS;
/// The filter body runs in one launch (`LOCAL`, then `MERGE_LOCAL`) where
/// `chunks * k` is at most this (each block keeps about its own top k) ...
pub const FILTER_SINGLE_PASS_POOL: u32 = 1024;
/// ... and k is at most this: a block's bound (the k-th of its threads'
/// maxima, from six offers a warp) stays tight, so a block keeps about
/// 1.1-1.3 k (a simulation of randn blocks of 14,592: at most 1.3 k up to
/// 64, 1.9-2.4 k at 72 and 96, where eight offers a warp give the bound;
/// measured, BENCHMARKS.md v14: 256 x 151,936 k=96 in one pass overflowed
/// its pool into the exact select, 0.598 ms against 0.050 in two). Since
/// one-pass blocks append to regions of their own (v14) one pass measured
/// faster than two at every size (33 x 50,304 k=50 0.0092 ms against
/// 0.0102, 128 x 50,304 0.0134 / 0.0151, 64 x 128,256 0.0147 / 0.0155,
/// 512 x 50,304 k=64 0.0396 / 0.0525; 64 x 65,536 and 48 x 262,144 even),
/// and again with several chunks a block on both (v21: 256 x 262,144
/// 0.0525 against 0.0606 sampled, 1024 x 50,304 0.0587 / 0.0809;
/// [`SINGLE_PASS_ENV`] turns it off).
pub const FILTER_SINGLE_PASS_MAX_K: u32 = 64;
/// Environment variable that turns the single pass off (`off`: two
/// passes wherever the plan would take one; sweeps).
pub const SINGLE_PASS_ENV: &str = "STREAMTOPK_SINGLE_PASS";
/// A two-pass filter plan for a `k` at most this sorts each row's pool in
/// the row's last block of its `FILTER` launch (`FILTER_MERGE`); larger
/// `k`, and every single-pass plan, in a `MERGE` launch of its own, so no
/// block waits for the others before it exits (measured, BENCHMARKS.md
/// v10: 64 x 128,256 k=50 0.0190 ms in the last block, 0.0204 with a merge
/// launch; 64 x 151,936 k=1024 0.0409 -> 0.0377; 256 x 262,144 k=50
/// 0.0924 -> 0.0823).
pub const FILTER_LAST_BLOCK_MAX_K: u32 = 256;

/// A two-pass filter plan samples its bound (a `SAMPLE` launch instead of
/// `BOUND`) where the sample's rank ([`sample_rank`]) is at most the
/// block's rank count (eight offers a warp) and either `k` is above
/// [`FILTER_LAST_BLOCK_MAX_K`] or the largest batch's logits have more
/// than [`FILTER_SAMPLE_BYTES`]; `$STREAMTOPK_SAMPLE=off` turns it off
/// (sweeps).
pub const SAMPLE_ENV: &str = "STREAMTOPK_SAMPLE";
/// See [`SAMPLE_ENV`]. The `SAMPLE` launch takes ~5 us whatever the
/// shape; a `BOUND` launch costs less where its grid is one short wave
/// that the `FILTER_MERGE` launch overlaps (measured, BENCHMARKS.md v13:
/// 64 x 65,536 k=50 0.0119 ms against 0.0131 sampled, 33 x 50,304 0.0102
/// against 0.0106; 128 x 50,304 even; 64 x 128,256 0.0174 -> 0.0159).
pub const FILTER_SAMPLE_BYTES: u64 = 8 << 20;
/// The margin of [`sample_rank`]: standard deviations of the count of
/// sampled maxima at or above the row's k-th key ...
pub const SAMPLE_MARGIN_SD: f64 = 4.0;
/// ... plus this many.
pub const SAMPLE_MARGIN: f64 = 3.0;

/// The rank `j` a sampling filter block takes among its `threads` threads'
/// maxima over [`SAMPLE_VECTORS`] vectors each (`TopKParams::sample_rank`)
/// for the top `k` of `vocab` elements of `size` bytes. For a row whose
/// values are spread at random over its positions, each thread's maximum
/// is at or above the row's k-th key with probability `1 - (1 - k /
/// vocab)^e` (`e` elements a thread); `j` is that count's mean plus
/// [`SAMPLE_MARGIN_SD`] standard deviations and [`SAMPLE_MARGIN`], so the
/// j-th maximum is almost always at or below the k-th key (else the row's
/// merge block sees fewer than `k` candidates and selects the row
/// itself: slower, still exact).
pub fn sample_rank(vocab: u32, k: u32, size: u32, threads: u32) -> u32 {
    let e = (SAMPLE_VECTORS * per_vector(size)) as f64;
    let p = 1.0 - (1.0 - k as f64 / vocab as f64).powf(e);
    let mean = threads as f64 * p;
    let sd = (mean * (1.0 - p)).sqrt();
    ((mean + SAMPLE_MARGIN_SD * sd + SAMPLE_MARGIN).ceil() as u32).clamp(1, threads)
}

/// Environment variable that sets a two-pass filter plan's
/// [`Plan::filter_rounds`] (a number; sweeps).
pub const FILTER_ROUNDS_ENV: &str = "STREAMTOPK_FILTER_ROUNDS";

/// Most chunks a block of a `FILTER` launch appends (measured,
/// BENCHMARKS.md v18: four or six a block slower on every shape swept).
pub const FILTER_MAX_ROUNDS: u32 = 3;
/// How much longer (in chunks a slot appends one after another) a launch
/// of [`filter_rounds`] may take than the launch of one chunk a block
/// takes on average, and still be chosen.
pub const FILTER_ROUNDS_SLACK: f64 = 1.05;

/// The chunks each block of a sampled plan's `FILTER` launch appends for
/// `max_batch` rows of `chunks` chunks on a device of `slots` resident
/// blocks: the most, up to [`FILTER_MAX_ROUNDS`], whose launch keeps the
/// slots as busy as one chunk a block does. With `r` a block, a slot
/// appends `r` chunks for each block it takes, `ceil(blocks / slots)` of
/// them (`blocks = max_batch * ceil(chunks / r)`); with one a block it
/// appends `max_batch * chunks / slots` on average. Where the two agree
/// (within [`FILTER_ROUNDS_SLACK`]) the longer blocks save each chunk a
/// block's start, its wait for the bound and its reservation
/// (measured, BENCHMARKS.md v18: 64 x 262,144 k=1024 0.0253 -> 0.0238 ms
/// with three a block, 128 x 262,144 0.0458 -> 0.0438); where they do not,
/// fewer blocks leave slots idle (48 x 262,144 0.0218 -> 0.0227 with three,
/// 64 x 151,936 k=1024 0.0208 -> 0.0222).
pub fn filter_rounds(chunks: u32, max_batch: usize, slots: u32) -> u32 {
    let (batch, slots) = (max_batch as u64, slots.max(1) as u64);
    let average = (batch * chunks as u64) as f64 / slots as f64;
    (2..=FILTER_MAX_ROUNDS.min(chunks))
        .rev()
        .find(|&r| {
            let blocks = batch * chunks.div_ceil(r) as u64;
            let path = blocks.div_ceil(slots) * r as u64;
            path as f64 <= FILTER_ROUNDS_SLACK * average
        })
        .unwrap_or(1)
}

/// Chunks a single-pass (`LOCAL`) block appends, at most: the first
/// chunk's bound bounds the others, which cost only their loads and
/// appends (measured, BENCHMARKS.md v21: 256 x 262,144 k=50 0.0652 ms
/// with one a block, 0.0553 with two, 0.0525 with three, 0.0523 with
/// four; 256 x 128,256 0.0380 / 0.0342 / 0.0313 / 0.0340).
pub const LOCAL_MAX_ROUNDS: u32 = 3;

/// The chunks each block of a single-pass plan's `LOCAL` launch appends
/// for `max_batch` rows of `chunks` chunks on a device of `slots`
/// resident blocks: one where a chunk a block fits one wave of the slots
/// (every block's bound then runs at once); else the fewest blocks a row
/// of at most [`LOCAL_MAX_ROUNDS`] chunks each, their chunks spread evenly
/// (128 x 50,304 k=50, four chunks a row: 0.0136 ms with one a block,
/// 0.0125 with two, 0.0145 with three and one, v21).
pub fn local_rounds(chunks: u32, max_batch: usize, slots: u32) -> u32 {
    if max_batch as u64 * chunks as u64 <= slots as u64 {
        return 1;
    }
    chunks.div_ceil(chunks.div_ceil(LOCAL_MAX_ROUNDS).max(1))
}

/// What a device allows a launch (from the driver; [`Limits::SM90`]
/// without a device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Opt-in shared memory per block, bytes.
    pub smem: u32,
    /// Most threads per block of the cluster kernel of the plan's dtype
    /// (its register use decides).
    pub cluster_threads: u32,
    /// Multiprocessors.
    pub sms: u32,
}

impl Limits {
    /// An H100 SXM, with the cluster blocks ptxas allows (56-64
    /// registers: 1024 threads).
    pub const SM90: Limits = Limits {
        smem: SM90_SMEM_LIMIT,
        cluster_threads: 1024,
        sms: 132,
    };
}

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
    /// Whether a thread-block cluster of `chunks` blocks owns each row
    /// (the `*_cluster_*` kernels: one launch, no pool).
    pub cluster: bool,
    /// Whether the filter body runs (the `topk_filter_*` kernels: a
    /// bound, then a filtered pool of candidates per row).
    pub filter: bool,
    /// Whether the filter body reads the logits once, each block with its
    /// own bound (`LOCAL`), rather than twice (`BOUND`, `FILTER`).
    pub single_pass: bool,
    /// Whether the filter body sorts each row's pool in a launch of its own
    /// (`MERGE`, `MERGE_LOCAL`) rather than in the row's last block of the
    /// `FILTER` launch (`FILTER_MERGE`).
    pub merge_launch: bool,
    /// A two-pass filter plan's [`sample_rank`]: a `SAMPLE` launch (one
    /// block a row) sets each row's bound in place of the `BOUND` launch;
    /// 0: a `BOUND` launch.
    pub sample_rank: u32,
    /// Chunks each block of a `FILTER`, `FILTER_MERGE` or `LOCAL` launch
    /// appends, one after another (`TopKParams::rounds`; 1 elsewhere).
    pub filter_rounds: u32,
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
        // About four 16-byte vectors per thread.
        let threads = (chunk_len / 32)
            .next_power_of_two()
            .clamp(MIN_THREADS, MAX_THREADS);
        Plan::sliced(vocab, k, size, chunk_len, threads)
    }

    /// The chunked plan of rows cut into `chunk_len` elements (the others
    /// start from it).
    fn sliced(vocab: u32, k: u32, size: u32, chunk_len: u32, threads: u32) -> Plan {
        Plan {
            vocab,
            k,
            size,
            chunk_len,
            chunks: vocab.div_ceil(chunk_len),
            threads,
            cluster: false,
            filter: false,
            single_pass: false,
            merge_launch: false,
            sample_rank: 0,
            filter_rounds: 1,
        }
    }

    /// A cluster-per-row plan of `blocks` blocks of `threads` threads, if
    /// the row fits their registers and the shared memory `smem_limit` and
    /// needs at least two of them (the blocks send to each other through
    /// the cluster's shared-memory window, which compute-sanitizer refuses
    /// in a cluster of one block).
    pub fn cluster(
        vocab: u32,
        k: u32,
        size: u32,
        blocks: u32,
        threads: u32,
        smem_limit: u32,
    ) -> Option<Plan> {
        if !(1..=MAX_CLUSTER).contains(&blocks)
            || !(MIN_THREADS..=MAX_THREADS).contains(&threads)
            || threads % 32 != 0
        {
            return None;
        }
        let chunk_len = vocab.div_ceil(blocks).next_multiple_of(CHUNK_ALIGN);
        let plan = Plan {
            cluster: true,
            ..Plan::sliced(vocab, k, size, chunk_len, threads)
        };
        (plan.chunks >= 2 && cluster_fits(chunk_len, size, threads) && plan.smem() <= smem_limit)
            .then_some(plan)
    }

    /// The default cluster plan for batches of up to `max_batch` rows (none
    /// for rows shorter than [`CLUSTER_MIN_VOCAB`]): for `k` up to 256 the
    /// first of [`CLUSTER_SHAPES`] that fits (and the kernel's threads
    /// allow; see [`CLUSTER_SHORT_MIN_K`]); else [`CLUSTER_THREADS`] (or
    /// the most the kernel allows) threads and the fewest blocks (a power
    /// of two, 8 to 16) that leave each thread one 16-byte vector, else the
    /// fewest that fit (the long sort of large k wants the candidates
    /// spread thin). None where the grid of that plan is more than one wave
    /// ([`CLUSTER_WAVE_THREADS`]).
    pub fn auto_cluster(
        vocab: u32,
        k: u32,
        size: u32,
        max_batch: usize,
        limits: &Limits,
    ) -> Option<Plan> {
        if (vocab as usize) < CLUSTER_MIN_VOCAB {
            return None;
        }
        let short = max_batch <= CLUSTER_SHORT_BATCH && k > CLUSTER_SHORT_MIN_K;
        let plan = Plan::auto_cluster_shape(vocab, k, size, short, limits)?;
        let threads = max_batch as u64 * (plan.chunks * plan.threads) as u64;
        (threads <= (limits.sms * CLUSTER_WAVE_THREADS) as u64).then_some(plan)
    }

    fn auto_cluster_shape(
        vocab: u32,
        k: u32,
        size: u32,
        short: bool,
        limits: &Limits,
    ) -> Option<Plan> {
        let fits = |(blocks, threads): (u32, u32)| {
            (threads <= limits.cluster_threads)
                .then(|| Plan::cluster(vocab, k, size, blocks, threads, limits.smem))
                .flatten()
        };
        if k <= 256 {
            let shapes = &CLUSTER_SHAPES[short as usize..];
            if let Some(plan) = shapes.iter().copied().find_map(fits) {
                return Some(plan);
            }
        }
        let threads = (limits.cluster_threads.min(CLUSTER_THREADS) / 32 * 32).max(MIN_THREADS);
        let one_vector = vocab.div_ceil(threads * per_vector(size));
        let blocks = one_vector.next_power_of_two().clamp(8, MAX_CLUSTER);
        (blocks..=MAX_CLUSTER).find_map(|b| Plan::cluster(vocab, k, size, b, threads, limits.smem))
    }

    /// The filter plan for rows of `vocab`: blocks of `threads` threads
    /// holding about [`FILTER_VECTORS`] vectors each (one fewer where a
    /// block's share of the bound `ceil(k / chunks)` is over 3/4 of its
    /// rank count, 8 keys from each warp), if that share fits the rank
    /// count or a `SAMPLE` launch sets the bound (no share: always the
    /// longer blocks, BENCHMARKS.md v20), and the merge block's
    /// candidates fit `smem_limit`; in one pass
    /// where `k` is at most [`FILTER_SINGLE_PASS_MAX_K`] (and fits the rank
    /// count) and `chunks * k` at most [`FILTER_SINGLE_PASS_POOL`]; with a
    /// merge launch unless two passes with `k` at most
    /// [`FILTER_LAST_BLOCK_MAX_K`]; a sampled bound's appending blocks take
    /// [`filter_rounds`] chunks each, a single pass's [`local_rounds`]
    /// (`$STREAMTOPK_FILTER_ROUNDS` sets any plan's) on `limits.sms`
    /// multiprocessors.
    pub fn filter(
        vocab: u32,
        k: u32,
        size: u32,
        threads: u32,
        max_batch: usize,
        limits: &Limits,
    ) -> Option<Plan> {
        if !(MIN_THREADS..=MAX_THREADS).contains(&threads) || threads % 32 != 0 {
            return None;
        }
        let ranked = 8 * threads / 32;
        let blocks = |vectors: u32| {
            let longest = ((threads * vectors - 1) * per_vector(size)) / CHUNK_ALIGN * CHUNK_ALIGN;
            let chunk_len = vocab
                .div_ceil(vocab.div_ceil(longest))
                .next_multiple_of(CHUNK_ALIGN);
            Plan::sliced(vocab, k, size, chunk_len, threads)
        };
        let long = blocks(FILTER_VECTORS);
        // Blocks whose own ranks bound the row (every plan but a sampled one).
        let ranking = if 4 * k.div_ceil(long.chunks) <= 3 * ranked {
            long
        } else {
            blocks(FILTER_VECTORS - 1)
        };
        let single_pass = k <= ranked.min(FILTER_SINGLE_PASS_MAX_K)
            && ranking.chunks * k <= FILTER_SINGLE_PASS_POOL
            && std::env::var(SINGLE_PASS_ENV).as_deref() != Ok("off");
        let bytes = max_batch as u64 * vocab as u64 * size as u64;
        let sampled = std::env::var(SAMPLE_ENV).as_deref() != Ok("off")
            && (k > FILTER_LAST_BLOCK_MAX_K || bytes > FILTER_SAMPLE_BYTES);
        let rank = sample_rank(vocab, k, size, SAMPLE_THREADS);
        let sample_rank = if sampled && !single_pass && rank <= SAMPLE_THREADS / 4 {
            rank
        } else {
            0
        };
        // A sampled bound takes no share from the blocks: always the long ones.
        let plan = if sample_rank > 0 { long } else { ranking };
        let plan = Plan {
            filter: true,
            single_pass,
            merge_launch: single_pass || k > FILTER_LAST_BLOCK_MAX_K,
            sample_rank,
            filter_rounds: match std::env::var(FILTER_ROUNDS_ENV).ok() {
                Some(v) if !v.is_empty() => v.trim().parse().ok().filter(|&r| r >= 1)?,
                _ if single_pass => {
                    local_rounds(plan.chunks, max_batch, limits.sms * FILTER_BLOCKS_PER_SM)
                }
                _ if sample_rank > 0 => {
                    filter_rounds(plan.chunks, max_batch, limits.sms * FILTER_BLOCKS_PER_SM)
                }
                _ => 1,
            },
            ..plan
        };
        ((sample_rank > 0 || k.div_ceil(plan.chunks) <= ranked)
            && cluster_fits(plan.chunk_len, size, threads)
            && plan.smem() <= limits.smem)
            .then_some(plan)
    }

    /// Stage-2 candidates per row (`0` with one chunk or a cluster: no
    /// stage 2; the filter body's pool of candidates).
    pub fn pool(&self) -> u32 {
        if self.filter {
            self.filter_layout().pool
        } else if self.chunks > 1 && !self.cluster {
            self.chunks * self.k
        } else {
            0
        }
    }

    /// The filter body's layout (of its appends and merge).
    pub fn filter_layout(&self) -> FilterLayout {
        let local = if self.single_pass { self.chunks } else { 0 };
        FilterLayout::new(self.k, local, self.filter_rounds)
    }

    /// Dynamic shared memory of a launch (the filter body's last).
    pub fn smem(&self) -> u32 {
        if self.filter {
            return self.filter_layout().bytes;
        }
        if self.cluster {
            return ClusterLayout::new(self.k).bytes;
        }
        Layout::new(self.chunk_len, self.size, self.k, self.chunks).bytes
    }
}
