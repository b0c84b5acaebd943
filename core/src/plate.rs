//! Plate geometry: formats, well addresses and the edge ring.
//!
//! A [`Well`] is a zero-based (row, column) pair. It is produced by a [`PlateFormat`], which checks it
//! against that format's rows and columns; every conversion (names, row-major and column-major 1-based
//! indices) goes through the format, so an address can never silently refer to a well a plate lacks.
//!
//! Names follow the lab convention: rows `A`…`Z`, then `AA`…`AF` on a 1536-well plate; columns from 1.
//! Parsing accepts `A1`, `A01`, `a1` and surrounding blanks; [`Well`]'s `Display` writes the
//! zero-padded form (`A01`) that the legacy data files use.

use core::fmt;

/// A standard SBS plate format.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PlateFormat {
    /// 6 wells, 2 × 3.
    W6,
    /// 24 wells, 4 × 6.
    W24,
    /// 96 wells, 8 × 12.
    W96,
    /// 384 wells, 16 × 24.
    W384,
    /// 1536 wells, 32 × 48.
    W1536,
}

/// A well on a plate: zero-based row and column. Obtain one from a [`PlateFormat`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Well {
    row: u8,
    col: u8,
}

/// Why a well address was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WellError {
    /// The text was empty (or only blanks).
    Empty,
    /// The text does not start with a row letter, or has more than two of them.
    BadRow,
    /// No column number after the row, or something other than digits in it.
    BadColumn,
    /// The row letter is beyond the last row of the format (`Q1` on a 96-well plate).
    RowOutOfRange {
        /// Zero-based row that was asked for.
        row: u16,
        /// Number of rows of the format.
        rows: u8,
    },
    /// The column is 0 or beyond the last column (`A0`, `A25` on a 96-well plate).
    ColumnOutOfRange {
        /// One-based column that was asked for.
        col: u16,
        /// Number of columns of the format.
        cols: u8,
    },
    /// A 1-based index is 0 or beyond the number of wells.
    IndexOutOfRange {
        /// The index that was asked for.
        index: u16,
        /// Number of wells of the format.
        wells: u16,
    },
}

impl fmt::Display for WellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WellError::Empty => f.write_str("empty well address"),
            WellError::BadRow => f.write_str("well address must start with one or two row letters (A, B, …, AF)"),
            WellError::BadColumn => f.write_str("well address needs a column number after the row letters"),
            WellError::RowOutOfRange { row, rows } => {
                write!(f, "row {} does not exist: this plate has rows A to ", RowName(row))?;
                write!(f, "{}", RowName(u16::from(rows) - 1))
            }
            WellError::ColumnOutOfRange { col, cols } => {
                write!(f, "column {col} does not exist: this plate has columns 1 to {cols}")
            }
            WellError::IndexOutOfRange { index, wells } => {
                write!(f, "well index {index} does not exist: this plate has wells 1 to {wells}")
            }
        }
    }
}

impl core::error::Error for WellError {}

/// Writes a zero-based row number as its letters (0 → `A`, 26 → `AA`).
struct RowName(u16);

impl fmt::Display for RowName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let r = self.0;
        if r >= 26 {
            f.write_char(char::from(b'A' + (r / 26 - 1) as u8))?;
        }
        f.write_char(char::from(b'A' + (r % 26) as u8))
    }
}

impl PlateFormat {
    /// Every format, smallest first.
    pub const ALL: [PlateFormat; 5] =
        [PlateFormat::W6, PlateFormat::W24, PlateFormat::W96, PlateFormat::W384, PlateFormat::W1536];

    /// The format with this many wells, if there is one.
    pub const fn from_well_count(wells: u16) -> Option<PlateFormat> {
        match wells {
            6 => Some(PlateFormat::W6),
            24 => Some(PlateFormat::W24),
            96 => Some(PlateFormat::W96),
            384 => Some(PlateFormat::W384),
            1536 => Some(PlateFormat::W1536),
            _ => None,
        }
    }

    /// Number of rows.
    pub const fn rows(self) -> u8 {
        match self {
            PlateFormat::W6 => 2,
            PlateFormat::W24 => 4,
            PlateFormat::W96 => 8,
            PlateFormat::W384 => 16,
            PlateFormat::W1536 => 32,
        }
    }

    /// Number of columns.
    pub const fn cols(self) -> u8 {
        match self {
            PlateFormat::W6 => 3,
            PlateFormat::W24 => 6,
            PlateFormat::W96 => 12,
            PlateFormat::W384 => 24,
            PlateFormat::W1536 => 48,
        }
    }

    /// Number of wells.
    pub const fn wells(self) -> u16 {
        self.rows() as u16 * self.cols() as u16
    }

    /// The well at zero-based `row` and `col`.
    pub fn well(self, row: u8, col: u8) -> Result<Well, WellError> {
        if row >= self.rows() {
            return Err(WellError::RowOutOfRange { row: row.into(), rows: self.rows() });
        }
        if col >= self.cols() {
            return Err(WellError::ColumnOutOfRange { col: u16::from(col) + 1, cols: self.cols() });
        }
        Ok(Well { row, col })
    }

    /// Parses a well name: one or two row letters (either case) and a 1-based column, optionally
    /// zero-padded: `A1`, `A01`, `a1`, `AF48`. Blanks around the name are ignored.
    pub fn parse_well(self, text: &str) -> Result<Well, WellError> {
        let bytes = text.trim().as_bytes();
        if bytes.is_empty() {
            return Err(WellError::Empty);
        }
        let letters = bytes.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let row: u16 = match letters {
            1 => u16::from(bytes[0].to_ascii_uppercase() - b'A'),
            2 => {
                let hi = u16::from(bytes[0].to_ascii_uppercase() - b'A') + 1;
                hi * 26 + u16::from(bytes[1].to_ascii_uppercase() - b'A')
            }
            _ => return Err(WellError::BadRow),
        };
        let digits = &bytes[letters..];
        if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(WellError::BadColumn);
        }
        let col = digits.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if row >= u16::from(self.rows()) {
            return Err(WellError::RowOutOfRange { row, rows: self.rows() });
        }
        if col == 0 || col > u16::from(self.cols()) {
            return Err(WellError::ColumnOutOfRange { col, cols: self.cols() });
        }
        Ok(Well { row: row as u8, col: (col - 1) as u8 })
    }

    fn check(self, index: u16) -> Result<u16, WellError> {
        if index == 0 || index > self.wells() {
            Err(WellError::IndexOutOfRange { index, wells: self.wells() })
        } else {
            Ok(index - 1)
        }
    }

    /// The well with this 1-based row-major index (A1 = 1, A2 = 2, …).
    pub fn from_row_major(self, index: u16) -> Result<Well, WellError> {
        let i = self.check(index)?;
        let cols = u16::from(self.cols());
        Ok(Well { row: (i / cols) as u8, col: (i % cols) as u8 })
    }

    /// The well with this 1-based column-major index (A1 = 1, B1 = 2, …), as Tecan worklists count.
    pub fn from_col_major(self, index: u16) -> Result<Well, WellError> {
        let i = self.check(index)?;
        let rows = u16::from(self.rows());
        Ok(Well { row: (i % rows) as u8, col: (i / rows) as u8 })
    }

    /// 1-based row-major index of a well of this format.
    pub fn row_major(self, well: Well) -> u16 {
        u16::from(well.row) * u16::from(self.cols()) + u16::from(well.col) + 1
    }

    /// 1-based column-major index of a well of this format.
    pub fn col_major(self, well: Well) -> u16 {
        u16::from(well.col) * u16::from(self.rows()) + u16::from(well.row) + 1
    }

    /// Whether the well is in the outermost ring of this format: first or last row, first or last column.
    pub fn is_edge(self, well: Well) -> bool {
        well.row == 0 || well.col == 0 || well.row + 1 == self.rows() || well.col + 1 == self.cols()
    }

    /// Whether the well exists on this format.
    pub fn contains(self, well: Well) -> bool {
        well.row < self.rows() && well.col < self.cols()
    }

    /// Every well of the format in row-major order.
    pub fn wells_iter(self) -> impl Iterator<Item = Well> {
        let cols = self.cols();
        (0..self.wells()).map(move |i| Well { row: (i / u16::from(cols)) as u8, col: (i % u16::from(cols)) as u8 })
    }
}

impl Well {
    /// Zero-based row (A = 0).
    pub const fn row(self) -> u8 {
        self.row
    }

    /// Zero-based column (column 1 = 0).
    pub const fn col(self) -> u8 {
        self.col
    }

    /// One-based column number as printed in the name.
    pub const fn column_number(self) -> u8 {
        self.col + 1
    }
}

impl fmt::Display for Well {
    /// The zero-padded name, `A01`, `P24`, `AF48`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:02}", RowName(self.row.into()), self.col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    fn name(w: Well) -> heapless::String<8> {
        let mut s = heapless::String::new();
        write!(s, "{w}").unwrap();
        s
    }

    #[test]
    fn geometry() {
        let expect = [(6, 2, 3), (24, 4, 6), (96, 8, 12), (384, 16, 24), (1536, 32, 48)];
        for (f, (n, r, c)) in PlateFormat::ALL.iter().zip(expect) {
            assert_eq!((f.wells(), f.rows(), f.cols()), (n, r, c));
            assert_eq!(PlateFormat::from_well_count(n), Some(*f));
        }
        assert_eq!(PlateFormat::from_well_count(48), None);
    }

    #[test]
    fn parse_forms() {
        let p = PlateFormat::W96;
        let a1 = p.well(0, 0).unwrap();
        for text in ["A1", "A01", "a1", " a01 ", "A001"] {
            assert_eq!(p.parse_well(text), Ok(a1), "{text}");
        }
        assert_eq!(p.parse_well("H12"), p.well(7, 11));
        assert_eq!(p.parse_well("B06"), p.well(1, 5));
        assert_eq!(PlateFormat::W1536.parse_well("AF48"), PlateFormat::W1536.well(31, 47));
        assert_eq!(PlateFormat::W1536.parse_well("AA1"), PlateFormat::W1536.well(26, 0));
        assert_eq!(PlateFormat::W1536.parse_well("Z1"), PlateFormat::W1536.well(25, 0));
    }

    #[test]
    fn parse_errors() {
        let p = PlateFormat::W96;
        assert_eq!(p.parse_well("Q1"), Err(WellError::RowOutOfRange { row: 16, rows: 8 }));
        assert_eq!(p.parse_well("I1"), Err(WellError::RowOutOfRange { row: 8, rows: 8 }));
        assert_eq!(p.parse_well("A0"), Err(WellError::ColumnOutOfRange { col: 0, cols: 12 }));
        assert_eq!(p.parse_well("A13"), Err(WellError::ColumnOutOfRange { col: 13, cols: 12 }));
        assert_eq!(p.parse_well("A25"), Err(WellError::ColumnOutOfRange { col: 25, cols: 12 }));
        assert_eq!(p.parse_well(""), Err(WellError::Empty));
        assert_eq!(p.parse_well("   "), Err(WellError::Empty));
        assert_eq!(p.parse_well("1A"), Err(WellError::BadRow));
        assert_eq!(p.parse_well("ABC1"), Err(WellError::BadRow));
        assert_eq!(p.parse_well("A"), Err(WellError::BadColumn));
        assert_eq!(p.parse_well("A1x"), Err(WellError::BadColumn));
        assert_eq!(p.parse_well("A-1"), Err(WellError::BadColumn));
        assert_eq!(p.parse_well("A99999"), Err(WellError::BadColumn));
        assert_eq!(p.parse_well("AA1"), Err(WellError::RowOutOfRange { row: 26, rows: 8 }));
        assert_eq!(PlateFormat::W384.parse_well("Q1"), Err(WellError::RowOutOfRange { row: 16, rows: 16 }));
        assert!(PlateFormat::W384.parse_well("A24").is_ok());
        assert!(PlateFormat::W384.parse_well("P24").is_ok());
    }

    #[test]
    fn error_messages() {
        let mut s = heapless::String::<96>::new();
        write!(s, "{}", PlateFormat::W96.parse_well("Q1").unwrap_err()).unwrap();
        assert_eq!(s, "row Q does not exist: this plate has rows A to H");
        s.clear();
        write!(s, "{}", PlateFormat::W96.parse_well("A25").unwrap_err()).unwrap();
        assert_eq!(s, "column 25 does not exist: this plate has columns 1 to 12");
        s.clear();
        write!(s, "{}", PlateFormat::W1536.from_row_major(0).unwrap_err()).unwrap();
        assert_eq!(s, "well index 0 does not exist: this plate has wells 1 to 1536");
        s.clear();
        write!(s, "{}", PlateFormat::W1536.well(40, 0).unwrap_err()).unwrap();
        assert_eq!(s, "row AO does not exist: this plate has rows A to AF");
    }

    #[test]
    fn names() {
        assert_eq!(name(PlateFormat::W96.well(0, 0).unwrap()), "A01");
        assert_eq!(name(PlateFormat::W96.well(7, 11).unwrap()), "H12");
        assert_eq!(name(PlateFormat::W384.well(15, 23).unwrap()), "P24");
        assert_eq!(name(PlateFormat::W1536.well(31, 47).unwrap()), "AF48");
        // Every name parses back to its well, on every format.
        for f in PlateFormat::ALL {
            for w in f.wells_iter() {
                assert_eq!(f.parse_well(&name(w)), Ok(w));
            }
        }
    }

    #[test]
    fn indices() {
        let p = PlateFormat::W96;
        // Column-major, as Tecan counts: A1 = 1, B1 = 2, H1 = 8, A2 = 9, H12 = 96.
        assert_eq!(p.from_col_major(1), p.parse_well("A1"));
        assert_eq!(p.from_col_major(2), p.parse_well("B1"));
        assert_eq!(p.from_col_major(8), p.parse_well("H1"));
        assert_eq!(p.from_col_major(9), p.parse_well("A2"));
        assert_eq!(p.from_col_major(96), p.parse_well("H12"));
        // Row-major: A1 = 1, A12 = 12, B1 = 13.
        assert_eq!(p.from_row_major(12), p.parse_well("A12"));
        assert_eq!(p.from_row_major(13), p.parse_well("B1"));
        assert_eq!(p.from_row_major(97), Err(WellError::IndexOutOfRange { index: 97, wells: 96 }));
        assert_eq!(p.from_col_major(0), Err(WellError::IndexOutOfRange { index: 0, wells: 96 }));
        for f in PlateFormat::ALL {
            for i in 1..=f.wells() {
                assert_eq!(f.row_major(f.from_row_major(i).unwrap()), i);
                assert_eq!(f.col_major(f.from_col_major(i).unwrap()), i);
            }
        }
    }

    #[test]
    fn edges_every_format() {
        let p384 = PlateFormat::W384;
        // H12 and B12 are where the legacy code's 96-well ring wrongly put the edge of a 384-well plate.
        // A12 is in row A, so it is on the ring (MODEL.md §2: row A, the last row, column 1, the last column).
        let cases =
            [("P24", true), ("A24", true), ("A12", true), ("H12", false), ("B12", false), ("P1", true), ("O23", false)];
        for (name, edge) in cases {
            assert_eq!(p384.is_edge(p384.parse_well(name).unwrap()), edge, "{name}");
        }
        let p96 = PlateFormat::W96;
        for (name, edge) in [("A01", true), ("H12", true), ("A12", true), ("B06", false), ("G11", false), ("H5", true)]
        {
            assert_eq!(p96.is_edge(p96.parse_well(name).unwrap()), edge, "{name}");
        }
        // The ring has 2·cols + 2·rows − 4 wells; on a 6- or 24-well plate, that can be every well.
        for (f, ring) in PlateFormat::ALL.iter().zip([6, 16, 36, 76, 156]) {
            assert_eq!(f.wells_iter().filter(|w| f.is_edge(*w)).count(), ring, "{f:?}");
        }
        let p1536 = PlateFormat::W1536;
        assert!(p1536.is_edge(p1536.parse_well("AF20").unwrap()));
        assert!(!p1536.is_edge(p1536.parse_well("H12").unwrap()));
        assert!(!p1536.is_edge(p1536.parse_well("AE47").unwrap()));
    }
}
