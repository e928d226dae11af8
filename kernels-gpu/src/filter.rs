//! Top-k for batches too large for a cluster per row, in three launches
//! (or two, 4.): a global filter bound per row, one pass that keeps only
//! what passes it, and a sort of what passed.
//!
//! Contract ([`TopKParams`]; launches `BOUND` or `SAMPLE`, then `FILTER`
//! and `MERGE` or `FILTER_MERGE`; or `LOCAL`, `MERGE_LOCAL`, [`mode`]; the
//! merges in kernels of their own, [`run_merge`]):
//! - grid `(chunks, batch)` (merges and `SAMPLE`: `(1, batch)`; `FILTER`,
//!   `FILTER_MERGE` and `LOCAL`: `(ceil(chunks / rounds), batch)`), block
//!   `threads` (multiple of 32, 256..=1024; `SAMPLE`:
//!   [`crate::params::SAMPLE_THREADS`]); block `(c, r)` holds row `r`'s
//!   chunk `c`, positions `[c * chunk_len, min(vocab, (c + 1) *
//!   chunk_len))`, in registers (a [`Slice`]: `chunk_len` must
//!   [`crate::params::cluster_fits`]); in a `FILTER` or `FILTER_MERGE`
//!   or `LOCAL` launch, chunks `c * rounds ..` up to `rounds` of them, one
//!   at a time;
//! - dynamic shared memory `FilterLayout::new(k, 0, 1).bound_bytes`
//!   (launches that merge: `.bytes`, of `FilterLayout::new(k, chunks,
//!   rounds)` for `MERGE_LOCAL`);
//! - `arrivals`: `[batch, filter_words::WORDS]` words, zero before the
//!   first launch and after the last; `pool`: `[batch, pool]` sort words
//!   (the layout's `pool`);
//! - the row's top k go to [`Rows::emit`] in the row's merge block,
//!   torch.topk's order;
//! - a launch may start before the one before it ends (programmatic stream
//!   serialization: each appending block lets the next launch start, and
//!   waits for the one before only after it has loaded its share, a merge
//!   block before it reads the pool); the host asks for it for
//!   `FILTER_MERGE` and for a `FILTER` after `SAMPLE`.
//!
//! 1. `BOUND`: each block finds the `j = ceil(k / chunks)`-th largest of its
//!    threads' largest keys ([`Slice::bound`]: at least `j` of its elements
//!    are at or above it) and folds it into the row's bound with an atomic
//!    minimum (a maximum of the inverted key). The smallest of the `chunks`
//!    bounds has at least `k` of the row's elements at or above it: it is at
//!    or below the row's k-th key, and every element of the top k (ties at
//!    the k-th key included) passes it. Or `SAMPLE`, where the `BOUND`
//!    launch's blocks would take longer than one block a row: the row's
//!    block reads a sample of it ([`SAMPLE_VECTORS`] vectors a thread,
//!    evenly spread) and takes the `sample_rank`-th largest of its
//!    threads' sampled maxima, a statistical estimate at or below the k-th
//!    key on almost every row (the host's `sample_rank` leaves a margin
//!    of four standard deviations). On a row where it is not, fewer than k
//!    pass, and 3. selects the row itself.
//! 2. `FILTER`: each block loads its share again (from L2 where it stayed)
//!    and appends the sort words of its elements at or above the bound to
//!    the row's pool (a global counter, advanced once a block; 2-3k elements
//!    on logits), and exits:
//!    no block waits for the others (a block that would have to idles its
//!    SM's share of the read while it does). With `FILTER_MERGE` the row's
//!    last block to arrive ([`last_to_arrive`]) goes on to 3. itself, which
//!    saves the merge launch where the grid is short.
//! 3. `MERGE`: the row's block loads the pool into shared memory and sorts
//!    its top k ([`sort_top`]: on logits one counting pass over buckets of
//!    equal keys); the first k are the row's top k. If more
//!    passed than the pool holds (heavy ties, adversarial rows), or fewer
//!    than k (a sampled bound above the k-th key), it instead
//!    selects the row's k-th key itself, streaming the row from global
//!    memory (a block radix select, then an ordered compaction in row
//!    order: ties at the k-th key to the lowest indices) and sorts those k.
//! 4. For k up to 64 and small `chunks * k` (the host's plan), a `LOCAL`
//!    launch does without 1.: each block's bound
//!    is the k-th of its threads' largest keys (at or below the row's k-th
//!    key by itself), so each block keeps a little more than its own top k.
//!    It writes them to a region of the pool of its own (`room` words: the
//!    count, then up to `2k` or more words a chunk), counted in shared
//!    memory: no global counter, whose atomic round trip and barriers each
//!    block would wait for (BENCHMARKS.md v14). A block of `rounds` chunks
//!    bounds them all by its first chunk's bound (its own top k are at or
//!    above it, so the row's are too): the later chunks cost their loads
//!    and appends, no bound; where they overflow the region (values rising
//!    along the row), the block appends its chunks again, each later one
//!    also under its own bound. `MERGE_LOCAL` gathers the
//!    regions; a block with more than its region holds makes the row
//!    overflow (3.: the exact select).

use core::marker::PhantomData;

use crate::block::{
    block_reserve, compact, radix_select, sort_top, warp_inclusive_sum, warp_reserve, warp_slots,
    Keys, Scratch,
};
use crate::device::{
    block_dim, block_idx_x, block_idx_y, copy_async_wait, launch_dependents, shfl_idx,
    sync_threads, thread_idx, wait_for_prerequisite_grid, Global, GlobalMut, Shared,
};
use crate::element::{sort_word, Element};
use crate::kernel::{last_to_arrive, Rows};
use crate::params::filter_words::{ARRIVED, BOUND, FOUND, WORDS};
use crate::params::{mode, FilterLayout, TopKParams, SAMPLE_VECTORS};
use crate::slice::{bound_of_tops, load_vector, vector_top_key, Slice};

/// The keys of one row in global memory (3.).
#[derive(Clone, Copy)]
struct RowKeys<E> {
    addr: u64,
    element: PhantomData<E>,
}

impl<E: Element> Keys for RowKeys<E> {
    #[inline(always)]
    fn key(self, i: u32) -> u32 {
        let bits = if E::SIZE == 2 {
            Global::<u16>::new(self.addr).get(i) as u32
        } else {
            Global::<u32>::new(self.addr).get(i)
        };
        E::key(bits)
    }
}

/// The sort words of the row's top `k` at device address `row_addr`
/// (`vocab` elements; ties at the k-th key to the lowest indices), in row
/// order, into `out[0..k]` (3.): a block radix select streaming the row
/// from global memory, then an ordered compaction. For rows whose filtered
/// candidates overflow (here and in [`crate::cluster`]). Block-wide.
#[inline(always)]
pub fn exact_row<E: Element>(row_addr: u64, vocab: u32, k: u32, out: Shared<u64>) {
    let keys = RowKeys::<E> {
        addr: row_addr,
        element: PhantomData,
    };
    let sel = radix_select(Scratch::new(), keys, vocab, k, E::KEY_BITS);
    compact(Scratch::new(), keys, vocab, sel, |index, slot, key| {
        out.set(slot, sort_word(key, index))
    });
}

/// The bound one thread found (`own`), returned to every thread.
/// Block-wide, with a barrier.
#[inline(always)]
fn broadcast(own: Option<u32>) -> u32 {
    let shared = Scratch::new().word();
    if let Some(own) = own {
        shared.set(0, own);
    }
    sync_threads();
    shared.get(0)
}

/// The bound of a `SAMPLE` launch (1.): the `j`-th largest of the block's
/// threads' maxima over [`SAMPLE_VECTORS`] whole 16-byte vectors a thread,
/// spread evenly over the whole vectors of the row at `row_addr` (`vocab`
/// elements), returned to one thread. Block-wide, with barriers.
#[inline(always)]
fn sampled_bound<E: Element>(
    row_addr: u64,
    vocab: u32,
    j: u32,
    layout: &FilterLayout,
) -> Option<u32> {
    let per_vec = 16 / E::SIZE;
    let head = (row_addr % 16) as u32 / E::SIZE;
    let base = row_addr - (head * E::SIZE) as u64;
    let first = head.div_ceil(per_vec);
    let whole = ((head + vocab) / per_vec).saturating_sub(first) as u64;
    let samples = (SAMPLE_VECTORS * block_dim()) as u64;
    let vector = |i: u32| {
        let s = (i * block_dim() + thread_idx()) as u64;
        load_vector(base + 16 * (first as u64 + s * whole / samples))
    };
    // No whole vector: every key passes 0 (the merge then sees the row overflow).
    let top = if whole == 0 {
        0
    } else {
        // All loads first, so they are in flight together.
        let v: [u128; SAMPLE_VECTORS as usize] = core::array::from_fn(|i| vector(i as u32));
        v.iter().map(|&w| vector_top_key::<E>(w)).max().unwrap_or(0)
    };
    bound_of_tops::<E>(top, j, layout.maxima, 0)
}

/// Device address of row `blockIdx.y` of the input.
#[inline(always)]
fn row_addr<E: Element>(p: &TopKParams) -> u64 {
    p.input + block_idx_y() as u64 * p.vocab as u64 * E::SIZE as u64
}

/// Device address of row `blockIdx.y` of the input, and the row's first
/// pool word.
#[inline(always)]
fn row_start<E: Element>(p: &TopKParams, layout: &FilterLayout) -> (u64, u64) {
    (row_addr::<E>(p), block_idx_y() as u64 * layout.pool as u64)
}

/// The merge kernels' body (`MERGE`, `MERGE_LOCAL`: 3.), handing row
/// `blockIdx.y`'s top k to `rows`.
#[inline(always)]
pub fn run_merge<E: Element, R: Rows<E>>(p: &TopKParams, layout: &FilterLayout, rows: &R) {
    let (row_addr, first) = row_start::<E>(p, layout);
    wait_for_prerequisite_grid();
    merge_pool::<E, R, true>(p, layout, rows, row_addr, first);
}

/// The filter kernels' body (every launch of the module doc but the
/// merges), handing row `blockIdx.y`'s top k to `rows` in its merge block
/// (`FILTER_MERGE`).
#[inline(always)]
pub fn run_filter<E: Element, R: Rows<E>>(p: &TopKParams, layout: &FilterLayout, rows: &R) {
    let row = block_idx_y();
    let (row_addr, first) = row_start::<E>(p, layout);
    let words = GlobalMut::<u32>::new(p.arrivals);
    let at = |word: u32| (row * WORDS + word) as u64;
    // The next launch of the call may take the SM slots this grid leaves.
    launch_dependents();
    if p.mode == mode::SAMPLE {
        if let Some(bound) = sampled_bound::<E>(row_addr, p.vocab, p.sample_rank, layout) {
            words.set(at(BOUND), !bound);
        }
        return;
    }
    // The chunks this block appends: one, or (`FILTER`, `FILTER_MERGE`,
    // `LOCAL`) `p.rounds` in a row, each loaded after the one before is
    // appended.
    let rounds = if p.mode == mode::FILTER || p.mode == mode::FILTER_MERGE || p.mode == mode::LOCAL
    {
        p.rounds.max(1)
    } else {
        1
    };
    let first_chunk = block_idx_x() * rounds;
    let chunks = p.chunks.min(first_chunk + rounds);
    let slice = load_chunk::<E>(p, first_chunk);
    // The logits are no launch's output: only the words and pools wait.
    wait_for_prerequisite_grid();

    // 1.
    if p.mode == mode::BOUND {
        if let Some(bound) = slice.bound(p.k.div_ceil(p.chunks), layout.maxima, 0) {
            words.atomic_max(at(BOUND), !bound);
        }
        return;
    }

    // 2.
    if p.mode == mode::LOCAL {
        append_local(&slice, p, layout, first, first_chunk + 1..chunks);
        return;
    }
    let bound = !words.get_cg(at(BOUND));
    append_pool(&slice, p, layout, first, bound);
    for chunk in first_chunk + 1..chunks {
        // Every warp has read its slots before the next reservation.
        sync_threads();
        append_chunk::<E>(
            p.input,
            p.vocab,
            p.chunk_len,
            p.k,
            chunk,
            p.arrivals,
            p.pool,
            first,
            bound,
        );
    }
    if p.mode == mode::FILTER_MERGE && last_to_arrive(words, at(ARRIVED), p.chunks.div_ceil(rounds))
    {
        merge_pool::<E, R, false>(p, layout, rows, row_addr, first);
    }
}

/// Appends the sort words of the slice's elements at or above `bound` to
/// the row's pool, which starts at word `first` (2.), on the row's global
/// counter (one reservation a block). Block-wide.
#[inline(always)]
fn append_pool<E: Element>(
    slice: &Slice<E>,
    p: &TopKParams,
    layout: &FilterLayout,
    first: u64,
    bound: u32,
) {
    let words = GlobalMut::<u32>::new(p.arrivals);
    let found = (block_idx_y() * WORDS + FOUND) as u64;
    let pool = GlobalMut::<u64>::new(p.pool);
    slice.append_at_least(
        bound,
        |n| {
            warp_slots(n, |n| {
                block_reserve(n, Shared::dynamic(layout.maxima), |n| {
                    words.fetch_add(found, n)
                })
            })
        },
        |slot, word| {
            if slot < layout.capacity {
                pool.set(first + slot as u64, word);
            }
        },
    );
}

/// [`append_pool`] of the row's chunk `chunk`, loaded here (the fields of
/// `p` and `layout` it reads passed one by one): a call of its own, so the
/// registers of the block's first chunk and of the merge that may follow
/// are not held across it (inlined into a loop, ptxas spilled).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn append_chunk<E: Element>(
    input: u64,
    vocab: u32,
    chunk_len: u32,
    k: u32,
    chunk: u32,
    arrivals: u64,
    pool: u64,
    first: u64,
    bound: u32,
) {
    let p = TopKParams {
        input,
        vocab,
        chunk_len,
        k,
        arrivals,
        pool,
        ..TopKParams::default()
    };
    // A `FILTER` or `FILTER_MERGE` launch's layout.
    let layout = FilterLayout::new(k, 0, 1);
    append_pool(&load_chunk::<E>(&p, chunk), &p, &layout, first, bound);
}

/// Chunk `chunk` of row `blockIdx.y`, loaded into registers.
#[inline(always)]
fn load_chunk<E: Element>(p: &TopKParams, chunk: u32) -> Slice<E> {
    let row_addr = row_addr::<E>(p);
    let start = chunk * p.chunk_len;
    let n = p.chunk_len.min(p.vocab - start);
    Slice::load(row_addr + (start * E::SIZE) as u64, n, start)
}

/// A `LOCAL` block's appends (4.): the sort words of its elements at or
/// above its own bound (the k-th of its threads' largest keys in `slice`,
/// its first chunk) go to its own region of the row's pool, which starts
/// at word `first` (block `c`: the `room` words from `first + c * room`,
/// its count in the first, up to `room - 1` sort words after it), and so
/// do those of the row's chunks `rest` (loaded one at a time, at or above
/// the same bound; where they overflow the region, again with each later
/// chunk's own bound as well), each thread taking its slots with an atomic add on a
/// shared counter (fewer instructions than a warp's reservation: 256 x
/// 262,144 k=50 0.0525 ms against 0.0545, BENCHMARKS.md v21): no global
/// atomic, no barrier to reserve. Block-wide.
#[inline(always)]
fn append_local<E: Element>(
    slice: &Slice<E>,
    p: &TopKParams,
    layout: &FilterLayout,
    first: u64,
    rest: core::ops::Range<u32>,
) {
    let region = first + (block_idx_x() * layout.room) as u64;
    let filled = Shared::<u32>::dynamic(layout.candidates);
    if thread_idx() == 0 {
        filled.set(0, 0);
    }
    // The bound's barriers order the reset before any append.
    let bound = broadcast(slice.bound(p.k, layout.maxima, 0));
    let (pool, room) = (GlobalMut::<u64>::new(p.pool), layout.room);
    LocalRegion {
        pool,
        region,
        room,
        filled,
    }
    .append(slice, bound);
    let chunk = |chunk: u32, own_k: u32| {
        append_local_chunk::<E>(
            p.input,
            p.vocab,
            p.chunk_len,
            chunk,
            p.pool,
            region,
            room,
            layout.candidates,
            bound,
            own_k,
        )
    };
    for c in rest.clone() {
        chunk(c, 0);
    }
    sync_threads();
    if !rest.is_empty() && filled.get(0) >= room {
        // The later chunks overflowed the region (values rising along the
        // row): again, each later chunk also under its own bound (the
        // k-th of its threads' maxima; the larger of two bounds at or
        // below the row's k-th key is one too).
        sync_threads();
        if thread_idx() == 0 {
            filled.set(0, 0);
        }
        sync_threads();
        chunk(rest.start - 1, 0);
        for c in rest {
            chunk(c, p.k);
        }
        sync_threads();
    }
    if thread_idx() == 0 {
        pool.set(region, filled.get(0) as u64);
    }
}

/// Where a `LOCAL` block appends: its region of the pool (`room` words
/// from word `region`) and the region's fill counter in shared memory.
#[derive(Clone, Copy)]
struct LocalRegion {
    pool: GlobalMut<u64>,
    region: u64,
    room: u32,
    filled: Shared<u32>,
}

impl LocalRegion {
    /// Appends the sort words of `slice`'s elements at or above `bound`
    /// (past the region's room only counted). Every lane of the warp must
    /// call it.
    #[inline(always)]
    fn append<E: Element>(self, slice: &Slice<E>, bound: u32) {
        slice.append_at_least(
            bound,
            |n| {
                if n > 0 {
                    self.filled.fetch_add(0, n)
                } else {
                    0
                }
            },
            |slot, word| {
                if slot + 1 < self.room {
                    self.pool.set(self.region + 1 + slot as u64, word);
                }
            },
        );
    }
}

/// [`LocalRegion::append`] of the row's chunk `chunk`, loaded here, at or
/// above `bound` or (`own_k > 0`) the larger of it and the chunk's own
/// `own_k`-th largest of its threads' maxima (the region's fields passed
/// one by one, `filled` as its byte offset: an aggregate argument takes a
/// stack frame): a call of its own, so the first chunk's registers are not
/// held across it (as [`append_chunk`]). Block-wide.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn append_local_chunk<E: Element>(
    input: u64,
    vocab: u32,
    chunk_len: u32,
    chunk: u32,
    pool: u64,
    region: u64,
    room: u32,
    filled: u32,
    bound: u32,
    own_k: u32,
) {
    let p = TopKParams {
        input,
        vocab,
        chunk_len,
        ..TopKParams::default()
    };
    let region = LocalRegion {
        pool: GlobalMut::new(pool),
        region,
        room,
        filled: Shared::dynamic(filled),
    };
    let slice = load_chunk::<E>(&p, chunk);
    let bound = if own_k > 0 {
        // A `LOCAL` launch's layout puts the maxima where every one does.
        let maxima = FilterLayout::new(own_k, 0, 1).maxima;
        bound.max(broadcast(slice.bound(own_k, maxima, 0)))
    } else {
        bound
    };
    region.append(&slice, bound);
}

/// Pool words a merge thread loads at once from a `LOCAL` launch's regions.
const GATHER_LOADS: u32 = 8;

/// The candidates a `LOCAL` launch left in the regions of the row's pool
/// from word `first` ([`append_local`]), packed into `candidates` (in any
/// order); returns their count, above the capacity where a block's
/// overflowed its region. Every thread loads [`GATHER_LOADS`] words of the
/// regions (`block_dim()` apart) while the regions' counts go to shared
/// memory, then keeps the words below their region's count. Block-wide.
#[inline(always)]
fn gather_regions(p: &TopKParams, layout: &FilterLayout, first: u64) -> u32 {
    let pool = GlobalMut::<u64>::new(p.pool);
    let (room, step) = (layout.room, block_dim());
    let regions = p.chunks.div_ceil(p.rounds.max(1));
    let slots = regions * room;
    let candidates = Shared::<u64>::dynamic(layout.candidates);
    let counts = Shared::<u32>::dynamic(layout.spare);
    let total = Scratch::new().word();
    let load = |base: u32| -> [u64; GATHER_LOADS as usize] {
        core::array::from_fn(|u| {
            let s = base + u as u32 * step + thread_idx();
            if s < slots {
                pool.get_cg(first + s as u64)
            } else {
                0
            }
        })
    };
    let mut words = load(0);
    if thread_idx() == 0 {
        total.set(0, 0);
    }
    let mut r = thread_idx();
    while r < regions {
        counts.set(r, pool.get_cg(first + (r * room) as u64) as u32);
        r += step;
    }
    sync_threads();
    // Rounds of `GATHER_LOADS * step` slots (the same count in every lane).
    let shift = room.trailing_zeros();
    let mut base = 0;
    loop {
        // Bit u: word u of the round is a candidate.
        let mut mask = 0;
        for u in 0..GATHER_LOADS {
            let s = base + u * step + thread_idx();
            let (r, i) = (s >> shift, s & (room - 1));
            let count = if s < slots { counts.get(r) } else { 0 };
            if i == 0 && count >= room {
                // The region overflowed: so does the row.
                total.fetch_add(0, layout.capacity + 1);
            }
            // (An overflowed region's words are kept too: the row's total
            // is past the capacity either way.)
            mask |= ((i > 0 && i <= count) as u32) << u;
        }
        let n = mask.count_ones();
        let end = warp_inclusive_sum(n);
        let mut at = warp_reserve(shfl_idx(end, 31), |n| total.fetch_add(0, n)) + end - n;
        // Constant indices: the words stay in registers.
        let mut put = |u: u32, word: u64| {
            if mask & 1 << u != 0 {
                if at < layout.capacity {
                    candidates.set(at, word);
                }
                at += 1;
            }
        };
        let [a, b, c, d, e, f, g, h] = words;
        put(0, a);
        put(1, b);
        put(2, c);
        put(3, d);
        put(4, e);
        put(5, f);
        put(6, g);
        put(7, h);
        base += GATHER_LOADS * step;
        if base >= slots {
            break;
        }
        words = load(base);
    }
    sync_threads();
    total.get(0)
}

/// The `found` words of `pool` from word `first` into `candidates`, four
/// loads in flight a thread (the pool sits in L2). Block-wide, ends with a
/// barrier.
#[inline(always)]
fn copy_pool(pool: GlobalMut<u64>, first: u64, found: u32, candidates: Shared<u64>) {
    let (step, at) = (block_dim(), |i: u32| first + i as u64);
    let mut i = thread_idx();
    while i + 3 * step < found {
        let (a, b) = (pool.get_cg(at(i)), pool.get_cg(at(i + step)));
        let (c, d) = (pool.get_cg(at(i + 2 * step)), pool.get_cg(at(i + 3 * step)));
        candidates.set(i, a);
        candidates.set(i + step, b);
        candidates.set(i + 2 * step, c);
        candidates.set(i + 3 * step, d);
        i += 4 * step;
    }
    while i < found {
        candidates.set(i, pool.get_cg(at(i)));
        i += step;
    }
    sync_threads();
}

/// [`copy_pool`] by asynchronous 16-byte copies (no registers held): the
/// first `min(2k, capacity)` words whatever the count `found` (each row's
/// pool and `candidates` hold `capacity` words, an even number), issued
/// while the count's load is in flight, and
/// the rest where the count lies in `k..=capacity`: one round trip to L2
/// where no more than those passed (64 x 151,936 k=1024: ~450 cycles of
/// ~12,600 less, BENCHMARKS.md v19). Returns the count. Block-wide, ends
/// with a barrier.
#[inline(always)]
fn copy_pool_early(
    pool: GlobalMut<u64>,
    first: u64,
    found: u32,
    k: u32,
    capacity: u32,
    candidates: Shared<u64>,
) -> u32 {
    let copy = found >= k && found <= capacity;
    let (addr, ahead) = (pool.addr(first), capacity.min(2 * k));
    let mut pair = thread_idx();
    while 2 * pair < ahead || (copy && 2 * pair < found) {
        candidates.copy_async(2 * pair, addr + 16 * pair as u64);
        pair += block_dim();
    }
    copy_async_wait();
    sync_threads();
    found
}

/// The merge launch's block of row `blockIdx.y` (3.): sorts the row's
/// pool (from word `first` of `p.pool`; or, on overflow, the row's exact
/// top k), hands the first k to `rows` and resets the row's words.
/// `EARLY` (the merge kernels) copies the pool with [`copy_pool_early`];
/// the filter kernels' `FILTER_MERGE` blocks keep [`copy_pool`] (the
/// early copy's code made ptxas spill in the appends under their register
/// cap). Block-wide.
#[inline(always)]
fn merge_pool<E: Element, R: Rows<E>, const EARLY: bool>(
    p: &TopKParams,
    layout: &FilterLayout,
    rows: &R,
    row_addr: u64,
    first: u64,
) {
    let row = block_idx_y();
    let pool = GlobalMut::<u64>::new(p.pool);
    let words = GlobalMut::<u32>::new(p.arrivals);
    let at = |word: u32| (row * WORDS + word) as u64;
    let (candidates, spare) = (
        Shared::<u64>::dynamic(layout.candidates),
        Shared::<u64>::dynamic(layout.spare),
    );
    let local = p.mode == mode::MERGE_LOCAL;
    let found = if local {
        gather_regions(p, layout, first)
    } else if EARLY {
        let found = words.get_cg(at(FOUND));
        copy_pool_early(pool, first, found, p.k, layout.capacity, candidates)
    } else {
        words.get_cg(at(FOUND))
    };
    let count = if found >= p.k && found <= layout.capacity {
        if !local && !EARLY {
            copy_pool(pool, first, found, candidates);
        }
        found
    } else {
        exact_row::<E>(row_addr, p.vocab, p.k, candidates);
        p.k
    };
    let sorted = sort_top::<E>(candidates, spare, count, p.k);
    let mut j = thread_idx();
    while j < p.k {
        rows.emit(row, j, sorted.get(j));
        j += block_dim();
    }
    if thread_idx() == 0 {
        words.set(at(BOUND), 0);
        words.set(at(FOUND), 0);
    }
    if R::FINISHES {
        sync_threads();
        rows.finish(row);
    }
}
