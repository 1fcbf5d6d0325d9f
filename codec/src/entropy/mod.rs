//! Entropy coding: the adaptive binary range coder ([`range`]), the binarization of integers
//! over it ([`intcode`]), the residual coders' common interface ([`residual`]) and the tabled
//! rANS coder ([`tabled`]). Nothing here knows about grids or predictions: the error-bounded
//! stage ([`crate::bounded`]) hands each residual to a [`residual::ResidualCoder`].
//!
//! Public only with the `internals` feature (the fuzz harness drives the coders directly).

pub mod intcode;
pub mod range;
pub mod residual;
pub mod tabled;
