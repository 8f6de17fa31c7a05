//! CSV for the school's safeguarding record system (CPOMS and MyConcern import CSV).
//!
//! RFC 4180 quoting, CRLF line ends, and protection against formula injection: a cell that a
//! spreadsheet would run (starting with `=`, `+`, `-`, `@`, tab or CR) is prefixed with an apostrophe,
//! because a pupil can type such text and the export will be opened in Excel.

/// Writes rows of cells as CSV.
#[derive(Debug, Default)]
pub struct CsvWriter {
    out: String,
}

impl CsvWriter {
    /// An empty document.
    pub fn new() -> CsvWriter {
        CsvWriter::default()
    }

    /// Appends one row.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_cell(&mut self.out, cell.as_ref());
        }
        self.out.push_str("\r\n");
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }
}

fn push_cell(out: &mut String, cell: &str) {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = risky || cell.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if risky {
        out.push('\'');
    }
    for c in cell.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_formula_cells() {
        let mut csv = CsvWriter::new();
        csv.row(["id", "phrase"]);
        csv.row(["1", "a, \"b\"\nc"]);
        csv.row(["2", "=HYPERLINK(\"x\")"]);
        assert_eq!(
            csv.finish(),
            "id,phrase\r\n1,\"a, \"\"b\"\"\nc\"\r\n2,\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
    }
}
