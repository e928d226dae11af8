//! A block's share of a row held in registers, and what blocks do with
//! one: the bound of its largest keys, appends of the elements that pass a
//! test. Used by the cluster body ([`crate::cluster`]) and the filter body
//! ([`crate::filter`]).

use core::marker::PhantomData;

#[cfg(doc)]
use crate::block::warp_slots;
use crate::block::{
    div_fast, radix_select, rank_words, warp_append, warp_sort_desc, warp_tops, LaneWord, Scratch,
};
use crate::device::{
    block_dim, lane, load_nc_v4, max_nan_bf16x2, max_nan_f16x2, max_nan_f32, not_below_bf16x2,
    not_below_f16x2, sync_threads, thread_idx, warp, Global, Shared,
};
use crate::element::{sort_word, DType, Element, NAN_KEY};
use crate::params::CLUSTER_VECTORS;

/// A block's share of its row, in registers. Positions count from the
/// 16-byte boundary at or before the share's first element; thread `t`
/// holds vectors `j * threads + t`, `j < CLUSTER_VECTORS`, each as one
/// `u128` (element `l` in bits `l * size * 8..`), indexed only with
/// constants so they stay in registers.
pub struct Slice<E> {
    words: [u128; 5],
    /// Positions before the first element (`0..per_vec`).
    head: u32,
    /// Elements in the share.
    n: u32,
    /// Row index of the first element.
    start: u32,
    /// Vectors the share's positions span.
    vectors: u32,
    element: PhantomData<E>,
}

const _: () = assert!(CLUSTER_VECTORS == 5);

impl<E: Element> Slice<E> {
    const PER_VEC: u32 = 16 / E::SIZE;
    const BITS: u32 = 8 * E::SIZE;

    /// Loads the `n` elements at device address `addr` (row index `start`
    /// on): whole vectors with 16-byte loads, the two edge vectors element
    /// by element (nothing outside the share is read). Positions without an
    /// element hold `-inf`, the smallest value (for [`Slice::top_key`]).
    #[inline(always)]
    pub fn load(addr: u64, n: u32, start: u32) -> Self {
        let head = (addr % 16) as u32 / E::SIZE;
        let base = addr - (head * E::SIZE) as u64;
        let vectors = (head + n).div_ceil(Self::PER_VEC);
        let lane_mask = u32::MAX >> (32 - Self::BITS);
        let neg_inf = E::NEG_INF_BITS;
        let mut fill = 0u128;
        for l in 0..Self::PER_VEC {
            fill |= (neg_inf as u128) << (Self::BITS * l);
        }
        let load = |j: u32| -> u128 {
            let v = j * block_dim() + thread_idx();
            if Self::whole(head, n, v) {
                return load_vector(base + 16 * v as u64);
            }
            if v >= vectors {
                return fill;
            }
            let first = v * Self::PER_VEC;
            let mut x = fill;
            for l in 0..Self::PER_VEC {
                let pos = first + l;
                if pos >= head && pos < head + n {
                    let bits = if E::SIZE == 2 {
                        Global::<u16>::new(base).get(pos) as u32
                    } else {
                        Global::<u32>::new(base).get(pos)
                    };
                    let shift = Self::BITS * l;
                    x = x & !((lane_mask as u128) << shift) | (bits as u128) << shift;
                }
            }
            x
        };
        Slice {
            words: [load(0), load(1), load(2), load(3), load(4)],
            head,
            n,
            start,
            vectors,
            element: PhantomData,
        }
    }

    /// Whether vector `v` of a share of `n` elements after `head` positions
    /// holds only the share's elements: vectors `lo..lo + count` (one
    /// compare a vector on the usual path).
    #[inline(always)]
    fn whole(head: u32, n: u32, v: u32) -> bool {
        let lo = (head > 0) as u32;
        let count = ((head + n) / Self::PER_VEC).saturating_sub(lo);
        v.wrapping_sub(lo) < count
    }

    /// Calls `f(key, index)` for every position of every vector slot any
    /// thread of the block holds, the same sequence in every lane (so `f`
    /// may use warp votes); `key` is 0 (below every real key) where this
    /// thread holds no element.
    #[inline(always)]
    pub fn each<F: FnMut(u32, u32)>(&self, mut f: F) {
        self.vector(0, &mut f);
        self.vector(1, &mut f);
        self.vector(2, &mut f);
        self.vector(3, &mut f);
        self.vector(4, &mut f);
    }

    /// The key of one of this thread's elements at least as large as all
    /// of them but perhaps a `+0.0` (a `-0.0` may stand for it), or of
    /// `-inf` where it holds none: packed maxima over its vectors, a few
    /// instructions per vector.
    #[inline(always)]
    pub fn top_key(&self) -> u32 {
        let w = &self.words;
        packed_key::<E>(pair_max::<E>(
            pair_max::<E>(packed_max::<E>(w[0]), packed_max::<E>(w[1])),
            pair_max::<E>(
                pair_max::<E>(packed_max::<E>(w[2]), packed_max::<E>(w[3])),
                packed_max::<E>(w[4]),
            ),
        ))
    }

    /// Raw bits of element `l` of vector `w`.
    #[inline(always)]
    fn bits(w: u128, l: u32) -> u32 {
        (w >> (Self::BITS * l)) as u32 & (u32::MAX >> (32 - Self::BITS))
    }

    /// [`Slice::each`] over vector slot `j` (a constant at every call).
    #[inline(always)]
    fn vector<F: FnMut(u32, u32)>(&self, j: usize, f: &mut F) {
        if j as u32 * block_dim() >= self.vectors {
            return;
        }
        let w = self.words[j];
        let first = (j as u32 * block_dim() + thread_idx()) * Self::PER_VEC;
        for l in 0..Self::PER_VEC {
            let pos = first + l;
            let bits = Self::bits(w, l);
            let inside = pos >= self.head && pos < self.head + self.n;
            let key = if inside { E::key(bits) } else { 0 };
            f(key, self.start + pos - self.head);
        }
    }
}

/// The 16-byte vector at the 16-byte-aligned device address `addr` of
/// read-only input, as one `u128` (element `l` in bits `l * size * 8..`).
#[inline(always)]
pub fn load_vector(addr: u64) -> u128 {
    let w = load_nc_v4(addr);
    w[0] as u128 | (w[1] as u128) << 32 | (w[2] as u128) << 64 | (w[3] as u128) << 96
}

/// Bit `l` set where element `l` of the 16-byte vector `w` of `E` is not
/// below `floor` (or either is NaN), as `!(x < floor)` in `f32`, with
/// `floor_bits` the floor's raw bits as an `E`. Packed compares for the
/// 16-bit types.
#[inline(always)]
fn not_below<E: Element>(w: u128, floor: f32, floor_bits: u32) -> u32 {
    let word = |i: u32| (w >> (32 * i)) as u32;
    // Word i's low half is element 2i, its high half element 2i + 1.
    let pairs = |f: fn(u32, u32) -> u32| {
        let both = floor_bits | floor_bits << 16;
        let m = (0..4).fold(0, |m, i| {
            m | f(word(i), both) & (1 << (2 * i) | 1 << (17 + 2 * i))
        });
        (m | m >> 16) & 0xff
    };
    match E::DTYPE {
        DType::BF16 => pairs(not_below_bf16x2),
        DType::F16 => pairs(not_below_f16x2),
        DType::F32 => (0..4).fold(0, |m, i| {
            m | ((!(f32::from_bits(word(i)) < floor)) as u32) << i
        }),
    }
}

/// Packed maximum of two 32-bit words of `E` (NaN wins).
#[inline(always)]
fn pair_max<E: Element>(a: u32, b: u32) -> u32 {
    match E::DTYPE {
        DType::BF16 => max_nan_bf16x2(a, b),
        DType::F16 => max_nan_f16x2(a, b),
        DType::F32 => max_nan_f32(a, b),
    }
}

/// Packed maximum of the four 32-bit words of a 16-byte vector of `E`.
#[inline(always)]
fn packed_max<E: Element>(v: u128) -> u32 {
    let a = pair_max::<E>(v as u32, (v >> 32) as u32);
    let b = pair_max::<E>((v >> 64) as u32, (v >> 96) as u32);
    pair_max::<E>(a, b)
}

/// The key of the larger element of a packed maximum (one `f32`, or two
/// 16-bit elements); a `-0.0` may stand for a `+0.0`.
#[inline(always)]
fn packed_key<E: Element>(m: u32) -> u32 {
    if E::SIZE == 2 {
        E::key(m & 0xffff).max(E::key(m >> 16))
    } else {
        E::key(m)
    }
}

/// The key of the largest element of the 16-byte vector `v` of `E`, as
/// [`Slice::top_key`] takes it.
#[inline(always)]
pub fn vector_top_key<E: Element>(v: u128) -> u32 {
    packed_key::<E>(packed_max::<E>(v))
}

/// Keys each warp offers the block's bound: where rounds of a warp maximum
/// take them ([`bound_of_tops`]'s `rounds`), its share of the `j` and two
/// more (a warp rarely holds two more of the block's top `j` thread maxima
/// than its share, so the bound stays the exact `j`-th); ...
const TOPS_SPARE: u32 = 2;
/// ... else six from a shuffle sort (fewer offers, a cheaper rank count but
/// a lower bound, more candidates): six measured fastest where the block's
/// warps then offer at least `j` keys (BENCHMARKS.md v11: 256 x 262,144
/// k=50 0.0770 -> 0.0763 ms against eight) ...
const TOPS_PER_WARP: u32 = 6;
/// ... and eight where they would not (64 x 151,936 k=1024, j = 79 over 12
/// warps: 0.0302 ms against 0.0318 with six, where the radix select took
/// over; seven would leave ~20% more candidates).
const TOPS_PER_WARP_MAX: u32 = 8;

impl<E: Element> Slice<E> {
    /// The `j`-th largest of the block's threads' largest keys, which has at
    /// least `j` of the block's elements at or above it (0 when fewer than
    /// `j` threads hold any); returned to one thread ([`bound_of_tops`]).
    /// Block-wide, with barriers.
    #[inline(always)]
    pub fn bound(&self, j: u32, maxima: u32, rounds: u32) -> Option<u32> {
        // A thread with no element offers -inf's key: a bound that low has
        // the whole row at or above it.
        bound_of_tops::<E>(self.top_key(), j, maxima, rounds)
    }

    /// Hands `put(slot, word)` the sort word of every element whose value
    /// is not below the value of key `bound` (every element whose key is at
    /// least `bound`, and perhaps a `-0.0` more), at consecutive slots from
    /// `first_slot(n)`, the first of `n` slots for this thread's `n` (every
    /// lane of every warp calls it, `n` perhaps 0: [`warp_slots`], or a
    /// shared counter's own atomic). Each thread tests its elements into a
    /// mask, packed compares as `f32` (no test of the vector's maximum
    /// first: on logits most warps hold a candidate in most vector slots,
    /// BENCHMARKS.md v14), takes its slots and writes its own.
    /// Every lane of the warp must call it.
    #[inline(always)]
    pub fn append_at_least<F, P>(&self, bound: u32, first_slot: F, put: P)
    where
        F: Fn(u32) -> u32,
        P: Fn(u32, u64),
    {
        // NaN (a NaN floor, a NaN element) passes: `<` is false.
        let floor = E::key_to_f32(bound);
        let floor_bits = E::bits_of_key(bound);
        let kept = |j: usize| -> u32 {
            if j as u32 * block_dim() >= self.vectors {
                return 0;
            }
            let v = j as u32 * block_dim() + thread_idx();
            let first = v * Self::PER_VEC;
            let inside = if Self::whole(self.head, self.n, v) {
                u32::MAX >> (32 - Self::PER_VEC)
            } else {
                // An edge vector: its positions outside the share hold -inf,
                // which a -inf floor would keep.
                (0..Self::PER_VEC).fold(0, |m, l| {
                    let pos = first + l;
                    m | ((pos >= self.head && pos < self.head + self.n) as u32) << l
                })
            };
            not_below::<E>(self.words[j], floor, floor_bits) & inside
        };
        let masks = [kept(0), kept(1), kept(2), kept(3), kept(4)];
        let mut at = first_slot(masks.iter().map(|m| m.count_ones()).sum::<u32>());
        let mut write = |j: usize| {
            let mut kept = masks[j];
            let first = (j as u32 * block_dim() + thread_idx()) * Self::PER_VEC;
            while kept != 0 {
                let l = kept.trailing_zeros();
                kept &= kept - 1;
                let key = E::key(Self::bits(self.words[j], l));
                put(at, sort_word(key, self.start + first + l - self.head));
                at += 1;
            }
        };
        write(0);
        write(1);
        write(2);
        write(3);
        write(4);
    }

    /// Hands `put(slot, word)` the sort word of every element that
    /// `keep(key, index)` (never a position without an element, key 0), at
    /// the slots `reserve(n)` (one call per warp that keeps any) hands out.
    /// Every lane of the warp must call it.
    #[inline(always)]
    pub fn append<K, F, P>(&self, keep: K, reserve: F, put: P)
    where
        K: Fn(u32, u32) -> bool,
        F: Fn(u32) -> u32,
        P: Fn(u32, u64),
    {
        self.each(|key, index| {
            let kept = key != 0 && keep(key, index);
            if let Some(slot) = warp_append(kept, &reserve) {
                put(slot, sort_word(key, index));
            }
        });
    }
}

/// A key and the position of its offer in one word, ordered by (key
/// descending, position ascending): 32 bits for 16-bit keys (left-aligned,
/// [`crate::element::Element::key`]; a cheaper rank count), 64 for 32-bit
/// ones.
trait Offer: LaneWord {
    fn pack(key: u32, position: u32) -> Self;
    fn key(self) -> u32;
}

impl Offer for u32 {
    #[inline(always)]
    fn pack(key: u32, position: u32) -> u32 {
        key & 0xffff_0000 | (0xffff - position)
    }
    #[inline(always)]
    fn key(self) -> u32 {
        // The NaN key's upper half is all ones; no other key's is.
        if self >= 0xffff_0000 {
            NAN_KEY
        } else {
            self & 0xffff_0000
        }
    }
}

impl Offer for u64 {
    #[inline(always)]
    fn pack(key: u32, position: u32) -> u64 {
        (key as u64) << 32 | (u32::MAX - position) as u64
    }
    #[inline(always)]
    fn key(self) -> u32 {
        (self >> 32) as u32
    }
}

/// The `j`-th largest of the warps' first `per` keys of `sorted` (each
/// warp's keys sorted descending over its lanes), `offered` in all: the
/// one with `j - 1` above it in (key descending, position ascending)
/// order, by a rank count, returned to one thread. Block-wide, with a
/// barrier.
#[inline(always)]
fn rank_offers<W: Offer>(sorted: u32, per: u32, offered: u32, j: u32, maxima: u32) -> Option<u32> {
    let words = Shared::<W>::dynamic(maxima);
    let position = warp() * per + lane();
    if lane() < per {
        words.set(position, W::pack(sorted, position));
    }
    sync_threads();
    let (rank, word) = rank_words(words, offered)?;
    (rank == j - 1).then_some(word.key())
}

/// The `j`-th largest of the block's keys `top` (one a thread), returned
/// to one thread. Each warp offers its top few keys ([`warp_tops`]: by
/// rounds of a warp maximum where they are at most `rounds`, which costs
/// less than a shuffle sort at a block's start up to four, BENCHMARKS.md
/// v16, but more in a busy SM), and a rank count over the offers picks the
/// j-th when they hold at least `j` keys; else a block radix select over
/// all of them. Uses the scratch header and `4 * block_dim()` bytes of
/// shared memory at `maxima`; block-wide, with barriers.
#[inline(always)]
pub fn bound_of_tops<E: Element>(top: u32, j: u32, maxima: u32, rounds: u32) -> Option<u32> {
    let warps = block_dim() / 32;
    let few = div_fast(j + warps - 1, warps) + TOPS_SPARE;
    let by_rounds = rounds > 0 && few <= rounds;
    let per = j.min(if by_rounds {
        few
    } else if TOPS_PER_WARP * warps >= j {
        TOPS_PER_WARP
    } else {
        TOPS_PER_WARP_MAX
    });
    let offered = per * warps;
    if offered >= j {
        let sorted = if by_rounds {
            warp_tops(top, per)
        } else {
            warp_sort_desc(top)
        };
        if E::KEY_BITS == 16 {
            rank_offers::<u32>(sorted, per, offered, j, maxima)
        } else {
            rank_offers::<u64>(sorted, per, offered, j, maxima)
        }
    } else {
        let keys = Shared::<u32>::dynamic(maxima);
        keys.set(thread_idx(), top);
        let sel = radix_select(Scratch::new(), keys, block_dim(), j, E::KEY_BITS);
        (thread_idx() == 0).then_some(sel.prefix)
    }
}
