//! Typed errors of the host API.

use cust::error::CudaError;
use streamtopk_kernels::element::DType;

/// Everything the host API can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("k must be at least 1, got 0")]
    KZero,
    #[error("k = {k} is larger than the vocabulary ({vocab}); k must be in 1..={vocab}")]
    KAboveVocab { k: usize, vocab: usize },
    #[error("k = {k} is above the largest supported k ({max})")]
    KAboveLimit { k: usize, max: usize },
    #[error("batch must be at least 1, got 0")]
    BatchZero,
    #[error("batch = {batch} is above the workspace's max_batch ({max}); create the TopK with a larger max_batch")]
    BatchAboveMax { batch: usize, max: usize },
    #[error("max_batch = {batch} is above the largest supported batch ({max})")]
    BatchAboveLimit { batch: usize, max: usize },
    #[error("vocab must be at least 1, got 0")]
    VocabZero,
    #[error("vocab = {vocab} is above the largest supported vocab ({max})")]
    VocabAboveLimit { vocab: usize, max: usize },
    #[error("vocab = {vocab} with k = {k} needs more shared memory per block than the device has")]
    ShapeTooLarge { vocab: usize, k: usize },
    #[error("the TopK was built for {expected:?} logits but was called with {got:?}")]
    DTypeMismatch { expected: DType, got: DType },
    #[error("max_k must be in 1..=vocab ({vocab}), got {max_k}")]
    MaxK { max_k: usize, vocab: usize },
    #[error("sampling parameters of row {row}: {reason}")]
    Sampling { row: usize, reason: String },
    #[error("target pool must be at least 1, got 0")]
    TargetPoolZero,
    #[error("{what} has {got} elements, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("no CUDA device is available ({0})")]
    NoDevice(CudaError),
    #[error("the driver could not load the streamtopk PTX ({0}); was it built for a newer architecture than this GPU (STREAMTOPK_ARCH)?")]
    PtxLoad(CudaError),
    #[error(
        "out of GPU memory allocating {what} ({bytes} bytes); use a smaller max_batch or shape"
    )]
    OutOfMemory { what: &'static str, bytes: u128 },
    #[error("{call} failed with CUDA error {code}")]
    Driver { call: &'static str, code: u32 },
    #[error("CUDA error: {0}")]
    Cuda(#[from] CudaError),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
