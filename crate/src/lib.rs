//! Fused forward+backward loss kernels over f32 slices.
//!
//! Kernels are plain functions over slices (`kernels`), built on a four-lane vector type
//! (`simd`) and vectorised transcendental functions (`math`). The `wasm` module is the thin
//! wasm-bindgen layer the TypeScript package calls.

#![allow(clippy::should_implement_trait)]

pub mod math;
pub mod simd;
pub mod kernels;
pub mod wasm;
