//! Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
//! 3", SC'11): a counter-based generator, so any thread can draw the numbers
//! of any (seed, counter) without state. Compiles for host and device; the
//! host tests check it against the published known-answer vectors.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
const fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// The four 32-bit outputs of Philox-4x32 with 10 rounds.
#[inline(always)]
pub const fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    let mut round = 0;
    while round < 10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        round += 1;
    }
    c
}

/// Counter word 0 of a row's single draw (the inverse-CDF sample); element
/// groups use `index / 4`, which stays below it.
pub const ROW_DRAW: u32 = u32::MAX;

/// The random words of stream position `word0` of row `row` at call
/// `offset`, under `seed`: the counter is `(word0, row, offset lo, offset hi)`.
#[inline(always)]
pub const fn draw(seed: u64, offset: u64, row: u32, word0: u32) -> [u32; 4] {
    philox4x32_10(
        [word0, row, offset as u32, (offset >> 32) as u32],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// A uniform `f32` in [0, 1) from 24 random bits.
#[inline(always)]
pub fn uniform(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}
