//! Line-oriented CSV files (the BIN table, the simulator's cardholders):
//! one record per line, RFC 4180 quoting within it, `#` comment lines and
//! blank lines skipped, and every record numbered by its line in the file,
//! so an error names the line an operator sees in an editor. (The `csv`
//! reader does the quoting; it does not count the lines it skips.)

#[cfg(feature = "bank-sim")]
use zeroize::Zeroizing;

/// `(line, fields)` for each record line; a line that is not valid CSV (an
/// unclosed quote) is an `Err` with its line number.
pub(crate) fn records(text: &str) -> impl Iterator<Item = Result<(usize, csv::StringRecord), usize>> + '_ {
    record_lines(text).map(|(line, trimmed)| {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(trimmed.as_bytes());
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(true) => Ok((line, record)),
            Ok(false) | Err(_) => Err(line),
        }
    })
}

/// `(line number, trimmed text)` of each line that is neither blank nor a
/// `#` comment.
fn record_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, raw)| (index + 1, raw.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// As `records`, for files of secrets: each field decoded by `csv-core`
/// straight into a buffer that is wiped when dropped, and trimmed. A line
/// with an unclosed quote (an odd number of `"`) is an `Err`.
#[cfg(feature = "bank-sim")]
pub(crate) fn secret_records(
    text: &str,
) -> impl Iterator<Item = Result<(usize, Vec<Zeroizing<String>>), usize>> + '_ {
    record_lines(text).map(|(line, trimmed)| secret_fields(trimmed).map(|fields| (line, fields)).ok_or(line))
}

#[cfg(feature = "bank-sim")]
fn secret_fields(line: &str) -> Option<Vec<Zeroizing<String>>> {
    if line.bytes().filter(|b| *b == b'"').count() % 2 != 0 {
        return None;
    }
    let mut reader = csv_core::Reader::new();
    let mut input = line.as_bytes();
    // A field never decodes longer than the line it came from.
    let mut field = Zeroizing::new(vec![0u8; line.len()]);
    let mut fields = Vec::new();
    // Bytes of the current field decoded so far: a field may take several
    // calls (the last one is finished by a call with no input left).
    let mut len = 0;
    loop {
        let (result, read, written) = reader.read_field(input, &mut field[len..]);
        input = &input[read..];
        len += written;
        match result {
            csv_core::ReadFieldResult::InputEmpty => continue,
            csv_core::ReadFieldResult::OutputFull => return None,
            csv_core::ReadFieldResult::Field { record_end } => {
                let text = std::str::from_utf8(&field[..len]).ok()?;
                fields.push(Zeroizing::new(text.trim().to_owned()));
                len = 0;
                if record_end {
                    return Some(fields);
                }
            }
            csv_core::ReadFieldResult::End => return Some(fields),
        }
    }
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

    #[cfg(feature = "bank-sim")]
    #[test]
    fn secret_records_read_like_records() {
        let text = "# comment\n\n622202,\"Ouyang, \"\"Na\"\"\" ,debit\n  \n1,,2\n3,\"open\n";
        let rows: Vec<_> = super::secret_records(text).collect();
        let (line, fields) = rows[0].as_ref().unwrap();
        let fields: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
        assert_eq!((*line, fields), (3, vec!["622202", "Ouyang, \"Na\"", "debit"]));
        let (line, fields) = rows[1].as_ref().unwrap();
        assert_eq!((*line, fields.len(), fields[1].as_str()), (5, 3, ""));
        assert_eq!(rows[2], Err(6));
    }
}
