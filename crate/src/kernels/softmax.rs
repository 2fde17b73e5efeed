//! The fused softmax sweep shared by every softmax-based loss (cross-entropy, focal).
//!
//! For each position the sweep makes two passes over its classes:
//! 1. Reductions, block by block: block max, `e = exp(x - ref)` (stored in the gradient
//!    buffer when a gradient is wanted), `Σ e`, and the optional class-mass sums `Σ q` and
//!    `Σ q·(x - ref)`.
//!    Each block uses its own reference (its max), so no running max has to be rescaled
//!    element by element; blocks are small enough to stay in L1 between the max and the exp.
//! 2. Gradient: `grad_c = a·p_c - b·q_c` (with `p_c = e_c·exp(ref - M)/S`), then the
//!    target class gets `- b_target`.
//!
//! Pass 1 reads the input, pass 2 the gradient buffer (the same one in place, see [`InOut`]).
//!
//! A loss plugs in through [`Finish`]: from the log-sum-exp, the target logit and the mass
//! sums it returns the position's loss and the three gradient coefficients.

use super::io::{with_io, InOut, Io};
use super::{check_len, KernelError, Layout, Upstream};
use crate::math;
use crate::simd::{max_nan, F32x4, I32x4, Mask};

/// At most this many blocks per position; larger rows get larger blocks.
const MAX_BLOCKS: usize = 64;
/// Elements per block along a row (4 KiB: stays in L1 between the two reads of pass 1).
const ROW_BLOCK: usize = 1024;
/// Classes per block in the spatial layout (4 positions per vector).
const SPATIAL_BLOCK: usize = 256;

/// Per-class weights `q_c` whose sums [`Stats::cross`] and [`Stats::mass`] report.
#[derive(Clone, Copy)]
pub enum Mass<'a> {
    /// No mass sums needed.
    None,
    /// `q_c = weight[c]` (1 without weights): label smoothing over index targets.
    Weight(Option<&'a [f32]>),
    /// `q_c = weight[c] · ((1 - ε)·y_c + ε/C)`: probability targets (`y` has the input's layout).
    Prob { y: &'a [f32], weight: Option<&'a [f32]>, smoothing: f32 },
}

/// What pass 1 learns about one position.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// `log Σ_c exp(x_c) = shift + ln_sum`, kept in two parts: `shift` is the position's max
    /// when finite (else 0), so `lse - x_t = (shift - x_t) + ln_sum` keeps `ln_sum` even where
    /// `|max|` is so large that `max + ln_sum` rounds to `max` (e.g. logits `[1e20, 1e20]`:
    /// PyTorch's `log_softmax` computes `(x - max) - ln_sum`, giving `-ln 2`).
    pub shift: f64,
    pub ln_sum: f64,
    /// `Σ_c q_c·(lse - x_c)`: the cross-entropy against the mass `q`.
    pub cross: f64,
    /// `Σ_c q_c`.
    pub mass: f64,
}

/// A position's loss and gradient coefficients: `grad_c = a·p_c - b_mass·q_c - [c = t]·b_target`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coeffs {
    pub loss: f32,
    pub a: f32,
    pub b_mass: f32,
    pub b_target: f32,
}

/// [`Stats`] of four positions whose max is finite, as f32 vectors (`shift` is the max).
#[derive(Clone, Copy)]
pub struct LaneStats {
    pub shift: F32x4,
    pub ln_sum: F32x4,
    pub cross: F32x4,
    pub mass: F32x4,
}

/// [`Coeffs`] of four positions.
#[derive(Clone, Copy)]
pub struct LaneCoeffs {
    pub loss: F32x4,
    pub a: F32x4,
    pub b_mass: F32x4,
    pub b_target: F32x4,
}

/// Turns a position's statistics into its loss and gradient coefficients.
pub trait Finish {
    /// `target` is the class index (None when ignored or for probability targets), `x_t` the
    /// target's logit (NaN when there is none), `g` the upstream gradient.
    fn finish(&mut self, position: usize, target: Option<usize>, x_t: f32, stats: &Stats, g: f32) -> Coeffs;

    /// Four positions of a one-block spatial tile at once, in f32 (the lanes the sweep uses
    /// it for have a finite max): in the `(N, C, d…)` layout the per-position f64 work of
    /// [`Finish::finish`] costs as much as the sweep over a few classes. `classes` holds each
    /// lane's target class, [`NO_CLASS`] where there is none. None: the sweep calls `finish`
    /// for each position.
    #[inline(always)]
    fn finish_lanes(&mut self, _classes: I32x4, _x_t: F32x4, _stats: &LaneStats, _g: F32x4) -> Option<LaneCoeffs> {
        None
    }
}

/// The class of a spatial lane without a target (ignored, probability targets, or past the
/// end of the sample).
pub const NO_CLASS: i32 = -1;

/// Which of four lanes have a target class, and `weight[t]·other[t]` of each (a missing
/// array counts as ones; 0 where there is no target).
#[inline(always)]
pub fn lane_weights(classes: I32x4, weight: Option<&[f32]>, other: Option<&[f32]>) -> (Mask, F32x4) {
    let has = classes.gt(I32x4::splat(NO_CLASS));
    if weight.is_none() && other.is_none() {
        return (has, has.keep(F32x4::splat(1.0)));
    }
    let mut w = [0.0f32; 4];
    for (w, t) in w.iter_mut().zip(classes.to_array()) {
        if t != NO_CLASS {
            let t = t as usize;
            *w = weight.map_or(1.0, |w| w[t]) * other.map_or(1.0, |o| o[t]);
        }
    }
    (has, F32x4::from_array(w))
}

/// Class indices per position, with the ignored value.
#[derive(Clone, Copy)]
pub struct IndexTargets<'a> {
    pub classes: &'a [i32],
    pub ignore_index: i32,
}

impl IndexTargets<'_> {
    /// The class of `position`: None when ignored, an error when out of `0..n_classes`.
    #[inline(always)]
    pub(crate) fn at(&self, position: usize, n_classes: usize) -> Result<Option<usize>, KernelError> {
        let t = self.classes[position];
        if t == self.ignore_index {
            Ok(None)
        } else if t >= 0 && (t as usize) < n_classes {
            Ok(Some(t as usize))
        } else {
            Err(KernelError::TargetOutOfBounds { position, target: t as i64 })
        }
    }

    /// The class of a position that [`IndexTargets::at`] accepted, [`NO_CLASS`] when ignored.
    #[inline(always)]
    fn class_of(&self, position: usize) -> i32 {
        let t = self.classes[position];
        if t == self.ignore_index {
            NO_CLASS
        } else {
            t
        }
    }
}

/// Runs the sweep over every position. `data` holds the logits and, when `upstream` wants a
/// gradient, receives it (in place or in its own buffer). `losses` (one per position) is
/// written when given. Returns `acc` plus the sum of the positions' losses in position
/// order, so that a caller processing an input in chunks gets the same bits as one call.
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    layout: Layout,
    mut data: InOut,
    targets: Option<IndexTargets>,
    mass: Mass,
    upstream: Upstream,
    mut losses: Option<&mut [f32]>,
    acc: f64,
    finish: &mut impl Finish,
) -> Result<f64, KernelError> {
    let positions = layout.positions();
    check_len("input", layout.len(), data.checked_len()?)?;
    if let Some(t) = &targets {
        check_len("target", positions, t.classes.len())?;
        // Validate every target before writing anything.
        for p in 0..positions {
            t.at(p, layout.classes)?;
        }
    }
    if let Mass::Prob { y, .. } = mass {
        check_len("target", layout.len(), y.len())?;
    }
    if let Mass::Weight(Some(w)) | Mass::Prob { weight: Some(w), .. } = mass {
        check_len("weight", layout.classes, w.len())?;
    }
    if let Upstream::PerPosition(g) = upstream {
        check_len("gradOutput", positions, g.len())?;
    }
    if let Some(l) = &losses {
        check_len("loss output", positions, l.len())?;
    }
    let mut acc = acc;
    let c = layout.classes;
    if c == 0 || positions == 0 {
        return Ok(acc);
    }
    let grad = upstream.wants_grad();
    // Staging area of the spatial tiles, `V = 4` vectors per class of a block: once per call,
    // not per tile; 16 KiB of stack, or the heap for blocks beyond SPATIAL_BLOCK classes
    // (more than MAX_BLOCKS · SPATIAL_BLOCK classes).
    // Rows need none (no 16 KiB of zeros per call on small row inputs).
    let mut stack_stage;
    let mut heap_stage = Vec::new();
    let stage_len = 4 * if c <= SPATIAL_BLOCK { c } else { block_len(c, SPATIAL_BLOCK) };
    let stage: &mut [F32x4] = if layout.inner == 1 {
        &mut []
    } else if stage_len <= SPATIAL_BLOCK * 4 {
        stack_stage = [F32x4::ZERO; SPATIAL_BLOCK * 4];
        &mut stack_stage
    } else {
        heap_stage.resize(stage_len, F32x4::ZERO);
        &mut heap_stage
    };
    for n in 0..layout.outer {
        let mut sample = data.sub(n * c * layout.inner..(n + 1) * c * layout.inner);
        if layout.inner == 1 {
            let y = match mass {
                Mass::Prob { y, .. } => &y[n * c..(n + 1) * c],
                _ => &[][..],
            };
            let target = match &targets {
                Some(t) => t.at(n, c)?,
                None => None,
            };
            let g = upstream.at(n);
            let loss = if grad {
                row::<true>(&mut sample, target, mass, y, g, n, finish)
            } else {
                row::<false>(&mut sample, target, mass, y, g, n, finish)
            };
            if let Some(l) = losses.as_deref_mut() {
                l[n] = loss;
            }
            acc += loss as f64;
        } else {
            let y = match mass {
                Mass::Prob { y, .. } => &y[n * c * layout.inner..(n + 1) * c * layout.inner],
                _ => &[][..],
            };
            let mut s = 0;
            while s < layout.inner {
                let remaining = layout.inner - s;
                let wide = remaining >= TILE;
                let lanes = if wide { TILE } else { remaining.min(4) };
                let first = n * layout.inner + s;
                let mut tile_classes = [NO_CLASS; TILE];
                let mut tile_g = [0.0f32; TILE];
                for l in 0..lanes {
                    if let Some(t) = &targets {
                        tile_classes[l] = t.class_of(first + l);
                    }
                    tile_g[l] = upstream.at(first + l);
                }
                let (x, inner, t, g, st) = (&mut sample, layout.inner, &tile_classes, &tile_g, &mut *stage);
                let tile_losses = match (grad, wide) {
                    (true, true) => spatial_tile::<true, 4>(x, inner, s, lanes, t, mass, y, g, first, finish, st),
                    (true, false) => spatial_tile::<true, 1>(x, inner, s, lanes, t, mass, y, g, first, finish, st),
                    (false, true) => spatial_tile::<false, 4>(x, inner, s, lanes, t, mass, y, g, first, finish, st),
                    (false, false) => spatial_tile::<false, 1>(x, inner, s, lanes, t, mass, y, g, first, finish, st),
                };
                for (l, &loss) in tile_losses.iter().enumerate().take(lanes) {
                    if let Some(out) = losses.as_deref_mut() {
                        out[first + l] = loss;
                    }
                    acc += loss as f64;
                }
                s += lanes;
            }
        }
    }
    Ok(acc)
}

/// Below this, `exp` of a shifted logit is flushed to 0 (the smallest normal float is
/// `exp(-87.34)`; a denormal term changes no sum of exponentials that holds a 1).
const EXP_FLUSH: f32 = -87.0;

/// `e^d` for the shifted logits of the sweep, `d = x - ref <= 0` (or NaN), with the fewest
/// vector operations (it is most of the sweep's work): `e^d = 2^n·(1 + P(r))`,
/// `d = n·ln 2 + r`, `n` rounded by the `1.5·2^23` shift (which also leaves `n` in the low
/// bits for `2^n`), `P` a degree-5 minimax polynomial (the coefficients of Arm's
/// optimized-routines `v_expf`, by Estrin's scheme; 2.15 ulp at most without fused multiply-add, see
/// `exp_shifted_accuracy`: far below the rounding of the f32 sums it feeds). `d <= 0`
/// keeps `2^n` normal without clamping: lanes below -87 (where `n` would leave the
/// exponent range, -Infinity included) are flushed to +0 at the end, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_shifted(d: F32x4) -> F32x4 {
    const SHIFT: f32 = 12_582_912.0; // 1.5·2^23
    let z = d.mul(F32x4::splat(core::f32::consts::LOG2_E)).add(F32x4::splat(SHIFT));
    let n = z.sub(F32x4::splat(SHIFT));
    let r = d.sub(n.mul(F32x4::splat(f32::from_bits(0x3f31_7200)))); // ln 2, high 17 bits
    let r = r.sub(n.mul(F32x4::splat(f32::from_bits(0x35bf_be8e)))); // ln 2 - high part
    // Estrin's scheme, as in `math::exp_neg`: 3 dependent steps instead of Horner's 5.
    let c = |bits: u32| F32x4::splat(f32::from_bits(bits));
    let r2 = r.mul(r);
    let high = c(0x3d2b_9f17).mul(r).add(c(0x3e2a_af33));
    let low = c(0x3eff_fedb).mul(r).add(c(0x3f7f_fff6));
    let p = c(0x3c07_2010).mul(r2.mul(r2)).add(high.mul(r2).add(low));
    let scale = z.pow2i_shifted();
    let e = scale.add(p.mul(r).mul(scale));
    d.lt(F32x4::splat(EXP_FLUSH)).zero_where(e)
}

/// Block statistics of one position (one lane in the spatial layout).
#[derive(Clone, Copy)]
struct BlockStats {
    max: f32,
    reference: f32,
    sum_exp: f32,
    mass_x: f32,
    mass: f32,
}

/// Each block's exponentials are relative to its own max; a block of only -Infinity uses 0
/// so that its entries give exp = 0 rather than exp(-inf + inf) = NaN.
#[inline(always)]
fn reference_of(max: f32) -> f32 {
    if max == f32::NEG_INFINITY {
        0.0
    } else {
        max
    }
}

/// Combines the blocks of one position (in f64, once per block). Also returns each block's
/// factor `exp(ref_j - M) / S`, which turns its stored `e` into probabilities.
fn combine(blocks: &[BlockStats], factors: &mut [f64]) -> Stats {
    let max = blocks.iter().fold(f32::NEG_INFINITY, |m, b| max_nan(m, b.max)) as f64;
    let mut sum = 0.0f64;
    for (f, b) in factors.iter_mut().zip(blocks) {
        *f = block_scale(b.reference, max);
        sum += b.sum_exp as f64 * *f;
    }
    let ln_sum = sum.ln();
    let mut cross = 0.0f64;
    let mut mass = 0.0f64;
    if max.is_finite() {
        // `lse - ref_j = (max - ref_j) + ln_sum`: no rounding of `ln_sum` into a huge max.
        for b in blocks {
            cross += b.mass as f64 * ((max - b.reference as f64) + ln_sum) - b.mass_x as f64;
            mass += b.mass as f64;
        }
    } else {
        let lse = max + ln_sum;
        for b in blocks {
            cross += b.mass as f64 * (lse - b.reference as f64) - b.mass_x as f64;
            mass += b.mass as f64;
        }
    }
    for f in factors.iter_mut() {
        *f /= sum;
    }
    let (shift, ln_sum) = if max.is_finite() { (max, ln_sum) } else { (0.0, max + ln_sum) };
    Stats { shift, ln_sum, cross, mass }
}

/// `exp(reference - max)`: exactly 1 for the block holding a finite max, so the common
/// one-block position needs no `exp`.
#[inline(always)]
fn block_scale(reference: f32, max: f64) -> f64 {
    if reference as f64 == max && max.is_finite() {
        1.0
    } else {
        (reference as f64 - max).exp()
    }
}

/// [`combine`] for a position whose classes form one block. `ln_sum` is `ln(sum_exp)`
/// from the vector `ln` (2 ulp, four positions per call: much cheaper than f64 `ln`, and
/// its error is far below the f32 rounding of the sum itself).
#[inline(always)]
fn combine_single(b: &BlockStats, ln_sum: f32) -> (Stats, f64) {
    let max = b.max as f64;
    if !max.is_finite() {
        // A row of only -Infinity, or a +Infinity logit: the general path's NaN/Infinity.
        let mut factor = [0.0];
        let stats = combine(core::slice::from_ref(b), &mut factor);
        return (stats, factor[0]);
    }
    // The block's reference is its max: exp(ref - M) = 1, and `lse - ref = ln_sum`.
    let ln_sum = ln_sum as f64;
    let cross = b.mass as f64 * ln_sum - b.mass_x as f64;
    (Stats { shift: max, ln_sum, cross, mass: b.mass as f64 }, 1.0 / b.sum_exp as f64)
}

/// `a · exp(ref - M) / S`. With `a = 0` (no gradient for this position) it is 0 even where
/// the factor is infinite (a row of only -Infinity), but NaN where the softmax itself is NaN
/// (a NaN or +Infinity logit): PyTorch's `0 - exp(logp)·0` gives exactly these.
#[inline(always)]
fn scaled_factor(a: f32, factor: f64) -> f32 {
    if a == 0.0 {
        if factor.is_nan() {
            f32::NAN
        } else {
            0.0
        }
    } else {
        (a as f64 * factor) as f32
    }
}

fn block_len(total: usize, minimum: usize) -> usize {
    let needed = total.div_ceil(MAX_BLOCKS);
    minimum.max(needed.next_multiple_of(4))
}

/// The class mass `q` of four lanes, one implementation per [`Mass`] kind so that the hot
/// loops are compiled without a `match` or a dead mass computation inside.
trait Source: Copy {
    /// False when no mass sums are needed (the loops skip them entirely).
    const ACTIVE: bool;
    /// Row layout: classes `c..c+4` of the row.
    fn row(self, c: usize) -> F32x4;
    /// Row layout: the first `n < 4` classes from `c`, 0 in the other lanes.
    fn row_partial(self, c: usize, n: usize) -> F32x4;
    /// Spatial layout: class `k` of a tile's lanes, whose elements start at `at` in the sample.
    fn plane(self, k: usize, at: usize, lanes: usize) -> F32x4;
}

#[derive(Clone, Copy)]
struct NoMass;
impl Source for NoMass {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn row(self, _: usize) -> F32x4 {
        F32x4::splat(0.0)
    }
    #[inline(always)]
    fn row_partial(self, _: usize, _: usize) -> F32x4 {
        F32x4::splat(0.0)
    }
    #[inline(always)]
    fn plane(self, _: usize, _: usize, _: usize) -> F32x4 {
        F32x4::splat(0.0)
    }
}

/// `q_c = 1` (label smoothing without weights).
#[derive(Clone, Copy)]
struct Ones;
impl Source for Ones {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn row(self, _: usize) -> F32x4 {
        F32x4::splat(1.0)
    }
    #[inline(always)]
    fn row_partial(self, _: usize, n: usize) -> F32x4 {
        Mask::first(n).select(F32x4::splat(1.0), F32x4::splat(0.0))
    }
    #[inline(always)]
    fn plane(self, _: usize, _: usize, _: usize) -> F32x4 {
        F32x4::splat(1.0)
    }
}

/// `q_c = weight[c]`.
#[derive(Clone, Copy)]
struct Weights<'a>(&'a [f32]);
impl Source for Weights<'_> {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn row(self, c: usize) -> F32x4 {
        F32x4::load(&self.0[c..])
    }
    #[inline(always)]
    fn row_partial(self, c: usize, n: usize) -> F32x4 {
        F32x4::load_partial(&self.0[c..], n, 0.0)
    }
    #[inline(always)]
    fn plane(self, k: usize, _: usize, _: usize) -> F32x4 {
        F32x4::splat(self.0[k])
    }
}

/// `q_c = weight[c]·((1 - ε)·y_c + ε/C)`, `y` being this row's (or sample's) probabilities.
#[derive(Clone, Copy)]
struct Probs<'a> {
    y: &'a [f32],
    weight: Option<&'a [f32]>,
    keep: F32x4,
    spread: F32x4,
}
impl<'a> Probs<'a> {
    #[inline(always)]
    fn new(y: &'a [f32], weight: Option<&'a [f32]>, smoothing: f32, inv_c: f32) -> Self {
        Self { y, weight, keep: F32x4::splat(1.0 - smoothing), spread: F32x4::splat(smoothing * inv_c) }
    }
}
impl Source for Probs<'_> {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn row(self, c: usize) -> F32x4 {
        let q = F32x4::load(&self.y[c..]).mul(self.keep).add(self.spread);
        match self.weight {
            Some(w) => q.mul(F32x4::load(&w[c..])),
            None => q,
        }
    }
    #[inline(always)]
    fn row_partial(self, c: usize, n: usize) -> F32x4 {
        let q = F32x4::load_partial(&self.y[c..], n, 0.0).mul(self.keep).add(self.spread);
        let q = match self.weight {
            Some(w) => q.mul(F32x4::load_partial(&w[c..], n, 0.0)),
            None => q,
        };
        Mask::first(n).select(q, F32x4::splat(0.0))
    }
    #[inline(always)]
    fn plane(self, k: usize, at: usize, lanes: usize) -> F32x4 {
        let q = F32x4::load_first(&self.y[at..], lanes, 0.0).mul(self.keep).add(self.spread);
        match self.weight {
            Some(w) => q.mul(F32x4::splat(w[k])),
            None => q,
        }
    }
}

/// Calls `$body` with `$s` bound to the [`Source`] of `$mass` (`$y`: this row's or sample's
/// probabilities). One `match` per block, outside the loops.
macro_rules! with_source {
    ($mass:expr, $y:expr, $inv_c:expr, |$s:ident| $body:expr) => {
        match $mass {
            Mass::None => {
                let $s = NoMass;
                $body
            }
            Mass::Weight(None) => {
                let $s = Ones;
                $body
            }
            Mass::Weight(Some(w)) => {
                let $s = Weights(w);
                $body
            }
            Mass::Prob { weight, smoothing, .. } => {
                let $s = Probs::new($y, weight, smoothing, $inv_c);
                $body
            }
        }
    };
}

/// Pass 1 over a block of a row (`xs` = classes `start..` of the row): max, `e = exp(x - ref)`
/// (stored in the gradient when `GRAD`), `Σe` and the mass sums.
#[inline(never)]
fn reduce_row_block<const GRAD: bool>(xs: InOut, start: usize, mass: Mass, y: &[f32], inv_c: f32) -> BlockStats {
    with_io!(xs, GRAD, |io, G| with_source!(mass, y, inv_c, |s| reduce_row_block_with::<G, _>(io, start, s)))
}

#[inline(always)]
fn reduce_row_block_with<const GRAD: bool, S: Source>(xs: impl Io, start: usize, src: S) -> BlockStats {
    let max = block_max(xs.input());
    let reference = reference_of(max);
    let r = F32x4::splat(reference);
    let zero = F32x4::splat(0.0);
    // Two independent exp chains and accumulators per step, for instruction-level parallelism.
    let (mut sum0, mut sum1) = (zero, zero);
    let (mut mass_x, mut mass_sum) = (zero, zero);
    let mut c = start;
    let (pairs, rest) = xs.chunks_exact(8);
    for mut ch in pairs {
        let x = ch.input();
        let d0 = F32x4::load(&x[..4]).sub(r);
        let d1 = F32x4::load(&x[4..]).sub(r);
        let e0 = exp_shifted(d0);
        let e1 = exp_shifted(d1);
        if GRAD {
            let (lo, hi) = ch.grad().split_at_mut(4);
            e0.store(lo);
            e1.store(hi);
        }
        sum0 = sum0.add(e0);
        sum1 = sum1.add(e1);
        if S::ACTIVE {
            let q0 = src.row(c);
            let q1 = src.row(c + 4);
            mass_x = mass_x.add(q0.mul(d0)).add(q1.mul(d1));
            mass_sum = mass_sum.add(q0).add(q1);
        }
        c += 8;
    }
    let split = rest.len().min(4);
    let (mut quad, tail) = rest.split_at(split);
    if quad.len() == 4 {
        let d = F32x4::load(quad.input()).sub(r);
        let e = exp_shifted(d);
        if GRAD {
            e.store(quad.grad());
        }
        sum0 = sum0.add(e);
        if S::ACTIVE {
            let q = src.row(c);
            mass_x = mass_x.add(q.mul(d));
            mass_sum = mass_sum.add(q);
        }
        c += 4;
    }
    let n = if quad.len() == 4 { tail.len() } else { quad.len() };
    if n > 0 {
        let mut part = if quad.len() == 4 { tail } else { quad };
        // Padding lanes hold the reference: exp(0) = 1, masked out of the sum.
        let d = F32x4::load_partial(part.input(), n, reference).sub(r);
        let e = Mask::first(n).select(exp_shifted(d), zero);
        if GRAD {
            e.store_partial(part.grad(), n);
        }
        sum1 = sum1.add(e);
        if S::ACTIVE {
            let q = src.row_partial(c, n);
            mass_x = mass_x.add(q.mul(d));
            mass_sum = mass_sum.add(q);
        }
    }
    BlockStats { max, reference, sum_exp: sum0.add(sum1).hsum(), mass_x: mass_x.hsum(), mass: mass_sum.hsum() }
}

/// Pass 2 over a block of a row: `grad = e·a - b·q` over the stored exponentials.
#[inline(never)]
fn grad_row_block(xs: &mut [f32], start: usize, mass: Mass, y: &[f32], inv_c: f32, a: f32, b: f32) {
    with_source!(mass, y, inv_c, |s| grad_row_block_with(xs, start, s, F32x4::splat(a), F32x4::splat(b)))
}

#[inline(always)]
fn grad_row_block_with<S: Source>(xs: &mut [f32], start: usize, src: S, a: F32x4, b: F32x4) {
    let mut c = start;
    let mut quads = xs.chunks_exact_mut(4);
    for ch in &mut quads {
        let mut g = F32x4::load(ch).mul(a);
        if S::ACTIVE {
            g = g.sub(b.mul(src.row(c)));
        }
        g.store(ch);
        c += 4;
    }
    let tail = quads.into_remainder();
    let n = tail.len();
    if n > 0 {
        let mut g = F32x4::load_partial(tail, n, 0.0).mul(a);
        if S::ACTIVE {
            g = g.sub(b.mul(src.row_partial(c, n)));
        }
        g.store_partial(tail, n);
    }
}

/// One `(C)` row. Returns the loss; writes the gradient when `GRAD`.
#[inline(never)]
fn row<const GRAD: bool>(
    x: &mut InOut,
    target: Option<usize>,
    mass: Mass,
    y: &[f32],
    g: f32,
    position: usize,
    finish: &mut impl Finish,
) -> f32 {
    let c = x.len();
    let inv_c = 1.0 / c as f32;
    let x_t = target.map_or(f32::NAN, |t| x.input()[t]);
    let co = if c <= ROW_BLOCK {
        // The common case: one block, no per-block arrays, no f64 `exp`.
        let block = reduce_row_block::<GRAD>(x.sub(0..c), 0, mass, y, inv_c);
        let ln_sum = math::ln(F32x4::splat(block.sum_exp)).to_array()[0];
        let (stats, factor) = combine_single(&block, ln_sum);
        let co = finish.finish(position, target, x_t, &stats, g);
        if GRAD {
            grad_row_block(x.grad(), 0, mass, y, inv_c, scaled_factor(co.a, factor), co.b_mass);
        }
        co
    } else {
        let block = block_len(c, ROW_BLOCK);
        let n_blocks = c.div_ceil(block);
        let mut blocks = [BlockStats { max: 0.0, reference: 0.0, sum_exp: 0.0, mass_x: 0.0, mass: 0.0 }; MAX_BLOCKS];
        for (j, stats) in blocks.iter_mut().enumerate().take(n_blocks) {
            let start = j * block;
            *stats = reduce_row_block::<GRAD>(x.sub(start..(start + block).min(c)), start, mass, y, inv_c);
        }
        let mut factors = [0.0f64; MAX_BLOCKS];
        let stats = combine(&blocks[..n_blocks], &mut factors[..n_blocks]);
        let co = finish.finish(position, target, x_t, &stats, g);
        if GRAD {
            for (j, factor) in factors.iter().enumerate().take(n_blocks) {
                let start = j * block;
                let xs = &mut x.grad()[start..(start + block).min(c)];
                grad_row_block(xs, start, mass, y, inv_c, scaled_factor(co.a, *factor), co.b_mass);
            }
        }
        co
    };
    if GRAD {
        if let Some(t) = target {
            x.grad()[t] -= co.b_target;
        }
    }
    co.loss
}

/// Max of a block, four accumulators wide. `pmax` (one instruction) drops NaN: a NaN logit
/// still makes its position's sum of exponentials, and so every result, NaN.
#[inline(always)]
fn block_max(xs: &[f32]) -> f32 {
    let mut m = [F32x4::splat(f32::NEG_INFINITY); 4];
    let mut chunks = xs.chunks_exact(16);
    for ch in &mut chunks {
        m[0] = m[0].pmax(F32x4::load(&ch[0..4]));
        m[1] = m[1].pmax(F32x4::load(&ch[4..8]));
        m[2] = m[2].pmax(F32x4::load(&ch[8..12]));
        m[3] = m[3].pmax(F32x4::load(&ch[12..16]));
    }
    let rest = chunks.remainder();
    let mut quads = rest.chunks_exact(4);
    for ch in &mut quads {
        m[0] = m[0].pmax(F32x4::load(ch));
    }
    let tail = quads.remainder();
    if !tail.is_empty() {
        m[1] = m[1].pmax(F32x4::load_partial(tail, tail.len(), f32::NEG_INFINITY));
    }
    m[0].pmax(m[1]).pmax(m[2].pmax(m[3])).hmax()
}

/// Positions per wide spatial tile: one 64-byte cache line of each class plane, four
/// independent vectors per class (instruction-level parallelism, fewer tiles).
pub const TILE: usize = 16;

/// Block statistics of a spatial tile's lanes (`V` vectors of four positions).
#[derive(Clone, Copy)]
struct TileStats<const V: usize> {
    max: [F32x4; V],
    reference: [F32x4; V],
    sum: [F32x4; V],
    mass_x: [F32x4; V],
    mass: [F32x4; V],
}

impl<const V: usize> TileStats<V> {
    const ZERO: Self = {
        let z = [F32x4::ZERO; V];
        Self { max: z, reference: z, sum: z, mass_x: z, mass: z }
    };
    #[inline(always)]
    fn lane(&self, l: usize) -> BlockStats {
        let (v, i) = (l / 4, l % 4);
        BlockStats {
            max: self.max[v].to_array()[i],
            reference: self.reference[v].to_array()[i],
            sum_exp: self.sum[v].to_array()[i],
            mass_x: self.mass_x[v].to_array()[i],
            mass: self.mass[v].to_array()[i],
        }
    }
}

/// Elements a tile covers in one class plane: `lanes` (at most 4) when `V = 1`, else `4·V`.
#[inline(always)]
fn tile_width<const V: usize>(lanes: usize) -> usize {
    if V == 1 {
        lanes
    } else {
        4 * V
    }
}

/// Per-lane coefficients of a spatial tile's gradient: `grad_c = e_c·a - b_mass·q_c -
/// [c = t]·b_target`, `t` the lane's target class (or [`NO_CLASS`]).
struct TileCoeffs<const V: usize> {
    a: [F32x4; V],
    b_mass: [F32x4; V],
    b_target: [F32x4; V],
    targets: [I32x4; V],
}

impl<const V: usize> TileCoeffs<V> {
    /// The gradient of class `k` in vector `v` from its exponential (`q` its mass, when `S`
    /// has one). The target's term is subtracted here, while the vector is in a register: a
    /// store per lane afterwards would reload lines that the tile's other planes evicted
    /// (the planes are often a power of two apart, so they share cache sets).
    #[inline(always)]
    fn grad<S: Source>(&self, v: usize, k: usize, e: F32x4, q: F32x4) -> F32x4 {
        let mut g = e.mul(self.a[v]);
        if S::ACTIVE {
            g = g.sub(self.b_mass[v].mul(q));
        }
        g.sub(self.targets[v].eq(I32x4::splat(k as i32)).keep(self.b_target[v]))
    }
}

/// Pass 2 over classes `classes` of a spatial tile, from the exponentials stored in `x`.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn grad_plane_block<const V: usize>(
    x: &mut [f32],
    inner: usize,
    s: usize,
    lanes: usize,
    classes: core::ops::Range<usize>,
    mass: Mass,
    y: &[f32],
    inv_c: f32,
    co: &TileCoeffs<V>,
) {
    with_source!(mass, y, inv_c, |src| grad_plane_block_with::<V, _>(x, inner, s, lanes, classes, src, co))
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn grad_plane_block_with<const V: usize, S: Source>(
    x: &mut [f32],
    inner: usize,
    s: usize,
    lanes: usize,
    classes: core::ops::Range<usize>,
    src: S,
    co: &TileCoeffs<V>,
) {
    let width = tile_width::<V>(lanes);
    let n = width.min(4);
    for k in classes {
        let at = k * inner + s;
        let p = &mut x[at..at + width];
        for v in 0..V {
            let e = F32x4::load_first(&p[4 * v..], n, 0.0);
            let g = co.grad::<S>(v, k, e, if S::ACTIVE { src.plane(k, at + 4 * v, n) } else { F32x4::ZERO });
            g.store_first(&mut p[4 * v..], n);
        }
    }
}

/// Pass 1 over classes `classes` (at most [`SPATIAL_BLOCK`]) of a spatial tile (positions
/// `s..` of the sample), reading each class plane once: the max pass copies the logits to
/// `stage` (`V` vectors per class, contiguous, in L1) and picks each lane's target logit
/// into `x_t` (from `targets`: a compare and a select per vector instead of a load per
/// lane from a line that may have left the cache), the exponentials are computed from
/// and (when `GRAD`) stored there, for [`grad_plane_staged`] or [`unstage`]. The class
/// planes are `inner` floats apart (often a power of two: every plane's line of a tile in
/// the same cache set), so reading them again is what costs.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn reduce_plane_staged<const GRAD: bool, const V: usize>(
    x: &[f32],
    inner: usize,
    s: usize,
    lanes: usize,
    classes: core::ops::Range<usize>,
    mass: Mass,
    y: &[f32],
    inv_c: f32,
    stage: &mut [F32x4],
    targets: &[I32x4; V],
    x_t: &mut [F32x4; V],
) -> TileStats<V> {
    with_source!(mass, y, inv_c, |src| reduce_plane_staged_with::<GRAD, V, _>(x, inner, s, lanes, classes, src, stage, targets, x_t))
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn reduce_plane_staged_with<const GRAD: bool, const V: usize, S: Source>(
    x: &[f32],
    inner: usize,
    s: usize,
    lanes: usize,
    classes: core::ops::Range<usize>,
    src: S,
    stage: &mut [F32x4],
    targets: &[I32x4; V],
    x_t: &mut [F32x4; V],
) -> TileStats<V> {
    let width = tile_width::<V>(lanes);
    let n = width.min(4);
    let stage = &mut stage[..classes.len() * V];
    let mut st = TileStats::<V>::ZERO;
    st.max = [F32x4::splat(f32::NEG_INFINITY); V];
    for (k, sv) in classes.clone().zip(stage.chunks_exact_mut(V)) {
        let at = k * inner + s;
        let p = &x[at..at + width];
        let class = I32x4::splat(k as i32);
        for v in 0..V {
            let xv = F32x4::load_first(&p[4 * v..], n, 0.0);
            sv[v] = xv;
            st.max[v] = st.max[v].pmax(xv);
            x_t[v] = targets[v].eq(class).select(xv, x_t[v]);
        }
    }
    for v in 0..V {
        st.reference[v] = st.max[v].eq(F32x4::splat(f32::NEG_INFINITY)).select(F32x4::ZERO, st.max[v]);
    }
    for (k, sv) in classes.zip(stage.chunks_exact_mut(V)) {
        let at = k * inner + s;
        for v in 0..V {
            let d = sv[v].sub(st.reference[v]);
            let e = exp_shifted(d);
            if GRAD {
                sv[v] = e;
            }
            st.sum[v] = st.sum[v].add(e);
            if S::ACTIVE {
                let q = src.plane(k, at + 4 * v, n);
                st.mass_x[v] = st.mass_x[v].add(q.mul(d));
                st.mass[v] = st.mass[v].add(q);
            }
        }
    }
    st
}

/// [`grad_plane_block`] over all the classes of a one-block tile, from the exponentials
/// [`reduce_plane_staged`] left in `stage`.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn grad_plane_staged<const V: usize>(
    x: &mut [f32],
    inner: usize,
    s: usize,
    lanes: usize,
    mass: Mass,
    y: &[f32],
    inv_c: f32,
    co: &TileCoeffs<V>,
    stage: &[F32x4],
) {
    with_source!(mass, y, inv_c, |src| grad_plane_staged_with::<V, _>(x, inner, s, lanes, src, co, stage))
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn grad_plane_staged_with<const V: usize, S: Source>(
    x: &mut [f32],
    inner: usize,
    s: usize,
    lanes: usize,
    src: S,
    co: &TileCoeffs<V>,
    stage: &[F32x4],
) {
    let c = x.len() / inner;
    let width = tile_width::<V>(lanes);
    let n = width.min(4);
    for (k, sv) in stage[..c * V].chunks_exact(V).enumerate() {
        let at = k * inner + s;
        let p = &mut x[at..at + width];
        for v in 0..V {
            let g = co.grad::<S>(v, k, sv[v], if S::ACTIVE { src.plane(k, at + 4 * v, n) } else { F32x4::ZERO });
            g.store_first(&mut p[4 * v..], n);
        }
    }
}

/// Stores the exponentials of classes `classes` from `stage` into the tile (several blocks:
/// every block's pass 1 runs before the first pass 2).
#[inline(never)]
fn unstage<const V: usize>(x: &mut [f32], inner: usize, s: usize, lanes: usize, classes: core::ops::Range<usize>, stage: &[F32x4]) {
    let width = tile_width::<V>(lanes);
    let n = width.min(4);
    for (k, sv) in classes.zip(stage.chunks_exact(V)) {
        let at = k * inner + s;
        let p = &mut x[at..at + width];
        for v in 0..V {
            sv[v].store_first(&mut p[4 * v..], n);
        }
    }
}

/// Packs per-lane values into `V` vectors.
#[inline(always)]
fn lanes_to_vectors<const V: usize>(values: &[f32; TILE]) -> [F32x4; V] {
    core::array::from_fn(|v| F32x4::load(&values[4 * v..]))
}

/// Positions `s..s+lanes` of one `(C, inner)` sample, one per lane: `V = 4` for a full tile
/// of [`TILE`] positions, `V = 1` for up to four at the end of a sample. Lanes past `lanes`
/// compute on zeros and are discarded; no value crosses lanes, so each position's result
/// does not depend on which tile it falls in. `classes`: each lane's target class, or
/// [`NO_CLASS`].
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn spatial_tile<const GRAD: bool, const V: usize>(
    x: &mut InOut,
    inner: usize,
    s: usize,
    lanes: usize,
    classes: &[i32; TILE],
    mass: Mass,
    y: &[f32],
    g: &[f32; TILE],
    first_position: usize,
    finish: &mut impl Finish,
    stage: &mut [F32x4],
) -> [f32; TILE] {
    let c = x.len() / inner;
    let inv_c = 1.0 / c as f32;
    let targets: [I32x4; V] = core::array::from_fn(|v| I32x4::from_array(core::array::from_fn(|i| classes[4 * v + i])));
    let target_of = |l: usize| usize::try_from(classes[l]).ok();
    let mut x_t = [F32x4::splat(f32::NAN); V];
    let mut losses = [0.0f32; TILE];
    let mut b_mass = [0.0f32; TILE];
    let mut b_target = [0.0f32; TILE];
    let mut a = [0.0f32; TILE];
    if c <= SPATIAL_BLOCK {
        // The common case: one block, no per-block arrays, no f64 `exp`; positions finished
        // four at a time where their max is finite, one by one (in f64) elsewhere.
        let st = reduce_plane_staged::<GRAD, V>(x.input(), inner, s, lanes, 0..c, mass, y, inv_c, stage, &targets, &mut x_t);
        for v in 0..V {
            let lo = 4 * v;
            let ln_sum = math::ln_at_least_one(st.sum[v]);
            let lane_stats = LaneStats { shift: st.max[v], ln_sum, cross: st.mass[v].mul(ln_sum).sub(st.mass_x[v]), mass: st.mass[v] };
            let vector = finish.finish_lanes(targets[v], x_t[v], &lane_stats, F32x4::load(&g[lo..]));
            if let Some(co) = vector {
                // `a / Σe`, with +0 for a = -0 (as `scaled_factor`): NaN only where the softmax is.
                let zero = F32x4::ZERO;
                co.a.eq(zero).select(zero, co.a).div(st.sum[v]).store(&mut a[lo..]);
                co.loss.store(&mut losses[lo..]);
                co.b_mass.store(&mut b_mass[lo..]);
                co.b_target.store(&mut b_target[lo..]);
            }
            // Lanes past `lanes` compute on zeros: finite, so a full vector skips the lane loop.
            if vector.is_some() && st.max[v].sub(st.max[v]).eq(F32x4::ZERO).all() {
                continue;
            }
            let (max, ln_sum, x_t) = (st.max[v].to_array(), ln_sum.to_array(), x_t[v].to_array());
            for i in 0..lanes.saturating_sub(lo).min(4) {
                if vector.is_none() || !max[i].is_finite() {
                    let l = lo + i;
                    let (stats, factor) = combine_single(&st.lane(l), ln_sum[i]);
                    let co = finish.finish(first_position + l, target_of(l), x_t[i], &stats, g[l]);
                    a[l] = scaled_factor(co.a, factor);
                    (losses[l], b_mass[l], b_target[l]) = (co.loss, co.b_mass, co.b_target);
                }
            }
        }
        if GRAD {
            let co = TileCoeffs { a: lanes_to_vectors(&a), b_mass: lanes_to_vectors(&b_mass), b_target: lanes_to_vectors(&b_target), targets };
            grad_plane_staged::<V>(x.grad(), inner, s, lanes, mass, y, inv_c, &co, stage);
        }
    } else {
        let block = block_len(c, SPATIAL_BLOCK);
        let n_blocks = c.div_ceil(block);
        let mut per_block = [TileStats::<V>::ZERO; MAX_BLOCKS];
        for (j, st) in per_block.iter_mut().enumerate().take(n_blocks) {
            let classes = j * block..((j + 1) * block).min(c);
            *st = reduce_plane_staged::<GRAD, V>(x.input(), inner, s, lanes, classes.clone(), mass, y, inv_c, stage, &targets, &mut x_t);
            if GRAD {
                unstage::<V>(x.grad(), inner, s, lanes, classes, stage);
            }
        }
        let x_t: [f32; TILE] = core::array::from_fn(|l| x_t[(l / 4).min(V - 1)].to_array()[l % 4]);
        let mut factors = [[0.0f32; TILE]; MAX_BLOCKS];
        for l in 0..lanes {
            let mut blocks = [BlockStats { max: 0.0, reference: 0.0, sum_exp: 0.0, mass_x: 0.0, mass: 0.0 }; MAX_BLOCKS];
            for j in 0..n_blocks {
                blocks[j] = per_block[j].lane(l);
            }
            let mut f = [0.0f64; MAX_BLOCKS];
            let stats = combine(&blocks[..n_blocks], &mut f[..n_blocks]);
            let co = finish.finish(first_position + l, target_of(l), x_t[l], &stats, g[l]);
            for j in 0..n_blocks {
                factors[j][l] = scaled_factor(co.a, f[j]);
            }
            (losses[l], b_mass[l], b_target[l]) = (co.loss, co.b_mass, co.b_target);
        }
        if GRAD {
            let mut co = TileCoeffs { a: [F32x4::ZERO; V], b_mass: lanes_to_vectors(&b_mass), b_target: lanes_to_vectors(&b_target), targets };
            for (j, factor) in factors.iter().enumerate().take(n_blocks) {
                co.a = lanes_to_vectors(factor);
                grad_plane_block::<V>(x.grad(), inner, s, lanes, j * block..((j + 1) * block).min(c), mass, y, inv_c, &co);
            }
        }
    }
    losses
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Every 61st non-positive float32 (all exponents, many mantissas), against f64.
    #[test]
    fn exp_shifted_accuracy() {
        let mut worst = (0.0f64, 0.0f32);
        let mut bits: u64 = 0x8000_0000;
        while bits <= 0xff80_0000 {
            let d = f32::from_bits(bits as u32);
            let got = exp_shifted(F32x4::splat(d)).to_array()[0];
            if d < EXP_FLUSH {
                assert_eq!(got.to_bits(), 0, "exp_shifted({d}) = {got}, want +0");
            } else {
                let truth = (d as f64).exp();
                let t32 = truth as f32;
                let ulp = (f32::from_bits(t32.to_bits() + 1) - t32) as f64;
                let e = (got as f64 - truth).abs() / ulp;
                if e > worst.0 {
                    worst = (e, d);
                }
            }
            bits += 61;
        }
        assert!(worst.0 <= 2.5, "exp_shifted max error {} ulp at {}", worst.0, worst.1);
        let r = exp_shifted(F32x4::from_array([f32::NEG_INFINITY, f32::NAN, 0.0, -0.0])).to_array();
        assert_eq!(r[0].to_bits(), 0);
        assert!(r[1].is_nan());
        assert_eq!(r[2..], [1.0, 1.0]);
    }
}
