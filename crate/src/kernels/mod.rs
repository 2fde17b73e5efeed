//! Loss kernels: plain functions over slices.
//!
//! Every kernel sees its input as `(outer, classes, inner)`: PyTorch's `(N, C, d1..dK)`
//! with `inner = d1·…·dK` (1 for `(N, C)` and `(C)`). Class `c` of position `(n, s)` is at
//! `n·C·inner + c·inner + s`. Rows (`inner == 1`) are vectorised across classes, spatial
//! inputs across positions, each in its own layout with no transposing copy.
//! Each kernel takes its data as an [`InOut`]: the gradient over the input, or into a buffer
//! of its own.

pub mod binary;
pub mod cross_entropy;
pub mod focal;
mod io;
pub mod nll;
pub mod softmax;

#[cfg(test)]
pub(crate) mod testing;

pub use io::InOut;

/// Shape of a loss input as `(outer, classes, inner)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub outer: usize,
    pub classes: usize,
    pub inner: usize,
}

impl Layout {
    pub fn new(outer: usize, classes: usize, inner: usize) -> Self {
        Self { outer, classes, inner }
    }
    /// Number of loss positions (`outer · inner`).
    pub fn positions(&self) -> usize {
        self.outer * self.inner
    }
    /// Number of input elements.
    pub fn len(&self) -> usize {
        self.outer * self.classes * self.inner
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The gradient flowing into each position's loss, with the reduction folded in
/// (`gradOutput / denominator` for 'mean', `gradOutput` for 'sum').
#[derive(Clone, Copy, Debug)]
pub enum Upstream<'a> {
    /// Forward only: the input is not written.
    None,
    Uniform(f32),
    PerPosition(&'a [f32]),
}

impl Upstream<'_> {
    pub fn wants_grad(&self) -> bool {
        !matches!(self, Upstream::None)
    }
    #[inline(always)]
    pub fn at(&self, position: usize) -> f32 {
        match self {
            Upstream::None => 0.0,
            Upstream::Uniform(g) => *g,
            Upstream::PerPosition(g) => g[position],
        }
    }
}

/// Errors a kernel reports instead of reading out of bounds. The TypeScript layer validates
/// first, so these only guard the zero-copy path against inconsistent buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// A class index outside `0..classes` that is not the ignore index.
    TargetOutOfBounds { position: usize, target: i64 },
    /// A buffer length does not match the layout.
    Length { what: &'static str, expected: usize, actual: usize },
    /// An input outside the loss's domain (BCE: probabilities must lie in [0, 1]).
    InputOutOfRange { position: usize },
}

pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), KernelError> {
    if expected == actual {
        Ok(())
    } else {
        Err(KernelError::Length { what, expected, actual })
    }
}
