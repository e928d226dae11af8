//! Global → shared loads of a block's keys, with the maximum of each
//! 16-byte group of them (the filter of [`crate::block::floor_from_group_maxima`]).

use crate::device::{block_dim, load_nc_v4, thread_idx, Global, Shared};

/// 16-byte loads each thread has in flight.
const UNROLL: u32 = 4;

/// Loads the `n` elements of `size` (2 or 4) bytes at device address `addr`
/// (aligned to `size`) into `keys[0..n]` as `key_of(bits)`, and the largest
/// key of each group into `maxima`; returns the number of groups. 16-byte
/// loads where aligned, `UNROLL` of them in flight per thread. Needs a
/// barrier before the results are read.
#[inline(always)]
pub fn load_keys<F: Fn(u32) -> u32>(addr: u64, n: u32, size: u32, key_of: F, keys: Shared<u32>, maxima: Shared<u32>) -> u32 {
    let tid = thread_idx();
    let threads = block_dim();
    let per_vec = 16 / size;
    let misalign = (16 - (addr % 16) as u32) % 16 / size;
    let head = if misalign < n { misalign } else { n };
    let vectors = (n - head) / per_vec;
    let tail_start = head + vectors * per_vec;
    let edge = head + (n - tail_start);

    // Head (before the first 16-byte boundary) and tail (after the last):
    // one group per element, numbered after the vectors.
    let halves = Global::<u16>::new(addr);
    let words = Global::<u32>::new(addr);
    let mut e = tid;
    while e < edge {
        let i = if e < head { e } else { tail_start + e - head };
        let bits = if size == 2 { halves.get(i) as u32 } else { words.get(i) };
        let key = key_of(bits);
        keys.set(i, key);
        maxima.set(vectors + e, key);
        e += threads;
    }

    // Aligned middle: one group per vector.
    let first = addr + (head * size) as u64;
    let load = |v: u32| if v < vectors { load_nc_v4(first + 16 * v as u64) } else { [0; 4] };
    let store = |v: u32, data: [u32; 4]| {
        if v >= vectors {
            return;
        }
        let base = head + v * per_vec;
        let mut max = 0;
        for (w, word) in (0u32..).zip(data) {
            if size == 2 {
                let (lo, hi) = (key_of(word & 0xffff), key_of(word >> 16));
                keys.set(base + 2 * w, lo);
                keys.set(base + 2 * w + 1, hi);
                max = max.max(lo).max(hi);
            } else {
                let key = key_of(word);
                keys.set(base + w, key);
                max = max.max(key);
            }
        }
        maxima.set(v, max);
    };
    let mut v = tid;
    while v < vectors {
        let batch = [load(v), load(v + threads), load(v + 2 * threads), load(v + 3 * threads)];
        store(v, batch[0]);
        store(v + threads, batch[1]);
        store(v + 2 * threads, batch[2]);
        store(v + 3 * threads, batch[3]);
        v += UNROLL * threads;
    }
    vectors + edge
}
