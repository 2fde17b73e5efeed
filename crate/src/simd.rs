//! A four-lane f32 vector: `core::arch::wasm32` SIMD128 when the crate is built with
//! `+simd128`, otherwise four scalar lanes with the same arithmetic in the same order.
//!
//! Kernels are written once against [`F32x4`]. Because both implementations perform the
//! same IEEE operations lane by lane (wasm SIMD128 has no fused multiply-add), the SIMD and
//! scalar builds return bit-identical results; only the speed differs.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct F32x4(v128);

    #[derive(Clone, Copy)]
    pub struct Mask(v128);

    /// Four i32 lanes: the class index of each position of a spatial vector.
    #[derive(Clone, Copy)]
    pub struct I32x4(v128);

    impl I32x4 {
        #[inline(always)]
        pub fn splat(x: i32) -> Self {
            Self(i32x4_splat(x))
        }
        #[inline(always)]
        pub fn from_array(a: [i32; 4]) -> Self {
            Self(i32x4(a[0], a[1], a[2], a[3]))
        }
        #[inline(always)]
        pub fn to_array(self) -> [i32; 4] {
            [
                i32x4_extract_lane::<0>(self.0),
                i32x4_extract_lane::<1>(self.0),
                i32x4_extract_lane::<2>(self.0),
                i32x4_extract_lane::<3>(self.0),
            ]
        }
        #[inline(always)]
        pub fn eq(self, o: Self) -> Mask {
            Mask(i32x4_eq(self.0, o.0))
        }
        #[inline(always)]
        pub fn gt(self, o: Self) -> Mask {
            Mask(i32x4_gt(self.0, o.0))
        }
    }

    impl F32x4 {
        pub const ZERO: Self = Self(f32x4(0.0, 0.0, 0.0, 0.0));
        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self(f32x4_splat(x))
        }
        #[inline(always)]
        pub fn from_array(a: [f32; 4]) -> Self {
            Self(f32x4(a[0], a[1], a[2], a[3]))
        }
        #[inline(always)]
        pub fn to_array(self) -> [f32; 4] {
            [
                f32x4_extract_lane::<0>(self.0),
                f32x4_extract_lane::<1>(self.0),
                f32x4_extract_lane::<2>(self.0),
                f32x4_extract_lane::<3>(self.0),
            ]
        }
        /// Loads the first four elements of `s` (panics if shorter).
        #[inline(always)]
        pub fn load(s: &[f32]) -> Self {
            let s = &s[..4];
            // SAFETY: `s` has exactly four elements; v128_load has no alignment requirement.
            Self(unsafe { v128_load(s.as_ptr() as *const v128) })
        }
        #[inline(always)]
        pub fn store(self, s: &mut [f32]) {
            let s = &mut s[..4];
            // SAFETY: as in `load`.
            unsafe { v128_store(s.as_mut_ptr() as *mut v128, self.0) }
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            Self(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            Self(f32x4_sub(self.0, o.0))
        }
        #[inline(always)]
        pub fn mul(self, o: Self) -> Self {
            Self(f32x4_mul(self.0, o.0))
        }
        #[inline(always)]
        pub fn div(self, o: Self) -> Self {
            Self(f32x4_div(self.0, o.0))
        }
        /// NaN if either lane is NaN (as PyTorch's max reduction).
        #[inline(always)]
        pub fn max(self, o: Self) -> Self {
            Self(f32x4_max(self.0, o.0))
        }
        /// NaN if either lane is NaN.
        #[inline(always)]
        pub fn min(self, o: Self) -> Self {
            Self(f32x4_min(self.0, o.0))
        }
        #[inline(always)]
        pub fn abs(self) -> Self {
            Self(f32x4_abs(self.0))
        }
        #[inline(always)]
        pub fn neg(self) -> Self {
            Self(f32x4_neg(self.0))
        }
        #[inline(always)]
        pub fn sqrt(self) -> Self {
            Self(f32x4_sqrt(self.0))
        }
        /// Rounds to nearest, ties to even.
        #[inline(always)]
        pub fn round(self) -> Self {
            Self(f32x4_nearest(self.0))
        }
        #[inline(always)]
        pub fn round_down(self) -> Self {
            Self(f32x4_floor(self.0))
        }
        #[inline(always)]
        pub fn lt(self, o: Self) -> Mask {
            Mask(f32x4_lt(self.0, o.0))
        }
        #[inline(always)]
        pub fn gt(self, o: Self) -> Mask {
            Mask(f32x4_gt(self.0, o.0))
        }
        #[inline(always)]
        pub fn eq(self, o: Self) -> Mask {
            Mask(f32x4_eq(self.0, o.0))
        }
        /// `(lane as i32)`, saturating, NaN → 0.
        #[inline(always)]
        pub fn to_i32_sat(self) -> [i32; 4] {
            let v = i32x4_trunc_sat_f32x4(self.0);
            [
                i32x4_extract_lane::<0>(v),
                i32x4_extract_lane::<1>(v),
                i32x4_extract_lane::<2>(v),
                i32x4_extract_lane::<3>(v),
            ]
        }
        /// `2^n` for each lane of `n` in `-126..=127` (integral), built in the exponent field.
        /// `n + 1.5·2^23` holds `n` in its low mantissa bits, which avoids the saturating
        /// float→int conversion (several instructions on x86).
        #[inline(always)]
        pub fn pow2i(self) -> Self {
            self.add(Self::splat(super::POW2I_MAGIC)).pow2i_shifted()
        }
        /// `2^n` for lanes holding `n + 1.5·2^23` (`n` integral in `-126..=127`): the shifted
        /// value a rounding by the `1.5·2^23` trick leaves.
        #[inline(always)]
        pub fn pow2i_shifted(self) -> Self {
            Self(i32x4_shl(i32x4_sub(self.0, i32x4_splat(super::POW2I_OFFSET)), 23))
        }
        /// `o < self ? o : self` (wasm `pmin`, one x86 instruction): a NaN in `self` is kept,
        /// a NaN in `o` is not.
        #[inline(always)]
        pub fn pmin(self, o: Self) -> Self {
            Self(f32x4_pmin(self.0, o.0))
        }
        /// `self < o ? o : self` (wasm `pmax`): a NaN in `self` is kept, a NaN in `o` is not.
        #[inline(always)]
        pub fn pmax(self, o: Self) -> Self {
            Self(f32x4_pmax(self.0, o.0))
        }
        /// Splits positive finite normal lanes into (exponent as f32, mantissa in [1, 2)).
        #[inline(always)]
        pub fn frexp_normal(self) -> (Self, Self) {
            let e = u32x4_shr(self.0, 23);
            let e = i32x4_sub(v128_and(e, i32x4_splat(0xff)), i32x4_splat(127));
            let m = v128_or(
                v128_and(self.0, i32x4_splat(0x007f_ffff)),
                i32x4_splat(0x3f80_0000),
            );
            (Self(f32x4_convert_i32x4(e)), Self(m))
        }
        /// Splits positive finite normal lanes into `(k as f32, m)`, `self = m·2^k` with `m`
        /// in `[√½, √2)`, by integer arithmetic (no compare and select): adding
        /// `1 - √½` in the bit pattern carries into the exponent exactly when `m >= √2`.
        #[inline(always)]
        pub fn frexp_sqrt2(self) -> (Self, Self) {
            let ix = i32x4_add(self.0, i32x4_splat(super::FREXP_SQRT2_SHIFT));
            let k = i32x4_sub(u32x4_shr(ix, 23), i32x4_splat(127));
            let m = i32x4_add(v128_and(ix, i32x4_splat(0x007f_ffff)), i32x4_splat(super::SQRT_HALF_BITS));
            (Self(f32x4_convert_i32x4(k)), Self(m))
        }
        #[inline(always)]
        pub fn hsum(self) -> f32 {
            let [a, b, c, d] = self.to_array();
            (a + b) + (c + d)
        }
        #[inline(always)]
        pub fn hmax(self) -> f32 {
            let [a, b, c, d] = self.to_array();
            crate::simd::max_nan(crate::simd::max_nan(a, b), crate::simd::max_nan(c, d))
        }
    }

    impl Mask {
        #[inline(always)]
        pub fn first(n: usize) -> Self {
            let l = |i: usize| if i < n { -1i32 } else { 0 };
            Mask(i32x4(l(0), l(1), l(2), l(3)))
        }
        #[inline(always)]
        pub fn select(self, yes: F32x4, no: F32x4) -> F32x4 {
            F32x4(v128_bitselect(yes.0, no.0, self.0))
        }
        /// `v` with the lanes of this mask set to +0 (one `andnot`, cheaper than `select`).
        #[inline(always)]
        pub fn zero_where(self, v: F32x4) -> F32x4 {
            F32x4(v128_andnot(v.0, self.0))
        }
        /// `v` in the lanes of this mask, +0 elsewhere (one `and`: `select(v, +0)`).
        #[inline(always)]
        pub fn keep(self, v: F32x4) -> F32x4 {
            F32x4(v128_and(v.0, self.0))
        }
        #[inline(always)]
        pub fn or(self, o: Self) -> Self {
            Mask(v128_or(self.0, o.0))
        }
        #[inline(always)]
        pub fn and(self, o: Self) -> Self {
            Mask(v128_and(self.0, o.0))
        }
        #[inline(always)]
        pub fn not(self) -> Self {
            Mask(v128_not(self.0))
        }
        /// Every lane set.
        #[inline(always)]
        pub fn all(self) -> bool {
            i32x4_all_true(self.0)
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    use crate::simd::max_nan;

    #[derive(Clone, Copy)]
    pub struct F32x4([f32; 4]);

    #[derive(Clone, Copy)]
    pub struct Mask([bool; 4]);

    #[derive(Clone, Copy)]
    pub struct I32x4([i32; 4]);

    impl I32x4 {
        #[inline(always)]
        pub fn splat(x: i32) -> Self {
            Self([x; 4])
        }
        #[inline(always)]
        pub fn from_array(a: [i32; 4]) -> Self {
            Self(a)
        }
        #[inline(always)]
        pub fn to_array(self) -> [i32; 4] {
            self.0
        }
        #[inline(always)]
        pub fn eq(self, o: Self) -> Mask {
            let (a, b) = (self.0, o.0);
            Mask([a[0] == b[0], a[1] == b[1], a[2] == b[2], a[3] == b[3]])
        }
        #[inline(always)]
        pub fn gt(self, o: Self) -> Mask {
            let (a, b) = (self.0, o.0);
            Mask([a[0] > b[0], a[1] > b[1], a[2] > b[2], a[3] > b[3]])
        }
    }

    #[inline(always)]
    fn map(a: [f32; 4], f: impl Fn(f32) -> f32) -> [f32; 4] {
        [f(a[0]), f(a[1]), f(a[2]), f(a[3])]
    }
    #[inline(always)]
    fn zip(a: [f32; 4], b: [f32; 4], f: impl Fn(f32, f32) -> f32) -> [f32; 4] {
        [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])]
    }
    #[inline(always)]
    fn cmp(a: [f32; 4], b: [f32; 4], f: impl Fn(f32, f32) -> bool) -> Mask {
        Mask([f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])])
    }
    /// NaN-propagating min, as wasm's `f32x4.min`.
    #[inline(always)]
    fn min_nan(a: f32, b: f32) -> f32 {
        if a < b {
            a
        } else if b <= a {
            b
        } else {
            f32::NAN
        }
    }

    impl F32x4 {
        pub const ZERO: Self = Self([0.0; 4]);
        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self([x; 4])
        }
        #[inline(always)]
        pub fn from_array(a: [f32; 4]) -> Self {
            Self(a)
        }
        #[inline(always)]
        pub fn to_array(self) -> [f32; 4] {
            self.0
        }
        #[inline(always)]
        pub fn load(s: &[f32]) -> Self {
            Self([s[0], s[1], s[2], s[3]])
        }
        #[inline(always)]
        pub fn store(self, s: &mut [f32]) {
            s[..4].copy_from_slice(&self.0);
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            Self(zip(self.0, o.0, |a, b| a + b))
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            Self(zip(self.0, o.0, |a, b| a - b))
        }
        #[inline(always)]
        pub fn mul(self, o: Self) -> Self {
            Self(zip(self.0, o.0, |a, b| a * b))
        }
        #[inline(always)]
        pub fn div(self, o: Self) -> Self {
            Self(zip(self.0, o.0, |a, b| a / b))
        }
        #[inline(always)]
        pub fn max(self, o: Self) -> Self {
            Self(zip(self.0, o.0, max_nan))
        }
        #[inline(always)]
        pub fn min(self, o: Self) -> Self {
            Self(zip(self.0, o.0, min_nan))
        }
        #[inline(always)]
        pub fn abs(self) -> Self {
            Self(map(self.0, f32::abs))
        }
        #[inline(always)]
        pub fn neg(self) -> Self {
            Self(map(self.0, |a| -a))
        }
        #[inline(always)]
        pub fn sqrt(self) -> Self {
            Self(map(self.0, f32::sqrt))
        }
        #[inline(always)]
        pub fn round(self) -> Self {
            Self(map(self.0, f32::round_ties_even))
        }
        #[inline(always)]
        pub fn round_down(self) -> Self {
            Self(map(self.0, f32::floor))
        }
        #[inline(always)]
        pub fn lt(self, o: Self) -> Mask {
            cmp(self.0, o.0, |a, b| a < b)
        }
        #[inline(always)]
        pub fn gt(self, o: Self) -> Mask {
            cmp(self.0, o.0, |a, b| a > b)
        }
        #[inline(always)]
        pub fn eq(self, o: Self) -> Mask {
            cmp(self.0, o.0, |a, b| a == b)
        }
        #[inline(always)]
        pub fn to_i32_sat(self) -> [i32; 4] {
            let a = self.0;
            [a[0] as i32, a[1] as i32, a[2] as i32, a[3] as i32]
        }
        #[inline(always)]
        pub fn pow2i(self) -> Self {
            self.add(Self::splat(super::POW2I_MAGIC)).pow2i_shifted()
        }
        #[inline(always)]
        pub fn pow2i_shifted(self) -> Self {
            Self(map(self.0, |z| f32::from_bits(z.to_bits().wrapping_sub(super::POW2I_OFFSET as u32) << 23)))
        }
        #[inline(always)]
        pub fn pmin(self, o: Self) -> Self {
            Self(zip(self.0, o.0, |a, b| if b < a { b } else { a }))
        }
        #[inline(always)]
        pub fn pmax(self, o: Self) -> Self {
            Self(zip(self.0, o.0, |a, b| if a < b { b } else { a }))
        }
        #[inline(always)]
        pub fn frexp_normal(self) -> (Self, Self) {
            let e = map(self.0, |x| (((x.to_bits() >> 23) & 0xff) as i32 - 127) as f32);
            let m = map(self.0, |x| f32::from_bits((x.to_bits() & 0x007f_ffff) | 0x3f80_0000));
            (Self(e), Self(m))
        }
        #[inline(always)]
        pub fn frexp_sqrt2(self) -> (Self, Self) {
            let ix = |x: f32| x.to_bits().wrapping_add(super::FREXP_SQRT2_SHIFT as u32);
            let k = map(self.0, |x| ((ix(x) >> 23) as i32 - 127) as f32);
            let m = map(self.0, |x| f32::from_bits((ix(x) & 0x007f_ffff) + super::SQRT_HALF_BITS as u32));
            (Self(k), Self(m))
        }
        #[inline(always)]
        pub fn hsum(self) -> f32 {
            let [a, b, c, d] = self.0;
            (a + b) + (c + d)
        }
        #[inline(always)]
        pub fn hmax(self) -> f32 {
            let [a, b, c, d] = self.0;
            max_nan(max_nan(a, b), max_nan(c, d))
        }
    }

    impl Mask {
        #[inline(always)]
        pub fn first(n: usize) -> Self {
            Mask([0 < n, 1 < n, 2 < n, 3 < n])
        }
        #[inline(always)]
        pub fn zero_where(self, v: F32x4) -> F32x4 {
            self.select(F32x4::splat(0.0), v)
        }
        #[inline(always)]
        pub fn keep(self, v: F32x4) -> F32x4 {
            self.select(v, F32x4::splat(0.0))
        }
        #[inline(always)]
        pub fn select(self, yes: F32x4, no: F32x4) -> F32x4 {
            let m = self.0;
            F32x4([
                if m[0] { yes.0[0] } else { no.0[0] },
                if m[1] { yes.0[1] } else { no.0[1] },
                if m[2] { yes.0[2] } else { no.0[2] },
                if m[3] { yes.0[3] } else { no.0[3] },
            ])
        }
        /// `select` as a blend of bit patterns, `no ^ ((yes ^ no) & m)` with the lane mask
        /// `m = (0 - lane) & all_ones`: no branch, given `all_ones = !0` that the optimiser
        /// cannot see (it would fold a known all-ones mask back into a float `select`).
        #[inline(always)]
        pub fn blend_bits(self, yes: F32x4, no: F32x4, all_ones: u32) -> F32x4 {
            let lane = |l: usize| {
                let m = 0u32.wrapping_sub(self.0[l] as u32) & all_ones;
                let no = no.0[l].to_bits();
                f32::from_bits(no ^ ((yes.0[l].to_bits() ^ no) & m))
            };
            F32x4([lane(0), lane(1), lane(2), lane(3)])
        }
        #[inline(always)]
        pub fn or(self, o: Self) -> Self {
            let (a, b) = (self.0, o.0);
            Mask([a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3]])
        }
        #[inline(always)]
        pub fn and(self, o: Self) -> Self {
            let (a, b) = (self.0, o.0);
            Mask([a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]])
        }
        #[inline(always)]
        pub fn not(self) -> Self {
            let a = self.0;
            Mask([!a[0], !a[1], !a[2], !a[3]])
        }
        #[inline(always)]
        pub fn all(self) -> bool {
            self.0.iter().all(|&m| m)
        }
    }
}

pub use imp::{F32x4, I32x4, Mask};

/// `pow2i`: `bits(n + 1.5·2^23) = 0x4B40_0000 + n` for integral `|n| < 2^22`, and the
/// exponent field wants `n + 127`.
const POW2I_MAGIC: f32 = 12_582_912.0;
const POW2I_OFFSET: i32 = 0x4B40_0000 - 127;

/// `frexp_sqrt2`: the bits of `√½` (exponent -1, the mantissa bits of `√2`), and the shift
/// that takes the bits of `1` to them.
const SQRT_HALF_BITS: i32 = 0x3f35_04f3;
const FREXP_SQRT2_SHIFT: i32 = 0x3f80_0000 - SQRT_HALF_BITS;

/// True when this build runs the hand-written SIMD128 path.
pub const SIMD: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

/// NaN-propagating max (Rust's `f32::max` ignores NaN; PyTorch's max does not).
#[inline(always)]
pub fn max_nan(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else if b >= a {
        b
    } else {
        f32::NAN
    }
}

impl F32x4 {
    /// Loads the first `n < 4` elements of `s`, filling the other lanes with `pad`.
    #[inline(always)]
    pub fn load_partial(s: &[f32], n: usize, pad: f32) -> Self {
        // Element by element: a variable-length `copy_from_slice` becomes `memory.copy`,
        // which engines run as an out-of-line call (tens of ns, more than the whole tail).
        let mut a = [pad; 4];
        match n {
            0 => {}
            1 => a[0] = s[0],
            2 => (a[0], a[1]) = (s[0], s[1]),
            _ => (a[0], a[1], a[2]) = (s[0], s[1], s[2]),
        }
        Self::from_array(a)
    }
    /// Stores the first `n < 4` lanes into `s`.
    #[inline(always)]
    pub fn store_partial(self, s: &mut [f32], n: usize) {
        let a = self.to_array();
        match n {
            0 => {}
            1 => s[0] = a[0],
            2 => (s[0], s[1]) = (a[0], a[1]),
            _ => (s[0], s[1], s[2]) = (a[0], a[1], a[2]),
        }
    }
    /// Loads the first `n <= 4` elements of `s` (a full load when `n == 4`), `pad` elsewhere.
    #[inline(always)]
    pub fn load_first(s: &[f32], n: usize, pad: f32) -> Self {
        if n == 4 {
            Self::load(s)
        } else {
            Self::load_partial(s, n, pad)
        }
    }
    /// Stores the first `n <= 4` lanes into `s` (a full store when `n == 4`).
    #[inline(always)]
    pub fn store_first(self, s: &mut [f32], n: usize) {
        if n == 4 {
            self.store(s)
        } else {
            self.store_partial(s, n)
        }
    }
    /// Loads `s[i * stride]` for the first `n` lanes, `pad` elsewhere.
    #[inline(always)]
    pub fn gather_strided(s: &[f32], stride: usize, n: usize, pad: f32) -> Self {
        let mut a = [pad; 4];
        for (l, v) in a.iter_mut().enumerate().take(n) {
            *v = s[l * stride];
        }
        Self::from_array(a)
    }
}
