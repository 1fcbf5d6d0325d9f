//! Relations between table columns: a column predicted as a function of earlier columns of the
//! same row, as decoded (energy and transverse momentum as norms of momentum components, an
//! angle from two of them). The functions are IEEE arithmetic and `libm`, which is the same
//! code, and so the same bits, on every platform.

use crate::error::{Error, Result};

/// How a column follows from earlier ones (`a`, `b`, `c` are their decoded values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// `sqrt(a^2 + b^2)`: a transverse momentum from px and py.
    Norm2,
    /// `sqrt(a^2 + b^2 + c^2)`: a momentum's magnitude (an energy, for light particles).
    Norm3,
    /// `atan2(b, a)`: an azimuthal angle from px and py.
    Azimuth,
    /// `asinh(c / sqrt(a^2 + b^2))`: a pseudorapidity from px, py and pz.
    Pseudorapidity,
    /// `a`: the value of an earlier column (a position recorded twice, a secondary particle
    /// starting where its parent ends), so only the difference is coded.
    Copy,
}

impl RelationKind {
    /// The code stored in a column's grid entry (0 means no relation).
    pub fn code(self) -> u8 {
        match self {
            RelationKind::Norm2 => 1,
            RelationKind::Norm3 => 2,
            RelationKind::Azimuth => 3,
            RelationKind::Pseudorapidity => 4,
            RelationKind::Copy => 5,
        }
    }

    /// The kind stored as `code`; `None` for 0 (no relation).
    pub fn from_code(code: u8) -> Result<Option<Self>> {
        Ok(Some(match code {
            0 => return Ok(None),
            1 => RelationKind::Norm2,
            2 => RelationKind::Norm3,
            3 => RelationKind::Azimuth,
            4 => RelationKind::Pseudorapidity,
            5 => RelationKind::Copy,
            _ => return Err(Error::Invalid("column relation kind")),
        }))
    }

    /// Columns the relation reads.
    pub fn arity(self) -> usize {
        match self {
            RelationKind::Copy => 1,
            RelationKind::Norm2 | RelationKind::Azimuth => 2,
            RelationKind::Norm3 | RelationKind::Pseudorapidity => 3,
        }
    }

    /// Every kind, in code order.
    pub const ALL: [RelationKind; 5] = [
        RelationKind::Norm2,
        RelationKind::Norm3,
        RelationKind::Azimuth,
        RelationKind::Pseudorapidity,
        RelationKind::Copy,
    ];
}

/// Farthest an argument column may lie before the predicted one (its distance is one byte).
pub const MAX_RELATION_DISTANCE: usize = 255;

/// A column's relation: its kind and the earlier columns it reads (unused ones are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relation {
    /// The function.
    pub kind: RelationKind,
    /// Indices of the argument columns, in `a`, `b`, `c` order.
    pub columns: [u32; 3],
}

impl Relation {
    /// The prediction for a row whose earlier columns are `decoded` (NaN where an argument is
    /// missing, which the caller treats as no prediction).
    pub fn eval(&self, decoded: &[f64]) -> f64 {
        let arg = |j: usize| {
            decoded
                .get(self.columns[j] as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let (a, b) = (arg(0), arg(1));
        match self.kind {
            RelationKind::Norm2 => libm::sqrt(a * a + b * b),
            RelationKind::Norm3 => {
                let c = arg(2);
                libm::sqrt(a * a + b * b + c * c)
            }
            RelationKind::Azimuth => libm::atan2(b, a),
            RelationKind::Pseudorapidity => libm::asinh(arg(2) / libm::sqrt(a * a + b * b)),
            RelationKind::Copy => a,
        }
    }

    /// The four bytes of column `i`'s grid entry: kind, then each argument's distance back
    /// from `i` (1..=[`MAX_RELATION_DISTANCE`]; 0 for unused arguments).
    pub fn to_bytes(relation: Option<&Relation>, i: usize) -> Result<[u8; 4]> {
        let Some(r) = relation else {
            return Ok([0; 4]);
        };
        let mut bytes = [r.kind.code(), 0, 0, 0];
        for (slot, &column) in bytes[1..=r.kind.arity()].iter_mut().zip(&r.columns) {
            let distance = i
                .checked_sub(column as usize)
                .filter(|d| (1..=MAX_RELATION_DISTANCE).contains(d))
                .ok_or(Error::Invalid(
                    "a relation reads an earlier column, at most 255 back",
                ))?;
            *slot = distance as u8;
        }
        Ok(bytes)
    }

    /// Reads the four bytes of column `i`'s grid entry (validated: arguments are earlier
    /// columns; unused distances are 0).
    pub fn from_bytes(bytes: [u8; 4], i: usize) -> Result<Option<Relation>> {
        let Some(kind) = RelationKind::from_code(bytes[0])? else {
            return if bytes == [0; 4] {
                Ok(None)
            } else {
                Err(Error::Invalid("column relation bytes"))
            };
        };
        let mut columns = [0u32; 3];
        for (k, &distance) in bytes[1..].iter().enumerate() {
            let used = k < kind.arity();
            let column = i.checked_sub(usize::from(distance));
            columns[k] = match (used, distance, column) {
                (true, 1.., Some(c)) => c as u32,
                (false, 0, _) => 0,
                _ => return Err(Error::Invalid("column relation argument")),
            };
        }
        Ok(Some(Relation { kind, columns }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_round_trip_through_their_bytes_and_refuse_later_columns() {
        for kind in RelationKind::ALL {
            let columns = [3, 7, 9];
            let r = Relation {
                kind,
                columns: core::array::from_fn(|k| if k < kind.arity() { columns[k] } else { 0 }),
            };
            let bytes = Relation::to_bytes(Some(&r), 10).unwrap();
            assert_eq!(Relation::from_bytes(bytes, 10).unwrap(), Some(r));
            // The same bytes at column 5 would read column 5 - 7 < 0.
            assert!(Relation::from_bytes(bytes, 5).is_err());
        }
        let later = Relation {
            kind: RelationKind::Norm2,
            columns: [3, 10, 0],
        };
        assert!(Relation::to_bytes(Some(&later), 10).is_err());
        assert_eq!(Relation::from_bytes([0; 4], 0).unwrap(), None);
        for bad in [
            [6, 1, 1, 1],
            [5, 1, 1, 0],
            [5, 0, 0, 0],
            [1, 0, 1, 0],
            [1, 1, 1, 1],
            [0, 1, 0, 0],
        ] {
            assert!(Relation::from_bytes(bad, 10).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relations_compute_the_physics() {
        let row = [3.0, 4.0, 12.0];
        let r = |kind| Relation {
            kind,
            columns: [0, 1, 2],
        };
        assert_eq!(r(RelationKind::Norm2).eval(&row), 5.0);
        assert_eq!(r(RelationKind::Norm3).eval(&row), 13.0);
        assert!((r(RelationKind::Azimuth).eval(&row) - (4.0f64).atan2(3.0)).abs() < 1e-15);
        assert!(
            (r(RelationKind::Pseudorapidity).eval(&row) - (12.0f64 / 5.0).asinh()).abs() < 1e-15
        );
        assert_eq!(r(RelationKind::Copy).eval(&row), 3.0);
        assert!(r(RelationKind::Norm3).eval(&row[..2]).is_nan());
    }
}
