//! Element types and their order-preserving keys (shared by host and device).
//!
//! Every input value maps to a `u32` key whose unsigned order is the order
//! `torch.topk` uses: NaN (any payload) is the largest, then `+inf`, the
//! finite values, `-inf`. Keys of 16-bit types sit in the upper 16 bits (the
//! lower 16 are zero), so one radix pass covers 8 bits of any type.
//!
//! `-0.0` and `+0.0` get distinct keys (`-0.0` just below `+0.0`), as in
//! torch's radix select.

/// Element type of the logits.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    BF16 = 0,
    F16 = 1,
    F32 = 2,
}

impl DType {
    /// Size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            DType::BF16 | DType::F16 => 2,
            DType::F32 => 4,
        }
    }

    /// Name as torch spells it (`bfloat16`, `float16`, `float32`).
    pub const fn torch_name(self) -> &'static str {
        match self {
            DType::BF16 => "bfloat16",
            DType::F16 => "float16",
            DType::F32 => "float32",
        }
    }
}

/// Key of every NaN: the largest key.
pub const NAN_KEY: u32 = u32::MAX;

/// A logits element type: how its raw bits become a key and a key an `f32`.
pub trait Element: Copy {
    /// The runtime tag of this type.
    const DTYPE: DType;
    /// Significant key bits, counted from the top (16 or 32).
    const KEY_BITS: u32;
    /// Size in bytes.
    const SIZE: u32;
    /// Raw bits of `-inf`.
    const NEG_INF_BITS: u32;

    /// Order-preserving key of the element whose raw bits are `bits`
    /// (zero-extended to 32 bits).
    fn key(bits: u32) -> u32;

    /// The element's value as `f32` (exact for all three types).
    fn to_f32(bits: u32) -> f32;

    /// Raw bits of the element whose key is `key` (inverse of [`Element::key`]
    /// for non-NaN values; NaN comes back as the canonical quiet NaN).
    fn bits_of_key(key: u32) -> u32;

    /// The value of a key, as `f32`.
    fn key_to_f32(key: u32) -> f32 {
        Self::to_f32(Self::bits_of_key(key))
    }
}

/// Order-preserving map of IEEE bits of `width` bits (16 or 32) with the
/// given NaN test, result left-aligned in a `u32`.
#[inline(always)]
const fn ieee_key(bits: u32, width: u32, is_nan: bool) -> u32 {
    if is_nan {
        return NAN_KEY;
    }
    let sign = 1u32 << (width - 1);
    let mask = if width == 32 {
        u32::MAX
    } else {
        (1u32 << width) - 1
    };
    let k = if bits & sign != 0 {
        !bits & mask
    } else {
        bits | sign
    };
    k << (32 - width)
}

/// Inverse of [`ieee_key`] for non-NaN keys.
#[inline(always)]
const fn ieee_bits(key: u32, width: u32) -> u32 {
    let k = key >> (32 - width);
    let sign = 1u32 << (width - 1);
    let mask = if width == 32 {
        u32::MAX
    } else {
        (1u32 << width) - 1
    };
    if k & sign != 0 {
        k & !sign
    } else {
        !k & mask
    }
}

/// bfloat16 (bits in the low 16 bits).
#[derive(Clone, Copy, Debug)]
pub struct Bf16;
/// IEEE half precision (bits in the low 16 bits).
#[derive(Clone, Copy, Debug)]
pub struct F16;
/// IEEE single precision.
#[derive(Clone, Copy, Debug)]
pub struct F32;

impl Element for Bf16 {
    const DTYPE: DType = DType::BF16;
    const KEY_BITS: u32 = 16;
    const SIZE: u32 = 2;
    const NEG_INF_BITS: u32 = 0xff80;

    #[inline(always)]
    fn key(bits: u32) -> u32 {
        ieee_key(bits, 16, bits & 0x7fff > 0x7f80)
    }

    #[inline(always)]
    fn to_f32(bits: u32) -> f32 {
        f32::from_bits(bits << 16)
    }

    #[inline(always)]
    fn bits_of_key(key: u32) -> u32 {
        if key == NAN_KEY {
            0x7fc0
        } else {
            ieee_bits(key, 16)
        }
    }
}

impl Element for F16 {
    const DTYPE: DType = DType::F16;
    const KEY_BITS: u32 = 16;
    const SIZE: u32 = 2;
    const NEG_INF_BITS: u32 = 0xfc00;

    #[inline(always)]
    fn key(bits: u32) -> u32 {
        ieee_key(bits, 16, bits & 0x7fff > 0x7c00)
    }

    #[inline(always)]
    fn to_f32(bits: u32) -> f32 {
        let sign = (bits & 0x8000) << 16;
        let exp = (bits >> 10) & 0x1f;
        let man = bits & 0x3ff;
        match exp {
            // Zero and subnormals: man * 2^-24, exact in f32.
            0 => f32::from_bits((man as f32 * (1.0 / 16_777_216.0)).to_bits() | sign),
            31 => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
            _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
        }
    }

    #[inline(always)]
    fn bits_of_key(key: u32) -> u32 {
        if key == NAN_KEY {
            0x7e00
        } else {
            ieee_bits(key, 16)
        }
    }
}

impl Element for F32 {
    const DTYPE: DType = DType::F32;
    const KEY_BITS: u32 = 32;
    const SIZE: u32 = 4;
    const NEG_INF_BITS: u32 = 0xff80_0000;

    #[inline(always)]
    fn key(bits: u32) -> u32 {
        ieee_key(bits, 32, bits & 0x7fff_ffff > 0x7f80_0000)
    }

    #[inline(always)]
    fn to_f32(bits: u32) -> f32 {
        f32::from_bits(bits)
    }

    #[inline(always)]
    fn bits_of_key(key: u32) -> u32 {
        if key == NAN_KEY {
            0x7fc0_0000
        } else {
            ieee_bits(key, 32)
        }
    }
}

/// Sort word of a candidate: larger word = earlier in the output
/// (larger key first, then lower index first).
#[inline(always)]
pub const fn sort_word(key: u32, index: u32) -> u64 {
    ((key as u64) << 32) | (!index) as u64
}

/// Key and index back out of a [`sort_word`].
#[inline(always)]
pub const fn unpack_sort_word(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, !(word as u32))
}
