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
//! - the row's top k go to [`Rows::emit`], torch.topk's order: from every
//!   block, or (where the rows are [`Rows::gathered`]) sent to block 0's
//!   shared memory, which then runs [`Rows::finish`].
//!
//! Blocks exchange data only by asynchronous stores and bulk copies into
//! each other's shared memory that complete the receiver's mbarrier
//! ([`Peer::send`], [`Peer::copy`]): no cluster barrier but the one at the
//! start (every block has started and set up its mbarriers before anything
//! is sent to it), and every block waits for all that is sent to it before
//! it exits.
//!
//! 1. Filter bound: each block finds the `j = ceil(k / C)`-th largest of
//!    its threads' largest keys ([`Slice::bound`]: at least `j` of the
//!    block's elements are at or above it) and sends it to every block.
//!    The smallest of the `C` bounds has at least `k` of the row's elements
//!    at or above it: it is at or below the row's k-th key.
//! 2. Every block appends the sort words of its elements at or above the
//!    bound to its own region of its candidates (a block-local counter; on
//!    logits 2-3k elements in all, a few a block) and sends its count to
//!    every block.
//! 3. Every block sorts its region ([`sort_desc`]) and copies it to its
//!    region of every peer's candidates (one bulk copy a peer), then waits
//!    for the counts and the peers' regions.
//! 4. If every region held its block's (the usual case), every block ranks
//!    its own words among all the candidates (its own sorted place plus a
//!    binary search of each peer's sorted region) and emits those ranked
//!    below k: each of the row's top k once. Else (heavy ties, adversarial
//!    rows) block 0 selects the row's top k itself from global memory
//!    ([`exact_row`]) and sorts them ([`sort_top`]).

use crate::block::{div_fast, sort_desc, sort_top};
use crate::device::{
    block_dim, block_idx_y, cluster_arrive_relaxed, cluster_rank, cluster_wait,
    fence_mbarrier_init, fence_proxy_async_shared, lane, redux_add, redux_max, redux_min, shfl_idx,
    shfl_xor, sync_threads, thread_idx, warp, MBarrier, Shared,
};
use crate::element::Element;
use crate::filter::exact_row;
use crate::kernel::Rows;
use crate::params::cluster_words::{BOUNDS, COUNTS, FILTERED};
use crate::params::{cluster_bars, ClusterLayout, TopKParams};
use crate::slice::Slice;

/// Warp-maximum rounds the bound's offers take where they are few
/// ([`crate::slice::bound_of_tops`]).
const TOPS_BY_ROUNDS: u32 = 4;

/// The block's mbarriers (`ranked` in block 0 alone).
#[derive(Clone, Copy)]
struct Bars {
    bounds: MBarrier,
    counts: MBarrier,
    candidates: MBarrier,
    ranked: MBarrier,
}

impl Bars {
    #[inline(always)]
    fn new(layout: &ClusterLayout) -> Self {
        Bars {
            bounds: MBarrier::at(layout.bars + cluster_bars::BOUNDS),
            counts: MBarrier::at(layout.bars + cluster_bars::COUNTS),
            candidates: MBarrier::at(layout.bars + cluster_bars::CANDIDATES),
            ranked: MBarrier::at(layout.bars + cluster_bars::RANKED),
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
    let publish = slice.bound(
        div_fast(k + blocks - 1, blocks),
        layout.maxima,
        TOPS_BY_ROUNDS,
    );
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
    redux_min(own)
}

/// Appends the sort words of the slice's elements at or above `bound` to
/// this block's own region of its candidates (the first `room`: region
/// `cluster_rank()`, which no peer writes), then sends their count to every
/// block (2.); returns the count (more than `room` when some were
/// dropped). Block-wide.
#[inline(always)]
fn append_own<E: Element>(
    slice: &Slice<E>,
    bound: u32,
    room: u32,
    blocks: u32,
    bars: Bars,
    layout: &ClusterLayout,
) -> u32 {
    let rank = cluster_rank();
    let words = Shared::<u32>::dynamic(layout.words);
    let own = Shared::<u64>::dynamic(layout.candidates + 8 * rank * room);
    slice.append_at_least(
        bound,
        // A few candidates a block: one shared atomic a thread that keeps
        // any costs less than the warp's scan.
        |n| {
            if n > 0 {
                words.fetch_add(FILTERED, n)
            } else {
                0
            }
        },
        |slot, word| {
            if slot < room {
                own.set(slot, word)
            }
        },
    );
    sync_threads();
    let count = words.get(FILTERED);
    if thread_idx() < blocks {
        let peer = thread_idx();
        words
            .peer(peer)
            .send(COUNTS + rank, count, bars.counts.peer(peer));
    }
    count
}

/// Sorts this block's `count <= room` candidates (its region, `dense` as
/// the spare) and copies them to its region of every peer's candidates, a
/// bulk copy a peer of `count` words rounded up to even (3.); returns the
/// buffer holding them sorted. Block-wide.
#[inline(always)]
fn share_own(
    count: u32,
    room: u32,
    blocks: u32,
    bars: Bars,
    layout: &ClusterLayout,
) -> Shared<u64> {
    let rank = cluster_rank();
    let own = Shared::<u64>::dynamic(layout.candidates + 8 * rank * room);
    let sorted = sort_desc(own, Shared::dynamic(layout.dense), count);
    fence_proxy_async_shared();
    sync_threads();
    // Lane 0 of warp `peer` copies to block `peer` (one copy a warp: the
    // lanes of one warp issue theirs one after another).
    let mut peer = warp();
    while lane() == 0 && peer < blocks && count > 0 {
        if peer != rank {
            Shared::<u64>::dynamic(layout.candidates).peer(peer).copy(
                rank * room,
                sorted,
                count.next_multiple_of(2),
                bars.candidates.peer(peer),
            );
        }
        peer += block_dim() / 32;
    }
    sorted
}

/// The cluster's candidate counts (lane `q` of every warp holds block `q`'s)
/// once every block has sent its own.
#[derive(Clone, Copy)]
struct Counts {
    /// Block `lane()`'s count (0 for lanes past the cluster).
    mine: u32,
    /// Their sum.
    total: u32,
    /// Whether some block found more than its region holds.
    overflow: bool,
}

/// Waits for every block's count (2.), then for the lists of the peers
/// whose lists fit their regions (3.): every byte sent to this block has
/// landed when it returns (so it may exit). Block-wide.
#[inline(always)]
fn receive_lists(room: u32, blocks: u32, bars: Bars, layout: &ClusterLayout) -> Counts {
    let words = Shared::<u32>::dynamic(layout.words);
    bars.counts.wait();
    let mine = if lane() < blocks {
        words.get(COUNTS + lane())
    } else {
        0
    };
    let overflow = redux_max(mine) > room;
    let total = redux_add(mine);
    let sent = if lane() == cluster_rank() || mine > room {
        0
    } else {
        mine.next_multiple_of(2)
    };
    let sent = redux_add(sent);
    if thread_idx() == 0 {
        bars.candidates.arrive_expect(8 * sent);
    }
    bars.candidates.wait();
    Counts {
        mine,
        total,
        overflow,
    }
}

/// Most peers' regions one lane of [`rank_own`] searches side by side.
const SEARCHES: u32 = 4;

/// Hands `place(rank, word)` every word of this block's sorted list `own`
/// whose rank in the cluster's candidates is below `k` (4.): its place in
/// `own` plus, for each peer, the count of the peer's words above it (a
/// binary search of the peer's sorted region). A group of `lanes` lanes
/// takes a word, lane `p` of it searching blocks `p`, `p + lanes`, ... (up
/// to [`SEARCHES`] side by side, their loads in flight together), the
/// group's counts summed by shuffles; groups as narrow as needed for every
/// word to take one pass of the block. Every thread must call it (no
/// barrier inside).
#[inline(always)]
fn rank_own<F: Fn(u32, u64)>(
    own: Shared<u64>,
    counts: Counts,
    room: u32,
    blocks: u32,
    k: u32,
    layout: &ClusterLayout,
    place: F,
) {
    let count = shfl_idx(counts.mine, cluster_rank());
    let g = blocks.next_power_of_two();
    let mut lanes = g;
    while lanes > 1 && lanes / 2 * SEARCHES >= g && count * lanes > block_dim() {
        lanes /= 2;
    }
    let list = Ranked {
        own,
        count,
        counts,
        room,
        blocks,
        k,
        layout,
    };
    if lanes == g {
        list.rank::<1, F>(lanes, place)
    } else {
        list.rank::<{ SEARCHES as usize }, F>(lanes, place)
    }
}

/// What [`rank_own`] ranks against.
struct Ranked<'a> {
    own: Shared<u64>,
    count: u32,
    counts: Counts,
    room: u32,
    blocks: u32,
    k: u32,
    layout: &'a ClusterLayout,
}

impl Ranked<'_> {
    /// [`rank_own`] in groups of `lanes` lanes, each lane searching `S`
    /// regions (`lanes * S` at least the cluster's blocks).
    #[inline(always)]
    fn rank<const S: usize, F: Fn(u32, u64)>(&self, lanes: u32, place: F) {
        let items = self.count * lanes;
        let region = |q: u32| Shared::<u64>::dynamic(self.layout.candidates + 8 * q * self.room);
        let mut base = thread_idx() - lane();
        while base < items {
            let item = base + lane();
            let (i, p) = (item >> lanes.trailing_zeros(), item & (lanes - 1));
            let live = item < items;
            let word = if live { self.own.get(i) } else { 0 };
            // Block `p + j * lanes`'s count (0: no search), and the count of
            // its words above `word` (so far).
            let mut n = [0u32; S];
            let mut above = [0u32; S];
            let mut widest = 0;
            for j in 0..S {
                let q = p + j as u32 * lanes;
                let count_q = shfl_idx(self.counts.mine, q & 31);
                if live && q < self.blocks {
                    if q == cluster_rank() {
                        above[j] = i;
                    } else {
                        n[j] = count_q;
                        widest = widest.max(count_q);
                    }
                }
            }
            let mut step = if widest == 0 {
                0
            } else {
                1 << (31 - widest.leading_zeros())
            };
            while step > 0 {
                let mut next = [0u64; S];
                for j in 0..S {
                    if above[j] + step <= n[j] {
                        next[j] = region(p + j as u32 * lanes).get(above[j] + step - 1);
                    }
                }
                for j in 0..S {
                    if above[j] + step <= n[j] && next[j] > word {
                        above[j] += step;
                    }
                }
                step /= 2;
            }
            let mut rank = above.iter().sum::<u32>();
            let mut d = 1;
            while d < lanes {
                rank += shfl_xor(rank, d);
                d *= 2;
            }
            if live && p == 0 && rank < self.k {
                place(rank, word);
            }
            base += block_dim();
        }
    }
}

/// The cluster kernels' body (see the module doc), handing row
/// `blockIdx.y`'s top k to `rows`.
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
        bars.counts.init();
        bars.counts.arrive_expect(4 * p.chunks);
        bars.candidates.init();
        if rank == 0 {
            bars.ranked.init();
        }
        fence_mbarrier_init();
    }
    // This block has started (its loads are not held up by it).
    cluster_arrive_relaxed();
    let slice = Slice::<E>::load(row_addr + (start * E::SIZE) as u64, n, start);

    // 1.-3. (the barriers of the bound order the counter's reset before any
    //    append).
    let bound = filter_bound(&slice, p.k, p.chunks, bars, layout);
    // Regions start 16-byte aligned (for the bulk copies) and 16 bytes
    // further into the banks than the one before (`rank_own`'s lanes read
    // the regions at like places).
    let room = ((div_fast(layout.capacity, p.chunks) - 2) & !15) + 2;
    let count = append_own(&slice, bound, room, p.chunks, bars, layout);
    let own = (count <= room).then(|| share_own(count, room, p.chunks, bars, layout));
    let counts = receive_lists(room, p.chunks, bars, layout);
    match own {
        Some(own) if !counts.overflow && counts.total >= p.k => {
            // 4.
            let gathered = rows.gathered();
            rank_own(
                own,
                counts,
                room,
                p.chunks,
                p.k,
                layout,
                |at, word| match gathered {
                    Some(list) => {
                        Shared::<u64>::dynamic(list)
                            .peer(0)
                            .send(at, word, bars.ranked.peer(0))
                    }
                    None => rows.emit(row, at, word),
                },
            );
            if gathered.is_none() || rank != 0 {
                return;
            }
            if tid == 0 {
                bars.ranked.arrive_expect(8 * p.k);
            }
            bars.ranked.wait();
        }
        _ => {
            if rank != 0 {
                return;
            }
            let (dense, spare) = (
                Shared::<u64>::dynamic(layout.dense),
                Shared::<u64>::dynamic(layout.candidates),
            );
            exact_row::<E>(row_addr, p.vocab, p.k, dense);
            let top = sort_top::<E>(dense, spare, p.k, p.k);
            let mut j = tid;
            while j < p.k {
                rows.emit(row, j, top.get(j));
                j += block_dim();
            }
        }
    }
    if R::FINISHES {
        sync_threads();
        rows.finish(row);
    }
}
