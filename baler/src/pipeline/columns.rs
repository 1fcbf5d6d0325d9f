//! A bound per column: which promise each column of a table gets, by name or index, with a
//! default for the rest. The command (`--column-bounds FILE`), the library and the Python
//! package all read the same specification:
//!
//! ```json
//! {"default": {"mantissa_bits": 10},
//!  "columns": {"Muon_Px": {"pointwise": 1e-3}, "NJet": "lossless", "3": {"absolute": 0.01},
//!              "MET_px": {"relative": 1e-3}}}
//! ```
//!
//! (or the same in TOML). A bound is one of `{"absolute": EPS}`, `{"relative": R}` (R x the
//! column's range), `{"pointwise": R}` (every x within R |x|), `{"mantissa_bits": N}` (the
//! pointwise bound 2^-(N+1), NanoAOD's rounding to N bits) and `"lossless"`. A key is a
//! column name, or a column index when no column has that name.

use crate::pipeline::Bound;
use crate::Error;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Which column a per-column bound is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKey {
    /// By position (0-based).
    Index(usize),
    /// By name (a table's column names).
    Name(String),
}

/// A per-column specification: bounds for some columns and a default for the others.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnBounds {
    /// The bound of columns not named (`None`: the call's own bound).
    pub default: Option<Bound>,
    /// Bounds of particular columns.
    pub columns: Vec<(ColumnKey, Bound)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum BoundSpec {
    Absolute(f64),
    Relative(f64),
    Pointwise(f64),
    MantissaBits(u32),
    Lossless,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    default: Option<BoundSpec>,
    #[serde(default)]
    columns: BTreeMap<String, BoundSpec>,
}

impl BoundSpec {
    fn bound(self) -> Result<Bound, Error> {
        let bound = match self {
            BoundSpec::Absolute(e) => Bound::Absolute(e),
            BoundSpec::Relative(r) => Bound::Relative(r),
            BoundSpec::Pointwise(r) => Bound::Pointwise(r),
            BoundSpec::MantissaBits(n) => Bound::mantissa_bits(n)?,
            BoundSpec::Lossless => Bound::Lossless,
        };
        bound.check()?;
        Ok(bound)
    }
}

impl ColumnBounds {
    /// Reads a specification in JSON, or in TOML when `toml` is set.
    pub fn parse(text: &str, toml: bool) -> Result<ColumnBounds, Error> {
        let spec: SpecFile = if toml {
            ::toml::from_str(text).map_err(|e| Error::Options(format!("column bounds: {e}")))?
        } else {
            serde_json::from_str(text).map_err(|e| Error::Options(format!("column bounds: {e}")))?
        };
        let default = spec.default.map(BoundSpec::bound).transpose()?;
        let columns = spec
            .columns
            .into_iter()
            .map(|(key, spec)| {
                let key = match key.parse::<usize>() {
                    Ok(i) => ColumnKey::Index(i),
                    Err(_) => ColumnKey::Name(key),
                };
                Ok((key, spec.bound()?))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(ColumnBounds { default, columns })
    }

    /// The default bound and the bounds of particular columns, with `given` (a bound flag or
    /// argument) as the default: exactly one of `given` and the specification's `default`
    /// must name it.
    pub fn with_default(
        self,
        given: Option<Bound>,
    ) -> Result<(Bound, Vec<(ColumnKey, Bound)>), Error> {
        match (given, self.default) {
            (Some(b), None) | (None, Some(b)) => Ok((b, self.columns)),
            (Some(_), Some(_)) => Err(Error::Options(
                "give the default bound once: as a bound (flag or argument) or as the column bounds' \"default\""
                    .into(),
            )),
            (None, None) => Err(Error::Options(
                "the column bounds need a default: a bound (--error-bound, error_bound=, ...) or a \"default\" entry"
                    .into(),
            )),
        }
    }

    /// Reads a specification file (`.toml` as TOML, anything else as JSON).
    pub fn read(path: &std::path::Path) -> Result<ColumnBounds, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        ColumnBounds::parse(&text, toml).map_err(|e| match e {
            Error::Options(m) => Error::Options(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}

/// Each column's bound, and whether it was named (else it is the default): `columns` over a
/// table of `n` columns named `names` (maybe none). Unknown names and indices are errors.
pub(crate) fn resolve(
    default: Bound,
    columns: &[(ColumnKey, Bound)],
    names: &[String],
    n: usize,
) -> Result<Vec<(Bound, bool)>, Error> {
    let mut out = vec![(default, false); n];
    for (key, bound) in columns {
        let at = match key {
            ColumnKey::Name(name) => names.iter().position(|m| m == name).ok_or_else(|| {
                Error::Options(format!(
                    "column bounds: no column is named {name:?}{}",
                    if names.is_empty() {
                        " (the data has no column names: give indices)"
                    } else {
                        ""
                    }
                ))
            })?,
            // A name made of digits names its column when one has it; else it is an index.
            ColumnKey::Index(i) => match names.iter().position(|m| *m == i.to_string()) {
                Some(at) => at,
                None if *i < n => *i,
                None => {
                    return Err(Error::Options(format!(
                        "column bounds: column {i} does not exist (the table has {n})"
                    )))
                }
            },
        };
        out[at] = (*bound, true);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_toml_read_the_same_specification() {
        let json = r#"{"default": {"mantissa_bits": 10},
            "columns": {"px": {"pointwise": 1e-3}, "n": "lossless", "2": {"absolute": 0.5}}}"#;
        let toml = "default = { mantissa_bits = 10 }\n[columns]\npx = { pointwise = 1e-3 }\nn = \"lossless\"\n2 = { absolute = 0.5 }\n";
        let a = ColumnBounds::parse(json, false).unwrap();
        assert_eq!(a, ColumnBounds::parse(toml, true).unwrap());
        assert_eq!(a.default, Some(Bound::Pointwise(2f64.powi(-11))));
        let names: Vec<String> = ["px", "n", "e"].map(String::from).to_vec();
        let resolved = resolve(a.default.unwrap(), &a.columns, &names, 3).unwrap();
        assert_eq!(
            resolved,
            vec![
                (Bound::Pointwise(1e-3), true),
                (Bound::Lossless, true),
                (Bound::Absolute(0.5), true)
            ]
        );
    }

    #[test]
    fn bad_specifications_are_one_line_errors() {
        for (text, expected) in [
            (r#"{"columns": {"x": {"pointwise": 2.0}}}"#, "pointwise"),
            (r#"{"columns": {"x": {"mantissa_bits": 0}}}"#, "mantissa"),
            (r#"{"columns": {"x": {"absolute": -1}}}"#, "positive"),
            (r#"{"columns": {"x": {"fuzzy": 1}}}"#, "unknown variant"),
            (r#"{"default": "lossless", "extra": 1}"#, "unknown field"),
            ("not json", "column bounds"),
        ] {
            let message = ColumnBounds::parse(text, false).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
            assert_eq!(message.lines().count(), 1);
        }
        let names: Vec<String> = vec!["a".into()];
        let missing = [(ColumnKey::Name("b".into()), Bound::Lossless)];
        assert!(resolve(Bound::Lossless, &missing, &names, 1).is_err());
        let beyond = [(ColumnKey::Index(1), Bound::Lossless)];
        assert!(resolve(Bound::Lossless, &beyond, &names, 1).is_err());
    }
}
