//! `torch.nn.functional.cross_entropy`, forward and backward in one sweep.
//!
//! Index targets: `loss = (1-ε)·w_t·(lse - x_t) + (ε/C)·Σ_c w_c·(lse - x_c)`,
//! gradient `g·[((1-ε)·w_t + (ε/C)·Σw)·p_c - (ε/C)·w_c - [c = t]·(1-ε)·w_t]`; ignored
//! positions contribute nothing (but still see NaN logits, as in PyTorch).
//! Probability targets: `loss = Σ_c q_c·(lse - x_c)` with `q_c = w_c·((1-ε)·y_c + ε/C)`,
//! gradient `g·(Σq·p_c - q_c)`.
//! The reduction is the caller's: 'mean' passes `gradOutput / denominator` as the upstream
//! gradient and divides the returned sum.

use super::softmax::{lane_weights, sweep, Coeffs, Finish, IndexTargets, LaneCoeffs, LaneStats, Mass, Stats};
use crate::simd::{F32x4, I32x4};
use super::{InOut, KernelError, Layout, Upstream};

#[derive(Clone, Copy)]
pub enum Target<'a> {
    Index(IndexTargets<'a>),
    /// Class probabilities in the input's layout.
    Prob(&'a [f32]),
}

#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    pub weight: Option<&'a [f32]>,
    pub label_smoothing: f32,
}

struct IndexFinish<'a> {
    weight: Option<&'a [f32]>,
    smoothing: f64,
    inv_classes: f64,
}

impl Finish for IndexFinish<'_> {
    #[inline(always)]
    fn finish(&mut self, _position: usize, target: Option<usize>, x_t: f32, stats: &Stats, g: f32) -> Coeffs {
        let Some(t) = target else {
            return Coeffs::default();
        };
        let w_t = self.weight.map_or(1.0, |w| w[t]) as f64;
        let alpha = (1.0 - self.smoothing) * w_t;
        let nll = (stats.shift - x_t as f64) + stats.ln_sum;
        let g = g as f64;
        if self.smoothing == 0.0 {
            return Coeffs { loss: (alpha * nll) as f32, a: (g * alpha) as f32, b_mass: 0.0, b_target: (g * alpha) as f32 };
        }
        let beta = self.smoothing * self.inv_classes;
        Coeffs {
            loss: (alpha * nll + beta * stats.cross) as f32,
            a: (g * (alpha + beta * stats.mass)) as f32,
            b_mass: (g * beta) as f32,
            b_target: (g * alpha) as f32,
        }
    }

    #[inline(always)]
    fn finish_lanes(&mut self, classes: I32x4, x_t: F32x4, stats: &LaneStats, g: F32x4) -> Option<LaneCoeffs> {
        let (has, w_t) = lane_weights(classes, self.weight, None);
        let nll = stats.shift.sub(x_t).add(stats.ln_sum);
        if self.smoothing == 0.0 {
            return Some(nll_lanes(has, w_t, nll, g));
        }
        let alpha = F32x4::splat((1.0 - self.smoothing) as f32).mul(w_t);
        let beta = F32x4::splat((self.smoothing * self.inv_classes) as f32);
        // Ignored lanes: the loss and coefficients are 0 (their `nll` is NaN).
        Some(LaneCoeffs {
            loss: has.keep(alpha.mul(nll).add(beta.mul(stats.cross))),
            a: has.keep(g.mul(alpha.add(beta.mul(stats.mass)))),
            b_mass: has.keep(g.mul(beta)),
            b_target: has.keep(g.mul(alpha)),
        })
    }
}

/// `c·nll` and its coefficients `a = b_target = g·c` in the lanes of `has`, 0 elsewhere:
/// cross-entropy without smoothing, and the focal loss at `γ = 0` (the same bits).
#[inline(always)]
pub(crate) fn nll_lanes(has: crate::simd::Mask, c: F32x4, nll: F32x4, g: F32x4) -> LaneCoeffs {
    let k = has.keep(g.mul(c));
    LaneCoeffs { loss: has.keep(c.mul(nll)), a: k, b_mass: F32x4::ZERO, b_target: k }
}

struct ProbFinish;

impl Finish for ProbFinish {
    #[inline(always)]
    fn finish(&mut self, _position: usize, _target: Option<usize>, _x_t: f32, stats: &Stats, g: f32) -> Coeffs {
        Coeffs { loss: stats.cross as f32, a: (g as f64 * stats.mass) as f32, b_mass: g, b_target: 0.0 }
    }

    #[inline(always)]
    fn finish_lanes(&mut self, _classes: I32x4, _x_t: F32x4, stats: &LaneStats, g: F32x4) -> Option<LaneCoeffs> {
        Some(LaneCoeffs { loss: stats.cross, a: g.mul(stats.mass), b_mass: g, b_target: F32x4::ZERO })
    }
}

/// Runs cross-entropy over `data` (logits in, gradient out when `upstream` wants one).
/// Returns `acc + Σ losses` in position order; per-position losses go to `losses` if given.
pub fn cross_entropy(
    layout: Layout,
    data: InOut,
    target: Target,
    options: Options,
    upstream: Upstream,
    losses: Option<&mut [f32]>,
    acc: f64,
) -> Result<f64, KernelError> {
    let smoothing = options.label_smoothing;
    match target {
        Target::Index(targets) => {
            let mass = if smoothing > 0.0 { Mass::Weight(options.weight) } else { Mass::None };
            let mut finish = IndexFinish {
                weight: options.weight,
                smoothing: smoothing as f64,
                inv_classes: 1.0 / layout.classes as f64,
            };
            if let Some(w) = options.weight {
                super::check_len("weight", layout.classes, w.len())?;
            }
            sweep(layout, data, Some(targets), mass, upstream, losses, acc, &mut finish)
        }
        Target::Prob(y) => {
            let mass = Mass::Prob { y, weight: options.weight, smoothing };
            sweep(layout, data, None, mass, upstream, losses, acc, &mut ProbFinish)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::*;
    // Inside wasm the same tests run through wasm-bindgen-test (scripts/test-wasm-kernels.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Float64 reference straight from the definition (log_softmax, then the weighted sums).
    fn reference(layout: Layout, x: &[f32], target: &RefTarget, weight: Option<&[f32]>, eps: f64, g: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (c, inner) = (layout.classes, layout.inner);
        let mut losses = vec![0.0; layout.positions()];
        let mut grad = vec![0.0; layout.len()];
        for n in 0..layout.outer {
            for s in 0..inner {
                let pos = n * inner + s;
                let at = |k: usize| n * c * inner + k * inner + s;
                let xs: Vec<f64> = (0..c).map(|k| x[at(k)] as f64).collect();
                let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + xs.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                let p: Vec<f64> = xs.iter().map(|v| (v - lse).exp()).collect();
                let w = |k: usize| weight.map_or(1.0, |w| w[k] as f64);
                // q: the per-class mass; `direct` the target's own weight (index targets).
                let (q, direct): (Vec<f64>, Option<(usize, f64)>) = match target {
                    RefTarget::Index(t, ignore) => {
                        let t = t[pos];
                        if t == *ignore {
                            continue;
                        }
                        let t = t as usize;
                        ((0..c).map(|k| eps / c as f64 * w(k)).collect(), Some((t, (1.0 - eps) * w(t))))
                    }
                    RefTarget::Prob(y) => ((0..c).map(|k| w(k) * ((1.0 - eps) * y[at(k)] as f64 + eps / c as f64)).collect(), None),
                };
                let mut loss: f64 = (0..c).map(|k| q[k] * (lse - xs[k])).sum();
                let mut total = q.iter().sum::<f64>();
                if let Some((t, a)) = direct {
                    loss += a * (lse - xs[t]);
                    total += a;
                }
                losses[pos] = loss;
                for k in 0..c {
                    let mut d = total * p[k] - q[k];
                    if direct.map_or(false, |(t, _)| t == k) {
                        d -= direct.unwrap().1;
                    }
                    grad[at(k)] = g[pos] * d;
                }
            }
        }
        (losses, grad)
    }

    fn check(layout: Layout, seed: u64, prob: bool, weighted: bool, eps: f32, scale: f32) {
        let mut rng = Rng(seed);
        let x: Vec<f32> = (0..layout.len()).map(|_| rng.normal() * scale).collect();
        let weight: Option<Vec<f32>> = weighted.then(|| (0..layout.classes).map(|_| rng.uniform() * 2.0).collect());
        let g: Vec<f32> = (0..layout.positions()).map(|_| rng.normal()).collect();
        let (idx, y);
        let (target, ref_target) = if prob {
            y = random_probs(&mut rng, layout);
            (Target::Prob(&y), RefTarget::Prob(y.clone()))
        } else {
            idx = (0..layout.positions())
                .map(|_| if rng.uniform() < 0.15 { -100 } else { (rng.uniform() * layout.classes as f32) as i32 % layout.classes as i32 })
                .collect::<Vec<i32>>();
            (Target::Index(IndexTargets { classes: &idx, ignore_index: -100 }), RefTarget::Index(idx.clone(), -100))
        };
        let options = Options { weight: weight.as_deref(), label_smoothing: eps };
        let g64: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        let (want_loss, want_grad) = reference(layout, &x, &ref_target, weight.as_deref(), eps as f64, &g64);

        let call = |up: Upstream, data: InOut| {
            let mut losses = vec![0.0f32; layout.positions()];
            (cross_entropy(layout, data, target, options, up, Some(&mut losses), 0.0).unwrap(), losses)
        };
        // In place and out of place (bit-identical, see `both_ways`).
        let (grad, (sum, losses)) = both_ways(&x, true, |d| call(Upstream::PerPosition(&g), d));
        assert_close("loss", &losses, &want_loss);
        assert_close("grad", &grad, &want_grad);
        assert_close("sum", &[sum as f32], &[want_loss.iter().sum()]);

        // Forward only: same losses, nothing written.
        let (_, (_, fwd)) = both_ways(&x, false, |d| call(Upstream::None, d));
        assert_eq!(bits(&fwd), bits(&losses));
    }

    #[test]
    fn matches_f64_reference_over_layouts_and_options() {
        let layouts = [
            Layout::new(1, 1, 1),
            Layout::new(3, 2, 1),
            Layout::new(5, 7, 1),
            Layout::new(2, 17, 1),
            Layout::new(2, 1031, 1),
            Layout::new(1, 70001, 1),
            Layout::new(2, 3, 5),
            Layout::new(3, 5, 4),
            Layout::new(2, 300, 7),
            Layout::new(1, 4, 9),
            // Blocks of more than 256 classes in the spatial layout (a heap staging area).
            Layout::new(1, 16500, 6),
        ];
        let mut seed = 1;
        for layout in layouts {
            for prob in [false, true] {
                for weighted in [false, true] {
                    for eps in [0.0, 0.1, 1.0] {
                        seed += 1;
                        check(layout, seed, prob, weighted, eps, 3.0);
                    }
                }
            }
        }
    }

    #[test]
    fn large_logits_stay_accurate() {
        for scale in [50.0, 1e4] {
            check(Layout::new(4, 33, 1), 7, false, true, 0.2, scale);
            check(Layout::new(2, 9, 6), 8, true, false, 0.1, scale);
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let layout = Layout::new(2, 5, 3);
        let mut rng = Rng(99);
        let x: Vec<f32> = (0..layout.len()).map(|_| rng.normal()).collect();
        let idx: Vec<i32> = vec![0, 4, -100, 2, 3, 1];
        let weight = [0.5f32, 1.0, 2.0, 1.5, 0.25];
        let target = Target::Index(IndexTargets { classes: &idx, ignore_index: -100 });
        let options = Options { weight: Some(&weight), label_smoothing: 0.2 };
        let total = |x: &[f32]| {
            let mut d = x.to_vec();
            cross_entropy(layout, InOut::InPlace(&mut d), target, options, Upstream::None, None, 0.0).unwrap()
        };
        let mut grad = x.clone();
        cross_entropy(layout, InOut::InPlace(&mut grad), target, options, Upstream::Uniform(1.0), None, 0.0).unwrap();
        for i in 0..x.len() {
            let h = 1e-2f32;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (total(&up) - total(&down)) / (2.0 * h as f64);
            assert!((fd - grad[i] as f64).abs() < 2e-3, "element {i}: fd {fd} vs {}", grad[i]);
        }
    }

    #[test]
    fn non_finite_logits_follow_pytorch() {
        let layout = Layout::new(5, 3, 1);
        let x = [
            f32::NEG_INFINITY, 1.0, 2.0, // -inf non-target: finite loss
            f32::NEG_INFINITY, 1.0, 2.0, // -inf target: +inf loss
            f32::INFINITY, 1.0, 2.0, // +inf: NaN everywhere
            f32::NAN, 1.0, 2.0, // NaN: NaN everywhere
            f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY, // all -inf: NaN
        ];
        let idx = [2, 0, 1, 1, 0];
        let target = Target::Index(IndexTargets { classes: &idx, ignore_index: -100 });
        let (data, (_, losses)) = both_ways(&x, true, |data| {
            let mut losses = vec![0.0f32; 5];
            (cross_entropy(layout, data, target, Options::default(), Upstream::Uniform(1.0), Some(&mut losses), 0.0).unwrap(), losses)
        });
        assert!(losses[0].is_finite());
        let p1 = 1.0 / (1.0 + 1.0f64.exp());
        assert_close("row 0", &data[0..3], &[0.0, p1, -p1]);
        assert_eq!(losses[1], f32::INFINITY);
        assert_eq!(data[3], -1.0);
        assert!(data[4].is_finite() && data[5].is_finite());
        for i in 2..5 {
            assert!(losses[i].is_nan());
            assert!(data[i * 3..i * 3 + 3].iter().all(|v| v.is_nan()));
        }
    }

    #[test]
    fn ignored_positions_have_zero_loss_and_gradient() {
        let layout = Layout::new(2, 4, 1);
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let idx = [1, 1];
        // An in-range ignore index: both rows ignored; the class still enters the softmax.
        let target = Target::Index(IndexTargets { classes: &idx, ignore_index: 1 });
        let (data, (sum, _)) = both_ways(&x, true, |data| {
            let options = Options { weight: None, label_smoothing: 0.3 };
            (cross_entropy(layout, data, target, options, Upstream::Uniform(f32::INFINITY), None, 0.0).unwrap(), vec![])
        });
        assert_eq!(sum, 0.0);
        assert!(data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn out_of_bounds_target_is_reported_before_writing() {
        let layout = Layout::new(2, 3, 1);
        let mut data = vec![0.5f32; 6];
        let idx = [0, 7];
        let target = Target::Index(IndexTargets { classes: &idx, ignore_index: -100 });
        let err = cross_entropy(layout, InOut::InPlace(&mut data), target, Options::default(), Upstream::Uniform(1.0), None, 0.0).unwrap_err();
        assert_eq!(err, KernelError::TargetOutOfBounds { position: 1, target: 7 });
        assert!(data.iter().all(|&v| v == 0.5));
        let mut grad = vec![SENTINEL; 6];
        let err = cross_entropy(layout, InOut::OutOfPlace { input: &data, grad: &mut grad }, target, Options::default(), Upstream::Uniform(1.0), None, 0.0);
        assert_eq!(err.unwrap_err(), KernelError::TargetOutOfBounds { position: 1, target: 7 });
        assert!(grad.iter().all(|&v| v == SENTINEL));
        // A gradient buffer of another length.
        let err = cross_entropy(layout, InOut::OutOfPlace { input: &data, grad: &mut grad[..5] }, target, Options::default(), Upstream::Uniform(1.0), None, 0.0);
        assert_eq!(err.unwrap_err(), KernelError::Length { what: "gradInput", expected: 6, actual: 5 });
    }

    #[test]
    fn chunked_calls_give_identical_bits() {
        let layout = Layout::new(6, 11, 1);
        let mut rng = Rng(5);
        let x: Vec<f32> = (0..layout.len()).map(|_| rng.normal() * 4.0).collect();
        let idx: Vec<i32> = (0..6).map(|i| i % 11).collect();
        let target = |r: std::ops::Range<usize>| Target::Index(IndexTargets { classes: &idx[r], ignore_index: -100 });
        let mut whole = x.clone();
        let total = cross_entropy(layout, InOut::InPlace(&mut whole), target(0..6), Options::default(), Upstream::Uniform(0.5), None, 0.0).unwrap();
        let mut parts = x.clone();
        let (a, b) = parts.split_at_mut(2 * 11);
        let acc = cross_entropy(Layout::new(2, 11, 1), InOut::InPlace(a), target(0..2), Options::default(), Upstream::Uniform(0.5), None, 0.0).unwrap();
        let acc = cross_entropy(Layout::new(4, 11, 1), InOut::InPlace(b), target(2..6), Options::default(), Upstream::Uniform(0.5), None, acc).unwrap();
        assert_eq!(total.to_bits(), acc.to_bits());
        assert_eq!(bits(&whole), bits(&parts));
        // Out of place, chunk by chunk (as the zero-copy path calls it).
        let mut grad = vec![SENTINEL; x.len()];
        let (ga, gb) = grad.split_at_mut(2 * 11);
        let (xa, xb) = x.split_at(2 * 11);
        let acc = cross_entropy(Layout::new(2, 11, 1), InOut::OutOfPlace { input: xa, grad: ga }, target(0..2), Options::default(), Upstream::Uniform(0.5), None, 0.0).unwrap();
        let acc = cross_entropy(Layout::new(4, 11, 1), InOut::OutOfPlace { input: xb, grad: gb }, target(2..6), Options::default(), Upstream::Uniform(0.5), None, acc).unwrap();
        assert_eq!(total.to_bits(), acc.to_bits());
        assert_eq!(bits(&whole), bits(&grad));
    }
}
