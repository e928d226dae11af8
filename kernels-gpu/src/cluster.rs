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
//! Blocks exchange data only by asynchronous stores into each other's
//! shared memory that complete the receiver's mbarrier ([`Peer::send`]):
//! no fence, no cluster barrier but the one at the start (every block has
//! started and set up its mbarriers before anything is sent to it).
//!
//! 1. Filter bound: each block finds the `j = ceil(k / C)`-th largest of
//!    its threads' largest keys ([`Slice::bound`]: at least `j` of the
//!    block's elements are at or above it) and sends it to every block.
//!    The smallest of the `C` bounds has at least `k` of the row's elements
//!    at or above it: it is at or below the row's k-th key.
//! 2. Every block sends the sort words of its elements at or above the
//!    bound to its own region of block 0's candidates (a block-local
//!    counter; on logits, 2-3k elements in all), then its count to block
//!    0, and exits.
//! 3. Block 0 waits for the counts, then for the candidates they announce.
//!    If every region held its block's (the usual case) it packs them;
//!    else (heavy ties, adversarial rows) it selects the row's top k itself
//!    from global memory ([`exact_row`]).
//! 4. Block 0 sorts the candidates' top k ([`sort_top`]; the first k are
//!    the row's top k).

use crate::block::{sort_top, warp_fold, warp_inclusive_sum, warp_reserve};
use crate::device::{
    block_dim, block_idx_y, cluster_arrive_relaxed, cluster_rank, cluster_wait,
    fence_mbarrier_init, lane, shfl_idx, sync_threads, thread_idx, warp, MBarrier, Shared,
};
use crate::element::Element;
use crate::filter::exact_row;
use crate::kernel::Rows;
use crate::params::cluster_words::{BOUNDS, COUNTS, FILTERED};
use crate::params::{cluster_bars, ClusterLayout, TopKParams};
use crate::slice::Slice;

/// The block's mbarriers (block 0 uses all three, the others `bounds`).
#[derive(Clone, Copy)]
struct Bars {
    bounds: MBarrier,
    counts: MBarrier,
    candidates: MBarrier,
}

impl Bars {
    #[inline(always)]
    fn new(layout: &ClusterLayout) -> Self {
        Bars {
            bounds: MBarrier::at(layout.bars + cluster_bars::BOUNDS),
            counts: MBarrier::at(layout.bars + cluster_bars::COUNTS),
            candidates: MBarrier::at(layout.bars + cluster_bars::CANDIDATES),
        }
    }
}

/// A key at or below the row's k-th largest (1.), returned to every
/// thread. Every thread of every block of the cluster must call it, after
/// its arrive at the kernel's start (waited for here).
#[inline(always)]
fn filter_bound<E: Element>(
    slice: &Slice<E>,
    k: u32,
    blocks: u32,
    bars: Bars,
    layout: &ClusterLayout,
) -> u32 {
    let publish = slice.bound(k.div_ceil(blocks), layout.maxima);
    let words = Shared::<u32>::dynamic(layout.words);
    // Every peer has started and set up its mbarriers.
    cluster_wait();
    if let Some(bound) = publish {
        let rank = cluster_rank();
        for peer in 0..blocks {
            words
                .peer(peer)
                .send(BOUNDS + rank, bound, bars.bounds.peer(peer));
        }
    }
    bars.bounds.wait();
    let own = if lane() < blocks {
        words.get(BOUNDS + lane())
    } else {
        u32::MAX
    };
    warp_fold(own, u32::min)
}

/// Sends the sort words of the slice's elements at or above `bound` to
/// this block's region of block 0's candidates (the first `room`), then
/// their count to block 0 (2.). Block-wide.
#[inline(always)]
fn send_candidates<E: Element>(
    slice: &Slice<E>,
    bound: u32,
    room: u32,
    bars: Bars,
    layout: &ClusterLayout,
) {
    let rank = cluster_rank();
    let words = Shared::<u32>::dynamic(layout.words);
    let candidates = Shared::<u64>::dynamic(layout.candidates).peer(0);
    let landed = bars.candidates.peer(0);
    slice.append_at_least(
        bound,
        |n| warp_reserve(n, |n| words.fetch_add(FILTERED, n)),
        |slot, word| {
            if slot < room {
                candidates.send(rank * room + slot, word, landed)
            }
        },
    );
    sync_threads();
    if thread_idx() == 0 {
        words
            .peer(0)
            .send(COUNTS + rank, words.get(FILTERED), bars.counts.peer(0));
    }
}

/// Block 0 waits for every block's count and the candidates they announce
/// (3.) and packs them into `dense` (region order); returns their count,
/// or `None` when some block found more than its region holds. Block-wide.
#[inline(always)]
fn receive_candidates(room: u32, blocks: u32, bars: Bars, layout: &ClusterLayout) -> Option<u32> {
    let words = Shared::<u32>::dynamic(layout.words);
    bars.counts.wait();
    // Each warp scans the counts: lane b learns where region b starts.
    let count = if lane() < blocks {
        words.get(COUNTS + lane())
    } else {
        0
    };
    let overflow = warp_fold(count, u32::max) > room;
    let count = count.min(room);
    let end = warp_inclusive_sum(count);
    let total = shfl_idx(end, 31);
    if thread_idx() == 0 {
        bars.candidates.arrive_expect(8 * total);
    }
    bars.candidates.wait();
    if overflow {
        return None;
    }
    let start = end - count;
    let (from, to) = (
        Shared::<u64>::dynamic(layout.candidates),
        Shared::<u64>::dynamic(layout.dense),
    );
    // Warp w copies regions w, w + warps, ... (its lanes the slots).
    let mut b = warp();
    while b < blocks {
        let (n, first) = (shfl_idx(count, b), shfl_idx(start, b));
        let mut i = lane();
        while i < n {
            to.set(first + i, from.get(b * room + i));
            i += 32;
        }
        b += block_dim() / 32;
    }
    sync_threads();
    Some(total)
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
    let row_addr = p.input + row as u64 * p.vocab as u64 * E::SIZE as u64;
    let bars = Bars::new(layout);
    if tid == 0 {
        Shared::<u32>::dynamic(layout.words).set(FILTERED, 0);
        bars.bounds.init();
        bars.bounds.arrive_expect(4 * p.chunks);
        if rank == 0 {
            bars.counts.init();
            bars.counts.arrive_expect(4 * p.chunks);
            bars.candidates.init();
        }
        fence_mbarrier_init();
    }
    // This block has started (its loads are not held up by it).
    cluster_arrive_relaxed();
    let slice = Slice::<E>::load(row_addr + (start * E::SIZE) as u64, n, start);

    // 1.-2. Every element at or above the bound (the barriers of the bound
    //    order the counter's reset before any append).
    let bound = filter_bound(&slice, p.k, p.chunks, bars, layout);
    let room = layout.capacity / p.chunks;
    send_candidates(&slice, bound, room, bars, layout);
    if rank != 0 {
        return;
    }
    // 3.
    let (dense, gathered) = (
        Shared::<u64>::dynamic(layout.dense),
        Shared::<u64>::dynamic(layout.candidates),
    );
    let found = match receive_candidates(room, p.chunks, bars, layout) {
        Some(found) => found,
        None => {
            exact_row::<E>(row_addr, p.vocab, p.k, dense);
            p.k
        }
    };
    // 4. Block 0 sorts the candidates and emits the first k.
    let candidates = sort_top::<E>(dense, gathered, found, p.k);
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
