//! Vectorised transcendental functions on [`F32x4`], accurate to a few ulp over the whole
//! float32 range (measured against f64 in the tests below and in `tests/wasm_simd.rs`):
//! `exp`, `ln`, `ln_1p`, the logistic family (`logistic`, `sigmoid`, `softplus`) and `pow`.
//! (The softmax focal loss needs `expm1` and `pow` only once per position, from the f64
//! log-sum-exp; it uses f64's own there, so no vector `expm1` exists.)
//!
//! Polynomials are the classic Cephes minimax fits; range reduction is written so that
//! overflow, underflow, ±Infinity and NaN come out as IEEE would give them.

use crate::simd::{F32x4, Mask};

const LOG2E: f32 = core::f32::consts::LOG2_E;
// ln 2 split so that n * LN2_HI is exact for |n| < 2^10.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, exp underflows past the smallest denormal.
const EXP_UNDERFLOW: f32 = -103.972_08;
/// Above this, exp overflows (clamping here keeps the integer exponent in range).
const EXP_CLAMP_HI: f32 = 89.0;

/// e^x. Max error 2 ulp for normal results (see `exp_accuracy`); exactly 0 below
/// -103.97, +Infinity above 88.72, NaN for NaN.
#[inline(always)]
pub fn exp(x: F32x4) -> F32x4 {
    // pmin/pmax (one instruction each) keep a NaN `x`, which then propagates to the result.
    let xc = x.pmin(F32x4::splat(EXP_CLAMP_HI)).pmax(F32x4::splat(EXP_UNDERFLOW));
    let n = xc.mul(F32x4::splat(LOG2E)).round();
    let r = xc
        .sub(n.mul(F32x4::splat(LN2_HI)))
        .sub(n.mul(F32x4::splat(LN2_LO)));
    let r2 = r.mul(r);
    let mut p = F32x4::splat(1.987_569_1e-4);
    p = p.mul(r).add(F32x4::splat(1.398_199_9e-3));
    p = p.mul(r).add(F32x4::splat(8.333_452e-3));
    p = p.mul(r).add(F32x4::splat(4.166_579_6e-2));
    p = p.mul(r).add(F32x4::splat(1.666_666_5e-1));
    p = p.mul(r).add(F32x4::splat(5.000_000_1e-1));
    let y = p.mul(r2).add(r).add(F32x4::splat(1.0));
    // 2^n in two factors so n in [-150, 129] never leaves the normal exponent range:
    // results that are denormal or overflow round exactly once, in the last multiply.
    let n_half = n.mul(F32x4::splat(0.5)).round_down();
    let scaled = y.mul(n_half.pow2i()).mul(n.sub(n_half).pow2i());
    x.lt(F32x4::splat(EXP_UNDERFLOW)).select(F32x4::splat(0.0), scaled)
}

const SQRT_HALF: f32 = core::f32::consts::FRAC_1_SQRT_2;
const MIN_NORMAL: f32 = f32::MIN_POSITIVE;

/// ln x. Max error 2 ulp (see `ln_accuracy`); -Infinity at ±0, NaN below 0 and for NaN,
/// +Infinity at +Infinity; denormal inputs are exact too.
#[inline(always)]
pub fn ln(x: F32x4) -> F32x4 {
    // Denormals: scale into the normal range first.
    let tiny = x.lt(F32x4::splat(MIN_NORMAL));
    let xs = tiny.select(x.mul(F32x4::splat(8_388_608.0)), x); // 2^23
    let (e, m) = xs.abs().frexp_normal();
    let e = tiny.select(e.sub(F32x4::splat(23.0)), e);
    let r = ln_parts(e, m);
    // Special values, in order of precedence: NaN/negative → NaN, 0 → -inf, +inf → +inf.
    let r = x.eq(F32x4::splat(f32::INFINITY)).select(x, r);
    let r = x.eq(F32x4::splat(0.0)).select(F32x4::splat(f32::NEG_INFINITY), r);
    let invalid = x.lt(F32x4::splat(0.0)).or(x.eq(x).not());
    invalid.select(F32x4::splat(f32::NAN), r)
}

/// [`ln`] of finite lanes `>= 1` (NaN stays NaN), without the other special cases: the
/// same bits where both apply. For sums of exponentials shifted by their max, which hold
/// `e^0 = 1`, once per position in the `(N, C, d…)` layout.
#[inline(always)]
pub fn ln_at_least_one(x: F32x4) -> F32x4 {
    let (e, m) = x.frexp_normal();
    x.eq(x).select(ln_parts(e, m), F32x4::splat(f32::NAN))
}

/// `ln(m·2^e)` for `m` in [1, 2).
#[inline(always)]
fn ln_parts(e: F32x4, m: F32x4) -> F32x4 {
    // m in [1, 2) → [sqrt(1/2), sqrt(2)) so the polynomial argument stays small.
    let big = m.gt(F32x4::splat(2.0 * SQRT_HALF));
    let m = big.select(m.mul(F32x4::splat(0.5)), m);
    let e = big.select(e.add(F32x4::splat(1.0)), e);
    let z = m.sub(F32x4::splat(1.0));
    let z2 = z.mul(z);
    let mut p = F32x4::splat(7.037_683_6e-2);
    p = p.mul(z).add(F32x4::splat(-1.151_461e-1));
    p = p.mul(z).add(F32x4::splat(1.167_699_9e-1));
    p = p.mul(z).add(F32x4::splat(-1.242_014_1e-1));
    p = p.mul(z).add(F32x4::splat(1.424_932_3e-1));
    p = p.mul(z).add(F32x4::splat(-1.666_805_8e-1));
    p = p.mul(z).add(F32x4::splat(2.000_071_4e-1));
    p = p.mul(z).add(F32x4::splat(-2.499_999_4e-1));
    p = p.mul(z).add(F32x4::splat(3.333_333_1e-1));
    let mut y = p.mul(z).mul(z2);
    y = y.add(e.mul(F32x4::splat(LN2_LO)));
    y = y.sub(z2.mul(F32x4::splat(0.5)));
    z.add(y).add(e.mul(F32x4::splat(LN2_HI)))
}

/// ln(1 + x), accurate for small x (the rounding of 1 + x is corrected, as in Goldberg's
/// method). Max error 2 ulp for x > -1; -Infinity at -1, NaN below -1 and for NaN.
#[inline(always)]
pub fn ln_1p(x: F32x4) -> F32x4 {
    let one = F32x4::splat(1.0);
    let w = one.add(x);
    // When 1 + x rounds to 1, ln(1 + x) = x to within float precision.
    let is_one = w.eq(one);
    let correction = w.sub(one).sub(x).div(w);
    let ln_w = ln(w);
    let r = ln_w.sub(correction);
    // Goldberg's correction is ill-defined at w = +inf and w = 0 (x = -1, 0/0); ln(w) is
    // the answer there (+inf, -inf).
    let r = w.eq(F32x4::splat(f32::INFINITY)).or(w.eq(F32x4::splat(0.0))).select(ln_w, r);
    is_one.select(x, r)
}

/// The logistic terms of `x`, all from one `e = exp(-|x|)` so that none of them cancels:
/// `σ(x) = 1/(1 + e)` or `e/(1 + e)` by the sign of `x`, and the softplus pair
/// `max(±x, 0) + ln_1p(e)`.
#[derive(Clone, Copy)]
pub struct Logistic {
    /// `σ(x)`. Max error 3 ulp (see `sigmoid_accuracy`).
    pub p: F32x4,
    /// `σ(-x) = 1 - σ(x)`, computed directly (no cancellation as `σ(x) → 1`). Max error 3 ulp.
    pub pn: F32x4,
    /// `softplus(x) = ln(1 + e^x) = -ln σ(-x)`. Max error 2 ulp (see `softplus_accuracy`).
    pub sp: F32x4,
    /// `softplus(-x) = -ln σ(x)`. Max error 2 ulp.
    pub sp_neg: F32x4,
}

/// [`Logistic`] of every lane. ±Infinity give the limits (σ = 0 or 1, softplus = 0 or
/// +Infinity); NaN gives NaN in every term.
#[inline(always)]
pub fn logistic(x: F32x4) -> Logistic {
    let zero = F32x4::splat(0.0);
    let one = F32x4::splat(1.0);
    let e = exp(x.abs().neg());
    let l = ln_1p(e);
    let big = one.div(one.add(e)); // σ(|x|)
    let small = e.mul(big); // σ(-|x|)
    let non_negative = x.lt(zero).not(); // NaN lanes: NaN either way
    Logistic {
        p: non_negative.select(big, small),
        pn: non_negative.select(small, big),
        sp: x.max(zero).add(l),
        sp_neg: x.neg().max(zero).add(l),
    }
}

/// `σ(x) = 1 / (1 + e^-x)`, without overflow or cancellation. Max error 3 ulp.
#[inline(always)]
pub fn sigmoid(x: F32x4) -> F32x4 {
    logistic(x).p
}

/// `softplus(x) = ln(1 + e^x)`, stable for every `x`. Max error 2 ulp.
#[inline(always)]
pub fn softplus(x: F32x4) -> F32x4 {
    logistic(x).sp
}

/// `x^y` for `x >= 0`, as `exp(y·ln x)`. `y = 0` gives exactly 1 (for every `x`, as IEEE
/// `pow`); `0^y` is 0 for `y > 0` and +Infinity for `y < 0`; `x < 0` gives NaN (outside the
/// domain this crate needs). The error grows with the size of the exponent's argument:
/// at most `2 + 2·|y·ln x|` ulp for results below 1e38 (see `pow_accuracy`), i.e. below
/// 1e-5 relative while `|y·ln x| < 40`; the focal losses only take `x = 1 - p_t` in [0, 1].
#[inline(always)]
pub fn pow(x: F32x4, y: F32x4) -> F32x4 {
    let r = exp(y.mul(ln(x)));
    y.eq(F32x4::splat(0.0)).select(F32x4::splat(1.0), r)
}

/// `e^x - 1` for `x` in `[-ln 2, 0]` (NaN → NaN), without the cancellation of `exp(x) - 1`:
/// `x + x²·P(x)` with `P` the Taylor series of `(e^x - 1 - x)/x²` to degree 7 (truncation
/// below 0.15 ulp on this interval). Max error 1.43 ulp (see `exp_m1_small_accuracy`).
#[inline(always)]
pub fn exp_m1_small(x: F32x4) -> F32x4 {
    // 1/(k + 2)! for k = 7 down to 0.
    const C: [f32; 8] = [2.755_731_9e-6, 2.480_158_7e-5, 1.984_127e-4, 1.388_888_9e-3, 8.333_333e-3, 4.166_666_8e-2, 1.666_666_7e-1, 0.5];
    // Estrin's scheme (4 dependent steps instead of 7), as in `exp_neg`.
    let c = |i: usize| F32x4::splat(C[i]);
    let x2 = x.mul(x);
    let x4 = x2.mul(x2);
    let pair = |i: usize| c(i).mul(x).add(c(i + 1));
    let high = pair(0).mul(x2).add(pair(2));
    let low = pair(4).mul(x2).add(pair(6));
    let p = high.mul(x4).add(low);
    x.add(x2.mul(p))
}

/// `(1 - p_t)^γ` with exact small integer powers.
#[derive(Clone, Copy)]
pub enum Power {
    Zero,
    One,
    Two,
    Real(f32),
}

impl Power {
    pub fn new(gamma: f32) -> Self {
        match gamma {
            g if g == 0.0 => Power::Zero,
            g if g == 1.0 => Power::One,
            g if g == 2.0 => Power::Two,
            g => Power::Real(g),
        }
    }

    #[inline(always)]
    pub fn of(self, q: F32x4) -> F32x4 {
        match self {
            Power::Zero => F32x4::splat(1.0),
            Power::One => q,
            Power::Two => q.mul(q),
            Power::Real(g) => pow(q, F32x4::splat(g)),
        }
    }

    /// `γ·q^γ/q`, the factor of `ce·dq/dx` in the gradient, given `qg = q^γ` (for `γ ≠ 0`):
    /// `γ·q^(γ - 1)` exactly for `γ` = 1 and 2 (no division), the limit 0 at `q = 0` otherwise.
    #[inline(always)]
    pub fn slope(self, q: F32x4, qg: F32x4) -> F32x4 {
        let zero = F32x4::splat(0.0);
        match self {
            Power::Zero => zero,
            Power::One => F32x4::splat(1.0),
            Power::Two => q.add(q),
            Power::Real(g) => F32x4::splat(g).mul(zero.lt(q).select(qg.div(q), zero)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Restricted-domain variants for the element-wise losses (`kernels::binary`): the same
// polynomials (or Arm's `v_expf` ones for exp) without the range reduction, special-value
// and denormal handling that their domains make unnecessary, so about half the operations.

/// Indices into [`Consts`].
pub mod k {
    pub const ZERO: usize = 0;
    pub const ONE: usize = 1;
    pub const HALF: usize = 2;
    pub const NAN: usize = 3;
    pub const INF: usize = 4;
    pub const NEG_INF: usize = 5;
    pub(super) const LN_P: usize = 6; // 9 coefficients, highest degree first
    pub(super) const LN2_LO: usize = 15;
    pub(super) const LN2_HI: usize = 16;
    pub(super) const NEG_LOG2E: usize = 17;
    pub(super) const SHIFT: usize = 18;
    pub(super) const NEG_LN2_HI: usize = 19;
    pub(super) const LN2_LO_EXP: usize = 20;
    pub(super) const EXP_P: usize = 21; // 5 coefficients, highest degree first
    pub(super) const EXP_NEG_FLUSH: usize = 26;
    pub(super) const SQRT2_M1: usize = 27;
    pub(super) const TWO_23: usize = 28;
    pub(super) const TWENTY_THREE: usize = 29;
    pub const NEG_100: usize = 30;
    pub const TINY: usize = 31; // 1e-12
    pub const NEG_ZERO: usize = 32;
    pub const COUNT: usize = 33;
}

const CONSTS: [f32; k::COUNT] = [
    0.0,
    1.0,
    0.5,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333_1e-1,
    LN2_LO,
    LN2_HI,
    -LOG2E,
    12_582_912.0, // 1.5·2^23
    -f32::from_bits(0x3f31_7200), // ln 2, high 17 bits
    f32::from_bits(0x35bf_be8e),  // ln 2 - high part
    // Arm optimized-routines `v_expf` coefficients, highest degree first.
    f32::from_bits(0x3c07_2010),
    f32::from_bits(0x3d2b_9f17),
    f32::from_bits(0x3e2a_af33),
    f32::from_bits(0x3eff_fedb),
    f32::from_bits(0x3f7f_fff6),
    87.0,
    core::f32::consts::SQRT_2 - 1.0,
    8_388_608.0, // 2^23
    23.0,
    -100.0,
    1e-12,
    -0.0,
];

/// The constants of the restricted-domain functions as vectors, built once outside a loop
/// and passed in. A loop body that splats constants itself gets a `v128.const` per use,
/// which V8 re-materialises at every iteration (three instructions each, then spilled and
/// reloaded): in the element-wise sweeps that was more than a third of all instructions.
/// Built from values the optimiser cannot see through, so they stay loop-invariant locals.
/// The scalar build keeps plain constants (immediates there; four loads per vector from a
/// table would cost more), so `get` returns the same values in both builds.
///
/// It also carries the selects whose condition depends on the data ([`Consts::select`]).
#[derive(Clone, Copy)]
pub struct Consts {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    v: [F32x4; k::COUNT],
    /// `!0`, opaque to the optimiser: see [`Consts::select`].
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    all_ones: u32,
}

impl Consts {
    pub fn new() -> Self {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            let mut v = [F32x4::ZERO; k::COUNT];
            for (i, c) in CONSTS.iter().enumerate() {
                v[i] = F32x4::splat(core::hint::black_box(*c));
            }
            Self { v }
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        Self { all_ones: core::hint::black_box(!0) }
    }
    #[inline(always)]
    pub fn get(&self, i: usize) -> F32x4 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return self.v[i];
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        F32x4::splat(CONSTS[i])
    }

    /// `m.select(yes, no)` for a mask that depends on the data (the sign of a logit, say).
    /// The SIMD build's select is one bitselect. The scalar build's float `select` is
    /// compiled by V8 into a conditional jump, mispredicted about as often as the sign of
    /// random logits changes; here it is a blend of bit patterns through an integer mask.
    /// The mask is ANDed with an opaque all-ones so that LLVM cannot fold the blend back
    /// into a float `select`.
    #[inline(always)]
    pub fn select(&self, m: Mask, yes: F32x4, no: F32x4) -> F32x4 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return m.select(yes, no);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        m.blend_bits(yes, no, self.all_ones)
    }

    /// `m.keep(v)` (`v` where `m`, else +0) without a branch, as [`Consts::select`].
    #[inline(always)]
    pub fn keep(&self, m: Mask, v: F32x4) -> F32x4 {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return m.keep(v);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        m.blend_bits(v, F32x4::ZERO, self.all_ones)
    }

    /// `(max(x, 0), max(-x, 0))` given `negative = x < 0`, as `pmax` gives them: a NaN `x`
    /// kept in the first, +0 or -0 where the other is chosen (either gives the same sum
    /// with a logistic term). Without a branch in the scalar build, as [`Consts::select`].
    #[inline(always)]
    pub fn relu_pair(&self, x: F32x4, negative: Mask) -> (F32x4, F32x4) {
        let zero = F32x4::ZERO;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return { let _ = negative; (x.pmax(zero), x.neg().pmax(zero)) };
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        (self.select(negative, zero, x), self.select(negative, x.neg(), zero))
    }
}

impl Default for Consts {
    fn default() -> Self {
        Self::new()
    }
}

/// `ln(1 + z) + k·ln 2` for `z` in `[√½ - 1, √2 - 1]`, given `k·LN2_LO` and `k·LN2_HI`: the
/// core of [`ln`] (Cephes' polynomial; by Estrin's scheme, so not bit for bit [`ln`]).
#[inline(always)]
fn ln_core(z: F32x4, k_lo: F32x4, k_hi: F32x4, c: &Consts) -> F32x4 {
    // Estrin's scheme, not Horner's: the element-wise sweeps wait on this polynomial's
    // chain of dependent operations (4 steps instead of 9; same coefficients).
    let z2 = z.mul(z);
    let z4 = z2.mul(z2);
    // Coefficient a_i of z^(8 - i) is at LN_P + i; pair(i) = a_i·z + a_(i+1).
    let pair = |i: usize| c.get(k::LN_P + i).mul(z).add(c.get(k::LN_P + i + 1));
    let high = pair(1).mul(z2).add(pair(3)); // a1·z³ + … + a4
    let low = pair(5).mul(z2).add(pair(7)); // a5·z³ + … + a8
    let p = c.get(k::LN_P).mul(z4.mul(z4)).add(high.mul(z4).add(low));
    let mut y = p.mul(z.mul(z2));
    y = y.add(k_lo);
    y = y.sub(z2.mul(c.get(k::HALF)));
    z.add(y).add(k_hi)
}

/// Beyond this `|x|`, `e^-|x|` is flushed to +0 by [`exp_neg`] (`e^-87 ≈ 1.6e-38`, just
/// above the smallest normal float; `2^n` then stays normal without clamping).
pub const EXP_NEG_FLUSH: f32 = 87.0;

/// `e^-a` for `a >= 0` (or NaN), with the fewest operations: `e^-a = 2^n·(1 + P(r))`,
/// `-a = n·ln 2 + r`, `n` rounded by the `1.5·2^23` shift (which leaves `n` in the low bits
/// for `2^n`), `P` the degree-5 minimax polynomial of Arm's optimized-routines `v_expf`
/// (the softmax sweep's `exp_shifted`, evaluated by Estrin's scheme here). Max error 2.15 ulp for
/// `a <= 87` (see `exp_neg_accuracy`); +0 above 87 (+Infinity included, where the true
/// value is below 1.7e-38), NaN for NaN.
#[inline(always)]
pub fn exp_neg(a: F32x4, c: &Consts) -> F32x4 {
    let z = a.mul(c.get(k::NEG_LOG2E)).add(c.get(k::SHIFT));
    let n = z.sub(c.get(k::SHIFT));
    // r = -a - n·ln 2, in two steps (the first exact); -(a + n·c) rounds as -a - n·c.
    let r = n.mul(c.get(k::NEG_LN2_HI)).sub(a);
    let r = r.sub(n.mul(c.get(k::LN2_LO_EXP)));
    // Estrin's scheme (3 dependent steps instead of 5), as in `ln_core`.
    let r2 = r.mul(r);
    let pair = |i: usize| c.get(k::EXP_P + i).mul(r).add(c.get(k::EXP_P + i + 1));
    let p = c.get(k::EXP_P).mul(r2.mul(r2)).add(pair(1).mul(r2).add(pair(3)));
    let scale = z.pow2i_shifted();
    let e = scale.add(p.mul(r).mul(scale));
    a.gt(c.get(k::EXP_NEG_FLUSH)).zero_where(e)
}

/// `ln(1 + e)` for `e` in `[0, 1]` (or NaN → NaN). No rounding of `1 + e` to correct: for
/// `e <= √2 - 1` the polynomial takes `z = e` itself, above it `1 + e = 2·(1 + z)` with
/// `z = (e - 1)/2` in `(√½ - 1, 0]`. Max error 1.38 ulp (see `ln_1p_unit_accuracy`).
#[inline(always)]
pub fn ln_1p_unit(e: F32x4, c: &Consts) -> F32x4 {
    let hi = e.gt(c.get(k::SQRT2_M1));
    let z = c.select(hi, e.sub(c.get(k::ONE)).mul(c.get(k::HALF)), e);
    ln_core(z, c.keep(hi, c.get(k::LN2_LO)), c.keep(hi, c.get(k::LN2_HI)), c)
}

/// [`Logistic`] of every lane from `e = exp_neg(|x|)` and `ln_1p_unit(e)`, one division
/// (`σ(|x|) = 1/(1 + e)`, `σ(-|x|) = e·σ(|x|)`). The same limits at ±Infinity and NaN as
/// [`logistic`]; for `87 < |x| < ∞`, where `e` is flushed, `σ(-|x|)` and
/// `softplus(-|x|)` are +0 instead of a value below 1.7e-38. Max error for `|x| <= 87`
/// (see `logistic_fast_accuracy`): 4.2 ulp for `σ(±x)`, 3.4 ulp for `softplus(±x)`.
#[inline(always)]
pub fn logistic_fast(x: F32x4, c: &Consts) -> Logistic {
    logistic_from_terms(x, logistic_terms(x, c), c)
}

/// The transcendental part of [`logistic_fast`], which depends on `|x|` alone: `e`,
/// `ln_1p(e)` and `σ(|x|)`, in two stages ([`logistic_terms_start`], then
/// [`logistic_terms_finish`]) that a sweep runs over several vectors each before it
/// finishes any (see `kernels::binary`): each stage is a long chain of dependent operations,
/// and independent chains overlap where one vector's whole loop body would not.
#[derive(Clone, Copy)]
pub struct LogisticTerms {
    e: F32x4,
    ln_1p_e: F32x4,
    sigmoid_abs: F32x4,
}

#[inline(always)]
pub fn logistic_terms(x: F32x4, c: &Consts) -> LogisticTerms {
    let mut terms = logistic_terms_start(x, c);
    logistic_terms_finish(&mut terms, c);
    terms
}

/// `e` of [`LogisticTerms`] (the others are placeholders until [`logistic_terms_finish`]).
#[inline(always)]
pub fn logistic_terms_start(x: F32x4, c: &Consts) -> LogisticTerms {
    let e = exp_neg(x.abs(), c);
    LogisticTerms { e, ln_1p_e: e, sigmoid_abs: e }
}

/// The rest of [`LogisticTerms`] from its `e`.
#[inline(always)]
pub fn logistic_terms_finish(terms: &mut LogisticTerms, c: &Consts) {
    let one = c.get(k::ONE);
    let e = terms.e;
    terms.ln_1p_e = ln_1p_unit(e, c);
    terms.sigmoid_abs = one.div(one.add(e));
}

/// [`logistic_fast`] of `x` from its [`LogisticTerms`].
#[inline(always)]
pub fn logistic_from_terms(x: F32x4, terms: LogisticTerms, c: &Consts) -> Logistic {
    let LogisticTerms { e, ln_1p_e: l, sigmoid_abs: big } = terms;
    let zero = c.get(k::ZERO);
    let small = e.mul(big); // σ(-|x|)
    let negative = x.lt(zero); // NaN lanes: NaN either way
    let (relu, relu_neg) = c.relu_pair(x, negative);
    Logistic {
        p: c.select(negative, small, big),
        pn: c.select(negative, big, small),
        sp: relu.add(l),
        sp_neg: relu_neg.add(l),
    }
}

/// `ln x` for `x` in `[0, 1]` (denormals included), for a caller that clamps the result
/// at -100 or above: `x = 0` gives -103.97 (`ln 2^-150`) instead of -Infinity. `x` is
/// scaled by `2^23` first (exact, and every denormal becomes normal), then split as
/// `m·2^k` with `m` in `[√½, √2)` by integer arithmetic ([`F32x4::frexp_sqrt2`]). Max
/// error 0.8 ulp for `x > 0` (see `ln_unit_accuracy`).
#[inline(always)]
pub fn ln_unit(x: F32x4, c: &Consts) -> F32x4 {
    let (e, m) = x.mul(c.get(k::TWO_23)).frexp_sqrt2();
    let e = e.sub(c.get(k::TWENTY_THREE));
    ln_core(m.sub(c.get(k::ONE)), e.mul(c.get(k::LN2_LO)), e.mul(c.get(k::LN2_HI)), c)
}

/// `ln(1 - x)` for `x` in `[0, 1]`, for a caller that clamps at -100 or above (`x = 1`
/// gives -103.97): [`ln_unit`] of `w = 1 - x` plus Goldberg's correction for the rounding
/// of `w`, `((1 - x) - w)/w`, with `1/w ≈ 1 + x` (the rounding is 0 for `x >= 1/2` and the
/// correction at most half an ulp of 1, so the approximation costs below 0.2 ulp).
/// Max error 1.44 ulp for `x < 1` (see `ln_1m_unit_accuracy`).
#[inline(always)]
pub fn ln_1m_unit(x: F32x4, c: &Consts) -> F32x4 {
    let (w, correction) = one_minus(x, c);
    ln_unit(w, c).sub(correction)
}

/// [`ln_unit`] of `x` in the lanes of `plain`, [`ln_1m_unit`] of `x` elsewhere, with one
/// log: the same bits as each (`ln_unit(x) - (+0)` is `ln_unit(x)`).
#[inline(always)]
pub fn ln_unit_or_1m(x: F32x4, plain: Mask, c: &Consts) -> F32x4 {
    let (w, correction) = one_minus(x, c);
    ln_unit(c.select(plain, x, w), c).sub(c.select(plain, F32x4::ZERO, correction))
}

/// `w = 1 - x` rounded, and what [`ln_1m_unit`] subtracts from `ln_unit(w)`: the rounding
/// `w - (1 - x)` (exact) times `1 + x ≈ 1/w`.
#[inline(always)]
fn one_minus(x: F32x4, c: &Consts) -> (F32x4, F32x4) {
    let one = c.get(k::ONE);
    let w = one.sub(x);
    let rounding = w.sub(one).add(x);
    (w, rounding.mul(one.add(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between an f32 result and the f64 truth.
    pub(crate) fn ulp_error(got: f32, truth: f64) -> f64 {
        if got.is_nan() || truth.is_nan() {
            return if got.is_nan() && truth.is_nan() { 0.0 } else { f64::INFINITY };
        }
        let t32 = truth as f32;
        if t32.is_infinite() || got.is_infinite() {
            return if got == t32 { 0.0 } else { f64::INFINITY };
        }
        // ulp of the true value in float32, with the denormal floor.
        let ulp = (f32::from_bits(t32.abs().to_bits() + 1) - t32.abs()).max(f32::from_bits(1)) as f64;
        (got as f64 - truth).abs() / ulp
    }

    /// Every 97th float32 bit pattern: covers all exponents and many mantissas of the range.
    pub(crate) fn sweep(mut f: impl FnMut(f32)) {
        let mut bits: u64 = 0;
        while bits <= u32::MAX as u64 {
            f(f32::from_bits(bits as u32));
            bits += 97;
        }
        for x in [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, 1.0] {
            f(x);
        }
    }

    pub(crate) fn max_ulp(f: impl Fn(F32x4) -> F32x4, truth: impl Fn(f64) -> f64, domain: impl Fn(f32) -> bool) -> (f64, f32) {
        let mut worst = (0.0, 0.0);
        sweep(|x| {
            if !domain(x) {
                return;
            }
            let got = f(F32x4::splat(x)).to_array()[0];
            let e = ulp_error(got, truth(x as f64));
            if e > worst.0 {
                worst = (e, x);
            }
        });
        worst
    }

    #[test]
    fn exp_accuracy() {
        let (e, at) = max_ulp(exp, f64::exp, |_| true);
        assert!(e <= 2.0, "exp max error {e} ulp at {at}");
    }

    #[test]
    fn exp_special_values() {
        let r = exp(F32x4::from_array([f32::NEG_INFINITY, f32::INFINITY, f32::NAN, -200.0])).to_array();
        assert_eq!(r[0], 0.0);
        assert_eq!(r[1], f32::INFINITY);
        assert!(r[2].is_nan());
        assert_eq!(r[3], 0.0);
        let r = exp(F32x4::from_array([0.0, 88.7, 88.8, -103.0])).to_array();
        assert_eq!(r[0], 1.0);
        assert!(r[1].is_finite() && r[1] > 3.0e38);
        assert_eq!(r[2], f32::INFINITY);
        assert!(r[3] > 0.0 && r[3] < 1e-44);
    }

    #[test]
    fn ln_accuracy() {
        let (e, at) = max_ulp(ln, f64::ln, |x| x >= 0.0 || x.is_nan());
        assert!(e <= 2.0, "ln max error {e} ulp at {at}");
        let r = ln(F32x4::from_array([-1.0, 0.0, f32::INFINITY, f32::NAN])).to_array();
        assert!(r[0].is_nan());
        assert_eq!(r[1], f32::NEG_INFINITY);
        assert_eq!(r[2], f32::INFINITY);
        assert!(r[3].is_nan());
    }

    #[test]
    fn ln_at_least_one_is_ln() {
        sweep(|x| {
            if x >= 1.0 && x.is_finite() {
                let (a, b) = (ln_at_least_one(F32x4::splat(x)).to_array()[0], ln(F32x4::splat(x)).to_array()[0]);
                assert_eq!(a.to_bits(), b.to_bits(), "ln_at_least_one({x})");
            }
        });
        assert!(ln_at_least_one(F32x4::splat(f32::NAN)).to_array()[0].is_nan());
    }

    #[test]
    fn ln_1p_accuracy() {
        let (e, at) = max_ulp(ln_1p, f64::ln_1p, |x| x > -1.0 || x.is_nan());
        assert!(e <= 2.0, "ln_1p max error {e} ulp at {at}");
        let r = ln_1p(F32x4::from_array([-1.0, -1.5, f32::INFINITY, -0.0])).to_array();
        assert_eq!(r[0], f32::NEG_INFINITY);
        assert!(r[1].is_nan());
        assert_eq!(r[2], f32::INFINITY);
        assert_eq!(r[3].to_bits(), (-0.0f32).to_bits());
    }

    fn sigmoid64(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    }

    fn softplus64(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    #[test]
    fn sigmoid_accuracy() {
        let (e, at) = max_ulp(sigmoid, sigmoid64, |_| true);
        assert!(e <= 3.0, "sigmoid max error {e} ulp at {at}");
        let (e, at) = max_ulp(|x| logistic(x).pn, |x| sigmoid64(-x), |_| true);
        assert!(e <= 3.0, "sigmoid(-x) max error {e} ulp at {at}");
        let r = sigmoid(F32x4::from_array([f32::NEG_INFINITY, f32::INFINITY, f32::NAN, 0.0])).to_array();
        assert_eq!(r[..2], [0.0, 1.0]);
        assert!(r[2].is_nan());
        assert_eq!(r[3], 0.5);
    }

    #[test]
    fn softplus_accuracy() {
        let (e, at) = max_ulp(softplus, softplus64, |_| true);
        assert!(e <= 2.0, "softplus max error {e} ulp at {at}");
        let (e, at) = max_ulp(|x| logistic(x).sp_neg, |x| softplus64(-x), |_| true);
        assert!(e <= 2.0, "softplus(-x) max error {e} ulp at {at}");
        let l = logistic(F32x4::from_array([f32::NEG_INFINITY, f32::INFINITY, f32::NAN, 1e4]));
        assert_eq!(l.sp.to_array()[..2], [0.0, f32::INFINITY]);
        assert_eq!(l.sp_neg.to_array()[..2], [f32::INFINITY, 0.0]);
        assert!(l.sp.to_array()[2].is_nan() && l.sp_neg.to_array()[2].is_nan() && l.p.to_array()[2].is_nan());
        assert_eq!(l.sp.to_array()[3], 1e4);
        assert_eq!(l.sp_neg.to_array()[3], 0.0);
    }

    #[test]
    fn pow_accuracy() {
        for y in [0.25f32, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0, -0.5] {
            let mut worst = (0.0, 0.0);
            sweep(|x| {
                let truth = (x as f64).powf(y as f64);
                // Near overflow the rounding of y·ln x decides between MAX and +Infinity.
                if !(x >= 0.0) || truth > 1e38 {
                    return;
                }
                let got = pow(F32x4::splat(x), F32x4::splat(y)).to_array()[0];
                let e = ulp_error(got, truth);
                let allowed = 2.0 + 2.0 * (y as f64 * (x as f64).ln()).abs();
                if e / allowed > worst.0 {
                    worst = (e / allowed, x);
                }
            });
            assert!(worst.0 <= 1.0, "pow(x, {y}) error {} of the allowed bound at x = {}", worst.0, worst.1);
        }
        let r = pow(F32x4::from_array([0.0, 0.0, f32::NAN, 1.0]), F32x4::from_array([0.0, 0.5, 0.0, 7.5])).to_array();
        assert_eq!(r, [1.0, 0.0, 1.0, 1.0]);
        let r = pow(F32x4::from_array([0.0, -1.0, f32::INFINITY, 4.0]), F32x4::from_array([-1.0, 0.5, 0.5, 0.5])).to_array();
        assert_eq!(r[0], f32::INFINITY);
        assert!(r[1].is_nan());
        assert_eq!(r[2], f32::INFINITY);
        assert_eq!(r[3], 2.0);
    }

    /// Restricted-domain sweeps: `max_ulp` over the domain, printed for the doc comments.
    fn report(what: &str, (e, at): (f64, f32), bound: f64) {
        eprintln!("{what}: max error {e} ulp at {at}");
        assert!(e <= bound, "{what} max error {e} ulp at {at}");
    }

    #[test]
    fn exp_neg_accuracy() {
        report("exp_neg", max_ulp(|a| exp_neg(a, &Consts::new()), |a| (-a).exp(), |a| (0.0..=EXP_NEG_FLUSH).contains(&a) || a.is_nan()), 100.0);
        let r = exp_neg(F32x4::from_array([0.0, 87.5, f32::INFINITY, f32::NAN]), &Consts::new()).to_array();
        assert_eq!(r[..3], [1.0, 0.0, 0.0]);
        assert!(r[3].is_nan());
    }

    #[test]
    fn ln_1p_unit_accuracy() {
        report("ln_1p_unit", max_ulp(|e| ln_1p_unit(e, &Consts::new()), f64::ln_1p, |e| (0.0..=1.0).contains(&e) || e.is_nan()), 100.0);
        let r = ln_1p_unit(F32x4::from_array([0.0, 1.0, f32::NAN, 1e-30]), &Consts::new()).to_array();
        assert_eq!(r[0], 0.0);
        assert_eq!(r[1], core::f32::consts::LN_2);
        assert!(r[2].is_nan());
        assert_eq!(r[3], 1e-30);
    }

    #[test]
    fn logistic_fast_accuracy() {
        let c = Consts::new();
        let domain = |x: f32| x.abs() <= EXP_NEG_FLUSH || x.is_nan();
        report("logistic_fast p", max_ulp(|x| logistic_fast(x, &c).p, sigmoid64, domain), 100.0);
        report("logistic_fast pn", max_ulp(|x| logistic_fast(x, &c).pn, |x| sigmoid64(-x), domain), 100.0);
        report("logistic_fast sp", max_ulp(|x| logistic_fast(x, &c).sp, softplus64, domain), 100.0);
        report("logistic_fast sp_neg", max_ulp(|x| logistic_fast(x, &c).sp_neg, |x| softplus64(-x), domain), 100.0);
        // Beyond the flush: exact limits or +0 where the truth is below 1.7e-38.
        sweep(|x| {
            if !(x.abs() > EXP_NEG_FLUSH) {
                return;
            }
            let l = logistic_fast(F32x4::splat(x), &c);
            let x64 = x as f64;
            for (got, truth) in [(l.p, sigmoid64(x64)), (l.pn, sigmoid64(-x64)), (l.sp, softplus64(x64)), (l.sp_neg, softplus64(-x64))] {
                let got = got.to_array()[0];
                assert!(got as f64 == truth as f32 as f64 || (got == 0.0 && truth < 1.7e-38), "x = {x}: {got} vs {truth}");
            }
        });
        let l = logistic_fast(F32x4::from_array([f32::NEG_INFINITY, f32::INFINITY, f32::NAN, -0.0]), &c);
        assert_eq!(l.p.to_array()[..2], [0.0, 1.0]);
        assert_eq!(l.pn.to_array()[..2], [1.0, 0.0]);
        assert_eq!(l.sp.to_array()[..2], [0.0, f32::INFINITY]);
        assert_eq!(l.sp_neg.to_array()[..2], [f32::INFINITY, 0.0]);
        for v in [l.p, l.pn, l.sp, l.sp_neg] {
            assert!(v.to_array()[2].is_nan());
        }
        assert_eq!((l.p.to_array()[3], l.pn.to_array()[3]), (0.5, 0.5));
    }

    #[test]
    fn exp_m1_small_accuracy() {
        let ln2 = core::f32::consts::LN_2;
        report("exp_m1_small", max_ulp(exp_m1_small, f64::exp_m1, |x| (-ln2..=0.0).contains(&x)), 2.0);
        let r = exp_m1_small(F32x4::from_array([0.0, -0.0, f32::NAN, -1e-30])).to_array();
        assert_eq!((r[0], r[1]), (0.0, 0.0));
        assert!(r[2].is_nan());
        assert_eq!(r[3], -1e-30);
    }

    #[test]
    fn ln_unit_accuracy() {
        report("ln_unit", max_ulp(|x| ln_unit(x, &Consts::new()), f64::ln, |x| x > 0.0 && x <= 1.0), 100.0);
        let r = ln_unit(F32x4::from_array([0.0, 1.0, f32::from_bits(1), 0.5]), &Consts::new()).to_array();
        assert_eq!(r[0], -150.0 * core::f32::consts::LN_2);
        assert_eq!(r[1], 0.0);
        assert!((r[2] as f64 - (f32::from_bits(1) as f64).ln()).abs() < 1e-5);
        assert_eq!(r[3], -core::f32::consts::LN_2);
    }

    #[test]
    fn ln_1m_unit_accuracy() {
        report("ln_1m_unit", max_ulp(|x| ln_1m_unit(x, &Consts::new()), |x| (-x).ln_1p(), |x| (0.0..1.0).contains(&x)), 100.0);
        let r = ln_1m_unit(F32x4::from_array([0.0, 1.0, 1e-30, 0.5]), &Consts::new()).to_array();
        assert_eq!(r[0], 0.0);
        assert_eq!(r[1], -150.0 * core::f32::consts::LN_2);
        assert_eq!(r[2], -1e-30);
        assert_eq!(r[3], -core::f32::consts::LN_2);
    }
}
