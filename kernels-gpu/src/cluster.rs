//! Single-launch top-k for short batches: a thread-block cluster owns a row
//! and holds it in registers.
//!
//! Contract ([`TopKParams`], `chunks` = cluster size `C <= MAX_CLUSTER`):
//! - grid `(C, batch)` launched in clusters of `(C, 1, 1)` blocks, so
//!   cluster `r` is row `r` and block `c` of it holds the row's positions
//!   `[c * chunk_len, min(vocab, (c + 1) * chunk_len))`, which must
//!   [`crate::params::cluster_fits`] its registers; block `threads`
//!   (multiple of 32, 256..=1024); `pool` and `arrivals` unused;
//! - dynamic shared memory `ClusterLayout::new(k).bytes`, plus what the
//!   [`Rows`] keeps after it;
//! - the row's top k go to [`Rows::emit`] in block 0, torch.topk's order.
//!
//! 1. Filter bound: each block finds the `j = ceil(k / C)`-th largest of
//!    its threads' largest keys (each warp sorts its 32 by shuffles, and
//!    the block ranks the warps' top `min(j, TOPS_PER_WARP)`, a subset that
//!    still holds at least `j` keys when the warps have room; else a block
//!    radix select), which has at least `j` of the block's elements at or
//!    above it, and pushes it into every block's shared memory (once every
//!    block has started: a cluster barrier whose arrive is the kernel's
//!    first step). After a cluster barrier the smallest of the `C` bounds
//!    (each block reads its own copies) has at least `k` of the row's
//!    elements at or above it: it is at or below the row's k-th key.
//! 2. Every block appends the sort words of its elements at or above the
//!    bound to its own region of block 0's candidates (a block-local
//!    counter; on logits, 2-3k elements in all) and pushes its count into
//!    every block. After a cluster barrier every block reads the counts; if
//!    every region held its block's (the usual case) the other blocks exit
//!    and block 0 packs the regions and goes to 5. No block reads a peer's
//!    memory after that barrier.
//! 3. Else (heavy ties, adversarial rows) the exact select: each pass
//!    counts one 8-bit digit of the block's keys into per-warp histograms
//!    (logits crowd into a few bins of the top digit), sums them into the
//!    block's histogram of that pass; after a cluster barrier every block
//!    sums the cluster's histograms through distributed shared memory and
//!    picks the same digit. If more keys tie at the k-th than the buffer
//!    has room for, a second select over the ties' inverted indices keeps
//!    the lowest.
//! 4. Every block appends its selected elements to block 0's candidates
//!    (through block 0's counter); after a cluster barrier every block reads
//!    the count, and after one more the other blocks exit.
//! 5. Block 0 sorts the candidates (the first k are the row's top k).

use crate::block::{
    choose_digit, histogram_add, shortlist, sort_desc, warp_fold, warp_inclusive_sum, Scratch,
};
use crate::device::{
    block_dim, block_idx_y, cluster_arrive, cluster_rank, cluster_sync, cluster_wait, lane,
    shfl_idx, sync_threads, sync_warp, thread_idx, warp, Shared,
};
use crate::element::Element;
use crate::kernel::Rows;
use crate::params::cluster_words::{BOUNDS, COUNTS, EXACT, FILTERED};
use crate::params::{ClusterLayout, TopKParams, RADIX_BINS, RADIX_BITS};
use crate::slice::Slice;

/// Result of a cluster select: the `k` largest of the selected values `x`
/// are those with `x & mask > prefix`, and `take_equal` of the `ties` with
/// `x & mask == prefix` (all of them when the two are equal).
#[derive(Clone, Copy)]
struct Pick {
    mask: u32,
    prefix: u32,
    take_equal: u32,
    ties: u32,
}

/// Radix select of the `k` largest non-zero `x = value(key, index)` over
/// the cluster's slices, `bits` (16 or 32) significant from the top; uses
/// the histograms of passes `*pass..` and advances `*pass`. Every thread of
/// every block of the cluster must call it.
#[inline(always)]
fn select<E: Element, V: Fn(u32, u32) -> u32>(
    slice: &Slice<E>,
    value: V,
    k: u32,
    bits: u32,
    pass: &mut u32,
    blocks: u32,
    layout: &ClusterLayout,
) -> Pick {
    let (mut mask, mut prefix, mut remaining) = (0u32, 0u32, k);
    let mut shift = 32 - RADIX_BITS;
    let tid = thread_idx();
    let own = Shared::<u32>::dynamic(layout.warp_hist + 4 * RADIX_BINS * warp());
    loop {
        // Count into the warp's own histogram (no atomics across warps) ...
        let mut b = lane();
        while b < RADIX_BINS {
            own.set(b, 0);
            b += 32;
        }
        sync_warp();
        slice.each(|key, index| {
            let x = value(key, index);
            histogram_add(
                own,
                x != 0 && x & mask == prefix,
                (x >> shift) & (RADIX_BINS - 1),
            );
        });
        sync_threads();
        // ... sum the warps' into the block's histogram of this pass ...
        let hist = Shared::<u32>::dynamic(layout.hist + 4 * RADIX_BINS * *pass);
        *pass += 1;
        if tid < RADIX_BINS {
            let mut sum = 0;
            for w in 0..block_dim() / 32 {
                sum += Shared::<u32>::dynamic(layout.warp_hist + 4 * RADIX_BINS * w).get(tid);
            }
            hist.set(tid, sum);
        }
        // ... and the cluster's blocks' (thread t: bin 255 - t, top down).
        cluster_sync();
        let mut count = 0;
        if tid < RADIX_BINS {
            for rank in 0..blocks {
                count += hist.peer(rank).get(RADIX_BINS - 1 - tid);
            }
        }
        let digit = choose_digit(Scratch::new(), count, remaining);
        prefix |= digit.digit << shift;
        mask |= (RADIX_BINS - 1) << shift;
        remaining = digit.remaining;
        if digit.count == remaining || shift == 32 - bits {
            return Pick {
                mask,
                prefix,
                take_equal: remaining,
                ties: digit.count,
            };
        }
        shift -= RADIX_BITS;
    }
}

/// A key at or below the row's k-th largest (1.). Every thread of every
/// block of the cluster must call it, after its arrive at the kernel's
/// start (waited for here); contains a cluster barrier.
#[inline(always)]
fn filter_bound<E: Element>(slice: &Slice<E>, k: u32, blocks: u32, layout: &ClusterLayout) -> u32 {
    let publish = slice.bound(k.div_ceil(blocks), layout.maxima);
    let words = Shared::<u32>::dynamic(layout.words);
    // Every peer has started (their arrive at the kernel's start) before
    // anything is written to its shared memory.
    cluster_wait();
    if let Some(bound) = publish {
        let rank = cluster_rank();
        for peer in 0..blocks {
            words.peer(peer).set(BOUNDS + rank, bound);
        }
    }
    cluster_sync();
    let own = if lane() < blocks {
        words.get(BOUNDS + lane())
    } else {
        u32::MAX
    };
    warp_fold(own, u32::min)
}

/// What the filter's gather found (2.): every block's count, in every block.
struct Regions {
    /// Slots a block's region has.
    room: u32,
    /// Whether some block found more than its region holds.
    overflow: bool,
}

/// Appends the sort words of the slice's elements at or above `bound` to
/// this block's region of block 0's candidates and pushes the count to
/// every block (2.). Every thread of every block of the cluster must call
/// it; contains a cluster barrier, after which no block reads a peer.
#[inline(always)]
fn gather_regions<E: Element>(
    slice: &Slice<E>,
    bound: u32,
    blocks: u32,
    layout: &ClusterLayout,
) -> Regions {
    let rank = cluster_rank();
    let room = layout.capacity / blocks;
    let words = Shared::<u32>::dynamic(layout.words);
    let candidates = Shared::<u64>::dynamic(layout.candidates).peer(0);
    slice.append_at_least(
        bound,
        |n| words.fetch_add(FILTERED, n),
        |slot, word| {
            if slot < room {
                candidates.set(rank * room + slot, word)
            }
        },
    );
    sync_threads();
    if thread_idx() < blocks {
        words
            .peer(thread_idx())
            .set(COUNTS + rank, words.get(FILTERED));
    }
    cluster_sync();
    let count = if lane() < blocks {
        words.get(COUNTS + lane())
    } else {
        0
    };
    Regions {
        room,
        overflow: warp_fold(count, u32::max) > room,
    }
}

/// Block 0 packs the regions' candidates into `dense` (region order) and
/// returns their count. Block-wide; the regions must be behind a barrier.
#[inline(always)]
fn pack(regions: &Regions, blocks: u32, layout: &ClusterLayout) -> u32 {
    let words = Shared::<u32>::dynamic(layout.words);
    let (from, to) = (
        Shared::<u64>::dynamic(layout.candidates),
        Shared::<u64>::dynamic(layout.dense),
    );
    // Each warp scans the counts: lane b learns where region b starts.
    let count = if lane() < blocks {
        words.get(COUNTS + lane())
    } else {
        0
    };
    let end = warp_inclusive_sum(count);
    let total = shfl_idx(end, 31);
    let start = end - count;
    // Warp w copies regions w, w + warps, ... (its lanes the slots).
    let mut b = warp();
    while b < blocks {
        let (n, first) = (shfl_idx(count, b), shfl_idx(start, b));
        let mut i = lane();
        while i < n {
            to.set(first + i, from.get(b * regions.room + i));
            i += 32;
        }
        b += block_dim() / 32;
    }
    sync_threads();
    total
}

/// Appends the sort words of the slice's elements that `keep(key, index)`
/// (never a position without an element, key 0) to block 0's candidates,
/// counting them in block 0's word `EXACT`; returns the count, read by
/// every block between two cluster barriers (no block reads a peer that
/// has exited). Slots past the capacity are not written. Every thread of
/// every block of the cluster must call it.
#[inline(always)]
fn gather<E: Element, K: Fn(u32, u32) -> bool>(
    slice: &Slice<E>,
    keep: K,
    layout: &ClusterLayout,
) -> u32 {
    let count = Shared::<u32>::dynamic(layout.words).peer(0);
    let candidates = Shared::<u64>::dynamic(layout.candidates).peer(0);
    slice.append(
        keep,
        |n| count.fetch_add(EXACT, n),
        |slot, word| {
            if slot < layout.capacity {
                candidates.set(slot, word)
            }
        },
    );
    cluster_sync();
    let found = count.get(EXACT);
    cluster_sync();
    found
}

/// The cluster kernels' body (see the module doc), handing row `blockIdx.y`'s
/// top k to `rows` in block 0.
#[inline(always)]
pub fn run_cluster<E: Element, R: Rows<E>>(p: &TopKParams, layout: &ClusterLayout, rows: &R) {
    let rank = cluster_rank();
    let row = block_idx_y();
    let tid = thread_idx();
    let start = rank * p.chunk_len;
    let n = if start >= p.vocab {
        0
    } else if p.vocab - start < p.chunk_len {
        p.vocab - start
    } else {
        p.chunk_len
    };
    let addr = p.input + (row as u64 * p.vocab as u64 + start as u64) * E::SIZE as u64;
    // This block has started (before its loads, so the arrive's release
    // has nothing to wait for).
    cluster_arrive();
    let slice = Slice::<E>::load(addr, n, start);
    let words = Shared::<u32>::dynamic(layout.words);
    if tid == 0 {
        words.set(FILTERED, 0);
        words.set(EXACT, 0);
    }

    // 1.-2. Every element at or above the bound (the first barrier of the
    //    bound orders the counters' reset before any append).
    let bound = filter_bound(&slice, p.k, p.chunks, layout);
    let regions = gather_regions(&slice, bound, p.chunks, layout);
    let (dense, gathered) = (
        Shared::<u64>::dynamic(layout.dense),
        Shared::<u64>::dynamic(layout.candidates),
    );
    // Loaded anew (from L2): the fast path's registers stay free of it.
    let exact_found = regions
        .overflow
        .then(|| exact(&Slice::<E>::load(addr, n, start), p, layout));
    if rank != 0 {
        return;
    }
    let (candidates, spare, found) = match exact_found {
        Some(found) => (gathered, dense, found),
        None => (dense, gathered, pack(&regions, p.chunks, layout)),
    };
    // 5. Block 0 sorts the candidates and emits the first k.
    let (candidates, spare, found) = shortlist::<E>(candidates, spare, found, p.k);
    let candidates = sort_desc(candidates, spare, found);
    let mut j = tid;
    while j < p.k {
        rows.emit(row, j, candidates.get(j));
        j += block_dim();
    }
    if R::FINISHES {
        sync_threads();
        rows.finish(row);
    }
}

/// 3.-4. The exact select and its gather, when the filter kept more than
/// the candidate buffer holds: returns the count gathered (at most the
/// capacity). Every thread of every block of the cluster must call it.
#[inline(always)]
fn exact<E: Element>(slice: &Slice<E>, p: &TopKParams, layout: &ClusterLayout) -> u32 {
    let mut pass = 0;
    let v = select(
        slice,
        |key, _| key,
        p.k,
        E::KEY_BITS,
        &mut pass,
        p.chunks,
        layout,
    );
    // Which ties at the k-th key: all (the sort drops the extra ones) when
    // they fit, else the lowest indices. With `take_equal < ties` the select
    // resolved every key bit: the ties are the keys with `key & mask ==
    // prefix` (16-bit types: NaN's key has low bits set).
    let all_fit = p.k - v.take_equal + v.ties <= layout.capacity;
    let (tie_mask, tie_prefix) = if v.take_equal == v.ties || all_fit {
        (0, 0)
    } else {
        let by_index = |key: u32, index: u32| {
            if key & v.mask == v.prefix {
                !index
            } else {
                0
            }
        };
        let t = select(
            slice,
            by_index,
            v.take_equal,
            32,
            &mut pass,
            p.chunks,
            layout,
        );
        (t.mask, t.prefix)
    };
    let keep = |key: u32, index: u32| {
        let m = key & v.mask;
        m > v.prefix || (m == v.prefix && !index & tie_mask >= tie_prefix)
    };
    gather(slice, keep, layout)
}
