//! CPU reference top-k with `torch.topk`'s semantics, written independently
//! of the kernels' key encoding: values descending in IEEE total order
//! (`-0.0` below `+0.0`), every NaN above `+inf`, ties by lower index.

use std::cmp::Ordering;

use crate::Logit;

/// `Less` when `(a, ia)` comes first in the output.
fn output_order(a: f32, ia: usize, b: f32, ib: usize) -> Ordering {
    let by_value = match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => b.total_cmp(&a),
    };
    by_value.then(ia.cmp(&ib))
}

/// Top `k` of each of the `batch` rows of `logits` (`[batch, vocab]`):
/// values as `f32` (NaN as `f32::NAN`) and indices, `[batch, k]`.
pub fn topk<T: Logit>(logits: &[T], batch: usize, vocab: usize, k: usize) -> (Vec<f32>, Vec<u32>) {
    assert_eq!(logits.len(), batch * vocab, "logits length");
    assert!(1 <= k && k <= vocab, "k out of range");
    let mut values = Vec::with_capacity(batch * k);
    let mut indices = Vec::with_capacity(batch * k);
    let mut order: Vec<(f32, usize)> = Vec::with_capacity(vocab);
    for row in logits.chunks_exact(vocab) {
        order.clear();
        order.extend(row.iter().enumerate().map(|(i, v)| (v.to_f32(), i)));
        let cmp = |a: &(f32, usize), b: &(f32, usize)| output_order(a.0, a.1, b.0, b.1);
        if k < vocab {
            order.select_nth_unstable_by(k - 1, cmp);
        }
        order[..k].sort_unstable_by(cmp);
        for &(v, i) in &order[..k] {
            values.push(if v.is_nan() { f32::NAN } else { v });
            indices.push(i as u32);
        }
    }
    (values, indices)
}

/// First position where two top-k results differ (values compared bitwise,
/// any NaN equal to any NaN), or `None` when identical.
pub fn first_mismatch(
    values: &[f32],
    indices: &[u32],
    ref_values: &[f32],
    ref_indices: &[u32],
) -> Option<usize> {
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    (0..ref_values.len().max(values.len())).find(|&j| {
        match (
            values.get(j),
            indices.get(j),
            ref_values.get(j),
            ref_indices.get(j),
        ) {
            (Some(&v), Some(&i), Some(&rv), Some(&ri)) => !same(v, rv) || i != ri,
            _ => true,
        }
    })
}
