//! The one field of an X.509 certificate the server reads itself: the end
//! of its validity (notAfter), to warn about an expired certificate at
//! start and refuse one on reload. rustls checks certificates only on the
//! client side; a general X.509 crate would add a parser stack to the
//! build for one date, so this walks the DER to it (RFC 5280, 4.1):
//! Certificate = SEQUENCE { tbsCertificate = SEQUENCE { [0] version
//! (optional), serialNumber, signature, issuer, validity = SEQUENCE {
//! notBefore, notAfter }, ... }, ... }. Any malformed input gives None.

/// notAfter as seconds since the Unix epoch, or None when `der` is not a
/// certificate this walk understands.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (cert, _) = expect(der, 0x30)?;
    let (mut tbs, _) = expect(cert, 0x30)?;
    if tbs.first() == Some(&0xA0) {
        tbs = expect(tbs, 0xA0)?.1;
    }
    let rest = expect(tbs, 0x02)?.1; // serialNumber
    let rest = expect(rest, 0x30)?.1; // signature algorithm
    let rest = expect(rest, 0x30)?.1; // issuer
    let (validity, _) = expect(rest, 0x30)?;
    let (_, _, after) = element(validity)?; // notBefore
    let (tag, time, _) = element(after)?;
    parse_time(tag, time)
}

/// The element at the start of `input` if its tag is `tag`: its content
/// and what follows it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = element(input)?;
    (t == tag).then_some((content, rest))
}

/// The DER element at the start of `input`: tag, content, rest.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let len = input[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        input = &input[n..];
        len
    };
    (input.len() >= len).then(|| (tag, &input[..len], &input[len..]))
}

/// UTCTime (0x17, YYMMDDHHMMSSZ; years 50..99 are 19xx) or
/// GeneralizedTime (0x18, YYYYMMDDHHMMSSZ), in UTC.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |a, &c| c.is_ascii_digit().then(|| a * 10 + (c - b'0') as i64))
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 13) => {
            let yy = digits(&text[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (the well-known
/// era-based conversion).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(parse_time(0x18, b"20260101000000Z"), Some(1_767_225_600));
        assert_eq!(parse_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(0x17, b"7001010000Z"), None);
        assert_eq!(parse_time(0x18, b"2026130100000Z0"), None);
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        for bytes in [&[][..], &[0x30], &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], &[0x30, 0x03, 0x30, 0x01, 0x02]] {
            assert_eq!(not_after(bytes), None);
        }
    }
}
