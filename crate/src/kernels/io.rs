//! Where a kernel reads its input and writes the gradient: in place (one slice, the gradient
//! over the input) or out of place (the input read from one slice, the gradient written to
//! another, so a caller with both in wasm memory copies neither).
//!
//! Every pass reads the input until the gradient buffer holds what it needs (a softmax's
//! stored exponentials), then reads that: out of place makes the same passes as in place.
//! Per-position code takes the [`InOut`] as it is (a `match` per row or tile); the loops
//! that read the input and write the gradient element by element are generic over [`Io`],
//! compiled once per mode ([`with_io`]): in place they are the code a plain `&mut [f32]`
//! gives.

use super::{check_len, KernelError};
use core::ops::Range;

/// A kernel's data, as callers pass it.
pub enum InOut<'a> {
    /// The input, overwritten by the gradient when one is wanted.
    InPlace(&'a mut [f32]),
    /// The input, and the buffer of the same length that receives the gradient (left alone
    /// by a forward-only call).
    OutOfPlace { input: &'a [f32], grad: &'a mut [f32] },
}

impl InOut<'_> {
    pub fn input(&self) -> &[f32] {
        match self {
            InOut::InPlace(x) => x,
            InOut::OutOfPlace { input, .. } => input,
        }
    }

    pub fn grad(&mut self) -> &mut [f32] {
        match self {
            InOut::InPlace(x) => x,
            InOut::OutOfPlace { grad, .. } => grad,
        }
    }

    pub fn len(&self) -> usize {
        self.input().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements `range` of both buffers.
    pub fn sub(&mut self, range: Range<usize>) -> InOut<'_> {
        match self {
            InOut::InPlace(x) => InOut::InPlace(&mut x[range]),
            InOut::OutOfPlace { input, grad } => InOut::OutOfPlace { input: &input[range.clone()], grad: &mut grad[range] },
        }
    }

    /// The input's length, once the gradient buffer is checked to have it too.
    pub(crate) fn checked_len(&self) -> Result<usize, KernelError> {
        if let InOut::OutOfPlace { input, grad } = self {
            check_len("gradInput", input.len(), grad.len())?;
        }
        Ok(self.input().len())
    }
}

/// Calls `$body` with `$io` bound to the [`Io`] of `$data` (an [`InOut`] whose lengths were
/// checked by [`InOut::checked_len`]) and the constant `$grad` to `$wants_grad`: one `match`
/// per call, outside the loops. A forward-only call gets the input alone, so that only the
/// passes that write are compiled once per mode.
macro_rules! with_io {
    ($data:expr, $wants_grad:expr, |$io:ident, $grad:ident| $body:expr) => {
        match ($wants_grad, $data) {
            (false, data) => {
                const $grad: bool = false;
                let $io = data.input();
                $body
            }
            (true, $crate::kernels::io::InOut::InPlace(x)) => {
                const $grad: bool = true;
                let $io = x;
                $body
            }
            (true, $crate::kernels::io::InOut::OutOfPlace { input, grad }) => {
                const $grad: bool = true;
                let $io = $crate::kernels::io::Split { input, grad };
                $body
            }
        }
    };
}
pub(crate) use with_io;

/// The input and the gradient of a range of elements (the same indices in both).
pub(crate) trait Io: Sized {
    fn len(&self) -> usize;
    fn input(&self) -> &[f32];
    fn grad(&mut self) -> &mut [f32];
    fn split_at(self, mid: usize) -> (Self, Self);
    /// Consecutive pieces of `n` elements, and the remainder (as `slice::chunks_exact`).
    fn chunks_exact(self, n: usize) -> (impl Iterator<Item = Self>, Self);
}

/// In place.
impl Io for &mut [f32] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }
    #[inline(always)]
    fn input(&self) -> &[f32] {
        self
    }
    #[inline(always)]
    fn grad(&mut self) -> &mut [f32] {
        self
    }
    #[inline(always)]
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
    #[inline(always)]
    fn chunks_exact(self, n: usize) -> (impl Iterator<Item = Self>, Self) {
        let full = <[f32]>::len(self) / n * n;
        let (whole, rest) = self.split_at_mut(full);
        (whole.chunks_exact_mut(n), rest)
    }
}

/// Forward only: the input alone. Nothing is written when no gradient is wanted, so the
/// passes never ask for the gradient (they do so under `if GRAD` only).
impl Io for &[f32] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }
    #[inline(always)]
    fn input(&self) -> &[f32] {
        self
    }
    fn grad(&mut self) -> &mut [f32] {
        unreachable!("a forward-only pass wrote a gradient")
    }
    #[inline(always)]
    fn split_at(self, mid: usize) -> (Self, Self) {
        <[f32]>::split_at(self, mid)
    }
    #[inline(always)]
    fn chunks_exact(self, n: usize) -> (impl Iterator<Item = Self>, Self) {
        let full = <[f32]>::len(self) / n * n;
        let (whole, rest) = <[f32]>::split_at(self, full);
        (whole.chunks_exact(n), rest)
    }
}

/// Out of place: `input` and `grad` have the same length.
pub(crate) struct Split<'a> {
    pub input: &'a [f32],
    pub grad: &'a mut [f32],
}

impl Io for Split<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.input.len()
    }
    #[inline(always)]
    fn input(&self) -> &[f32] {
        self.input
    }
    #[inline(always)]
    fn grad(&mut self) -> &mut [f32] {
        self.grad
    }
    #[inline(always)]
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.input.split_at(mid);
        let (ga, gb) = self.grad.split_at_mut(mid);
        (Split { input: a, grad: ga }, Split { input: b, grad: gb })
    }
    #[inline(always)]
    fn chunks_exact(self, n: usize) -> (impl Iterator<Item = Self>, Self) {
        let full = self.input.len() / n * n;
        let (whole, rest) = self.split_at(full);
        let pieces = whole.input.chunks_exact(n).zip(whole.grad.chunks_exact_mut(n));
        (pieces.map(|(input, grad)| Split { input, grad }), rest)
    }
}
