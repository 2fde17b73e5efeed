//! The fused softmax sweep shared by every softmax-based loss (cross-entropy, focal).
//!
//! For each position the sweep makes two passes over its classes:
//! 1. Reductions, block by block: block max, `e = exp(x - ref)` (stored in place when a
//!    gradient is wanted), `Σ e`, and the optional class-mass sums `Σ q` and `Σ q·(x - ref)`.
//!    Each block uses its own reference (its max), so no running max has to be rescaled
//!    element by element; blocks are small enough to stay in L1 between the max and the exp.
//! 2. Gradient: `grad_c = a·p_c - b·q_c` (with `p_c = e_c·exp(ref - M)/S`), then the
//!    target class gets `- b_target`.
//!
//! A loss plugs in through [`Finish`]: from the log-sum-exp, the target logit and the mass
//! sums it returns the position's loss and the three gradient coefficients.

use super::{check_len, KernelError, Layout, Upstream};
use crate::math;
use crate::simd::{max_nan, F32x4, Mask};

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
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// `log Σ_c exp(x_c)`, computed stably.
    pub lse: f64,
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

/// Turns a position's statistics into its loss and gradient coefficients.
pub trait Finish {
    /// `target` is the class index (None when ignored or for probability targets), `x_t` the
    /// target's logit (NaN when there is none), `g` the upstream gradient.
    fn finish(&mut self, position: usize, target: Option<usize>, x_t: f32, stats: &Stats, g: f32) -> Coeffs;
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
}

/// Runs the sweep over every position. `data` holds the logits and, when `upstream` wants a
/// gradient, receives it in place. `losses` (one per position) is written when given.
/// Returns `acc` plus the sum of the positions' losses in position order, so that a caller
/// processing an input in chunks gets the same bits as one call.
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    layout: Layout,
    data: &mut [f32],
    targets: Option<IndexTargets>,
    mass: Mass,
    upstream: Upstream,
    mut losses: Option<&mut [f32]>,
    acc: f64,
    finish: &mut impl Finish,
) -> Result<f64, KernelError> {
    let positions = layout.positions();
    check_len("input", layout.len(), data.len())?;
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
    for n in 0..layout.outer {
        let sample = &mut data[n * c * layout.inner..(n + 1) * c * layout.inner];
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
                row::<true>(sample, target, mass, y, g, n, finish)
            } else {
                row::<false>(sample, target, mass, y, g, n, finish)
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
                let lanes = (layout.inner - s).min(4);
                let first = n * layout.inner + s;
                let mut tile_targets = [None; 4];
                let mut tile_g = [0.0f32; 4];
                for l in 0..lanes {
                    if let Some(t) = &targets {
                        tile_targets[l] = t.at(first + l, c)?;
                    }
                    tile_g[l] = upstream.at(first + l);
                }
                let tile_losses = if grad {
                    spatial_tile::<true>(sample, layout.inner, s, lanes, &tile_targets, mass, y, &tile_g, first, finish)
                } else {
                    spatial_tile::<false>(sample, layout.inner, s, lanes, &tile_targets, mass, y, &tile_g, first, finish)
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
        *f = (b.reference as f64 - max).exp();
        sum += b.sum_exp as f64 * *f;
    }
    let lse = max + sum.ln();
    let mut cross = 0.0f64;
    let mut mass = 0.0f64;
    for b in blocks {
        cross += b.mass as f64 * (lse - b.reference as f64) - b.mass_x as f64;
        mass += b.mass as f64;
    }
    for f in factors.iter_mut() {
        *f /= sum;
    }
    Stats { lse, cross, mass }
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

/// Mass of four consecutive classes `c..c+4` of a row.
#[inline(always)]
fn row_mass(mass: Mass, y: &[f32], c: usize, inv_c: f32) -> F32x4 {
    match mass {
        Mass::None => F32x4::splat(0.0),
        Mass::Weight(None) => F32x4::splat(1.0),
        Mass::Weight(Some(w)) => F32x4::load(&w[c..]),
        Mass::Prob { weight, smoothing, .. } => {
            let yv = F32x4::load(&y[c..]);
            let q = yv.mul(F32x4::splat(1.0 - smoothing)).add(F32x4::splat(smoothing * inv_c));
            match weight {
                Some(w) => q.mul(F32x4::load(&w[c..])),
                None => q,
            }
        }
    }
}

/// As [`row_mass`] for the last `n < 4` classes of a row (other lanes 0).
#[inline(always)]
fn row_mass_partial(mass: Mass, y: &[f32], c: usize, n: usize, inv_c: f32) -> F32x4 {
    let q = match mass {
        Mass::None => return F32x4::splat(0.0),
        Mass::Weight(None) => F32x4::splat(1.0),
        Mass::Weight(Some(w)) => F32x4::load_partial(&w[c..], n, 0.0),
        Mass::Prob { weight, smoothing, .. } => {
            let yv = F32x4::load_partial(&y[c..], n, 0.0);
            let q = yv.mul(F32x4::splat(1.0 - smoothing)).add(F32x4::splat(smoothing * inv_c));
            match weight {
                Some(w) => q.mul(F32x4::load_partial(&w[c..], n, 0.0)),
                None => q,
            }
        }
    };
    Mask::first(n).select(q, F32x4::splat(0.0))
}

#[inline(always)]
fn has_mass(mass: Mass) -> bool {
    !matches!(mass, Mass::None)
}

/// One `(C)` row. Returns the loss; writes the gradient over `x` when `GRAD`.
#[inline(never)]
fn row<const GRAD: bool>(
    x: &mut [f32],
    target: Option<usize>,
    mass: Mass,
    y: &[f32],
    g: f32,
    position: usize,
    finish: &mut impl Finish,
) -> f32 {
    let c = x.len();
    let inv_c = 1.0 / c as f32;
    let x_t = target.map_or(f32::NAN, |t| x[t]);
    let block = block_len(c, ROW_BLOCK);
    let mut blocks = [BlockStats { max: 0.0, reference: 0.0, sum_exp: 0.0, mass_x: 0.0, mass: 0.0 }; MAX_BLOCKS];
    let n_blocks = c.div_ceil(block);
    let with_mass = has_mass(mass);
    for (j, stats) in blocks.iter_mut().enumerate().take(n_blocks) {
        let start = j * block;
        let xs = &mut x[start..(start + block).min(c)];
        let max = block_max(xs);
        let reference = reference_of(max);
        let r = F32x4::splat(reference);
        let mut sum = F32x4::splat(0.0);
        let mut mass_x = F32x4::splat(0.0);
        let mut mass_sum = F32x4::splat(0.0);
        let full = xs.len() / 4 * 4;
        let mut k = 0;
        while k < full {
            let v = F32x4::load(&xs[k..]);
            let d = v.sub(r);
            let e = math::exp(d);
            if GRAD {
                e.store(&mut xs[k..]);
            }
            sum = sum.add(e);
            if with_mass {
                let q = row_mass(mass, y, start + k, inv_c);
                mass_x = mass_x.add(q.mul(d));
                mass_sum = mass_sum.add(q);
            }
            k += 4;
        }
        let rest = xs.len() - full;
        if rest > 0 {
            let v = F32x4::load_partial(&xs[full..], rest, reference);
            let d = v.sub(r);
            let e = Mask::first(rest).select(math::exp(d), F32x4::splat(0.0));
            if GRAD {
                e.store_partial(&mut xs[full..], rest);
            }
            sum = sum.add(e);
            if with_mass {
                let q = row_mass_partial(mass, y, start + full, rest, inv_c);
                mass_x = mass_x.add(q.mul(d));
                mass_sum = mass_sum.add(q);
            }
        }
        *stats = BlockStats { max, reference, sum_exp: sum.hsum(), mass_x: mass_x.hsum(), mass: mass_sum.hsum() };
    }
    let mut factors = [0.0f64; MAX_BLOCKS];
    let stats = combine(&blocks[..n_blocks], &mut factors[..n_blocks]);
    let co = finish.finish(position, target, x_t, &stats, g);
    if GRAD {
        let b = F32x4::splat(co.b_mass);
        for (j, factor) in factors.iter().enumerate().take(n_blocks) {
            let start = j * block;
            let xs = &mut x[start..(start + block).min(c)];
            let a = F32x4::splat(scaled_factor(co.a, *factor));
            let full = xs.len() / 4 * 4;
            let mut k = 0;
            while k < full {
                let mut gv = F32x4::load(&xs[k..]).mul(a);
                if with_mass {
                    gv = gv.sub(b.mul(row_mass(mass, y, start + k, inv_c)));
                }
                gv.store(&mut xs[k..]);
                k += 4;
            }
            let rest = xs.len() - full;
            if rest > 0 {
                let mut gv = F32x4::load_partial(&xs[full..], rest, 0.0).mul(a);
                if with_mass {
                    gv = gv.sub(b.mul(row_mass_partial(mass, y, start + full, rest, inv_c)));
                }
                gv.store_partial(&mut xs[full..], rest);
            }
        }
        if let Some(t) = target {
            x[t] -= co.b_target;
        }
    }
    co.loss
}

/// NaN-propagating max of a block, four accumulators wide.
#[inline(always)]
fn block_max(xs: &[f32]) -> f32 {
    let mut m = [F32x4::splat(f32::NEG_INFINITY); 4];
    let mut chunks = xs.chunks_exact(16);
    for ch in &mut chunks {
        m[0] = m[0].max(F32x4::load(&ch[0..]));
        m[1] = m[1].max(F32x4::load(&ch[4..]));
        m[2] = m[2].max(F32x4::load(&ch[8..]));
        m[3] = m[3].max(F32x4::load(&ch[12..]));
    }
    let rest = chunks.remainder();
    let mut quads = rest.chunks_exact(4);
    for ch in &mut quads {
        m[0] = m[0].max(F32x4::load(ch));
    }
    let tail = quads.remainder();
    if !tail.is_empty() {
        m[1] = m[1].max(F32x4::load_partial(tail, tail.len(), f32::NEG_INFINITY));
    }
    m[0].max(m[1]).max(m[2].max(m[3])).hmax()
}

/// Mass of class `c` for the four positions of a spatial tile (`off` = offset of the tile's
/// first position in class `c`'s plane of this sample).
#[inline(always)]
fn spatial_mass(mass: Mass, y: &[f32], c: usize, off: usize, lanes: usize, inv_c: f32) -> F32x4 {
    match mass {
        Mass::None => F32x4::splat(0.0),
        Mass::Weight(None) => F32x4::splat(1.0),
        Mass::Weight(Some(w)) => F32x4::splat(w[c]),
        Mass::Prob { weight, smoothing, .. } => {
            let yv = if lanes == 4 { F32x4::load(&y[off..]) } else { F32x4::load_partial(&y[off..], lanes, 0.0) };
            let q = yv.mul(F32x4::splat(1.0 - smoothing)).add(F32x4::splat(smoothing * inv_c));
            match weight {
                Some(w) => q.mul(F32x4::splat(w[c])),
                None => q,
            }
        }
    }
}

#[inline(always)]
fn load_lanes(x: &[f32], lanes: usize) -> F32x4 {
    if lanes == 4 {
        F32x4::load(x)
    } else {
        F32x4::load_partial(x, lanes, 0.0)
    }
}

#[inline(always)]
fn store_lanes(v: F32x4, x: &mut [f32], lanes: usize) {
    if lanes == 4 {
        v.store(x)
    } else {
        v.store_partial(x, lanes)
    }
}

/// Up to four positions `s..s+lanes` of one `(C, inner)` sample, one per lane. Lanes past
/// `lanes` compute on zeros and are discarded; no value crosses lanes, so each position's
/// result does not depend on which tile it falls in.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn spatial_tile<const GRAD: bool>(
    x: &mut [f32],
    inner: usize,
    s: usize,
    lanes: usize,
    targets: &[Option<usize>; 4],
    mass: Mass,
    y: &[f32],
    g: &[f32; 4],
    first_position: usize,
    finish: &mut impl Finish,
) -> [f32; 4] {
    let c = x.len() / inner;
    let inv_c = 1.0 / c as f32;
    let mut x_t = [f32::NAN; 4];
    for l in 0..lanes {
        if let Some(t) = targets[l] {
            x_t[l] = x[t * inner + s + l];
        }
    }
    let block = block_len(c, SPATIAL_BLOCK);
    let n_blocks = c.div_ceil(block);
    let with_mass = has_mass(mass);
    let zero = F32x4::splat(0.0);
    // Per block, per lane statistics.
    let mut maxes = [zero; MAX_BLOCKS];
    let mut refs = [zero; MAX_BLOCKS];
    let mut sums = [zero; MAX_BLOCKS];
    let mut mass_xs = [zero; MAX_BLOCKS];
    let mut masses = [zero; MAX_BLOCKS];
    for j in 0..n_blocks {
        let classes = j * block..((j + 1) * block).min(c);
        let mut m = F32x4::splat(f32::NEG_INFINITY);
        for k in classes.clone() {
            m = m.max(load_lanes(&x[k * inner + s..], lanes));
        }
        let reference = m.eq(F32x4::splat(f32::NEG_INFINITY)).select(zero, m);
        let mut sum = zero;
        let mut mass_x = zero;
        let mut mass_sum = zero;
        for k in classes {
            let at = k * inner + s;
            let d = load_lanes(&x[at..], lanes).sub(reference);
            let e = math::exp(d);
            if GRAD {
                store_lanes(e, &mut x[at..], lanes);
            }
            sum = sum.add(e);
            if with_mass {
                let q = spatial_mass(mass, y, k, at, lanes, inv_c);
                mass_x = mass_x.add(q.mul(d));
                mass_sum = mass_sum.add(q);
            }
        }
        maxes[j] = m;
        refs[j] = reference;
        sums[j] = sum;
        mass_xs[j] = mass_x;
        masses[j] = mass_sum;
    }
    let mut losses = [0.0f32; 4];
    let mut coeffs = [Coeffs::default(); 4];
    let mut factors = [[0.0f32; 4]; MAX_BLOCKS];
    for l in 0..lanes {
        let mut blocks = [BlockStats { max: 0.0, reference: 0.0, sum_exp: 0.0, mass_x: 0.0, mass: 0.0 }; MAX_BLOCKS];
        for j in 0..n_blocks {
            blocks[j] = BlockStats {
                max: maxes[j].to_array()[l],
                reference: refs[j].to_array()[l],
                sum_exp: sums[j].to_array()[l],
                mass_x: mass_xs[j].to_array()[l],
                mass: masses[j].to_array()[l],
            };
        }
        let mut f = [0.0f64; MAX_BLOCKS];
        let stats = combine(&blocks[..n_blocks], &mut f[..n_blocks]);
        let co = finish.finish(first_position + l, targets[l], x_t[l], &stats, g[l]);
        for j in 0..n_blocks {
            factors[j][l] = scaled_factor(co.a, f[j]);
        }
        losses[l] = co.loss;
        coeffs[l] = co;
    }
    if GRAD {
        let b = F32x4::from_array([coeffs[0].b_mass, coeffs[1].b_mass, coeffs[2].b_mass, coeffs[3].b_mass]);
        for (j, factor) in factors.iter().enumerate().take(n_blocks) {
            let a = F32x4::from_array(*factor);
            for k in j * block..((j + 1) * block).min(c) {
                let at = k * inner + s;
                let mut gv = load_lanes(&x[at..], lanes).mul(a);
                if with_mass {
                    gv = gv.sub(b.mul(spatial_mass(mass, y, k, at, lanes, inv_c)));
                }
                store_lanes(gv, &mut x[at..], lanes);
            }
        }
        for l in 0..lanes {
            if let Some(t) = targets[l] {
                x[t * inner + s + l] -= coeffs[l].b_target;
            }
        }
    }
    losses
}
