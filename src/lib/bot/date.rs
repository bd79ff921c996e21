//! Dates mail-bot compares: a message's `Date:` (RFC 5322, with the
//! obsolete forms real mail has) and the days of the configuration
//! (`since = "2024-09-01"`), as seconds since the epoch, UTC.
//!
//! It does not format dates ([`crate::compose::format_date`] does) or know
//! time zones by name beyond the RFC 5322 ones.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` as the first second of that day, UTC.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1900..=9999).contains(&year) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400)
}

/// A `Date:` field value (`Tue, 3 Dec 2024 10:00:00 +0100`, also without
/// the day name or seconds, with a zone name or comment) as seconds since
/// the epoch; `None` when it does not read as a date.
pub fn parse_rfc5322(text: &str) -> Option<i64> {
    // Drop comments and the day name.
    let mut clean = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => clean.push(c),
            _ => {}
        }
    }
    let clean = match clean.split_once(',') {
        Some((_, rest)) => rest.to_string(),
        None => clean,
    };
    let words: Vec<&str> = clean.split_whitespace().collect();
    let [day, month, year, time, rest @ ..] = words.as_slice() else {
        return None;
    };
    let day: i64 = day.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS
        .iter()
        .position(|m| month.len() >= 3 && month[..3].eq_ignore_ascii_case(m))?
        as i64
        + 1;
    let mut year: i64 = year.parse().ok()?;
    if year < 50 {
        year += 2000;
    } else if year < 1000 {
        year += 1900;
    }
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m) = (hms.next()??, hms.next()??);
    let s = hms.next().flatten().unwrap_or(0);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let offset = rest.first().map_or(Some(0), |z| zone_offset(z))?;
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset)
}

/// `+0100` → 3600; the RFC 5322 zone names; anything else is UTC.
fn zone_offset(zone: &str) -> Option<i64> {
    if let Some(sign) = zone.chars().next().filter(|c| *c == '+' || *c == '-') {
        let digits = &zone[1..];
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = digits.parse().ok()?;
        let secs = (v / 100) * 3600 + (v % 100) * 60;
        return Some(if sign == '-' { -secs } else { secs });
    }
    let hours = match zone.to_ascii_uppercase().as_str() {
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => 0,
    };
    Some(hours * 3600)
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn message_dates() {
        let cases = [
            ("Thu, 1 Jan 1970 00:00:00 +0000", Some(0)),
            ("Tue, 3 Dec 2024 10:00:00 +0100", Some(1_733_216_400)),
            ("3 Dec 2024 09:00 GMT", Some(1_733_216_400)),
            ("Tue, 03 Dec 2024 04:00:00 -0500 (EST)", Some(1_733_216_400)),
            ("Tue, 3 Dec 24 09:00:00 +0000", Some(1_733_216_400)),
            ("yesterday", None),
            ("Tue, 3 Foo 2024 09:00:00 +0000", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc5322(text), want, "{text}");
        }
        assert_eq!(parse_day("2024-12-03"), Some(1_733_184_000));
        assert_eq!(parse_day("2024-13-01"), None);
        assert_eq!(parse_day("soon"), None);
    }

    #[test]
    fn durations() {
        let d = |v: toml::Value| crate::config::parse_duration(&v);
        assert_eq!(d(toml::Value::Integer(90)), Some(Duration::from_secs(90)));
        assert_eq!(d("1h".into()), Some(Duration::from_secs(3600)));
        assert_eq!(d("7d".into()), Some(Duration::from_secs(604_800)));
        assert_eq!(d("30 m".into()), Some(Duration::from_secs(1800)));
        assert_eq!(d("1y".into()), None);
        assert_eq!(d(toml::Value::Integer(-1)), None);
    }
}
