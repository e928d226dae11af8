//! Stage 1: the exact, sorted top-min(k, n) of one chunk of a row.
//!
//! One block, `n` elements (any alignment), shared memory as in
//! [`Layout`]. The chunk is read once from global memory into shared
//! memory, keeping the largest key of each group of (up to) one 16-byte
//! vector. Selecting needs only the group maxima:
//!
//! 1. the `s = min(k, groups)` best groups, ordered by (maximum key
//!    descending, group position ascending), are picked by a radix select
//!    over the maxima (ties to the lowest positions);
//! 2. every element of the chunk's top k lies in one of them: an element
//!    outside them is beaten (by key, or equal key at a lower index) by each
//!    of the `s` group maxima. So the candidates are the elements of the
//!    selected groups whose key is at least the k-th maximum's radix prefix:
//!    at most `per_vector(size) * s` of them;
//! 3. the candidates' sort words (key descending, index ascending: unique)
//!    are sorted, and the first `min(k, n)` are the chunk's top k.

use crate::block::{compact, radix_select, sort_desc_in_place, warp_append, Scratch};
use crate::device::{block_dim, lane, sync_threads, thread_idx, Shared};
use crate::element::{sort_word, Element};
use crate::load::{load_chunk, Groups, Raw};
use crate::params::{per_vector, Layout};

/// Sorts the top `min(k, n)` of the `n` elements at device address `addr`
/// (row positions from `first_index`) into the layout's candidate buffer,
/// as sort words, best first; returns how many. Every thread of the block
/// must call it; it ends with a barrier.
#[inline(always)]
pub fn chunk_topk<E: Element>(addr: u64, n: u32, first_index: u32, k: u32, layout: &Layout) -> u32 {
    let scratch = Scratch::new();
    let count = scratch.word();
    let raw = Raw::new(layout.raw);
    let maxima = Shared::<u32>::dynamic(layout.maxima);
    let selected = Shared::<u32>::dynamic(layout.selected);
    let candidates = Shared::<u64>::dynamic(layout.candidates);

    let groups = Groups::new(addr, n, E::SIZE);
    if thread_idx() == 0 {
        count.set(0, 0);
    }
    load_chunk::<E>(addr, groups, raw, maxima);
    sync_threads();

    // 1. The best `s` groups, into `selected[0..s]`.
    let g = groups.count();
    let s = if k < g { k } else { g };
    let sel = radix_select(scratch, maxima, g, s, E::KEY_BITS);
    compact(scratch, maxima, g, sel, |group, slot, _| {
        selected.set(slot, group)
    });

    // 2. Their elements at or above the floor, one per thread, appended
    //    warp by warp.
    let floor = sel.prefix;
    let per_vec = per_vector(E::SIZE);
    let items = s * per_vec;
    let mut base = thread_idx() - lane();
    while base < items {
        let item = base + lane();
        let (first, len) = if item < items {
            groups.span(selected.get(item / per_vec))
        } else {
            (0, 0)
        };
        let inside = item % per_vec < len;
        let e = first + item % per_vec;
        let key = if inside { raw.key::<E>(groups, e) } else { 0 };
        let keep = inside && key >= floor;
        if let Some(slot) = warp_append(keep, |n| count.fetch_add(0, n)) {
            candidates.set(slot, sort_word(key, first_index + e));
        }
        base += block_dim();
    }
    sync_threads();

    // 3. Sort them.
    sort_desc_in_place(candidates, count.get(0));
    if k < n {
        k
    } else {
        n
    }
}
