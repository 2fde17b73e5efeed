//! The wasm-bindgen layer: thin exports over the kernels, taking offsets into wasm memory.
//!
//! The TypeScript package owns the buffers (allocated with [`alloc`], filled through views of
//! `memory`), so a call moves no data through wasm-bindgen glue and allocates nothing.
//! Kernel errors do not trap: the export returns NaN and [`last_error`] describes why.

use crate::kernels::binary::{self, Broadcast};
use crate::kernels::cross_entropy::{self, Options, Target};
use crate::kernels::focal::{self, Gradient};
use crate::kernels::softmax::IndexTargets;
use crate::kernels::{InOut, KernelError, Layout, Upstream};
use core::cell::Cell;
use wasm_bindgen::prelude::*;

thread_local! {
    static LAST_ERROR: Cell<[f64; 4]> = const { Cell::new([0.0; 4]) };
}

fn report(e: KernelError) -> f64 {
    let code = match e {
        KernelError::TargetOutOfBounds { position, target } => [1.0, position as f64, target as f64, 0.0],
        KernelError::Length { expected, actual, .. } => [2.0, expected as f64, actual as f64, 0.0],
        KernelError::InputOutOfRange { position } => [3.0, position as f64, 0.0, 0.0],
    };
    LAST_ERROR.with(|c| c.set(code));
    f64::NAN
}

/// Field `i` of the last kernel error: 0 the code (0 none, 1 target out of bounds, 2 length
/// mismatch, 3 input out of range), then 1 position / expected length, 2 target value /
/// actual length.
#[wasm_bindgen]
pub fn last_error(i: u32) -> f64 {
    LAST_ERROR.with(|c| c.get()).get(i as usize).copied().unwrap_or(0.0)
}

/// Clears the last kernel error.
#[wasm_bindgen]
pub fn clear_error() {
    LAST_ERROR.with(|c| c.set([0.0; 4]));
}

/// True in the SIMD128 build.
#[wasm_bindgen]
pub fn simd() -> bool {
    crate::simd::SIMD
}

/// Allocates `bytes` (16-byte aligned) in wasm memory; 0 when memory cannot grow.
#[wasm_bindgen]
pub fn alloc(bytes: usize) -> usize {
    let Ok(layout) = std::alloc::Layout::from_size_align(bytes.max(16), 16) else {
        return 0;
    };
    // SAFETY: the layout has a non-zero size.
    unsafe { std::alloc::alloc(layout) as usize }
}

/// Frees a block returned by [`alloc`] with the same `bytes`.
///
/// # Safety
/// `ptr` must come from `alloc(bytes)` and not be freed twice (the TypeScript owner tracks it).
#[wasm_bindgen]
pub unsafe fn dealloc(ptr: usize, bytes: usize) {
    if ptr != 0 {
        let layout = std::alloc::Layout::from_size_align_unchecked(bytes.max(16), 16);
        std::alloc::dealloc(ptr as *mut u8, layout);
    }
}

/// # Safety
/// `ptr` is 0 or points to `len` values that stay valid and unaliased by a mutable slice
/// for the call (the caller passes distinct allocations).
unsafe fn slice<'a, T>(ptr: usize, len: usize) -> Option<&'a [T]> {
    (ptr != 0).then(|| core::slice::from_raw_parts(ptr as *const T, len))
}

/// # Safety
/// As [`slice`], and nothing else refers to the values during the call.
unsafe fn slice_mut<'a, T>(ptr: usize, len: usize) -> Option<&'a mut [T]> {
    (ptr != 0).then(|| core::slice::from_raw_parts_mut(ptr as *mut T, len))
}

/// The kernel's data: `len` inputs at `data`, their gradient written over them (`grad` 0 or
/// `data`: in place; forward-only calls pass 0) or at `grad` (out of place).
///
/// # Safety
/// As [`slice_mut`] for `data` when in place, else as [`slice`] for `data` and [`slice_mut`]
/// for `grad` (two distinct buffers).
unsafe fn in_out<'a>(data: usize, grad: usize, len: usize) -> InOut<'a> {
    if grad == 0 || grad == data {
        InOut::InPlace(slice_mut(data, len).unwrap_or_default())
    } else {
        InOut::OutOfPlace { input: slice(data, len).unwrap_or_default(), grad: slice_mut(grad, len).unwrap_or_default() }
    }
}

/// The upstream gradient: mode 0 none (forward only), 1 uniform `value`, 2 one per position at `ptr`.
///
/// # Safety
/// As [`slice`].
unsafe fn upstream<'a>(mode: u32, value: f32, ptr: usize, positions: usize) -> Upstream<'a> {
    match mode {
        1 => Upstream::Uniform(value),
        2 => slice(ptr, positions).map_or(Upstream::None, Upstream::PerPosition),
        _ => Upstream::None,
    }
}

/// Cross-entropy over `(outer, classes, inner)` logits at `data`, the gradient (when
/// `grad_mode` is not 0) written as [`in_out`] says. `prob_target` selects `f32`
/// probabilities at `target` instead of `i32` class indices. `weight`, `grad_out` and
/// `losses` may be 0. Returns `acc + Σ loss`.
///
/// # Safety
/// Pointers are 0 or valid for the lengths the layout implies, and distinct (`grad` may be `data`).
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub unsafe fn cross_entropy(
    outer: usize,
    classes: usize,
    inner: usize,
    data: usize,
    grad: usize,
    prob_target: bool,
    target: usize,
    ignore_index: i32,
    weight: usize,
    label_smoothing: f32,
    grad_mode: u32,
    grad_value: f32,
    grad_out: usize,
    losses: usize,
    acc: f64,
) -> f64 {
    let layout = Layout::new(outer, classes, inner);
    let positions = layout.positions();
    let data = in_out(data, grad, layout.len());
    let target = if prob_target {
        Target::Prob(slice(target, layout.len()).unwrap_or_default())
    } else {
        Target::Index(IndexTargets { classes: slice(target, positions).unwrap_or_default(), ignore_index })
    };
    let options = Options { weight: slice(weight, classes), label_smoothing };
    let up = upstream(grad_mode, grad_value, grad_out, positions);
    cross_entropy::cross_entropy(layout, data, target, options, up, slice_mut(losses, positions), acc)
        .unwrap_or_else(report)
}

/// Softmax focal loss over `(outer, classes, inner)` logits at `data` (the gradient as for
/// [`cross_entropy`]), `i32` class indices at `target`. `alpha`, `weight` (C values each),
/// `grad_out` and `losses` may be 0. Returns `acc + Σ loss`.
///
/// # Safety
/// As [`cross_entropy`].
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub unsafe fn focal(
    outer: usize,
    classes: usize,
    inner: usize,
    data: usize,
    grad: usize,
    target: usize,
    ignore_index: i32,
    alpha: usize,
    weight: usize,
    gamma: f64,
    detached: bool,
    grad_mode: u32,
    grad_value: f32,
    grad_out: usize,
    losses: usize,
    acc: f64,
) -> f64 {
    let layout = Layout::new(outer, classes, inner);
    let positions = layout.positions();
    let data = in_out(data, grad, layout.len());
    let targets = IndexTargets { classes: slice(target, positions).unwrap_or_default(), ignore_index };
    let options = focal::Options {
        gamma,
        alpha: slice(alpha, classes),
        weight: slice(weight, classes),
        gradient: if detached { Gradient::Detached } else { Gradient::Full },
    };
    let up = upstream(grad_mode, grad_value, grad_out, positions);
    focal::focal(layout, data, targets, options, up, slice_mut(losses, positions), acc).unwrap_or_else(report)
}

/// A broadcast weight at `ptr` (`len` values, element `i` of the call gets
/// `values[((offset + i) / repeat) % len]`); None when `ptr` is 0.
///
/// # Safety
/// As [`slice`].
unsafe fn broadcast<'a>(ptr: usize, len: usize, repeat: usize, offset: usize) -> Option<Broadcast<'a>> {
    slice(ptr, len).map(|values| Broadcast { values, repeat, offset })
}

/// BCE with logits over `n` elements at `data` (the gradient, when `grad_mode` is not 0,
/// written as [`in_out`] says), `f32` targets at `target`; `weight` and `pos_weight` are
/// broadcasts (see [`broadcast`]) or 0. Returns `acc + Σ loss`.
///
/// # Safety
/// Pointers are 0 or valid for the lengths given, and distinct (`grad` may be `data`).
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub unsafe fn bce_with_logits(
    n: usize,
    data: usize,
    grad: usize,
    target: usize,
    weight: usize,
    weight_len: usize,
    weight_repeat: usize,
    weight_offset: usize,
    pos_weight: usize,
    pos_weight_len: usize,
    pos_weight_repeat: usize,
    pos_weight_offset: usize,
    grad_mode: u32,
    grad_value: f32,
    grad_out: usize,
    losses: usize,
    acc: f64,
) -> f64 {
    let data = in_out(data, grad, n);
    let target = slice(target, n).unwrap_or_default();
    let w = broadcast(weight, weight_len, weight_repeat, weight_offset);
    let pw = broadcast(pos_weight, pos_weight_len, pos_weight_repeat, pos_weight_offset);
    let up = upstream(grad_mode, grad_value, grad_out, n);
    binary::bce_with_logits(data, target, w, pw, up, slice_mut(losses, n), acc).unwrap_or_else(report)
}

/// BCE on probabilities over `n` elements at `data` (see [`bce_with_logits`]). An input
/// outside [0, 1] is error 3 with its position.
///
/// # Safety
/// As [`bce_with_logits`].
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub unsafe fn bce(
    n: usize,
    data: usize,
    grad: usize,
    target: usize,
    weight: usize,
    weight_len: usize,
    weight_repeat: usize,
    weight_offset: usize,
    grad_mode: u32,
    grad_value: f32,
    grad_out: usize,
    losses: usize,
    acc: f64,
) -> f64 {
    let data = in_out(data, grad, n);
    let target = slice(target, n).unwrap_or_default();
    let w = broadcast(weight, weight_len, weight_repeat, weight_offset);
    let up = upstream(grad_mode, grad_value, grad_out, n);
    binary::bce(data, target, w, up, slice_mut(losses, n), acc).unwrap_or_else(report)
}

/// torchvision's sigmoid focal loss over `n` elements at `data` (see [`bce_with_logits`]);
/// `alpha < 0` disables the alpha weighting.
///
/// # Safety
/// As [`bce_with_logits`].
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub unsafe fn sigmoid_focal(
    n: usize,
    data: usize,
    grad: usize,
    target: usize,
    alpha: f32,
    gamma: f32,
    grad_mode: u32,
    grad_value: f32,
    grad_out: usize,
    losses: usize,
    acc: f64,
) -> f64 {
    let data = in_out(data, grad, n);
    let target = slice(target, n).unwrap_or_default();
    let up = upstream(grad_mode, grad_value, grad_out, n);
    binary::sigmoid_focal(data, target, alpha, gamma, up, slice_mut(losses, n), acc).unwrap_or_else(report)
}
