//! Global → shared loads of a block's chunk, cut into groups: one per
//! aligned 16-byte vector, one per element before the first vector and after
//! the last. Groups are numbered in element order.

use crate::device::{block_dim, load_nc_v4, thread_idx, Global, Shared};
use crate::element::Element;
use crate::params::per_vector;

/// 16-byte loads each thread has in flight.
const UNROLL: u32 = 4;

/// Where the groups of a chunk of `n` elements of `E` start and end.
#[derive(Clone, Copy)]
pub struct Groups {
    /// Elements before the first 16-byte boundary (one group each).
    head: u32,
    /// Whole 16-byte vectors after them.
    vectors: u32,
    /// Elements in the chunk.
    n: u32,
    /// Elements per vector.
    per_vec: u32,
}

impl Groups {
    /// The groups of the `n` elements of `size` bytes at device address `addr`.
    #[inline(always)]
    pub fn new(addr: u64, n: u32, size: u32) -> Self {
        let per_vec = per_vector(size);
        let misalign = (16 - (addr % 16) as u32) % 16 / size;
        let head = if misalign < n { misalign } else { n };
        Groups {
            head,
            vectors: (n - head) / per_vec,
            n,
            per_vec,
        }
    }

    /// Number of groups.
    #[inline(always)]
    pub fn count(self) -> u32 {
        self.n - self.vectors * (self.per_vec - 1)
    }

    /// First element and length of group `g`.
    #[inline(always)]
    pub fn span(self, g: u32) -> (u32, u32) {
        if g < self.head {
            (g, 1)
        } else if g - self.head < self.vectors {
            (self.head + (g - self.head) * self.per_vec, self.per_vec)
        } else {
            (g + self.vectors * (self.per_vec - 1), 1)
        }
    }

    /// Raw-buffer slot of element `i`: shifted so that vectors land on 16 bytes.
    #[inline(always)]
    fn slot(self, i: u32) -> u32 {
        i + (self.per_vec - self.head) % self.per_vec
    }
}

/// A chunk's raw elements in shared memory, at the slots [`Groups`] gives.
#[derive(Clone, Copy)]
pub struct Raw {
    offset: u32,
}

impl Raw {
    /// The buffer `offset` bytes into dynamic shared memory (16-byte aligned).
    #[inline(always)]
    pub fn new(offset: u32) -> Self {
        Raw { offset }
    }

    /// Key of element `i`.
    #[inline(always)]
    pub fn key<E: Element>(self, groups: Groups, i: u32) -> u32 {
        let slot = groups.slot(i);
        let bits = if E::SIZE == 2 {
            Shared::<u16>::dynamic(self.offset).get(slot) as u32
        } else {
            Shared::<u32>::dynamic(self.offset).get(slot)
        };
        E::key(bits)
    }

    #[inline(always)]
    fn set(self, size: u32, slot: u32, bits: u32) {
        if size == 2 {
            Shared::<u16>::dynamic(self.offset).set(slot, bits as u16);
        } else {
            Shared::<u32>::dynamic(self.offset).set(slot, bits);
        }
    }
}

/// Loads the chunk at `addr` (aligned to the element size) into `raw` and
/// the largest key of each group into `maxima[0..groups.count()]`. 16-byte
/// loads, `UNROLL` in flight per thread. Needs a barrier before the results
/// are read.
#[inline(always)]
pub fn load_chunk<E: Element>(addr: u64, groups: Groups, raw: Raw, maxima: Shared<u32>) {
    let tid = thread_idx();
    let threads = block_dim();
    let per_vec = groups.per_vec;
    let vectors = groups.vectors;
    let tail_start = groups.head + vectors * per_vec;

    // Head and tail: one group per element.
    let edge = groups.head + (groups.n - tail_start);
    let halves = Global::<u16>::new(addr);
    let words = Global::<u32>::new(addr);
    let mut e = tid;
    while e < edge {
        let (i, g) = if e < groups.head {
            (e, e)
        } else {
            (tail_start + e - groups.head, e + vectors)
        };
        let bits = if E::SIZE == 2 {
            halves.get(i) as u32
        } else {
            words.get(i)
        };
        raw.set(E::SIZE, groups.slot(i), bits);
        maxima.set(g, E::key(bits));
        e += threads;
    }

    // Aligned middle: one group per vector.
    let first = addr + (groups.head * E::SIZE) as u64;
    let words = Shared::<u32>::dynamic(raw.offset);
    let load = |v: u32| {
        if v < vectors {
            load_nc_v4(first + 16 * v as u64)
        } else {
            [0; 4]
        }
    };
    let store = |v: u32, data: [u32; 4]| {
        if v >= vectors {
            return;
        }
        words.set_v4(groups.slot(groups.head + v * per_vec) * E::SIZE / 4, data);
        let mut max = 0;
        for word in data {
            if E::SIZE == 2 {
                max = max.max(E::key(word & 0xffff)).max(E::key(word >> 16));
            } else {
                max = max.max(E::key(word));
            }
        }
        maxima.set(groups.head + v, max);
    };
    let mut v = tid;
    while v < vectors {
        let batch = [
            load(v),
            load(v + threads),
            load(v + 2 * threads),
            load(v + 3 * threads),
        ];
        store(v, batch[0]);
        store(v + threads, batch[1]);
        store(v + 2 * threads, batch[2]);
        store(v + 3 * threads, batch[3]);
        v += UNROLL * threads;
    }
}
