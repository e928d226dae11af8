//! Block-wide primitives: the radix select of the k-th largest key and the
//! ordered compaction of the selected elements (both over `n` keys reached
//! through a [`Keys`] source, shared or global memory), the sorts of sort
//! words (rank count, bucket count, merge sort, in-place bitonic), the
//! narrowing of candidates before a sort ([`shortlist`]) and the choice
//! among them for a top k ([`sort_top`]); and the warp-level pieces they
//! are built from (scans, folds, shuffle sorts, aggregated appends).
//!
//! The block-wide ones need the block's scratch header
//! ([`crate::params::smem`]) and every thread of the block must call them
//! (they contain barriers); the block has `MIN_THREADS..=MAX_THREADS`
//! threads, a multiple of 32.

use crate::device::{
    ballot, block_dim, lane, lanemask_lt, match_any, redux_max, shfl_idx, shfl_up, shfl_xor,
    sync_threads, thread_idx, warp, Shared,
};
use crate::element::Element;
use crate::params::{smem, MAX_WARPS, RADIX_BINS, RADIX_BITS};

/// Random access to the `n` keys a block selects from.
pub trait Keys: Copy {
    /// Key at position `i < n`.
    fn key(self, i: u32) -> u32;
}

impl Keys for Shared<u32> {
    #[inline(always)]
    fn key(self, i: u32) -> u32 {
        self.get(i)
    }
}

/// The keys of sort words ([`crate::element::sort_word`]).
impl Keys for Shared<u64> {
    #[inline(always)]
    fn key(self, i: u32) -> u32 {
        (self.get(i) >> 32) as u32
    }
}

/// The block's scratch header in dynamic shared memory.
#[derive(Clone, Copy)]
pub struct Scratch {
    words: Shared<u32>,
}

/// Broadcast words in `smem::CONTROL`.
const DIGIT: u32 = smem::CONTROL;
const REMAINING: u32 = smem::CONTROL + 1;
const BIN_COUNT: u32 = smem::CONTROL + 2;
/// Free broadcast word for the kernels ([`Scratch::word`]).
const USER: u32 = smem::CONTROL + 3;

impl Scratch {
    /// The header at the start of dynamic shared memory.
    #[inline(always)]
    pub fn new() -> Self {
        Self {
            words: Shared::dynamic(0),
        }
    }

    /// The header's free word (a counter or a flag of the caller's).
    #[inline(always)]
    pub fn word(self) -> Shared<u32> {
        Shared::dynamic(USER * 4)
    }

    /// Zero the histogram. Followed by a barrier before any `count`.
    #[inline(always)]
    pub fn clear_histogram(self) {
        let mut b = thread_idx();
        while b < RADIX_BINS {
            self.words.set(smem::HIST + b, 0);
            b += block_dim();
        }
    }

    /// Add `key` to the histogram of the radix pass at `shift` if it
    /// matches `prefix` under `mask` (see [`histogram_add`]).
    #[inline(always)]
    fn count(self, key: u32, active: bool, mask: u32, prefix: u32, shift: u32) {
        histogram_add(
            Shared::dynamic(smem::HIST * 4),
            active && key & mask == prefix,
            (key >> shift) & (RADIX_BINS - 1),
        );
    }
}

/// `hist[bin] += 1` where `counted`, lanes with equal bins merged into one
/// shared-memory atomic. Every lane of the warp must call it.
#[inline(always)]
fn histogram_add(hist: Shared<u32>, counted: bool, bin: u32) {
    if ballot(counted) == 0 {
        return;
    }
    // Lanes that count nothing get a bin no counting lane has.
    let bin = if counted { bin } else { RADIX_BINS };
    let peers = match_any(bin);
    if counted && lanemask_lt() & peers == 0 {
        hist.atomic_add(bin, peers.count_ones());
    }
}

/// Which elements a block select keeps: every key whose masked value is
/// above `prefix`, and the first `take_equal` (in position order) whose
/// masked value equals it.
#[derive(Clone, Copy)]
pub struct Selection {
    pub mask: u32,
    pub prefix: u32,
    pub take_equal: u32,
}

/// Inclusive prefix sum of `v` over the lanes of the warp.
#[inline(always)]
pub fn warp_inclusive_sum(v: u32) -> u32 {
    let mut x = v;
    let mut d = 1;
    while d < 32 {
        let y = shfl_up(x, d);
        if lane() >= d {
            x += y;
        }
        d <<= 1;
    }
    x
}

/// Inclusive sum over the first `RADIX_BINS` threads (others pass 0 and get
/// garbage). Contains barriers.
#[inline(always)]
fn scan_bins(scratch: Scratch, v: u32) -> u32 {
    let mut x = warp_inclusive_sum(v);
    if lane() == 31 && thread_idx() < RADIX_BINS {
        scratch.words.set(smem::SCAN + warp(), x);
    }
    sync_threads();
    let mut w = 0;
    while w < warp() && thread_idx() < RADIX_BINS {
        x += scratch.words.get(smem::SCAN + w);
        w += 1;
    }
    x
}

/// Radix select: the [`Selection`] of the `k` largest of the `n` keys, one
/// histogram pass per 8-bit digit from the top until the k-th key's bin
/// holds exactly the keys still needed or `key_bits` (16 or 32) are
/// resolved. Ties at the k-th key go to the lowest positions. Uses the
/// scratch header; contains barriers.
#[inline(always)]
pub fn radix_select<K: Keys>(
    scratch: Scratch,
    keys: K,
    n: u32,
    k: u32,
    key_bits: u32,
) -> Selection {
    if n <= k {
        return Selection {
            mask: 0,
            prefix: 0,
            take_equal: n,
        };
    }
    let tid = thread_idx();
    let mut mask = 0u32;
    let mut prefix = 0u32;
    let mut remaining = k;
    let mut shift = 32 - RADIX_BITS;
    // Whatever used the scratch header before is done with it.
    sync_threads();
    loop {
        // Histogram of the digit at `shift` of the keys matching the prefix so far.
        scratch.clear_histogram();
        sync_threads();
        let mut i = tid;
        let end = n.next_multiple_of(32);
        while i < end {
            let active = i < n;
            let key = if active { keys.key(i) } else { 0 };
            scratch.count(key, active, mask, prefix, shift);
            i += block_dim();
        }
        sync_threads();

        let bin = RADIX_BINS - 1 - tid;
        let count = if tid < RADIX_BINS {
            scratch.words.get(smem::HIST + bin)
        } else {
            0
        };
        let Digit {
            digit,
            remaining: left,
            count,
        } = choose_digit(scratch, count, remaining);
        remaining = left;
        let done = count == remaining;
        prefix |= digit << shift;
        mask |= (RADIX_BINS - 1) << shift;
        if done || shift == 32 - key_bits {
            return Selection {
                mask,
                prefix,
                take_equal: remaining,
            };
        }
        // Everyone has read the histogram (before the scan's barrier) and the
        // control words (before the next write to them, two barriers on).
        shift -= RADIX_BITS;
    }
}

/// Warp-aggregated append: the lanes with `keep` get consecutive slots, in
/// lane order, of a buffer whose fill counter `reserve(n)` advances by `n`
/// and returns the old value (called once, by lane 0, when any lane keeps).
/// Every lane of the warp must call it.
#[inline(always)]
pub fn warp_append<F: FnOnce(u32) -> u32>(keep: bool, reserve: F) -> Option<u32> {
    let kept = ballot(keep);
    if kept == 0 {
        return None;
    }
    let first = if lane() == 0 {
        reserve(kept.count_ones())
    } else {
        0
    };
    let first = shfl_idx(first, 0);
    keep.then(|| first + (kept & lanemask_lt()).count_ones())
}

/// The first of `n` slots for the calling warp (every lane passes the
/// warp's `n`) from a buffer whose fill counter `advance(n)` advances by
/// `n` and returns the old value: one call by lane 31 where `n > 0`.
#[inline(always)]
pub fn warp_reserve(n: u32, advance: impl FnOnce(u32) -> u32) -> u32 {
    if n == 0 {
        return 0;
    }
    shfl_idx(if lane() == 31 { advance(n) } else { 0 }, 31)
}

/// The first of `n` slots for this thread, the warp's lanes in lane order
/// after the first slot `reserve(total)` hands the warp ([`warp_reserve`],
/// [`block_reserve`]). Every lane of the warp must call it.
#[inline(always)]
pub fn warp_slots(n: u32, reserve: impl FnOnce(u32) -> u32) -> u32 {
    let end = warp_inclusive_sum(n);
    reserve(shfl_idx(end, 31)) + end - n
}

/// As [`warp_reserve`], with one `advance` for the whole block (by thread
/// 0; the warps' slots in warp order): fewer contended atomics on a global
/// counter. Every thread of the block must call it; uses `MAX_WARPS + 1`
/// words at `scratch` (between barriers: free before the call and after).
#[inline(always)]
pub fn block_reserve(n: u32, scratch: Shared<u32>, advance: impl FnOnce(u32) -> u32) -> u32 {
    let warps = block_dim() / 32;
    if lane() == 31 {
        scratch.set(warp(), n);
    }
    sync_threads();
    if thread_idx() == 0 {
        let mut total = 0;
        for w in 0..warps {
            let count = scratch.get(w);
            scratch.set(w, total);
            total += count;
        }
        scratch.set(MAX_WARPS, if total > 0 { advance(total) } else { 0 });
    }
    sync_threads();
    scratch.get(MAX_WARPS) + scratch.get(warp())
}

/// One radix pass's choice ([`choose_digit`]).
#[derive(Clone, Copy)]
struct Digit {
    /// The bin holding the wanted key.
    pub digit: u32,
    /// Keys still wanted from that bin (`1..=count`).
    pub remaining: u32,
    /// Keys in that bin.
    pub count: u32,
}

/// The bin holding the `remaining`-th largest key of a radix pass, where
/// thread `t < RADIX_BINS` passes the count of bin `RADIX_BINS - 1 - t`
/// (scanning from the top bin down); returned to every thread. Uses the
/// scratch header; contains barriers (the caller's previous reads of the
/// control words must be behind one).
#[inline(always)]
fn choose_digit(scratch: Scratch, count: u32, remaining: u32) -> Digit {
    let tid = thread_idx();
    let above_incl = scan_bins(scratch, count);
    let above_excl = above_incl - count;
    if tid < RADIX_BINS && above_excl < remaining && remaining <= above_incl {
        scratch.words.set(DIGIT, RADIX_BINS - 1 - tid);
        scratch.words.set(REMAINING, remaining - above_excl);
        scratch.words.set(BIN_COUNT, count);
    }
    sync_threads();
    Digit {
        digit: scratch.words.get(DIGIT),
        remaining: scratch.words.get(REMAINING),
        count: scratch.words.get(BIN_COUNT),
    }
}

/// `n / d` for a `d > 0` known only at run time: a shift where `d` is a
/// power of two (the usual cluster sizes and warp counts), else a division
/// (~20 dependent instructions).
#[inline(always)]
pub fn div_fast(n: u32, d: u32) -> u32 {
    if d & (d - 1) == 0 {
        n >> d.trailing_zeros()
    } else {
        n / d
    }
}

/// `v` folded over the lanes of the warp with the associative,
/// commutative `op`, returned to every lane.
#[inline(always)]
pub fn warp_fold<W: LaneWord, F: Fn(W, W) -> W>(v: W, op: F) -> W {
    let mut x = v;
    let mut m = 16;
    while m > 0 {
        x = op(x, x.shfl_xor(m));
        m >>= 1;
    }
    x
}

/// The warp's `per` largest `key`s, the `r`-th largest in lane `r < per`
/// (0 in the others): `per` rounds of a warp maximum that each take one
/// holder's key out (as 0, the smallest key). Cheaper than a shuffle sort
/// ([`warp_sort_desc`]) for a few.
#[inline(always)]
pub fn warp_tops(key: u32, per: u32) -> u32 {
    let (mut x, mut top) = (key, 0);
    for r in 0..per {
        let m = redux_max(x);
        if lane() == ballot(x == m).trailing_zeros() {
            x = 0;
        }
        if lane() == r {
            top = m;
        }
    }
    top
}

/// A word the warp's lanes can exchange ([`warp_sort_desc`]).
pub trait LaneWord: Copy + PartialOrd + Default {
    /// The value of lane `lane ^ mask`.
    fn shfl_xor(self, mask: u32) -> Self;
}

impl LaneWord for u32 {
    #[inline(always)]
    fn shfl_xor(self, mask: u32) -> u32 {
        shfl_xor(self, mask)
    }
}

impl LaneWord for u64 {
    #[inline(always)]
    fn shfl_xor(self, mask: u32) -> u64 {
        let hi = shfl_xor((self >> 32) as u32, mask);
        let lo = shfl_xor(self as u32, mask);
        (hi as u64) << 32 | lo as u64
    }
}

/// The warp's 32 values sorted descending across its lanes (lane `l` gets
/// the `l + 1`-th largest): a bitonic network of warp shuffles. Every lane
/// of the warp must call it.
#[inline(always)]
pub fn warp_sort_desc<W: LaneWord>(v: W) -> W {
    let mut x = v;
    let mut size = 2;
    while size <= 32 {
        let mut stride = size / 2;
        while stride > 0 {
            let y = x.shfl_xor(stride);
            // Runs of `size` alternate direction (the last is descending);
            // the lower lane of a pair keeps the larger in a descending run.
            let descending = lane() & size == 0;
            let lower = lane() & stride == 0;
            x = if (descending == lower) == (x > y) {
                x
            } else {
                y
            };
            stride /= 2;
        }
        size *= 2;
    }
    x
}

/// Sum of `v` over the warp.
#[inline(always)]
pub fn warp_sum(v: u32) -> u32 {
    warp_fold(v, |a, b| a + b)
}

/// Ordered compaction: calls `emit(position, slot, key)` for every selected
/// key, where `slot` is the number of selected keys at lower positions (so
/// slots run `0..min(k, n)` in position order). Contains barriers.
#[inline(always)]
pub fn compact<K: Keys, F: FnMut(u32, u32, u32)>(
    scratch: Scratch,
    keys: K,
    n: u32,
    sel: Selection,
    mut emit: F,
) {
    let warps = block_dim() / 32;
    // Warp w owns positions [w * seg, (w + 1) * seg), walked 32 at a time.
    let seg = n.div_ceil(warps).next_multiple_of(32);
    let begin = warp() * seg;
    let end = if begin + seg < n { begin + seg } else { n };
    let classify = |i: u32| -> (bool, bool, u32) {
        if i < end {
            let key = keys.key(i);
            let m = key & sel.mask;
            (m > sel.prefix, m == sel.prefix, key)
        } else {
            (false, false, 0)
        }
    };

    // Pass 1: per-warp counts of keys above and equal to the threshold.
    let (mut above, mut equal) = (0u32, 0u32);
    let mut base = begin;
    while base < end {
        let (gt, eq, _) = classify(base + lane());
        above += ballot(gt).count_ones();
        equal += ballot(eq).count_ones();
        base += 32;
    }
    if lane() == 0 {
        scratch.words.set(smem::COMPACT + 2 * warp(), above);
        scratch.words.set(smem::COMPACT + 2 * warp() + 1, equal);
    }
    sync_threads();

    // Counts of the warps before this one.
    let before = lane() < warp();
    let mut above = warp_sum(if before {
        scratch.words.get(smem::COMPACT + 2 * lane())
    } else {
        0
    });
    let mut equal = warp_sum(if before {
        scratch.words.get(smem::COMPACT + 2 * lane() + 1)
    } else {
        0
    });

    // Pass 2: emit in position order.
    let lower = lanemask_lt();
    let mut base = begin;
    while base < end {
        let i = base + lane();
        let (gt, eq, key) = classify(i);
        let gt_mask = ballot(gt);
        let eq_mask = ballot(eq);
        let equal_before = equal + (eq_mask & lower).count_ones();
        if gt || (eq && equal_before < sel.take_equal) {
            let taken_equal = if equal_before < sel.take_equal {
                equal_before
            } else {
                sel.take_equal
            };
            emit(i, above + (gt_mask & lower).count_ones() + taken_equal, key);
        }
        above += gt_mask.count_ones();
        equal += eq_mask.count_ones();
        base += 32;
    }
    // The scratch words may be reused after this barrier.
    sync_threads();
}

/// Most words [`sort_desc`] sorts by counting ranks (its shared-memory
/// reads grow with the square of the count: above this the merge sort
/// measured faster, BENCHMARKS.md v9).
pub const RANK_SORT_MAX: u32 = 192;
/// Most words [`sort_top`] sorts by rank where [`rank_words`] counts with
/// one lane a word (above, [`bucket_top`] measured faster; with two or
/// more lanes a word the rank count stays faster up to `RANK_SORT_MAX`).
pub const RANK_SORT_ONE_LANE_MAX: u32 = 128;
/// Fewest candidates [`shortlist`] narrows (fewer sort as they are).
pub const SHORTLIST_MIN: u32 = 257;

/// The rank of each of the `n` distinct words `buf[0..n]` (how many of
/// them are larger), counted by a group of `g` lanes per word (`g` the
/// largest power of two up to 32 with `n * g` threads in the block), each
/// lane every `g`-th word, four loads in flight; returned to the group's
/// first lane as `(rank, word)`. Needs `n <= block_dim()`; every lane of
/// the block must call it (no barrier inside).
#[inline(always)]
pub fn rank_words<W: LaneWord>(buf: Shared<W>, n: u32) -> Option<(u32, W)> {
    let mut g = 1;
    while g < 32 && 2 * g * n <= block_dim() {
        g *= 2;
    }
    let (word, part) = (thread_idx() / g, thread_idx() % g);
    let mine = if word < n {
        buf.get(word)
    } else {
        W::default()
    };
    let mut rank = 0;
    if word < n {
        let above = |j: u32| (buf.get(j) > mine) as u32;
        let mut j = part;
        while j + 3 * g < n {
            rank += above(j) + above(j + g) + above(j + 2 * g) + above(j + 3 * g);
            j += 4 * g;
        }
        while j < n {
            rank += above(j);
            j += g;
        }
    }
    let mut d = 1;
    while d < g {
        rank += shfl_xor(rank, d);
        d *= 2;
    }
    (word < n && part == 0).then_some((rank, mine))
}

/// Sorts `buf[0..n]` by rank ([`rank_words`]) in place if `n` is at most
/// `RANK_SORT_MAX` and the block size; returns whether it did. Ends with a
/// barrier when it sorts.
#[inline(always)]
fn rank_sort(buf: Shared<u64>, n: u32) -> bool {
    if n > RANK_SORT_MAX || n > block_dim() {
        return false;
    }
    let ranked = rank_words(buf, n);
    sync_threads();
    if let Some((rank, word)) = ranked {
        buf.set(rank, word);
    }
    sync_threads();
    true
}

/// Sorts the `n` distinct words `buf[0..n]` descending, with `spare[0..n]`
/// as scratch; returns the buffer that holds the result. Up to
/// `RANK_SORT_MAX` (and the block size) by rank, in place; more by a merge
/// sort: warps sort runs of 32 by shuffles ([`warp_sort_desc`]), then each
/// round merges pairs of runs between the two buffers, every word moving
/// to its position in its run plus the count of words above it in the
/// other run (a binary search, two a thread interleaved; the words are
/// distinct, so no two land on one position). The caller's writes to `buf`
/// must be behind a barrier; ends with one.
#[inline(always)]
pub fn sort_desc(buf: Shared<u64>, spare: Shared<u64>, n: u32) -> Shared<u64> {
    if rank_sort(buf, n) {
        return buf;
    }
    let mut run = warp();
    while run * 32 < n {
        let i = run * 32 + lane();
        // Padded with word 0, which sorts last (past `n`, or equal to a
        // word 0 of the input).
        let word = warp_sort_desc(if i < n { buf.get(i) } else { 0 });
        if i < n {
            buf.set(i, word);
        }
        run += block_dim() / 32;
    }
    sync_threads();
    let (mut from, mut to) = (buf, spare);
    let mut len = 32;
    while len < n {
        // Word `i`'s place without the other run's count, the other run's
        // start and length (0 past the end), and the word.
        let setup = |i: u32| {
            if i >= n {
                return (0, 0, 0, 0);
            }
            let pair = i / (2 * len) * (2 * len);
            let mine = i - pair;
            let other = if mine < len { pair + len } else { pair };
            let other_len = if other >= n { 0 } else { len.min(n - other) };
            (pair + mine % len, other, other_len, from.get(i))
        };
        // Two words a thread at a time, their binary searches (by
        // descending powers of two: the count of words above is below
        // `2 * len`) interleaved.
        let mut i = thread_idx();
        while i < n {
            let j = i + block_dim();
            let (at_i, other_i, len_i, word_i) = setup(i);
            let (at_j, other_j, len_j, word_j) = setup(j);
            let (mut above_i, mut above_j) = (0, 0);
            let mut step = len;
            while step > 0 {
                if above_i + step <= len_i && from.get(other_i + above_i + step - 1) > word_i {
                    above_i += step;
                }
                if above_j + step <= len_j && from.get(other_j + above_j + step - 1) > word_j {
                    above_j += step;
                }
                step /= 2;
            }
            to.set(at_i + above_i, word_i);
            if j < n {
                to.set(at_j + above_j, word_j);
            }
            i += 2 * block_dim();
        }
        sync_threads();
        (from, to) = (to, from);
        len *= 2;
    }
    from
}

/// Sorts the `n` distinct words `buf[0..n]` descending in place, where no
/// spare buffer fits: by rank as [`sort_desc`], more with a bitonic network
/// over `n` rounded up to a power of two (padded with word 0, which must
/// sort last; the buffer must have room for it). The caller's writes to
/// `buf` must be behind a barrier; ends with one.
#[inline(always)]
pub fn sort_desc_in_place(buf: Shared<u64>, n: u32) {
    if rank_sort(buf, n) {
        return;
    }
    let tid = thread_idx();
    let width = n.next_power_of_two();
    let mut j = n + tid;
    while j < width {
        buf.set(j, 0);
        j += block_dim();
    }
    sync_threads();
    let mut size = 2;
    while size <= width {
        let mut stride = size / 2;
        while stride > 0 {
            let mut t = tid;
            while t < width / 2 {
                let i = 2 * t - (t & (stride - 1));
                let j = i + stride;
                let (a, b) = (buf.get(i), buf.get(j));
                if (a < b) == (i & size == 0) {
                    buf.set(i, b);
                    buf.set(j, a);
                }
                t += block_dim();
            }
            sync_threads();
            stride /= 2;
        }
        size *= 2;
    }
}

/// `found` candidates (sort words) narrowed for the sort of the top `k`:
/// when there are at least `SHORTLIST_MIN` and `k` is fewer, a block radix
/// select of the k-th key and a copy of the candidates at or above it (all
/// its ties) to `out`. Returns the buffer holding them, the other one, and their count.
/// Block-wide; the candidates must be behind a barrier.
#[inline(always)]
pub fn shortlist<E: Element>(
    candidates: Shared<u64>,
    out: Shared<u64>,
    found: u32,
    k: u32,
) -> (Shared<u64>, Shared<u64>, u32) {
    if found < SHORTLIST_MIN || k >= SHORTLIST_MIN {
        return (candidates, out, found);
    }
    let sel = radix_select(Scratch::new(), candidates, found, k, E::KEY_BITS);
    let count = Scratch::new().word();
    if thread_idx() == 0 {
        count.set(0, 0);
    }
    sync_threads();
    let mut i = thread_idx();
    while i < found.next_multiple_of(32) {
        let word = if i < found { candidates.get(i) } else { 0 };
        let keep = i < found && (word >> 32) as u32 & sel.mask >= sel.prefix;
        if let Some(slot) = warp_append(keep, |n| count.fetch_add(0, n)) {
            out.set(slot, word);
        }
        i += block_dim();
    }
    sync_threads();
    (out, candidates, count.get(0))
}

/// Largest `v` over the block, returned to every thread. Uses the
/// histogram words of the scratch header; contains barriers.
#[inline(always)]
pub fn max_u64(v: u64) -> u64 {
    let slots = Shared::<u64>::dynamic(smem::HIST * 4);
    let x = warp_fold(v, u64::max);
    if lane() == 0 {
        slots.set(warp(), x);
    }
    sync_threads();
    let mut best = 0;
    let mut w = 0;
    while w < block_dim() / 32 {
        best = best.max(slots.get(w));
        w += 1;
    }
    sync_threads();
    best
}

/// Exclusive prefix sum of `x` over the warp's lanes, in lane order, and
/// the warp's total (Hillis-Steele: the order of the additions is fixed).
/// Every lane of the warp must call it.
#[inline(always)]
pub fn warp_exclusive_sum_f32(x: f32) -> (f32, f32) {
    let mut inclusive = x;
    let mut d = 1;
    while d < 32 {
        let y = f32::from_bits(shfl_up(inclusive.to_bits(), d));
        if lane() >= d {
            inclusive += y;
        }
        d <<= 1;
    }
    let lower = f32::from_bits(shfl_up(inclusive.to_bits(), 1));
    let total = f32::from_bits(shfl_idx(inclusive.to_bits(), 31));
    (if lane() == 0 { 0.0 } else { lower }, total)
}

/// Largest bucket [`bucket_top`] ranks by counting (its cost per word grows
/// with the word's bucket).
pub const BUCKET_MAX: u32 = 128;

/// The top `k` of the `n` distinct sort words `buf[0..n]` (all `n` if
/// fewer) sorted descending into `buf[0..min(k, n)]`, by counting
/// (`spare[0..n]` scratch): each word falls into one of `RADIX_BINS`
/// buckets by how far its key lies below the largest key (shifted right
/// until the keys' range fits the bins; on bf16 logits one key a bucket),
/// the buckets after the one holding the k-th word are dropped, and each
/// kept word lands at its bucket's start plus the number of its bucket's
/// words above it. Returns `false`, with `buf` untouched, when a kept
/// bucket holds more than [`BUCKET_MAX`] words (heavy ties: the caller
/// sorts another way). Uses the scratch header; the caller's writes to
/// `buf` must be behind a barrier; ends with one.
#[inline(always)]
pub fn bucket_top(buf: Shared<u64>, spare: Shared<u64>, n: u32, k: u32) -> bool {
    let (scratch, tid) = (Scratch::new(), thread_idx());
    let (words, hist) = (scratch.words, Shared::<u32>::dynamic(smem::HIST * 4));
    let key = |word: u64| (word >> 32) as u32;
    // The keys' range, per warp; the bins cleared; no cut bin or overflow yet
    // (the last bin is the cut when all `n` are kept).
    let (mut top, mut bottom) = (0, u32::MAX);
    let mut i = tid;
    while i < n {
        let x = key(buf.get(i));
        (top, bottom) = (top.max(x), bottom.min(x));
        i += block_dim();
    }
    let (top, bottom) = (warp_fold(top, u32::max), warp_fold(bottom, u32::min));
    if lane() == 0 {
        words.set(smem::SCAN + warp(), top);
        words.set(smem::COMPACT + warp(), bottom);
    }
    scratch.clear_histogram();
    if tid == 0 {
        words.set(DIGIT, RADIX_BINS - 1);
        words.set(BIN_COUNT, 0);
    }
    sync_threads();
    let (mut top, mut bottom) = (0, u32::MAX);
    let mut w = 0;
    while w < block_dim() / 32 {
        top = top.max(words.get(smem::SCAN + w));
        bottom = bottom.min(words.get(smem::COMPACT + w));
        w += 1;
    }
    let shift = 32 - ((top - bottom) >> RADIX_BITS).leading_zeros();
    let bin = |word: u64| (top - key(word)) >> shift;
    // Bucket sizes (one shared atomic a word: cheaper here than merging
    // equal bins with `match.any`).
    let mut i = tid;
    while i < n {
        hist.atomic_add(bin(buf.get(i)), 1);
        i += block_dim();
    }
    sync_threads();
    // Bucket starts (in the bins from here on), the cut, the overflow flag.
    let count = if tid < RADIX_BINS { hist.get(tid) } else { 0 };
    let above = scan_bins(scratch, count);
    if tid < RADIX_BINS {
        let start = above - count;
        if start < k && k <= above {
            words.set(DIGIT, tid);
        }
        if start < k && count > BUCKET_MAX {
            words.set(BIN_COUNT, 1);
        }
        hist.set(tid, start);
    }
    sync_threads();
    if words.get(BIN_COUNT) != 0 {
        return false;
    }
    let cut = words.get(DIGIT);
    // The kept words into their buckets (in any order within one); each
    // bin ends up holding its bucket's end.
    let mut i = tid;
    while i < n {
        let word = buf.get(i);
        let b = bin(word);
        if b <= cut {
            spare.set(hist.fetch_add(b, 1), word);
        }
        i += block_dim();
    }
    sync_threads();
    // Each kept word's place: its bucket's start plus its bucket's words above it.
    let kept = hist.get(cut);
    let mut p = tid;
    while p < kept {
        let word = spare.get(p);
        let b = bin(word);
        let (first, last) = (if b == 0 { 0 } else { hist.get(b - 1) }, hist.get(b));
        let above = |q: u32| (spare.get(q) > word) as u32;
        let (mut rank, mut q) = (first, first);
        while q + 4 <= last {
            rank += above(q) + above(q + 1) + above(q + 2) + above(q + 3);
            q += 4;
        }
        while q < last {
            rank += above(q);
            q += 1;
        }
        if rank < k {
            buf.set(rank, word);
        }
        p += block_dim();
    }
    sync_threads();
    true
}

/// The top `k` of the `n` distinct sort words `buf[0..n]` (all `n` if
/// fewer), sorted descending at the start of the returned buffer (`buf` or
/// `spare`, `n` words each): by rank up to `RANK_SORT_ONE_LANE_MAX` words
/// (up to `RANK_SORT_MAX` where [`rank_words`] gives each word two lanes or
/// more), by [`bucket_top`] above, and where that declines, [`shortlist`]
/// and the merge sort. Uses the scratch header; the caller's writes to `buf` must
/// be behind a barrier; ends with one.
#[inline(always)]
pub fn sort_top<E: Element>(buf: Shared<u64>, spare: Shared<u64>, n: u32, k: u32) -> Shared<u64> {
    let by_rank = n <= RANK_SORT_MAX && (n <= RANK_SORT_ONE_LANE_MAX || 2 * n <= block_dim());
    if !by_rank && bucket_top(buf, spare, n, k) {
        return buf;
    }
    let (list, other, count) = shortlist::<E>(buf, spare, n, k);
    sort_desc(list, other, count)
}
