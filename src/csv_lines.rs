//! Line-oriented CSV files (the BIN table, the simulator's cardholders):
//! one record per line, RFC 4180 quoting within it, `#` comment lines and
//! blank lines skipped, and every record numbered by its line in the file,
//! so an error names the line an operator sees in an editor. (The `csv`
//! reader does the quoting; it does not count the lines it skips.)

/// `(line, fields)` for each record line; a line that is not valid CSV (an
/// unclosed quote) is an `Err` with its line number.
pub(crate) fn records(text: &str) -> impl Iterator<Item = Result<(usize, csv::StringRecord), usize>> + '_ {
    text.lines().enumerate().filter_map(|(index, raw)| {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return None;
        }
        let line = index + 1;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(trimmed.as_bytes());
        let mut record = csv::StringRecord::new();
        Some(match reader.read_record(&mut record) {
            Ok(true) => Ok((line, record)),
            Ok(false) | Err(_) => Err(line),
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_numbered_as_in_the_file_and_quotes_hold_commas() {
        let text = "# comment\n\n622202,\"Bank of A, Shanghai\",debit\n  \n1,2\n";
        let rows: Vec<_> = super::records(text).map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 3);
        assert_eq!(&rows[0].1[1], "Bank of A, Shanghai");
        assert_eq!((rows[1].0, rows[1].1.len()), (5, 2));
    }
}
