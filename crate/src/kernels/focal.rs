//! Softmax focal loss (Lin et al.; the widely copied `FocalLoss(gamma, alpha, size_average)`
//! module), forward and backward in the shared softmax sweep.
//!
//! With `l = log p_t = x_t - lse` and `q = 1 - p_t`, a position's loss is
//! `-c·q^γ·l` with `c = alpha[t]·weight[t]` (each 1 when absent). It depends on the logits
//! only through `l`, and `dl/dx_c = [c = t] - p_c`, so the gradient is
//! `g·f'(l)·([c = t] - p_c)`: the sweep's coefficients `a = b_target = -g·f'(l)`.
//!
//! `f'(l)` in closed form, finite for every `γ >= 0`:
//! - "full" (the true derivative): `-c·q^γ·(1 - γ·p_t·l/q)`, because
//!   `d q^γ/dl = -γ·q^(γ-1)·p_t = -γ·q^γ·p_t/q`. `q = -expm1(l)` has no cancellation near
//!   `p_t = 1`; where `q` is exactly 0 (`p_t` rounds to 1) `l/q` takes its limit -1, and where
//!   `p_t` is 0 (`l = -inf`) `p_t·l/q` takes its limit 0. Autograd evaluates these as `0·inf`
//!   and returns NaN for `γ < 1` (see README, "Deviations from PyTorch").
//! - "detached": `p_t` is a constant in backward (the module's `Variable(logpt.data.exp())`),
//!   so only the log term is differentiated: `-c·q^γ`.
//!
//! These per-position terms are evaluated once per position in f64 (from the sweep's f64
//! log-sum-exp), so they need no vector `expm1`/`pow`. The reduction is the caller's.

use super::cross_entropy::nll_lanes;
use super::softmax::{exp_shifted, lane_weights, sweep, Coeffs, Finish, IndexTargets, LaneCoeffs, LaneStats, Mass, Stats};
use super::{check_len, InOut, KernelError, Layout, Upstream};
use crate::math::{self, Power};
use crate::simd::{F32x4, I32x4};

/// How the backward pass treats `p_t` inside the modulating factor `(1 - p_t)^γ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gradient {
    /// The true gradient (paper, torchvision, kornia, mmcv).
    Full,
    /// `p_t` treated as a constant in backward, as the widely copied module does.
    Detached,
}

#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Focusing parameter `γ >= 0`.
    pub gamma: f64,
    /// Per-class `alpha` (length C); None is 1 for every class.
    pub alpha: Option<&'a [f32]>,
    /// Per-class rescaling weight (length C); None is 1 for every class.
    pub weight: Option<&'a [f32]>,
    pub gradient: Gradient,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self { gamma: 2.0, alpha: None, weight: None, gradient: Gradient::Full }
    }
}

/// The loss `-c·(1 - p_t)^γ·l` of one position from `l = log p_t`, and its derivative with
/// respect to `l`, in closed form (see the module documentation). `γ = 0` is exactly
/// `-c·l` (cross-entropy), whatever `l` is.
#[inline]
pub fn focal_terms(l: f64, c: f64, gamma: f64, gradient: Gradient) -> (f64, f64) {
    if gamma == 0.0 {
        return (-c * l, -c);
    }
    // One transcendental for both `p_t = e^l` and `q = 1 - p_t`: the one of them below 1/2
    // from `exp` or `-expm1`, the other as `1 -` it (no cancellation: the result is >= 1/2).
    let (p, q) = if l < -core::f64::consts::LN_2 {
        let p = l.exp();
        (p, 1.0 - p)
    } else {
        let q = -l.exp_m1();
        (1.0 - q, q)
    };
    // The default γ = 2 without `pow` (a software routine in wasm; `q·q` is correctly rounded).
    let qg = if gamma == 2.0 { q * q } else { q.powf(gamma) };
    let loss = -c * qg * l;
    let dldl = match gradient {
        Gradient::Detached => -c * qg,
        Gradient::Full => {
            // l/q → -1 as p_t → 1 (q = 0 exactly when p_t rounds to 1).
            let ratio = if q > 0.0 { l / q } else { -1.0 };
            // p_t·l/q → 0 as p_t → 0 (l = -inf).
            let pl = if p > 0.0 { p * ratio } else { 0.0 };
            -c * qg * (1.0 - gamma * pl)
        }
    };
    (loss, dldl)
}

struct FocalFinish<'a> {
    options: Options<'a>,
}

impl Finish for FocalFinish<'_> {
    #[inline(always)]
    fn finish(&mut self, _position: usize, target: Option<usize>, x_t: f32, stats: &Stats, g: f32) -> Coeffs {
        let Some(t) = target else {
            return Coeffs::default();
        };
        let o = &self.options;
        let c = o.alpha.map_or(1.0, |a| a[t] as f64) * o.weight.map_or(1.0, |w| w[t] as f64);
        let (loss, dldl) = focal_terms((x_t as f64 - stats.shift) - stats.ln_sum, c, o.gamma, o.gradient);
        let k = (-(g as f64) * dldl) as f32;
        Coeffs { loss: loss as f32, a: k, b_mass: 0.0, b_target: k }
    }

    /// Four positions in f32 ([`focal_terms4`]): in the (N, C, d…) layout the f64
    /// `exp`/`expm1` of [`focal_terms`], once per position, cost as much as the sweep over a
    /// few classes. `γ = 0` is cross-entropy's own lanes (bit for bit).
    #[inline(always)]
    fn finish_lanes(&mut self, classes: I32x4, x_t: F32x4, stats: &LaneStats, g: F32x4) -> Option<LaneCoeffs> {
        let o = self.options;
        let (has, c) = lane_weights(classes, o.alpha, o.weight);
        if o.gamma == 0.0 {
            return Some(nll_lanes(has, c, stats.shift.sub(x_t).add(stats.ln_sum), g));
        }
        // Ignored lanes compute on l = 0 (their x_t is NaN) and are zeroed.
        let l = has.keep(x_t.sub(stats.shift).sub(stats.ln_sum));
        let (loss, dldl) = focal_terms4(l, c, o.gamma as f32, Power::new(o.gamma as f32), o.gradient);
        let k = has.keep(g.mul(dldl).neg());
        Some(LaneCoeffs { loss: has.keep(loss), a: k, b_mass: F32x4::ZERO, b_target: k })
    }
}

/// [`focal_terms`] of four positions in f32 (`γ > 0`), with the same branches and limits:
/// `p_t = e^l` and `q = 1 - p_t` from one `exp` or one `expm1` (whichever is below 1/2).
/// Relative error a few f32 ulp against the f64 terms.
#[inline(always)]
fn focal_terms4(l: F32x4, c: F32x4, gamma: f32, power: Power, gradient: Gradient) -> (F32x4, F32x4) {
    let zero = F32x4::splat(0.0);
    let one = F32x4::splat(1.0);
    let small_p = l.lt(F32x4::splat(-core::f32::consts::LN_2));
    // l <= 0 (a log-probability), the domain of the softmax sweep's own exp.
    let e = exp_shifted(l);
    let q_near = math::exp_m1_small(l).neg();
    let p = small_p.select(e, one.sub(q_near));
    let q = small_p.select(one.sub(e), q_near);
    let qg = power.of(q);
    let cqg = c.neg().mul(qg);
    let loss = cqg.mul(l);
    let dldl = match gradient {
        Gradient::Detached => cqg,
        Gradient::Full => {
            let ratio = zero.lt(q).select(l.div(q), one.neg());
            let pl = zero.lt(p).select(p.mul(ratio), zero);
            cqg.mul(one.sub(F32x4::splat(gamma).mul(pl)))
        }
    };
    (loss, dldl)
}

/// Runs the softmax focal loss over `data` (logits in, gradient out when `upstream` wants
/// one). Returns `acc + Σ losses` in position order; per-position losses go to `losses`.
pub fn focal(
    layout: Layout,
    data: InOut,
    targets: IndexTargets,
    options: Options,
    upstream: Upstream,
    losses: Option<&mut [f32]>,
    acc: f64,
) -> Result<f64, KernelError> {
    if let Some(a) = options.alpha {
        check_len("alpha", layout.classes, a.len())?;
    }
    if let Some(w) = options.weight {
        check_len("weight", layout.classes, w.len())?;
    }
    sweep(layout, data, Some(targets), Mass::None, upstream, losses, acc, &mut FocalFinish { options })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::cross_entropy::{self, Target};
    use crate::kernels::testing::*;
    // Inside wasm the same tests run through wasm-bindgen-test (scripts/test-wasm-kernels.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const IGNORE: i32 = -100;

    struct Case {
        layout: Layout,
        x: Vec<f32>,
        idx: Vec<i32>,
        gamma: f64,
        alpha: Option<Vec<f32>>,
        weight: Option<Vec<f32>>,
        gradient: Gradient,
        g: Vec<f32>,
    }

    impl Case {
        fn options(&self) -> Options<'_> {
            Options { gamma: self.gamma, alpha: self.alpha.as_deref(), weight: self.weight.as_deref(), gradient: self.gradient }
        }
        fn targets(&self) -> IndexTargets<'_> {
            IndexTargets { classes: &self.idx, ignore_index: IGNORE }
        }
        fn c(&self, t: usize) -> f64 {
            self.alpha.as_ref().map_or(1.0, |a| a[t] as f64) * self.weight.as_ref().map_or(1.0, |w| w[t] as f64)
        }
    }

    /// One position from the definition, in f64: log-softmax, `q = Σ_{c≠t} p_c` (no
    /// cancellation), and `l = -ln(1 + Σ_{c≠t} e^(x_c - x_t))` when the target is the max.
    struct RefPosition {
        l: f64,
        q: f64,
        p: Vec<f64>,
    }

    fn ref_position(xs: &[f64], t: usize) -> RefPosition {
        let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + xs.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let p: Vec<f64> = xs.iter().map(|v| (v - lse).exp()).collect();
        let q: f64 = (0..xs.len()).filter(|&k| k != t).map(|k| p[k]).sum();
        let l = if xs[t] == m && m.is_finite() {
            -(0..xs.len()).filter(|&k| k != t).map(|k| (xs[k] - xs[t]).exp()).sum::<f64>().ln_1p()
        } else {
            xs[t] - lse
        };
        RefPosition { l, q, p }
    }

    fn gather(layout: Layout, x: &[f64], n: usize, s: usize) -> Vec<f64> {
        (0..layout.classes).map(|k| x[n * layout.classes * layout.inner + k * layout.inner + s]).collect()
    }

    /// Loss per position (f64 inputs), optionally with `q` frozen per position (the
    /// detached surrogate whose derivative is the detached gradient).
    fn ref_losses(case: &Case, x: &[f64], frozen_q: Option<&[f64]>) -> Vec<f64> {
        let layout = case.layout;
        let mut out = vec![0.0; layout.positions()];
        for n in 0..layout.outer {
            for s in 0..layout.inner {
                let pos = n * layout.inner + s;
                if case.idx[pos] == IGNORE {
                    continue;
                }
                let t = case.idx[pos] as usize;
                let r = ref_position(&gather(layout, x, n, s), t);
                let q = frozen_q.map_or(r.q, |f| f[pos]);
                out[pos] = -case.c(t) * q.powf(case.gamma) * r.l;
            }
        }
        out
    }

    /// Loss and gradient straight from the definition:
    /// `dL/dl = -c·(q^γ - γ·q^(γ-1)·p_t·l)` (full) or `-c·q^γ` (detached).
    fn reference(case: &Case) -> (Vec<f64>, Vec<f64>) {
        let layout = case.layout;
        let x: Vec<f64> = case.x.iter().map(|&v| v as f64).collect();
        let losses = ref_losses(case, &x, None);
        let mut grad = vec![0.0; layout.len()];
        for n in 0..layout.outer {
            for s in 0..layout.inner {
                let pos = n * layout.inner + s;
                if case.idx[pos] == IGNORE {
                    continue;
                }
                let t = case.idx[pos] as usize;
                let r = ref_position(&gather(layout, &x, n, s), t);
                let g = case.gamma;
                let p_t = r.l.exp();
                let mut dldl = r.q.powf(g);
                if case.gradient == Gradient::Full && g > 0.0 && r.q > 0.0 && p_t > 0.0 {
                    dldl -= g * r.q.powf(g - 1.0) * p_t * r.l;
                }
                dldl *= -case.c(t);
                for k in 0..layout.classes {
                    let diff = if k == t { r.q } else { -r.p[k] };
                    grad[n * layout.classes * layout.inner + k * layout.inner + s] = case.g[pos] as f64 * dldl * diff;
                }
            }
        }
        (losses, grad)
    }

    /// `case` (rows of `(N, C)`) run as one `(1, C, N)` sample: the spatial tiles' vector
    /// focal terms. Returns the losses and the gradient in the rows' order.
    fn run_spatial(case: &Case) -> (Vec<f32>, Vec<f32>) {
        let (n, c) = (case.layout.outer, case.layout.classes);
        assert_eq!(case.layout.inner, 1);
        let transpose = |v: &[f32], rows: usize, cols: usize| (0..rows * cols).map(|i| v[(i % rows) * cols + i / rows]).collect::<Vec<f32>>();
        let spatial = Case { layout: Layout::new(1, c, n), x: transpose(&case.x, n, c), idx: case.idx.clone(), alpha: case.alpha.clone(), weight: case.weight.clone(), g: case.g.clone(), ..*case };
        let (_, losses, grad) = run(&spatial, true);
        (losses, transpose(&grad, c, n))
    }

    /// In place and out of place, bit-identical (see `both_ways`).
    fn run(case: &Case, grad: bool) -> (f64, Vec<f32>, Vec<f32>) {
        let up = if grad { Upstream::PerPosition(&case.g) } else { Upstream::None };
        let (data, (sum, losses)) = both_ways(&case.x, grad, |data| {
            let mut losses = vec![0.0f32; case.layout.positions()];
            (focal(case.layout, data, case.targets(), case.options(), up, Some(&mut losses), 0.0).unwrap(), losses)
        });
        (sum, losses, data)
    }

    fn random_case(layout: Layout, seed: u64, gamma: f64, with_alpha: bool, with_weight: bool, gradient: Gradient, scale: f32) -> Case {
        let mut rng = Rng(seed);
        let c = layout.classes;
        let x = (0..layout.len()).map(|_| rng.normal() * scale).collect();
        let idx = (0..layout.positions())
            .map(|_| if rng.uniform() < 0.15 { IGNORE } else { (rng.uniform() * c as f32) as i32 % c as i32 })
            .collect();
        let alpha = with_alpha.then(|| (0..c).map(|_| 0.05 + 0.9 * rng.uniform()).collect());
        let weight = with_weight.then(|| (0..c).map(|_| 0.1 + 2.0 * rng.uniform()).collect());
        let g = (0..layout.positions()).map(|_| rng.normal()).collect();
        Case { layout, x, idx, gamma, alpha, weight, gradient, g }
    }

    fn check(case: &Case) {
        let (want_loss, want_grad) = reference(case);
        let (sum, losses, grad) = run(case, true);
        assert_close("loss", &losses, &want_loss);
        assert_close("grad", &grad, &want_grad);
        assert_close("sum", &[sum as f32], &[want_loss.iter().sum()]);
        // Forward only: the same losses, the input untouched.
        let (fsum, flosses, data) = run(case, false);
        assert_eq!(bits(&flosses), bits(&losses));
        assert_eq!(fsum.to_bits(), sum.to_bits());
        assert_eq!(bits(&data), bits(&case.x));
    }

    #[test]
    fn matches_f64_reference_over_layouts_and_options() {
        let layouts = [
            Layout::new(1, 1, 1),
            Layout::new(6, 2, 1),
            Layout::new(5, 7, 1),
            Layout::new(2, 1031, 1),
            Layout::new(2, 3, 5),
            Layout::new(3, 5, 4),
            Layout::new(2, 300, 7),
        ];
        let mut seed = 100;
        for layout in layouts {
            for gamma in [0.0, 0.25, 0.5, 1.0, 2.0, 5.0] {
                for (with_alpha, with_weight) in [(false, false), (true, false), (true, true)] {
                    for gradient in [Gradient::Full, Gradient::Detached] {
                        seed += 1;
                        check(&random_case(layout, seed, gamma, with_alpha, with_weight, gradient, 3.0));
                    }
                }
            }
        }
    }

    #[test]
    fn large_logits_stay_accurate() {
        for scale in [30.0, 1e4] {
            for gamma in [0.5, 2.0] {
                for gradient in [Gradient::Full, Gradient::Detached] {
                    check(&random_case(Layout::new(4, 33, 1), 7, gamma, true, true, gradient, scale));
                    check(&random_case(Layout::new(2, 9, 6), 8, gamma, false, true, gradient, scale));
                }
            }
        }
    }

    /// Central differences in f64 of the definition (the frozen-`q` surrogate for the detached
    /// mode) against the kernel's gradient, including rows near saturation with `γ < 1`, where
    /// `(1 - p_t)^(γ-1)` is large but `(1 - p_t)^γ·p_t·log p_t / (1 - p_t)` is not.
    #[test]
    fn gradient_matches_finite_differences_of_the_definition() {
        let layout = Layout::new(8, 4, 1);
        #[rustfmt::skip]
        let x = vec![
            0.3, -1.2, 0.8, 2.0,
            1.5, 0.1, -0.4, 0.0,
            12.0, 1.0, -1.0, 0.0, // p_t = 1 - 2e-5 (near saturation)
            6.0, 0.0, 0.0, 0.0,
            0.0, 9.0, 0.0, -3.0, // target not the max: hard example
            16.0, 0.0, 0.5, 0.0, // p_t = 1 - 3e-7
            -2.0, 3.0, 1.0, 0.5,
            0.2, 0.1, 0.0, 0.3,
        ];
        let idx = vec![3, 0, 0, 0, 2, 0, -100, 1];
        for gamma in [0.0, 0.25, 0.5, 1.0, 2.0, 5.0] {
            for gradient in [Gradient::Full, Gradient::Detached] {
                for (alpha, weight) in [(None, None), (Some(vec![0.25f32, 0.5, 0.75, 1.0]), Some(vec![0.5f32, 1.0, 2.0, 1.5]))] {
                    let g = vec![1.0, -0.5, 2.0, 1.0, 0.7, 1.3, 1.0, -1.0];
                    let case = Case { layout, x: x.clone(), idx: idx.clone(), gamma, alpha, weight, gradient, g };
                    let x64: Vec<f64> = case.x.iter().map(|&v| v as f64).collect();
                    let frozen: Option<Vec<f64>> = (gradient == Gradient::Detached).then(|| {
                        (0..layout.positions())
                            .map(|p| if case.idx[p] == IGNORE { 0.0 } else { ref_position(&x64[p * 4..p * 4 + 4], case.idx[p] as usize).q })
                            .collect()
                    });
                    let total = |x: &[f64]| -> f64 {
                        ref_losses(&case, x, frozen.as_deref()).iter().zip(&case.g).map(|(l, &g)| l * g as f64).sum()
                    };
                    let (_, _, grad) = run(&case, true);
                    for i in 0..x64.len() {
                        let h = 1e-6;
                        let (mut up, mut down) = (x64.clone(), x64.clone());
                        up[i] += h;
                        down[i] -= h;
                        let fd = (total(&up) - total(&down)) / (2.0 * h);
                        let tol = 2e-6 + 1e-4 * fd.abs();
                        assert!(
                            (fd - grad[i] as f64).abs() <= tol,
                            "gamma {gamma} {gradient:?} element {i}: fd {fd} vs kernel {}",
                            grad[i]
                        );
                    }
                }
            }
        }
    }

    /// The kernel's own forward (f32 in, f64 sum) differentiated numerically.
    #[test]
    fn gradient_matches_finite_differences_of_the_kernel() {
        let layout = Layout::new(2, 5, 3);
        let mut rng = Rng(99);
        let x: Vec<f32> = (0..layout.len()).map(|_| rng.normal()).collect();
        let idx: Vec<i32> = vec![0, 4, -100, 2, 3, 1];
        let alpha = [0.5f32, 1.0, 0.25, 0.75, 0.6];
        let weight = [0.5f32, 1.0, 2.0, 1.5, 0.25];
        for gamma in [0.5, 2.0] {
            let options = Options { gamma, alpha: Some(&alpha), weight: Some(&weight), gradient: Gradient::Full };
            let targets = IndexTargets { classes: &idx, ignore_index: IGNORE };
            let total = |x: &[f32]| {
                let mut d = x.to_vec();
                focal(layout, InOut::InPlace(&mut d), targets, options, Upstream::None, None, 0.0).unwrap()
            };
            let mut grad = x.clone();
            focal(layout, InOut::InPlace(&mut grad), targets, options, Upstream::Uniform(1.0), None, 0.0).unwrap();
            for i in 0..x.len() {
                let h = 1e-2f32;
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let fd = (total(&up) - total(&down)) / (2.0 * h as f64);
                assert!((fd - grad[i] as f64).abs() < 2e-3, "gamma {gamma} element {i}: fd {fd} vs {}", grad[i]);
            }
        }
    }

    #[test]
    fn saturated_rows_get_the_exact_finite_limit() {
        // p_t rounds to 1 (rows 0, 1), the target logit is -inf (row 2).
        let layout = Layout::new(3, 3, 1);
        let x = vec![1e4, 0.0, -1e4, 40.0, 0.0, 1.0, f32::NEG_INFINITY, 0.0, 1.0];
        let idx = vec![0, 0, 0];
        for gamma in [0.25, 0.5, 0.999, 1.0, 2.0] {
            for gradient in [Gradient::Full, Gradient::Detached] {
                let case = Case { layout, x: x.clone(), idx: idx.clone(), gamma, alpha: None, weight: None, gradient, g: vec![1.0; 3] };
                let (_, rows_losses, rows_grad) = run(&case, true);
                for (losses, grad) in [(rows_losses, rows_grad), run_spatial(&case)] {
                    assert!(grad.iter().all(|v| v.is_finite()), "gamma {gamma} {gradient:?}: {grad:?}");
                    assert_eq!(losses[0], 0.0);
                    assert!(losses[1] >= 0.0 && losses[1] < 1e-20);
                    assert_eq!(losses[2], f32::INFINITY);
                    // (1 - p_t)^γ → 0 kills the gradient of saturated rows.
                    assert!(grad[..6].iter().all(|v| v.abs() < 1e-20), "{grad:?}");
                    // log p_t = -inf: q = 1, p_t·log p_t/q → 0, so both modes give -(onehot - p).
                    let p1 = 1.0 / (1.0 + 1.0f64.exp());
                    assert_close("row 2", &grad[6..], &[-1.0, p1, 1.0 - p1]);
                }
            }
        }
    }

    #[test]
    fn gamma_zero_is_cross_entropy_bit_for_bit() {
        for layout in [Layout::new(5, 7, 1), Layout::new(2, 6, 5)] {
            let case = random_case(layout, 3, 0.0, false, true, Gradient::Full, 4.0);
            let (sum, losses, grad) = run(&case, true);
            let mut data = case.x.clone();
            let mut ce_losses = vec![0.0f32; layout.positions()];
            let options = cross_entropy::Options { weight: case.weight.as_deref(), label_smoothing: 0.0 };
            let ce_sum = cross_entropy::cross_entropy(
                layout, InOut::InPlace(&mut data), Target::Index(case.targets()), options, Upstream::PerPosition(&case.g), Some(&mut ce_losses), 0.0,
            )
            .unwrap();
            assert_eq!(sum.to_bits(), ce_sum.to_bits());
            assert_eq!(bits(&losses), bits(&ce_losses));
            assert_eq!(bits(&grad), bits(&data));
        }
    }

    #[test]
    fn non_finite_logits_follow_pytorch() {
        let layout = Layout::new(4, 3, 1);
        let x = vec![
            f32::NAN, 0.0, 1.0, // NaN: NaN row
            f32::INFINITY, 0.0, 1.0, // +inf: NaN row
            0.5, f32::NEG_INFINITY, 2.0, // -inf elsewhere: finite
            1.0, 2.0, f32::NAN, // NaN in an ignored row: NaN gradient (softmax backward), loss 0
        ];
        let idx = vec![1, 0, 0, IGNORE];
        let case = Case { layout, x, idx, gamma: 2.0, alpha: None, weight: None, gradient: Gradient::Full, g: vec![1.0; 4] };
        let (_, rows_losses, rows_grad) = run(&case, true);
        for (losses, grad) in [(rows_losses, rows_grad), run_spatial(&case)] {
            assert!(losses[0].is_nan() && losses[1].is_nan());
            assert!(grad[..6].iter().all(|v| v.is_nan()));
            assert!(losses[2].is_finite() && grad[6..9].iter().all(|v| v.is_finite()));
            assert_eq!(grad[7], 0.0);
            assert_eq!(losses[3], 0.0);
            assert!(grad[9..].iter().all(|v| v.is_nan()));
        }
    }

    #[test]
    fn chunked_calls_give_identical_bits() {
        let case = random_case(Layout::new(6, 11, 1), 5, 0.5, true, true, Gradient::Full, 4.0);
        let opts = case.options();
        let t = |r: std::ops::Range<usize>| IndexTargets { classes: &case.idx[r], ignore_index: IGNORE };
        let mut whole = case.x.clone();
        let total = focal(case.layout, InOut::InPlace(&mut whole), t(0..6), opts, Upstream::Uniform(0.5), None, 0.0).unwrap();
        let mut parts = case.x.clone();
        let (a, b) = parts.split_at_mut(2 * 11);
        let acc = focal(Layout::new(2, 11, 1), InOut::InPlace(a), t(0..2), opts, Upstream::Uniform(0.5), None, 0.0).unwrap();
        let acc = focal(Layout::new(4, 11, 1), InOut::InPlace(b), t(2..6), opts, Upstream::Uniform(0.5), None, acc).unwrap();
        assert_eq!(total.to_bits(), acc.to_bits());
        assert_eq!(bits(&whole), bits(&parts));
        // Spatial: split the positions of one sample.
        let case = random_case(Layout::new(1, 5, 12), 6, 2.0, false, false, Gradient::Detached, 2.0);
        let mut whole = case.x.clone();
        let total = focal(case.layout, InOut::InPlace(&mut whole), case.targets(), case.options(), Upstream::Uniform(1.0), None, 0.0).unwrap();
        let mut acc = 0.0;
        for (s0, span) in [(0, 4), (4, 5), (9, 3)] {
            let mut chunk: Vec<f32> = (0..5).flat_map(|c| case.x[c * 12 + s0..c * 12 + s0 + span].to_vec()).collect();
            let targets = IndexTargets { classes: &case.idx[s0..s0 + span], ignore_index: IGNORE };
            acc = focal(Layout::new(1, 5, span), InOut::InPlace(&mut chunk), targets, case.options(), Upstream::Uniform(1.0), None, acc).unwrap();
            for c in 0..5 {
                assert_eq!(bits(&chunk[c * span..(c + 1) * span]), bits(&whole[c * 12 + s0..c * 12 + s0 + span]));
            }
        }
        assert_eq!(total.to_bits(), acc.to_bits());
    }

    #[test]
    fn errors_are_reported_before_writing() {
        let layout = Layout::new(2, 3, 1);
        let mut data = vec![0.5f32; 6];
        let idx = [0, 3];
        let targets = IndexTargets { classes: &idx, ignore_index: IGNORE };
        let err = focal(layout, InOut::InPlace(&mut data), targets, Options::default(), Upstream::Uniform(1.0), None, 0.0).unwrap_err();
        assert_eq!(err, KernelError::TargetOutOfBounds { position: 1, target: 3 });
        let idx = [0, 1];
        let targets = IndexTargets { classes: &idx, ignore_index: IGNORE };
        let alpha = [0.25f32, 0.75];
        let options = Options { alpha: Some(&alpha), ..Options::default() };
        let err = focal(layout, InOut::InPlace(&mut data), targets, options, Upstream::Uniform(1.0), None, 0.0).unwrap_err();
        assert_eq!(err, KernelError::Length { what: "alpha", expected: 3, actual: 2 });
        assert!(data.iter().all(|&v| v == 0.5));
        let mut grad = vec![SENTINEL; 6];
        let err = focal(layout, InOut::OutOfPlace { input: &data, grad: &mut grad }, targets, options, Upstream::Uniform(1.0), None, 0.0).unwrap_err();
        assert_eq!(err, KernelError::Length { what: "alpha", expected: 3, actual: 2 });
        assert!(grad.iter().all(|&v| v == SENTINEL));
    }
}
