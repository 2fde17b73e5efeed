//! `torch.nn.functional.nll_loss` on log-probabilities: no softmax.
//!
//! A position's loss is `-w_t·x_t` (0 when ignored); its gradient is `-g·w_t` at the target
//! and 0 everywhere else, so the backward pass never reads the input (NaN log-probabilities
//! off the target do not reach the gradient, as in PyTorch). The reduction is the caller's.

use super::softmax::IndexTargets;
use super::{check_len, InOut, KernelError, Layout, Upstream};

/// Runs NLL over `data` (log-probabilities in, gradient out when `upstream` wants one).
/// Returns `acc + Σ losses` in position order; per-position losses go to `losses` if given.
pub fn nll(
    layout: Layout,
    mut data: InOut,
    targets: IndexTargets,
    weight: Option<&[f32]>,
    upstream: Upstream,
    mut losses: Option<&mut [f32]>,
    acc: f64,
) -> Result<f64, KernelError> {
    let positions = layout.positions();
    let (c, inner) = (layout.classes, layout.inner);
    check_len("input", layout.len(), data.checked_len()?)?;
    check_len("target", positions, targets.classes.len())?;
    if let Some(w) = weight {
        check_len("weight", c, w.len())?;
    }
    if let Upstream::PerPosition(g) = upstream {
        check_len("gradOutput", positions, g.len())?;
    }
    if let Some(l) = &losses {
        check_len("loss output", positions, l.len())?;
    }
    // Validate every target before writing anything.
    for p in 0..positions {
        targets.at(p, c)?;
    }
    let weight_of = |t: usize| weight.map_or(1.0, |w| w[t]);
    let mut acc = acc;
    for n in 0..layout.outer {
        for s in 0..inner {
            let pos = n * inner + s;
            let loss = match targets.at(pos, c)? {
                Some(t) => -weight_of(t) * data.input()[n * c * inner + t * inner + s],
                None => 0.0,
            };
            if let Some(l) = losses.as_deref_mut() {
                l[pos] = loss;
            }
            acc += loss as f64;
        }
    }
    if upstream.wants_grad() {
        let data = data.grad();
        data.fill(0.0);
        for n in 0..layout.outer {
            for s in 0..inner {
                let pos = n * inner + s;
                if let Some(t) = targets.at(pos, c)? {
                    data[n * c * inner + t * inner + s] = -(upstream.at(pos) * weight_of(t));
                }
            }
        }
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::*;
    // Inside wasm the same tests run through wasm-bindgen-test (scripts/test-wasm-kernels.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const IGNORE: i32 = -100;

    fn random(layout: Layout, seed: u64) -> (Vec<f32>, Vec<i32>, Vec<f32>, Vec<f32>) {
        let mut rng = Rng(seed);
        let x = (0..layout.len()).map(|_| -rng.uniform() * 5.0).collect();
        let c = layout.classes as i32;
        let idx = (0..layout.positions()).map(|_| if rng.uniform() < 0.2 { IGNORE } else { (rng.uniform() * c as f32) as i32 % c }).collect();
        let w = (0..layout.classes).map(|_| 0.1 + 2.0 * rng.uniform()).collect();
        let g = (0..layout.positions()).map(|_| rng.normal()).collect();
        (x, idx, w, g)
    }

    #[test]
    fn matches_the_definition_and_finite_differences() {
        for layout in [Layout::new(1, 1, 1), Layout::new(4, 6, 1), Layout::new(2, 3, 5), Layout::new(3, 37, 2)] {
            let (x, idx, w, g) = random(layout, layout.len() as u64);
            for weight in [None, Some(&w[..])] {
                let targets = IndexTargets { classes: &idx, ignore_index: IGNORE };
                let mut want_loss = vec![0.0f64; layout.positions()];
                let mut want_grad = vec![0.0f64; layout.len()];
                for pos in 0..layout.positions() {
                    if idx[pos] == IGNORE {
                        continue;
                    }
                    let (n, s, t) = (pos / layout.inner, pos % layout.inner, idx[pos] as usize);
                    let at = n * layout.classes * layout.inner + t * layout.inner + s;
                    let wt = weight.map_or(1.0, |w| w[t] as f64);
                    want_loss[pos] = -wt * x[at] as f64;
                    // The loss is linear: its finite difference is exact.
                    want_grad[at] = -wt * g[pos] as f64;
                }
                // In place and out of place, bit-identical (see `both_ways`).
                let call = |up: Upstream, data: InOut| {
                    let mut losses = vec![0.0f32; layout.positions()];
                    (nll(layout, data, targets, weight, up, Some(&mut losses), 0.0).unwrap(), losses)
                };
                let (data, (sum, losses)) = both_ways(&x, true, |d| call(Upstream::PerPosition(&g), d));
                assert_close("loss", &losses, &want_loss);
                assert_close("grad", &data, &want_grad);
                assert_close("sum", &[sum as f32], &[want_loss.iter().sum()]);
                let (_, (fsum, fwd_losses)) = both_ways(&x, false, |d| call(Upstream::None, d));
                assert_eq!(bits(&fwd_losses), bits(&losses));
                assert_eq!(fsum.to_bits(), sum.to_bits());
            }
        }
    }

    #[test]
    fn non_finite_inputs_follow_pytorch() {
        let layout = Layout::new(3, 3, 1);
        let x = [f32::NEG_INFINITY, -1.0, f32::NAN, -0.5, f32::NEG_INFINITY, -2.0, f32::NAN, f32::NAN, -0.1];
        let idx = [0, 0, 2];
        let targets = IndexTargets { classes: &idx, ignore_index: IGNORE };
        let (data, (_, losses)) = both_ways(&x, true, |data| {
            let mut losses = vec![0.0f32; 3];
            (nll(layout, data, targets, None, Upstream::Uniform(1.0), Some(&mut losses), 0.0).unwrap(), losses)
        });
        assert_eq!(losses[0], f32::INFINITY);
        assert_eq!(losses[1], 0.5);
        assert_close("loss 2", &losses[2..], &[0.1]);
        assert_eq!(data, [-1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0]);
    }

    #[test]
    fn chunked_calls_give_identical_bits_and_errors_write_nothing() {
        let layout = Layout::new(5, 4, 3);
        let (x, idx, w, _) = random(layout, 9);
        let t = |r: std::ops::Range<usize>| IndexTargets { classes: &idx[r], ignore_index: IGNORE };
        let mut whole = x.clone();
        let total = nll(layout, InOut::InPlace(&mut whole), t(0..15), Some(&w), Upstream::Uniform(0.25), None, 0.0).unwrap();
        let mut parts = x.clone();
        let (a, b) = parts.split_at_mut(2 * 12);
        let acc = nll(Layout::new(2, 4, 3), InOut::InPlace(a), t(0..6), Some(&w), Upstream::Uniform(0.25), None, 0.0).unwrap();
        let acc = nll(Layout::new(3, 4, 3), InOut::InPlace(b), t(6..15), Some(&w), Upstream::Uniform(0.25), None, acc).unwrap();
        assert_eq!(total.to_bits(), acc.to_bits());
        assert_eq!(bits(&whole), bits(&parts));

        let mut data = x.clone();
        let mut bad = idx.clone();
        bad[7] = 4;
        let err = nll(layout, InOut::InPlace(&mut data), IndexTargets { classes: &bad, ignore_index: IGNORE }, None, Upstream::Uniform(1.0), None, 0.0).unwrap_err();
        assert_eq!(err, KernelError::TargetOutOfBounds { position: 7, target: 4 });
        assert_eq!(bits(&data), bits(&x));
    }
}
