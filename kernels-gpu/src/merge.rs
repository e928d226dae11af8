//! Stage 2: the row's last block merges the chunks' sorted top-k lists.
//!
//! Chunk `c` of the row left `len(c) = min(k, its length)` sort words,
//! best first, at `pool[row, c * k ..]`. Sort words are unique, so the
//! merge is a rank computation: a word's place in the row's top k is its
//! position in its own list plus, for every other list, how many words there
//! beat it (a binary search). Only words at or above a floor that at least
//! `k` words reach need a rank: the best k-th word of any full list, or the
//! worst of the lists' `ceil(k / chunks)`-th words, whichever is higher. Needs `chunks * k` sort words of
//! shared memory at `layout.pool`; no barriers after the load.

use crate::device::{block_dim, sync_threads, thread_idx, GlobalMut, Shared};
use crate::params::{Layout, TopKParams};

/// Words of `list[start..start + len]` (sorted descending) greater than `w`:
/// a binary search.
#[inline(always)]
fn count_above(list: Shared<u64>, start: u32, len: u32, w: u64) -> u32 {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if list.get(start + mid) > w {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Merges row `row`'s pool and calls `emit(rank, word)` for each of its top
/// `k` words. Every thread of the block must call it.
#[inline(always)]
pub fn merge<F: FnMut(u32, u64)>(p: &TopKParams, row: u32, layout: &Layout, mut emit: F) {
    let lists = Shared::<u64>::dynamic(layout.pool);
    let pool = GlobalMut::<u64>::new(p.pool);
    let total = p.chunks * p.k;
    let row_base = row as u64 * total as u64;
    let len = |c: u32| {
        let left = p.vocab - c * p.chunk_len;
        let n = if left < p.chunk_len {
            left
        } else {
            p.chunk_len
        };
        if n < p.k {
            n
        } else {
            p.k
        }
    };

    let mut i = thread_idx();
    while i < total {
        if i % p.k < len(i / p.k) {
            lists.set(i, pool.get_cg(row_base + i as u64));
        }
        i += block_dim();
    }
    sync_threads();

    let share = p.k.div_ceil(p.chunks);
    let (mut best_last, mut worst_share) = (0, u64::MAX);
    for c in 0..p.chunks {
        let n = len(c);
        if n == p.k {
            best_last = best_last.max(lists.get(c * p.k + p.k - 1));
        }
        worst_share = worst_share.min(if n >= share {
            lists.get(c * p.k + share - 1)
        } else {
            0
        });
    }
    let floor = best_last.max(worst_share);
    let mut i = thread_idx();
    while i < total {
        let (c, j) = (i / p.k, i % p.k);
        if j < len(c) {
            let w = lists.get(i);
            if w >= floor {
                let mut rank = j;
                for other in 0..p.chunks {
                    if other != c {
                        rank += count_above(lists, other * p.k, len(other), w);
                    }
                }
                if rank < p.k {
                    emit(rank, w);
                }
            }
        }
        i += block_dim();
    }
}
