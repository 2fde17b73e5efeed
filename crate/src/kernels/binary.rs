//! The element-wise binary family, forward and backward in one pass, four elements per
//! vector: `BCEWithLogitsLoss`, `BCELoss` and torchvision's `sigmoid_focal_loss`.
//!
//! Every term is a closed form without cancellation, from [`math::logistic_fast`]:
//! `σ(±x)` directly and `-ln σ(±x) = softplus(∓x) = max(∓x, 0) + ln_1p(e^-|x|)`.
//! - BCE with logits: `loss = w·[(1 - t)·softplus(x) + pw·t·softplus(-x)]` (PyTorch's
//!   `(1 - t)·x + (1 + (pw - 1)·t)·softplus(-x)` rearranged into two non-negative terms),
//!   `dloss/dx = w·[(1 - t)·σ(x) - pw·t·σ(-x)]`.
//! - BCE on probabilities, PyTorch's formula as written (logs clamped at -100, gradient
//!   `(x - t) / max((1 - x)·x, 1e-12)`).
//! - Sigmoid focal: `ce·q^γ·α_t` with `q = 1 - p_t = σ(x)·(1 - t) + t·σ(-x)` and
//!   `dq/dx = σ(x)·σ(-x)·(1 - 2t)`, so `dloss/dx = α_t·[dce·q^γ + γ·ce·q^γ·(dq/dx)/q]`, the
//!   second term taken as its limit 0 where `q = 0` (autograd gives NaN there for `γ < 1`).
//!
//! Infinite logits give what PyTorch gives: its `log(e^-m + e^(-x-m)) + m` is NaN at
//! `x = -inf` and `(1 - t)·x` is NaN at `x = +inf, t = 1`, so the loss is NaN there; the
//! BCE-with-logits gradient stays finite, the sigmoid-focal gradient is NaN when `γ ≠ 0`.
//!
//! Weights are broadcast against the input ([`Broadcast`]); the reduction is the caller's.
//! Losses are accumulated in element order, so chunked calls give the same bits.

use super::io::{with_io, Io};
use super::{check_len, InOut, KernelError, Upstream};
use crate::math::{self, k, Consts, LogisticTerms, Power};
use crate::simd::{F32x4, Mask};

/// A weight broadcast against the input: element `i` gets
/// `values[((offset + i) / repeat) % values.len()]`. This is every PyTorch broadcast whose
/// non-broadcast dimensions are contiguous (`(C)` over the last axis, `(N, 1)`, `(C, 1, 1)`,
/// a scalar, the input's own shape); `offset` is the index of the slice's first element in
/// the whole input, so that chunks of the input see the right weights.
#[derive(Clone, Copy, Debug)]
pub struct Broadcast<'a> {
    pub values: &'a [f32],
    pub repeat: usize,
    pub offset: usize,
}

impl<'a> Broadcast<'a> {
    /// A weight with the input's own shape.
    pub fn full(values: &'a [f32]) -> Self {
        Self { values, repeat: 1, offset: 0 }
    }

    fn check(&self, what: &'static str, n: usize) -> Result<(), KernelError> {
        if n > 0 && (self.values.is_empty() || self.repeat == 0) {
            return Err(KernelError::Length { what, expected: 1, actual: 0 });
        }
        Ok(())
    }
}

/// Walks a [`Broadcast`] four elements at a time without a division per element.
struct Lanes<'a> {
    values: &'a [f32],
    repeat: usize,
    /// Index into `values` of the next element, and its position within its repeat run.
    k: usize,
    j: usize,
}

impl<'a> Lanes<'a> {
    fn new(b: Broadcast<'a>) -> Self {
        let period = b.values.len().max(1);
        // One value for all: never leave the first run.
        let repeat = if period == 1 { usize::MAX } else { b.repeat.max(1) };
        let (k, j) = if period == 1 { (0, 0) } else { ((b.offset / repeat) % period, b.offset % repeat) };
        Self { values: b.values, repeat, k, j }
    }

    #[inline(always)]
    fn next(&mut self, lanes: usize) -> F32x4 {
        let period = self.values.len();
        let v = if self.j + lanes <= self.repeat {
            F32x4::splat(self.values[self.k])
        } else if self.repeat == 1 && self.k + lanes <= period {
            F32x4::load_first(&self.values[self.k..], lanes, 0.0)
        } else {
            let mut a = [0.0f32; 4];
            let (mut k, mut j) = (self.k, self.j);
            for v in a.iter_mut().take(lanes) {
                *v = self.values[k];
                j += 1;
                if j == self.repeat {
                    j = 0;
                    k += 1;
                    if k == period {
                        k = 0;
                    }
                }
            }
            F32x4::from_array(a)
        };
        self.advance(lanes);
        v
    }

    #[inline(always)]
    fn advance(&mut self, by: usize) {
        self.j += by;
        if self.j >= self.repeat {
            let runs = self.j / self.repeat;
            self.j %= self.repeat;
            self.k = (self.k + runs) % self.values.len();
        }
    }
}

/// One loss of the family: the loss and `dloss/dx` (before the upstream gradient) of up to
/// four elements, in three stages. `start_terms` and `finish_terms` compute the
/// transcendental terms (each stage one chain of dependent operations), which depend on the
/// input alone (BCE's target only picks which logs are needed); `eval` the rest, called on
/// consecutive vectors in element order.
trait Elementwise {
    type Terms: Copy;
    fn start_terms(&self, x: F32x4, t: F32x4) -> Self::Terms;
    fn finish_terms(&self, terms: &mut Self::Terms);
    fn eval<const GRAD: bool>(&mut self, x: F32x4, t: F32x4, terms: Self::Terms, lanes: usize) -> (F32x4, F32x4);

    /// Both stages of the terms of one vector.
    #[inline(always)]
    fn terms(&self, x: F32x4, t: F32x4) -> Self::Terms {
        let mut terms = self.start_terms(x, t);
        self.finish_terms(&mut terms);
        terms
    }
}

/// The [`Elementwise`] terms of a logistic loss (one with a `c: Consts` field):
/// [`math::logistic_terms_start`], then [`math::logistic_terms_finish`].
macro_rules! logistic_terms {
    () => {
        type Terms = LogisticTerms;
        #[inline(always)]
        fn start_terms(&self, x: F32x4, _t: F32x4) -> LogisticTerms {
            math::logistic_terms_start(x, &self.c)
        }
        #[inline(always)]
        fn finish_terms(&self, terms: &mut LogisticTerms) {
            math::logistic_terms_finish(terms, &self.c)
        }
    };
}

/// Vectors whose terms [`sweep`] computes, stage by stage, before it finishes any of them.
/// One vector's terms are a long chain of dependent operations (exp, then ln and a
/// division), and a loop body that held the whole chain and the loss was too long for the
/// processor to start the next vector's chain while one ran: it waited on each in turn. A
/// loop of one stage alone overlaps the chains of several vectors; the staged terms stay in
/// L1. Measured in interleaved runs at (1024, 1000): the scalar build's sigmoid focal
/// 26 -> 29-32 M el/s with one stage of terms; the SIMD build's 114 -> 140 M el/s (zero
/// copy) with two (exp, then ln and the division), and 5% slower again with the logistic
/// selects moved into the second.
const STAGED: usize = 16;

/// Checks the buffers, then runs `loss` over every element.
fn run(
    data: InOut,
    target: &[f32],
    upstream: Upstream,
    losses: Option<&mut [f32]>,
    acc: f64,
    loss: &mut impl Elementwise,
) -> Result<f64, KernelError> {
    let n = data.checked_len()?;
    check_len("target", n, target.len())?;
    if let Upstream::PerPosition(g) = upstream {
        check_len("gradOutput", n, g.len())?;
    }
    if let Some(l) = &losses {
        check_len("loss output", n, l.len())?;
    }
    Ok(with_io!(data, upstream.wants_grad(), |io, GRAD| sweep::<GRAD, _>(io, target, upstream, losses, acc, loss)))
}

/// Adds the first `lanes` losses of `l` to `acc` one by one, in element order.
#[inline(always)]
fn add_losses(mut acc: f64, l: F32x4, lanes: usize) -> f64 {
    let a = l.to_array();
    if lanes == 4 {
        acc += a[0] as f64;
        acc += a[1] as f64;
        acc += a[2] as f64;
        acc += a[3] as f64;
    } else {
        for v in a.iter().take(lanes) {
            acc += *v as f64;
        }
    }
    acc
}

/// Whole vectors, [`STAGED`] at a time, then the tail out of line. Branches on the
/// upstream kind and the loss output are per vector but always go the same way.
#[inline(never)]
fn sweep<const GRAD: bool, L: Elementwise>(
    mut data: impl Io,
    target: &[f32],
    upstream: Upstream,
    losses: Option<&mut [f32]>,
    mut acc: f64,
    loss: &mut L,
) -> f64 {
    let n = data.len();
    let (per_position, uniform): (&[f32], F32x4) = match upstream {
        Upstream::PerPosition(g) => (g, F32x4::splat(0.0)),
        Upstream::Uniform(g) => (&[], F32x4::splat(g)),
        Upstream::None => (&[], F32x4::splat(0.0)),
    };
    let per = !per_position.is_empty();
    let out: &mut [f32] = losses.unwrap_or(&mut []);
    let write = !out.is_empty();
    let full = n - n % 4;
    let mut staged = [loss.start_terms(F32x4::ZERO, F32x4::ZERO); STAGED];
    let mut i = 0;
    while i < full {
        let count = ((full - i) / 4).min(STAGED);
        for (v, terms) in staged.iter_mut().enumerate().take(count) {
            let at = i + 4 * v;
            *terms = loss.start_terms(F32x4::load(&data.input()[at..at + 4]), F32x4::load(&target[at..at + 4]));
        }
        for terms in staged.iter_mut().take(count) {
            loss.finish_terms(terms);
        }
        for terms in staged.iter().take(count) {
            let (l, d) = loss.eval::<GRAD>(F32x4::load(&data.input()[i..i + 4]), F32x4::load(&target[i..i + 4]), *terms, 4);
            if GRAD {
                let g = if per { F32x4::load(&per_position[i..i + 4]) } else { uniform };
                d.mul(g).store(&mut data.grad()[i..i + 4]);
            }
            if write {
                l.store(&mut out[i..i + 4]);
            }
            acc = add_losses(acc, l, 4);
            i += 4;
        }
    }
    if i < n {
        let (tail_acc, grad) = sweep_tail::<GRAD, L>(&data.input()[i..], &target[i..], per_position.get(i..).unwrap_or(&[]), uniform, out.get_mut(i..).unwrap_or(&mut []), acc, loss);
        if GRAD {
            grad.store_first(&mut data.grad()[i..], n - i);
        }
        acc = tail_acc;
    }
    acc
}

/// The last 1 to 3 elements `x` of [`sweep`] (out of line: once per call). Returns the loss
/// sum and their gradient, which the caller stores: one copy of this for every I/O mode.
#[inline(never)]
fn sweep_tail<const GRAD: bool, L: Elementwise>(
    x: &[f32],
    target: &[f32],
    per_position: &[f32],
    uniform: F32x4,
    out: &mut [f32],
    acc: f64,
    loss: &mut L,
) -> (f64, F32x4) {
    let lanes = x.len();
    debug_assert!(lanes < 4);
    let t = F32x4::load_first(target, lanes, 0.0);
    let x = F32x4::load_first(x, lanes, 0.0);
    let (l, d) = loss.eval::<GRAD>(x, t, loss.terms(x, t), lanes);
    let g = if per_position.is_empty() { uniform } else { F32x4::load_first(per_position, lanes, 0.0) };
    if !out.is_empty() {
        l.store_first(out, lanes);
    }
    (add_losses(acc, l, lanes), d.mul(g))
}

/// `x == -inf` lanes: PyTorch's loss is NaN there (see the module documentation).
#[inline(always)]
fn nan_at_neg_inf(x: F32x4, loss: F32x4, c: &Consts) -> F32x4 {
    x.eq(c.get(k::NEG_INF)).select(c.get(k::NAN), loss)
}

struct WithLogits<'a> {
    c: Consts,
    weight: Option<Lanes<'a>>,
    pos_weight: Option<Lanes<'a>>,
}

impl Elementwise for WithLogits<'_> {
    logistic_terms!();
    #[inline(always)]
    fn eval<const GRAD: bool>(&mut self, x: F32x4, t: F32x4, terms: LogisticTerms, lanes: usize) -> (F32x4, F32x4) {
        let c = &self.c;
        let lg = math::logistic_from_terms(x, terms, c);
        let not_t = c.get(k::ONE).sub(t);
        let pos = match &mut self.pos_weight {
            Some(pw) => pw.next(lanes).mul(t),
            None => t,
        };
        let mut loss = nan_at_neg_inf(x, not_t.mul(lg.sp).add(pos.mul(lg.sp_neg)), c);
        let mut d = if GRAD { not_t.mul(lg.p).sub(pos.mul(lg.pn)) } else { c.get(k::ZERO) };
        if let Some(w) = &mut self.weight {
            let w = w.next(lanes);
            loss = loss.mul(w);
            d = d.mul(w);
        }
        (loss, d)
    }
}

/// `torch.nn.functional.binary_cross_entropy_with_logits` over `data` (logits in, gradient
/// out when `upstream` wants one; `upstream` has one value per element). Returns
/// `acc + Σ losses` in element order.
pub fn bce_with_logits(
    data: InOut,
    target: &[f32],
    weight: Option<Broadcast>,
    pos_weight: Option<Broadcast>,
    upstream: Upstream,
    losses: Option<&mut [f32]>,
    acc: f64,
) -> Result<f64, KernelError> {
    if let Some(w) = &weight {
        w.check("weight", data.input().len())?;
    }
    if let Some(w) = &pos_weight {
        w.check("pos_weight", data.input().len())?;
    }
    let mut loss = WithLogits { c: Consts::new(), weight: weight.map(Lanes::new), pos_weight: pos_weight.map(Lanes::new) };
    run(data, target, upstream, losses, acc, &mut loss)
}

struct Probs<'a> {
    c: Consts,
    weight: Option<Lanes<'a>>,
}

/// The logs of one vector of [`Probs`].
#[derive(Clone, Copy)]
enum ProbLogs {
    /// `ln x` and `ln(1 - x)`.
    Both(F32x4, F32x4),
    /// Every target is 0 or 1: `ln x` where it is 1, `ln(1 - x)` where it is 0, and the
    /// mask of the ones.
    Hard(F32x4, Mask),
}

impl Elementwise for Probs<'_> {
    type Terms = ProbLogs;
    /// Both logs in the first stage: a stage each measured 11% slower (scalar build).
    /// Hard labels (the usual case) need one log per element: the one of the argument
    /// their target picks, by [`math::ln_unit_or_1m`], the same bits as the log it picks.
    #[inline(always)]
    fn start_terms(&self, x: F32x4, t: F32x4) -> ProbLogs {
        let c = &self.c;
        let ones = t.eq(c.get(k::ONE));
        if ones.or(t.eq(c.get(k::ZERO))).all() {
            ProbLogs::Hard(math::ln_unit_or_1m(x, ones, c), ones)
        } else {
            ProbLogs::Both(math::ln_unit(x, c), math::ln_1m_unit(x, c))
        }
    }
    #[inline(always)]
    fn finish_terms(&self, _terms: &mut ProbLogs) {}
    #[inline(always)]
    fn eval<const GRAD: bool>(&mut self, x: F32x4, t: F32x4, logs: ProbLogs, lanes: usize) -> (F32x4, F32x4) {
        let c = &self.c;
        let one = c.get(k::ONE);
        // x is in [0, 1] (checked by `bce`), and the clamp hides the -103.97 at 0 and 1.
        let mut loss = match logs {
            ProbLogs::Both(ln_x, ln_not_x) => {
                let log_x = ln_x.pmax(c.get(k::NEG_100));
                let log_not_x = ln_not_x.pmax(c.get(k::NEG_100));
                t.sub(one).mul(log_not_x).sub(t.mul(log_x))
            }
            // `(t - 1)·log(1 - x) - t·log x` at t = 1 is `0·log(1 - x) - log x`, at t = 0
            // `-log(1 - x) - 0·log x`: the same bits as `-0 - log x` and `+0 - log(1 - x)`
            // (the product with 0 is -0 but where the other log is 0, at x = 1 and x = 0,
            // and there it is -0 too, the other log being -100).
            ProbLogs::Hard(log, ones) => c.keep(ones, c.get(k::NEG_ZERO)).sub(log.pmax(c.get(k::NEG_100))),
        };
        let mut d = if GRAD {
            x.sub(t).div(one.sub(x).mul(x).pmax(c.get(k::TINY)))
        } else {
            F32x4::splat(0.0)
        };
        if let Some(w) = &mut self.weight {
            let w = w.next(lanes);
            loss = loss.mul(w);
            d = d.mul(w);
        }
        (loss, d)
    }
}

/// The index of the first element outside [0, 1] (NaN included). Blocks of 64 without a
/// branch per element (a compare loop with an early exit cost 8% of a scalar-build call),
/// then the element in the first block that has one.
fn first_outside_unit(x: &[f32]) -> Option<usize> {
    const BLOCK: usize = 64;
    let outside = |v: f32| !(v >= 0.0 && v <= 1.0);
    x.chunks(BLOCK).enumerate().find_map(|(b, block)| {
        let any = block.iter().fold(false, |any, &v| any | outside(v));
        if any {
            block.iter().position(|&v| outside(v)).map(|i| b * BLOCK + i)
        } else {
            None
        }
    })
}

/// `torch.nn.functional.binary_cross_entropy` over `data` (probabilities in, gradient out
/// when `upstream` wants one). Every input must lie in [0, 1] (NaN included in the check):
/// otherwise [`KernelError::InputOutOfRange`] before anything is written.
pub fn bce(
    data: InOut,
    target: &[f32],
    weight: Option<Broadcast>,
    upstream: Upstream,
    losses: Option<&mut [f32]>,
    acc: f64,
) -> Result<f64, KernelError> {
    if let Some(position) = first_outside_unit(data.input()) {
        return Err(KernelError::InputOutOfRange { position });
    }
    if let Some(w) = &weight {
        w.check("weight", data.input().len())?;
    }
    run(data, target, upstream, losses, acc, &mut Probs { c: Consts::new(), weight: weight.map(Lanes::new) })
}

/// `(1 - p_t)^γ` of [`SigmoidFocal`]: [`Power`] chosen per call, or `γ = 2` fixed at
/// compile time (the default γ), whose sweep then has no `match` per vector: V8 keeps more
/// of the loop's values in registers when its body is one straight line (SIMD build:
/// +6-8% in an interleaved A/B at (1024, 1000)).
trait FocalPower: Copy {
    fn is_zero(self) -> bool;
    fn of(self, q: F32x4) -> F32x4;
    fn slope(self, q: F32x4, qg: F32x4) -> F32x4;
}

impl FocalPower for Power {
    #[inline(always)]
    fn is_zero(self) -> bool {
        matches!(self, Power::Zero)
    }
    #[inline(always)]
    fn of(self, q: F32x4) -> F32x4 {
        Power::of(self, q)
    }
    #[inline(always)]
    fn slope(self, q: F32x4, qg: F32x4) -> F32x4 {
        Power::slope(self, q, qg)
    }
}

#[derive(Clone, Copy)]
struct Squared;

impl FocalPower for Squared {
    #[inline(always)]
    fn is_zero(self) -> bool {
        false
    }
    #[inline(always)]
    fn of(self, q: F32x4) -> F32x4 {
        Power::Two.of(q)
    }
    #[inline(always)]
    fn slope(self, q: F32x4, qg: F32x4) -> F32x4 {
        Power::Two.slope(q, qg)
    }
}

struct SigmoidFocal<P> {
    c: Consts,
    /// `(α, 1 - α)` when weighting is on (`α >= 0`), as vectors built once.
    alpha: Option<(F32x4, F32x4)>,
    power: P,
}

impl<P: FocalPower> Elementwise for SigmoidFocal<P> {
    logistic_terms!();
    #[inline(always)]
    fn eval<const GRAD: bool>(&mut self, x: F32x4, t: F32x4, terms: LogisticTerms, _lanes: usize) -> (F32x4, F32x4) {
        let c = &self.c;
        let zero = c.get(k::ZERO);
        let one = c.get(k::ONE);
        let lg = math::logistic_from_terms(x, terms, c);
        let not_t = one.sub(t);
        let ce = nan_at_neg_inf(x, not_t.mul(lg.sp).add(t.mul(lg.sp_neg)), c);
        let q = lg.p.mul(not_t).add(t.mul(lg.pn));
        let qg = self.power.of(q);
        let alpha_t = self.alpha.map(|(a, not_a)| a.mul(t).add(not_a.mul(not_t)));
        let mut loss = ce.mul(qg);
        if let Some(a) = alpha_t {
            loss = a.mul(loss);
        }
        if !GRAD {
            return (loss, zero);
        }
        let dce = not_t.mul(lg.p).sub(t.mul(lg.pn));
        let mut d = dce.mul(qg);
        if !self.power.is_zero() {
            let dq = lg.p.mul(lg.pn).mul(one.sub(t.add(t)));
            d = d.add(ce.mul(self.power.slope(q, qg)).mul(dq));
            // Autograd multiplies the infinite or NaN ce of an infinite logit into this branch.
            d = x.abs().eq(c.get(k::INF)).select(c.get(k::NAN), d);
        }
        if let Some(a) = alpha_t {
            d = a.mul(d);
        }
        (loss, d)
    }
}

/// `torchvision.ops.sigmoid_focal_loss` over `data` (logits in, gradient out when
/// `upstream` wants one). `alpha < 0` (or NaN) disables the `α_t` weighting, as in
/// torchvision; `gamma >= 0`.
pub fn sigmoid_focal(
    data: InOut,
    target: &[f32],
    alpha: f32,
    gamma: f32,
    upstream: Upstream,
    losses: Option<&mut [f32]>,
    acc: f64,
) -> Result<f64, KernelError> {
    let c = Consts::new();
    let alpha = (alpha >= 0.0).then(|| (F32x4::splat(core::hint::black_box(alpha)), F32x4::splat(core::hint::black_box(1.0 - alpha))));
    match Power::new(gamma) {
        // Only the SIMD build: the scalar build's sweep measured 14% slower this way.
        Power::Two if crate::simd::SIMD => run(data, target, upstream, losses, acc, &mut SigmoidFocal { c, alpha, power: Squared }),
        power => run(data, target, upstream, losses, acc, &mut SigmoidFocal { c, alpha, power }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::*;
    // Inside wasm the same tests run through wasm-bindgen-test (scripts/test-wasm-kernels.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn sigmoid(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            x.exp() / (1.0 + x.exp())
        }
    }

    fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    /// Where a [`Broadcast`] puts element `i` (by division, as the definition says).
    fn bcast_at(b: Broadcast, i: usize) -> f64 {
        b.values[((b.offset + i) / b.repeat) % b.values.len()] as f64
    }

    /// PyTorch's BCE-with-logits loss as written (not rearranged), in f64.
    fn logits_loss(x: f64, t: f64, w: f64, pw: f64) -> f64 {
        let m = (-x).max(0.0);
        w * ((1.0 - t) * x + (1.0 + (pw - 1.0) * t) * (((-m).exp() + (-x - m).exp()).ln() + m))
    }

    /// torchvision's sigmoid focal loss as written, in f64 (`α < 0` disables α).
    fn focal_loss(x: f64, t: f64, alpha: f64, gamma: f64) -> f64 {
        let p = sigmoid(x);
        let ce = logits_loss(x, t, 1.0, 1.0);
        let p_t = p * t + (1.0 - p) * (1.0 - t);
        let loss = ce * (1.0 - p_t).powf(gamma);
        if alpha >= 0.0 {
            (alpha * t + (1.0 - alpha) * (1.0 - t)) * loss
        } else {
            loss
        }
    }

    fn bce_loss(x: f64, t: f64, w: f64) -> f64 {
        w * ((t - 1.0) * (-x).ln_1p().max(-100.0) - t * x.ln().max(-100.0))
    }

    /// Central differences (f64) of `f` at each element against the kernel's gradient.
    fn check_gradient(what: &str, x: &[f32], grad: &[f32], g: &[f32], f: impl Fn(usize, f64) -> f64, h: f64) {
        for i in 0..x.len() {
            let xi = x[i] as f64;
            let fd = g[i] as f64 * (f(i, xi + h) - f(i, xi - h)) / (2.0 * h);
            let tol = 1e-5 + 1e-4 * fd.abs();
            assert!((fd - grad[i] as f64).abs() <= tol, "{what} element {i} (x = {xi}): fd {fd} vs kernel {}", grad[i]);
        }
    }

    struct Data {
        x: Vec<f32>,
        t: Vec<f32>,
        g: Vec<f32>,
    }

    fn data(n: usize, seed: u64, scale: f32, soft: bool) -> Data {
        let mut rng = Rng(seed);
        let x = (0..n).map(|_| rng.normal() * scale).collect();
        let t = (0..n).map(|_| if soft { rng.uniform() } else { (rng.uniform() < 0.4) as i32 as f32 }).collect();
        let g = (0..n).map(|_| rng.normal()).collect();
        Data { x, t, g }
    }

    type Kernel<'a> = dyn Fn(InOut, Upstream, Option<&mut [f32]>, f64) -> f64 + 'a;

    /// [`both_ways`] for a [`Kernel`] with the losses output.
    fn both(x: &[f32], kernel: &Kernel, up: Upstream) -> (Vec<f32>, Outcome) {
        both_ways(x, up.wants_grad(), |data| {
            let mut losses = vec![0.0f32; x.len()];
            (kernel(data, up, Some(&mut losses), 0.0), losses)
        })
    }

    /// Loss and gradient against `loss64`, finite differences of `loss64`, forward-only; each
    /// in place and out of place, bit-identical.
    fn check(what: &str, d: &Data, kernel: &Kernel, loss64: &dyn Fn(usize, f64) -> f64, h: f64) {
        let n = d.x.len();
        let (grad, (sum, losses)) = both(&d.x, kernel, Upstream::PerPosition(&d.g));
        let want: Vec<f64> = (0..n).map(|i| loss64(i, d.x[i] as f64)).collect();
        assert_close(&format!("{what} loss"), &losses, &want);
        assert_close(&format!("{what} sum"), &[sum as f32], &[want.iter().sum()]);
        check_gradient(what, &d.x, &grad, &d.g, loss64, h);
        let (_, (fsum, fwd_losses)) = both(&d.x, kernel, Upstream::None);
        assert_eq!(bits(&fwd_losses), bits(&losses));
        assert_eq!(fsum.to_bits(), sum.to_bits());
        // Uniform upstream = per-element upstream of equal values.
        let (a, _) = both(&d.x, kernel, Upstream::Uniform(0.75));
        let (b, _) = both(&d.x, kernel, Upstream::PerPosition(&vec![0.75; n]));
        assert_eq!(bits(&a), bits(&b));
    }

    #[test]
    fn bce_with_logits_matches_pytorch_formula_and_finite_differences() {
        let weights: Vec<f32> = (0..7).map(|i| 0.25 + 0.3 * i as f32).collect();
        let pws: Vec<f32> = (0..5).map(|i| 0.5 + 0.7 * i as f32).collect();
        for (n, scale, soft) in [(1, 1.0, false), (7, 3.0, true), (35, 5.0, false), (130, 2.0, true)] {
            let d = data(n, n as u64, scale, soft);
            for (weight, pos_weight) in [
                (None, None),
                (Some(Broadcast { values: &weights, repeat: 1, offset: 0 }), None),
                (None, Some(Broadcast { values: &pws, repeat: 3, offset: 2 })),
                (Some(Broadcast { values: &weights[..1], repeat: 1, offset: 0 }), Some(Broadcast { values: &pws, repeat: 1, offset: 3 })),
            ] {
                let kernel = |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| {
                    bce_with_logits(x, &d.t, weight, pos_weight, up, l, acc).unwrap()
                };
                let loss64 = |i: usize, x: f64| {
                    logits_loss(x, d.t[i] as f64, weight.map_or(1.0, |w| bcast_at(w, i)), pos_weight.map_or(1.0, |w| bcast_at(w, i)))
                };
                check("bce_with_logits", &d, &kernel, &loss64, 1e-5);
            }
        }
    }

    #[test]
    fn bce_with_logits_is_stable_and_pytorch_at_infinities() {
        let x = [1e4f32, -1e4, 100.0, -100.0, 88.0, -20.0, f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NAN];
        let t = [0.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let kernel = |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| bce_with_logits(x, &t, None, None, up, l, acc).unwrap();
        let (data, (_, losses)) = both(&x, &kernel, Upstream::Uniform(1.0));
        assert_eq!(losses[..5], [1e4, 1e4, 100.0, 100.0, 88.0]);
        assert_close("small loss", &losses[5..6], &[softplus(-20.0)]);
        assert!((losses[5] as f64 - 2.061e-9).abs() < 1e-12, "no cancellation: {}", losses[5]);
        assert_eq!(losses[6], f32::INFINITY);
        assert!(losses[7].is_nan() && losses[8].is_nan() && losses[9].is_nan());
        assert_close("grad", &data, &[1.0, -1.0, 1.0, -1.0, 1.0, sigmoid(-20.0), 1.0, -1.0, 0.0, f64::NAN]);
        assert!((data[5] as f64 / sigmoid(-20.0) - 1.0).abs() < 1e-6, "no cancellation: {}", data[5]);
    }

    #[test]
    fn bce_matches_pytorch_formula_and_finite_differences() {
        let weights: Vec<f32> = (0..4).map(|i| 0.5 + 0.5 * i as f32).collect();
        for (n, soft) in [(1, false), (9, true), (64, false)] {
            let mut d = data(n, 40 + n as u64, 2.0, soft);
            for v in d.x.iter_mut() {
                *v = sigmoid(*v as f64) as f32;
            }
            for weight in [None, Some(Broadcast { values: &weights, repeat: 2, offset: 1 })] {
                let kernel = |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| bce(x, &d.t, weight, up, l, acc).unwrap();
                let loss64 = |i: usize, x: f64| bce_loss(x, d.t[i] as f64, weight.map_or(1.0, |w| bcast_at(w, i)));
                check("bce", &d, &kernel, &loss64, 1e-6);
            }
        }
    }

    /// The one-log path of hard labels gives the bits of the two-log formula, for every
    /// 499th float in [0, 1] (every exponent, two million mantissas) and the ends (where the
    /// other log, the one skipped, is -100).
    #[test]
    fn bce_hard_labels_match_the_two_log_formula_bit_for_bit() {
        let c = Consts::new();
        let t = F32x4::from_array([0.0, 1.0, 1.0, 0.0]);
        let mut probs = Probs { c, weight: None };
        let ends = [0.0f32, 1.0, f32::from_bits(1), 1.0 - f32::EPSILON / 2.0, 1e-30, 0.5];
        for x in (0..=1.0f32.to_bits()).step_by(499).map(f32::from_bits).chain(ends) {
            let x = F32x4::splat(x);
            let hard = probs.start_terms(x, t);
            assert!(matches!(hard, ProbLogs::Hard(..)));
            let both = ProbLogs::Both(math::ln_unit(x, &c), math::ln_1m_unit(x, &c));
            let (l1, d1) = probs.eval::<true>(x, t, hard, 4);
            let (l2, d2) = probs.eval::<true>(x, t, both, 4);
            let bits = |v: F32x4| v.to_array().map(f32::to_bits);
            assert_eq!((bits(l1), bits(d1)), (bits(l2), bits(d2)), "x = {}", x.to_array()[0]);
        }
        // Soft labels take both logs.
        let soft = probs.start_terms(F32x4::splat(0.3), F32x4::from_array([0.0, 1.0, 0.5, 0.0]));
        assert!(matches!(soft, ProbLogs::Both(..)));
    }

    #[test]
    fn bce_clamps_and_rejects_out_of_range_inputs() {
        let x = [0.0f32, 1.0, 0.0, 1.0, 1e-45, 0.99999994];
        let t = [0.0f32, 1.0, 1.0, 0.0, 1.0, 0.0];
        let kernel = |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| bce(x, &t, None, up, l, acc).unwrap();
        let (data, (_, losses)) = both(&x, &kernel, Upstream::Uniform(1.0));
        assert_eq!(losses[..5], [0.0, 0.0, 100.0, 100.0, 100.0]);
        assert_close("near 1", &losses[5..], &[-(1.0 - 0.99999994f32 as f64).ln()]);
        assert_eq!(data[..4], [0.0, 0.0, -1e12, 1e12]);
        for bad in [1.5f32, -0.5, f32::NAN] {
            let mut data = [0.5, bad, 0.25];
            let err = bce(InOut::InPlace(&mut data), &[1.0, 1.0, 1.0], None, Upstream::Uniform(1.0), None, 0.0).unwrap_err();
            assert_eq!(err, KernelError::InputOutOfRange { position: 1 });
            assert_eq!(data[0], 0.5);
            let mut grad = [SENTINEL; 3];
            let err = bce(InOut::OutOfPlace { input: &data, grad: &mut grad }, &[1.0, 1.0, 1.0], None, Upstream::Uniform(1.0), None, 0.0);
            assert_eq!(err.unwrap_err(), KernelError::InputOutOfRange { position: 1 });
            assert_eq!(grad, [SENTINEL; 3]);
        }
    }

    #[test]
    fn sigmoid_focal_matches_torchvision_and_finite_differences() {
        for (n, scale, soft) in [(1, 1.0, false), (11, 3.0, false), (40, 3.0, true), (129, 6.0, false)] {
            let d = data(n, 70 + n as u64, scale, soft);
            for alpha in [0.25f32, 0.5, -1.0] {
                for gamma in [0.0f32, 0.25, 0.5, 1.0, 2.0, 5.0] {
                    let kernel =
                        |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| sigmoid_focal(x, &d.t, alpha, gamma, up, l, acc).unwrap();
                    let loss64 = |i: usize, x: f64| focal_loss(x, d.t[i] as f64, alpha as f64, gamma as f64);
                    check(&format!("sigmoid_focal alpha {alpha} gamma {gamma}"), &d, &kernel, &loss64, 1e-6);
                }
            }
        }
    }

    /// `γ < 1` near saturation: finite differences still agree (the terms stay accurate), and
    /// where `1 - p_t` is 0 in float32 the gradient is the finite limit, not NaN.
    #[test]
    fn sigmoid_focal_near_and_at_saturation() {
        let x = [8.0f32, -8.0, 12.0, -12.0, 15.0, -15.0, 5.0, -1.0];
        let t = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let d = Data { x: x.to_vec(), t: t.to_vec(), g: vec![1.0; 8] };
        for gamma in [0.25f32, 0.5, 0.9] {
            let kernel = |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| sigmoid_focal(x, &d.t, 0.25, gamma, up, l, acc).unwrap();
            let loss64 = |i: usize, x: f64| focal_loss(x, d.t[i] as f64, 0.25, gamma as f64);
            check(&format!("near saturation gamma {gamma}"), &d, &kernel, &loss64, 1e-4);
        }
        let x = [20.0f32, -20.0, 100.0, -100.0, 1e4, -1e4];
        let t = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0];
        for gamma in [0.25f32, 0.5] {
            let kernel = |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| sigmoid_focal(x, &t, 0.25, gamma, up, l, acc).unwrap();
            let (data, (_, losses)) = both(&x, &kernel, Upstream::Uniform(1.0));
            assert!(data.iter().chain(&losses).all(|v| v.is_finite() && v.abs() < 1e-8), "{data:?} {losses:?}");
            assert_eq!(data[4..], [0.0, 0.0]);
        }
    }

    #[test]
    fn sigmoid_focal_infinite_logits_follow_torchvision() {
        let x = [f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY];
        let t = [0.0f32, 0.0, 1.0, 1.0];
        for (gamma, nan_grad) in [(0.0f32, false), (0.5, true), (2.0, true)] {
            let kernel = |x: InOut, up: Upstream, l: Option<&mut [f32]>, acc: f64| sigmoid_focal(x, &t, 0.25, gamma, up, l, acc).unwrap();
            let (data, (_, losses)) = both(&x, &kernel, Upstream::Uniform(1.0));
            assert!(losses[0].is_nan() && losses[2].is_nan() && losses[3].is_nan());
            assert_eq!(losses[1], f32::INFINITY);
            if nan_grad {
                assert!(data.iter().all(|v| v.is_nan()), "{data:?}");
            } else {
                assert_eq!(data, [0.0, 0.75, -0.25, 0.0]);
            }
        }
    }

    #[test]
    fn broadcast_lanes_match_the_definition() {
        let values: Vec<f32> = (0..7).map(|v| v as f32).collect();
        for period in [1, 2, 3, 4, 5, 7] {
            for repeat in [1, 2, 3, 4, 5, 9] {
                for offset in [0, 1, 6, 13] {
                    let b = Broadcast { values: &values[..period], repeat, offset };
                    let mut lanes = Lanes::new(b);
                    let mut i = 0;
                    for step in [4, 4, 3, 4, 1, 4, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4] {
                        let got = lanes.next(step).to_array();
                        for l in 0..step {
                            assert_eq!(got[l] as f64, bcast_at(b, i + l), "period {period} repeat {repeat} offset {offset} element {}", i + l);
                        }
                        i += step;
                    }
                }
            }
        }
    }

    #[test]
    fn chunked_calls_give_identical_bits() {
        let d = data(103, 11, 4.0, true);
        let w: Vec<f32> = (0..6).map(|i| 0.5 + i as f32 * 0.25).collect();
        let pw = [2.0f32, 0.5, 3.0];
        let wb = |offset| Some(Broadcast { values: &w, repeat: 1, offset });
        let pwb = |offset| Some(Broadcast { values: &pw, repeat: 5, offset });
        type Run<'a> = Box<dyn Fn(InOut, &[f32], usize, f64) -> f64 + 'a>;
        let runs: Vec<(&str, Run)> = vec![
            ("bce_with_logits", Box::new(|x, t, off, acc| bce_with_logits(x, t, wb(off), pwb(off), Upstream::Uniform(0.5), None, acc).unwrap())),
            ("sigmoid_focal", Box::new(|x, t, _, acc| sigmoid_focal(x, t, 0.25, 0.5, Upstream::Uniform(0.5), None, acc).unwrap())),
        ];
        for (what, run) in runs {
            let mut whole = d.x.clone();
            let total = run(InOut::InPlace(&mut whole), &d.t, 0, 0.0);
            let mut parts = d.x.clone();
            let mut grad = vec![SENTINEL; d.x.len()];
            let (mut acc, mut oop_acc) = (0.0, 0.0);
            for (a, b) in [(0, 5), (5, 6), (6, 50), (50, 103)] {
                acc = run(InOut::InPlace(&mut parts[a..b]), &d.t[a..b], a, acc);
                oop_acc = run(InOut::OutOfPlace { input: &d.x[a..b], grad: &mut grad[a..b] }, &d.t[a..b], a, oop_acc);
            }
            assert_eq!(total.to_bits(), acc.to_bits(), "{what}");
            assert_eq!(bits(&whole), bits(&parts), "{what}");
            assert_eq!(total.to_bits(), oop_acc.to_bits(), "{what} out of place");
            assert_eq!(bits(&whole), bits(&grad), "{what} out of place");
        }
    }
}
