//! Predictors fitted to the data before it is coded: the linear field predictor
//! ([`learned`]), the interpolation plan of fields ([`interpolation`]) and the column
//! relations of tables ([`relations`]). The compress driver
//! judges each against the model-free path on a sample, with the real coder.

pub mod interpolation;
pub mod learned;
pub mod relations;
