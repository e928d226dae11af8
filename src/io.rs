//! Logits in and top-k results out: safetensors files and seeded
//! standard-normal logits, for the benchmark and the tests.

use std::path::{Path, PathBuf};

use crate::{DType, Logit};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use safetensors::SafeTensors;

/// Errors of reading or writing logits and results.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("unsupported dtype {0:?}: expected bfloat16, float16 or float32")]
    UnsupportedDtype(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid safetensors file: {source}")]
    Format {
        path: PathBuf,
        source: safetensors::SafeTensorError,
    },
    #[error("{path} has no tensor named \"logits\"")]
    MissingTensor { path: PathBuf },
    #[error("tensor \"logits\" in {path} has shape {shape:?}; expected [batch, vocab] with both at least 1")]
    BadShape { path: PathBuf, shape: Vec<usize> },
    #[error("tensor \"logits\" in {path} has dtype {dtype:?}; expected BF16, F16 or F32")]
    BadDtype { path: PathBuf, dtype: StDtype },
}

/// Host logits of one of the three dtypes, `[batch, vocab]` row-major.
#[derive(Debug)]
pub enum Logits {
    BF16 {
        data: Vec<half::bf16>,
        batch: usize,
        vocab: usize,
    },
    F16 {
        data: Vec<half::f16>,
        batch: usize,
        vocab: usize,
    },
    F32 {
        data: Vec<f32>,
        batch: usize,
        vocab: usize,
    },
}

/// `bfloat16` / `float16` / `float32` (torch's names) to a [`DType`].
pub fn parse_dtype(name: &str) -> Result<DType, IoError> {
    match name {
        "bfloat16" | "bf16" => Ok(DType::BF16),
        "float16" | "f16" | "half" => Ok(DType::F16),
        "float32" | "f32" | "float" => Ok(DType::F32),
        other => Err(IoError::UnsupportedDtype(other.to_string())),
    }
}

/// Seeded standard-normal samples (SplitMix64 and Box-Muller).
pub fn randn(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed ^ 0x5eed_5eed_5eed_5eed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // u1 in (0, 1], u2 in [0, 1).
        let u1 = ((next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let u2 = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

fn convert<T: Logit>(values: &[f32]) -> Vec<T> {
    values.iter().map(|&v| T::from_f32(v)).collect()
}

impl Logits {
    /// Standard-normal logits of `dtype`.
    pub fn randn(dtype: DType, batch: usize, vocab: usize, seed: u64) -> Logits {
        let v = randn(batch * vocab, seed);
        match dtype {
            DType::BF16 => Logits::BF16 {
                data: convert(&v),
                batch,
                vocab,
            },
            DType::F16 => Logits::F16 {
                data: convert(&v),
                batch,
                vocab,
            },
            DType::F32 => Logits::F32 {
                data: v,
                batch,
                vocab,
            },
        }
    }
}

fn path_err(path: &Path) -> PathBuf {
    path.to_path_buf()
}

/// Read tensor `logits` (`[batch, vocab]`, BF16/F16/F32) from a safetensors file.
pub fn read_logits(path: &Path) -> Result<Logits, IoError> {
    let bytes = std::fs::read(path).map_err(|source| IoError::Read {
        path: path_err(path),
        source,
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|source| IoError::Format {
        path: path_err(path),
        source,
    })?;
    let t = st.tensor("logits").map_err(|_| IoError::MissingTensor {
        path: path_err(path),
    })?;
    let shape = t.shape().to_vec();
    if shape.len() != 2 || shape[0] == 0 || shape[1] == 0 {
        return Err(IoError::BadShape {
            path: path_err(path),
            shape,
        });
    }
    let (batch, vocab) = (shape[0], shape[1]);
    let raw = t.data();
    let u16s = || {
        raw.as_chunks::<2>()
            .0
            .iter()
            .map(|&b| u16::from_le_bytes(b))
    };
    Ok(match t.dtype() {
        StDtype::BF16 => Logits::BF16 {
            data: u16s().map(half::bf16::from_bits).collect(),
            batch,
            vocab,
        },
        StDtype::F16 => Logits::F16 {
            data: u16s().map(half::f16::from_bits).collect(),
            batch,
            vocab,
        },
        StDtype::F32 => Logits::F32 {
            data: raw
                .as_chunks::<4>()
                .0
                .iter()
                .map(|&b| f32::from_le_bytes(b))
                .collect(),
            batch,
            vocab,
        },
        dtype => {
            return Err(IoError::BadDtype {
                path: path_err(path),
                dtype,
            })
        }
    })
}

/// Write `values` (F32) and `indices` (I64, as torch returns them),
/// both `[batch, k]`, to a safetensors file.
pub fn write_topk(
    path: &Path,
    values: &[f32],
    indices: &[u32],
    batch: usize,
    k: usize,
) -> Result<(), IoError> {
    let vbytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ibytes: Vec<u8> = indices
        .iter()
        .flat_map(|&i| (i as i64).to_le_bytes())
        .collect();
    let format = |source| IoError::Format {
        path: path_err(path),
        source,
    };
    let tensors = [
        (
            "values",
            TensorView::new(StDtype::F32, vec![batch, k], &vbytes).map_err(format)?,
        ),
        (
            "indices",
            TensorView::new(StDtype::I64, vec![batch, k], &ibytes).map_err(format)?,
        ),
    ];
    let bytes = safetensors::serialize(tensors, &None).map_err(format)?;
    std::fs::write(path, bytes).map_err(|source| IoError::Write {
        path: path_err(path),
        source,
    })
}

/// Write `tokens` as tensor "tokens" (I64, `[batch]`) to a safetensors file.
pub fn write_tokens(path: &Path, tokens: &[u32]) -> Result<(), IoError> {
    let bytes: Vec<u8> = tokens
        .iter()
        .flat_map(|&t| (t as i64).to_le_bytes())
        .collect();
    let format = |source| IoError::Format {
        path: path_err(path),
        source,
    };
    let view = TensorView::new(StDtype::I64, vec![tokens.len()], &bytes).map_err(format)?;
    let bytes = safetensors::serialize([("tokens", view)], &None).map_err(format)?;
    std::fs::write(path, bytes).map_err(|source| IoError::Write {
        path: path_err(path),
        source,
    })
}

/// `50304` as `50,304`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
