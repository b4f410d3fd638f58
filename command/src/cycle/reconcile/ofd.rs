//! The open-end-fund data-exchange file framing (OFD) used between partners and the TA:
//! GB18030 text, CRLF lines, a fixed-width header, the names of the fields in use, an 8-digit
//! record count, fixed-width records, `OFDCFEND`. Field widths are in bytes of the GB18030
//! encoding. Layouts are documented in `docs/ofd-files.md`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::fmt;

pub const VERSION: &str = "22";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text, left-aligned and space-padded.
    Text,
    /// Non-negative number, right-aligned, zero-padded, with this many implied decimals.
    Num(u32),
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub width: usize,
}

const fn text(name: &'static str, width: usize) -> Field {
    Field {
        name,
        kind: Kind::Text,
        width,
    }
}

const fn num(name: &'static str, width: usize, decimals: u32) -> Field {
    Field {
        name,
        kind: Kind::Num(decimals),
        width,
    }
}

/// Every field a file may declare, with its type and width.
pub const DICTIONARY: &[Field] = &[
    text("AppSheetSerialNo", 64),
    text("TASerialNO", 20),
    text("TransactionDate", 8),
    text("TransactionTime", 6),
    text("TransactionCfmDate", 8),
    text("BusinessCode", 3),
    text("TAAccountID", 12),
    text("FundCode", 6),
    num("ApplicationAmount", 16, 2),
    num("ApplicationVol", 16, 2),
    num("ConfirmedAmount", 16, 2),
    num("ConfirmedVol", 16, 2),
    text("FastRedeemFlag", 1),
    text("CancelFlag", 1),
    text("ReturnCode", 4),
];

pub fn field(name: &str) -> Option<Field> {
    DICTIONARY.iter().find(|f| f.name == name).copied()
}

/// Header line widths: OFDCFDAT, version, creator, receiver, date, summary number, file type,
/// sender, recipient, field count.
const HEADER_WIDTHS: [usize; 10] = [8, 8, 20, 20, 8, 8, 8, 8, 8, 8];

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub creator: String,
    pub receiver: String,
    pub date: NaiveDate,
    pub summary: u32,
    pub file_type: String,
    pub sender: String,
    pub recipient: String,
}

/// `OFD_{creator}_{receiver}_{YYYYMMDD}_{type}.TXT`
pub fn file_name(creator: &str, receiver: &str, date: NaiveDate, file_type: &str) -> String {
    format!(
        "OFD_{creator}_{receiver}_{}_{file_type}.TXT",
        date.format("%Y%m%d")
    )
}

/// A value that cannot be written into its field.
#[derive(Debug, PartialEq)]
pub struct TooWide(pub String);

fn pad_text(out: &mut Vec<u8>, value: &str, width: usize) -> Result<(), TooWide> {
    let (bytes, _, bad) = encoding_rs::GB18030.encode(value);
    if bad || bytes.len() > width {
        return Err(TooWide(value.to_string()));
    }
    out.extend_from_slice(&bytes);
    out.extend(std::iter::repeat_n(b' ', width - bytes.len()));
    Ok(())
}

fn pad_num(out: &mut Vec<u8>, value: Decimal, decimals: u32, width: usize) -> Result<(), TooWide> {
    let mut scaled = value * Decimal::from(10u64.pow(decimals));
    if scaled.is_sign_negative() || scaled.fract() != Decimal::ZERO {
        return Err(TooWide(value.to_string()));
    }
    scaled.rescale(0);
    let digits = scaled.to_string();
    if digits.len() > width {
        return Err(TooWide(value.to_string()));
    }
    out.extend(std::iter::repeat_n(b'0', width - digits.len()));
    out.extend_from_slice(digits.as_bytes());
    Ok(())
}

/// One record's values, by field name: text for `Text`, decimals for `Num`.
pub enum Value {
    Text(String),
    Num(Decimal),
}

/// Writes a data file with `fields` (dictionary names) and `records` (values in field order).
pub fn write(header: &Header, fields: &[&str], records: &[Vec<Value>]) -> Result<Vec<u8>, TooWide> {
    let mut out = Vec::new();
    let line = |out: &mut Vec<u8>| out.extend_from_slice(b"\r\n");
    let heads = [
        "OFDCFDAT".to_string(),
        VERSION.to_string(),
        header.creator.clone(),
        header.receiver.clone(),
        header.date.format("%Y%m%d").to_string(),
        format!("{:08}", header.summary),
        header.file_type.clone(),
        header.sender.clone(),
        header.recipient.clone(),
        format!("{:08}", fields.len()),
    ];
    for (v, w) in heads.iter().zip(HEADER_WIDTHS) {
        pad_text(&mut out, v, w)?;
        line(&mut out);
    }
    let layout: Vec<Field> = fields
        .iter()
        .map(|n| field(n).expect("field in the dictionary"))
        .collect();
    for f in &layout {
        out.extend_from_slice(f.name.as_bytes());
        line(&mut out);
    }
    out.extend_from_slice(format!("{:08}", records.len()).as_bytes());
    line(&mut out);
    for r in records {
        for (f, v) in layout.iter().zip(r) {
            match (f.kind, v) {
                (Kind::Text, Value::Text(s)) => pad_text(&mut out, s, f.width)?,
                (Kind::Num(d), Value::Num(n)) => pad_num(&mut out, *n, d, f.width)?,
                _ => panic!("value type does not match field {}", f.name),
            }
        }
        line(&mut out);
    }
    out.extend_from_slice(b"OFDCFEND");
    line(&mut out);
    Ok(out)
}

/// An index file (`OFDCFIDX`) listing the data files sent together.
pub fn write_index(
    creator: &str,
    receiver: &str,
    date: NaiveDate,
    names: &[String],
) -> Result<Vec<u8>, TooWide> {
    let mut out = Vec::new();
    for (v, w) in [
        ("OFDCFIDX".to_string(), 8),
        (VERSION.to_string(), 8),
        (creator.to_string(), 20),
        (receiver.to_string(), 20),
        (date.format("%Y%m%d").to_string(), 8),
    ] {
        pad_text(&mut out, &v, w)?;
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("{:08}\r\n", names.len()).as_bytes());
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"OFDCFEND\r\n");
    Ok(out)
}

/// Why a file was rejected, and where (1-based line number).
#[derive(Debug, PartialEq)]
pub struct Malformed {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn bad(line: usize, message: impl Into<String>) -> Malformed {
    Malformed {
        line,
        message: message.into(),
    }
}

/// A parsed data file: header, the declared fields, and each record as (line number, values
/// by field, as trimmed text for text fields and decimals for numbers).
#[derive(Debug)]
pub struct Parsed {
    pub header: Header,
    pub fields: Vec<Field>,
    pub records: Vec<(usize, Vec<ParsedValue>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ParsedValue {
    Text(String),
    Num(Decimal),
}

impl Parsed {
    /// The value of `name` in a record, if the file declares the field.
    pub fn get<'a>(&self, record: &'a [ParsedValue], name: &str) -> Option<&'a ParsedValue> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| &record[i])
    }
}

/// Parses a data file. Lines must end in CRLF; the text must be valid GB18030.
pub fn parse(bytes: &[u8]) -> Result<Parsed, Malformed> {
    let lines = Lines(split_lines(bytes)?);
    let header = lines.header()?;
    let fields = lines.fields()?;
    let count_line = 10 + fields.len();
    let records_n = lines.digits(count_line, "record count")?;
    let width: usize = fields.iter().map(|f| f.width).sum();
    let mut records = Vec::with_capacity(records_n);
    for i in count_line + 1..count_line + 1 + records_n {
        let l = *lines.0.get(i).ok_or_else(|| {
            bad(
                i + 1,
                format!("expected {records_n} records, the file ends before"),
            )
        })?;
        if l == b"OFDCFEND" {
            return Err(bad(
                i + 1,
                format!("expected {records_n} records, found {}", records.len()),
            ));
        }
        records.push((i + 1, record(i + 1, l, &fields, width)?));
    }
    lines.end(count_line + 1 + records_n, records_n)?;
    Ok(Parsed {
        header,
        fields,
        records,
    })
}

/// The file's lines, each ended by CRLF (not part of the line).
fn split_lines(bytes: &[u8]) -> Result<Vec<&[u8]>, Malformed> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = lines.len() + 1;
        let Some(i) = rest.iter().position(|b| *b == b'\n') else {
            return Err(bad(n, "line does not end with CRLF"));
        };
        let Some(l) = rest[..i].strip_suffix(b"\r") else {
            return Err(bad(n, "line does not end with CRLF"));
        };
        if l.contains(&b'\r') {
            return Err(bad(n, "stray carriage return"));
        }
        lines.push(l);
        rest = &rest[i + 1..];
    }
    Ok(lines)
}

/// A file's lines, read by index (errors name the 1-based line).
struct Lines<'a>(Vec<&'a [u8]>);

impl Lines<'_> {
    fn text(&self, i: usize) -> Result<String, Malformed> {
        let l = self
            .0
            .get(i)
            .ok_or_else(|| bad(i + 1, "unexpected end of file"))?;
        let (s, _, errors) = encoding_rs::GB18030.decode(l);
        if errors {
            return Err(bad(i + 1, "not valid GB18030 text"));
        }
        Ok(s.into_owned())
    }

    /// Header line `i`, no wider than its declared width, trailing spaces trimmed.
    fn head(&self, i: usize) -> Result<String, Malformed> {
        let s = self.text(i)?;
        let width = HEADER_WIDTHS[i];
        if self.0[i].len() > width {
            return Err(bad(
                i + 1,
                format!("header line is wider than {width} bytes"),
            ));
        }
        Ok(s.trim_end().to_string())
    }

    /// Line `i` (a header line, or the record count) as exactly 8 digits.
    fn digits(&self, i: usize, what: &str) -> Result<usize, Malformed> {
        let s = if i < HEADER_WIDTHS.len() {
            self.head(i)?
        } else {
            self.text(i)?
        };
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(i + 1, format!("{what} must be 8 digits")));
        }
        Ok(s.parse().expect("digits"))
    }

    fn header(&self) -> Result<Header, Malformed> {
        if self.head(0)? != "OFDCFDAT" {
            return Err(bad(1, "a data file starts with OFDCFDAT"));
        }
        if self.head(1)? != VERSION {
            return Err(bad(2, format!("version must be {VERSION}")));
        }
        Ok(Header {
            creator: self.head(2)?,
            receiver: self.head(3)?,
            date: NaiveDate::parse_from_str(&self.head(4)?, "%Y%m%d")
                .map_err(|_| bad(5, "date must be YYYYMMDD"))?,
            summary: self.digits(5, "summary number")? as u32,
            file_type: self.head(6)?,
            sender: self.head(7)?,
            recipient: self.head(8)?,
        })
    }

    /// The declared fields (line 10: their count, then one name per line).
    fn fields(&self) -> Result<Vec<Field>, Malformed> {
        let count = self.digits(9, "field count")?;
        if count == 0 {
            return Err(bad(10, "a file declares at least one field"));
        }
        let mut fields = Vec::with_capacity(count);
        for i in 10..10 + count {
            let name = self.text(i)?.trim_end().to_string();
            let f = field(&name).ok_or_else(|| bad(i + 1, format!("unknown field {name:?}")))?;
            if fields.iter().any(|g: &Field| g.name == f.name) {
                return Err(bad(i + 1, format!("field {name} declared twice")));
            }
            fields.push(f);
        }
        Ok(fields)
    }

    /// OFDCFEND on line `end`, and nothing after it.
    fn end(&self, end: usize, records_n: usize) -> Result<(), Malformed> {
        match self.0.get(end) {
            Some(l) if *l == b"OFDCFEND" => {}
            Some(_) => {
                return Err(bad(
                    end + 1,
                    format!("expected OFDCFEND after {records_n} records"),
                ))
            }
            None => return Err(bad(end + 1, "missing OFDCFEND")),
        }
        if end + 1 != self.0.len() {
            return Err(bad(end + 2, "content after OFDCFEND"));
        }
        Ok(())
    }
}

/// The values of record line `n`, cut at the declared fields' widths.
fn record(
    n: usize,
    l: &[u8],
    fields: &[Field],
    width: usize,
) -> Result<Vec<ParsedValue>, Malformed> {
    if l.len() != width {
        return Err(bad(
            n,
            format!(
                "record is {} bytes, the declared fields take {width}",
                l.len()
            ),
        ));
    }
    let mut values = Vec::with_capacity(fields.len());
    let mut at = 0;
    for f in fields {
        let raw = &l[at..at + f.width];
        at += f.width;
        let (s, _, errors) = encoding_rs::GB18030.decode(raw);
        if errors {
            return Err(bad(n, format!("{} is not valid GB18030 text", f.name)));
        }
        values.push(match f.kind {
            Kind::Text => ParsedValue::Text(s.trim_end().to_string()),
            Kind::Num(d) => {
                if !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(n, format!("{} must be {} digits", f.name, f.width)));
                }
                let n: i128 = s.parse().expect("digits");
                ParsedValue::Num(Decimal::from_i128_with_scale(n, d))
            }
        });
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            creator: "p1".into(),
            receiver: "MMFTA".into(),
            date: "2026-11-26".parse().unwrap(),
            summary: 0,
            file_type: "02".into(),
            sender: "p1".into(),
            recipient: "MMFTA".into(),
        }
    }

    #[test]
    fn round_trip_with_fixed_widths_and_crlf() {
        let bytes = write(
            &header(),
            &["AppSheetSerialNo", "BusinessCode", "ApplicationAmount"],
            &[vec![
                Value::Text("r-1".into()),
                Value::Text("022".into()),
                Value::Num("100.50".parse().unwrap()),
            ]],
        )
        .unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "OFDCFDAT");
        assert_eq!(lines[1], "22      ");
        assert_eq!(lines[2].len(), 20);
        assert_eq!(lines[4], "20261126");
        assert_eq!(lines[9], "00000003");
        assert_eq!(lines[13], "00000001");
        assert_eq!(lines[14].len(), 64 + 3 + 16);
        assert!(lines[14].ends_with("0220000000000010050"));
        assert_eq!(lines[15], "OFDCFEND");
        let p = parse(&bytes).unwrap();
        assert_eq!(p.header, header());
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].0, 15);
        assert_eq!(
            p.get(&p.records[0].1, "ApplicationAmount"),
            Some(&ParsedValue::Num("100.50".parse().unwrap()))
        );
    }

    #[test]
    fn gb18030_widths_count_bytes() {
        let mut out = Vec::new();
        pad_text(&mut out, "基金", 6).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(&out[4..], b"  ");
        assert!(pad_text(&mut Vec::new(), "基金公司", 6).is_err());
    }

    #[test]
    fn rejects_with_line_numbers() {
        let good = write(
            &header(),
            &["BusinessCode"],
            &[vec![Value::Text("022".into())]],
        )
        .unwrap();
        let text = String::from_utf8(good).unwrap();
        let lf_only = text.replace("\r\n", "\n");
        assert_eq!(parse(lf_only.as_bytes()).unwrap_err().line, 1);
        let short = text.replace("022", "02");
        assert_eq!(parse(short.as_bytes()).unwrap_err().line, 13);
        let unknown = text.replace("BusinessCode", "Nonsense");
        assert_eq!(parse(unknown.as_bytes()).unwrap_err().line, 11);
        let count = text.replace("00000001\r\n022", "00000002\r\n022");
        assert_eq!(parse(count.as_bytes()).unwrap_err().line, 14);
    }
}
