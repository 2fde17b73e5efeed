//! Helpers shared by the kernels' host tests.

use super::{InOut, Layout};

/// Small deterministic generator (xorshift64*), so tests need no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = (self.uniform() as f64).max(1e-12);
        let v = self.uniform() as f64;
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

pub enum RefTarget {
    Index(Vec<i32>, i32),
    Prob(Vec<f32>),
}

/// Random class probabilities in the input's layout (each position sums to 1).
pub fn random_probs(rng: &mut Rng, layout: Layout) -> Vec<f32> {
    let (c, inner) = (layout.classes, layout.inner);
    let mut y = vec![0.0f32; layout.len()];
    for n in 0..layout.outer {
        for s in 0..inner {
            let raw: Vec<f32> = (0..c).map(|_| rng.uniform()).collect();
            let total: f32 = raw.iter().sum();
            for k in 0..c {
                y[n * c * inner + k * inner + s] = raw[k] / total;
            }
        }
    }
    y
}

/// The project's oracle tolerance: `1e-5 + 1e-4·|expected|`, NaN and infinities in place.
pub fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() || !w.is_finite() {
            assert!(g.is_nan() == w.is_nan() && (w.is_nan() || g as f64 == w), "{what}[{i}]: got {g}, want {w}");
            continue;
        }
        let tol = 1e-5 + 1e-4 * w.abs();
        assert!((g as f64 - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

/// The values' bits, every NaN as one (wasm does not fix NaN payloads: V8's two compilers
/// may give the same NaN different bits).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| if x.is_nan() { f32::NAN.to_bits() } else { x.to_bits() }).collect()
}

/// What a gradient buffer starts as out of place: no gradient in these tests is this value,
/// so it shows an element left unwritten, or read instead of the input.
pub const SENTINEL: f32 = 1234.5;

/// The loss sum and the per-position losses a kernel call returned (empty when not asked for).
pub type Outcome = (f64, Vec<f32>);

/// Runs `kernel` in place over a copy of `x`, then out of place from `x` into a buffer of
/// [`SENTINEL`], and asserts the same bits: loss sum, losses, and the gradient when `writes`
/// (else both leave it alone). Returns what the in-place call left in its buffer, and its outcome.
pub fn both_ways(x: &[f32], writes: bool, mut kernel: impl FnMut(InOut) -> Outcome) -> (Vec<f32>, Outcome) {
    let mut data = x.to_vec();
    let (sum, losses) = kernel(InOut::InPlace(&mut data));
    let mut grad = vec![SENTINEL; x.len()];
    let (oop_sum, oop_losses) = kernel(InOut::OutOfPlace { input: x, grad: &mut grad });
    assert!(oop_sum.to_bits() == sum.to_bits() || (oop_sum.is_nan() && sum.is_nan()), "out of place: loss sum");
    assert_eq!(bits(&oop_losses), bits(&losses), "out of place: losses");
    if writes {
        assert_eq!(bits(&grad), bits(&data), "out of place: gradient");
    } else {
        assert_eq!(bits(&data), bits(x), "forward only: input written in place");
        assert!(grad.iter().all(|v| v.to_bits() == SENTINEL.to_bits()), "forward only: gradient buffer written");
    }
    (data, (sum, losses))
}
