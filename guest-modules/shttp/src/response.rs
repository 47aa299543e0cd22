//! Response heads and the small bodies shttp writes itself (errors, redirects).

use std::time::SystemTime;

/// The `Server` field of every response.
const SERVER: &str = "serverkit-shttp";

/// The reason phrase of `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A response head being built, by appending: `format!` and `Display` were a tenth of the
/// CPU of a small keep-alive response (docs/benchmarks.md).
pub struct Head {
    text: String,
}

/// A field value a head can carry: text, or a number written in decimal.
pub trait FieldValue {
    /// Appends the value to `out`.
    fn append_to(&self, out: &mut String);
}

impl FieldValue for str {
    fn append_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl FieldValue for String {
    fn append_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl<T: FieldValue + ?Sized> FieldValue for &T {
    fn append_to(&self, out: &mut String) {
        (**self).append_to(out);
    }
}

// A negative number is written as 0: no field shttp sends can be negative.
macro_rules! decimal_field_value {
    ($($int:ty),*) => {$(
        impl FieldValue for $int {
            fn append_to(&self, out: &mut String) {
                push_decimal(out, u64::try_from(*self).unwrap_or(0));
            }
        }
    )*};
}
decimal_field_value!(u16, u32, u64, usize, i32, i64);

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"));
}

/// Appends `n` in lowercase hexadecimal.
pub fn push_hex(out: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let width = (16 - n.leading_zeros() as usize / 4).max(1);
    for i in (0..width).rev() {
        out.push(DIGITS[((n >> (i * 4)) & 0xf) as usize] as char);
    }
}

impl Head {
    /// Status line, `Server` and `Date`.
    pub fn new(status: u16) -> Self {
        let mut text = String::with_capacity(256);
        text.push_str("HTTP/1.1 ");
        push_decimal(&mut text, u64::from(status));
        text.push(' ');
        text.push_str(reason(status));
        text.push_str("\r\nServer: ");
        text.push_str(SERVER);
        text.push_str("\r\nDate: ");
        NOW.with_borrow_mut(|now| now.append(&mut text, now_seconds()));
        text.push_str("\r\n");
        Head { text }
    }

    /// Adds a field.
    pub fn field(mut self, name: &str, value: impl FieldValue) -> Self {
        self.text.push_str(name);
        self.text.push_str(": ");
        value.append_to(&mut self.text);
        self.text.push_str("\r\n");
        self
    }

    /// Adds `Content-Length`, the `Connection` field the persistence decision needs
    /// (`close`, or `keep-alive` for an HTTP/1.0 client), and the blank line.
    pub fn finish(self, length: u64, keep_alive: bool, minor: u8) -> Vec<u8> {
        let mut head = self.field("Content-Length", length);
        if !keep_alive {
            head = head.field("Connection", "close");
        } else if minor == 0 {
            head = head.field("Connection", "keep-alive");
        }
        let mut text = head.text;
        text.push_str("\r\n");
        text.into_bytes()
    }
}

/// Seconds since the epoch now (0 before it).
fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The last HTTP date formatted, for the next one of the same second: the `Date` of every
/// response, the `Last-Modified` of a file asked for again and again.
#[derive(Default)]
struct DateCache {
    seconds: Option<i64>,
    text: String,
}

impl DateCache {
    fn append(&mut self, out: &mut String, seconds: i64) {
        if self.seconds != Some(seconds) {
            self.text = format_http_date(seconds);
            self.seconds = Some(seconds);
        }
        out.push_str(&self.text);
    }
}

thread_local! {
    /// For `Date`.
    static NOW: std::cell::RefCell<DateCache> = std::cell::RefCell::default();
    /// For `Last-Modified`.
    static MODIFIED: std::cell::RefCell<DateCache> = std::cell::RefCell::default();
}

/// The last second httpdate can format (23:59:59, 31 December 9999); it panics beyond.
const LAST_HTTP_DATE: i64 = 253_402_300_799;

/// `seconds` since the epoch as an HTTP date (RFC 9110 §5.6.7), clamped to what the
/// format can hold: a file's mtime is whatever the filesystem stores (tmpfs keeps any
/// 64-bit time), and formatting must never trap the session.
pub fn http_date(seconds: i64) -> String {
    let mut text = String::with_capacity(29);
    MODIFIED.with_borrow_mut(|modified| modified.append(&mut text, seconds));
    text
}

/// IMF-fixdate, built by hand: `httpdate` goes through `core::fmt`, which every new
/// connection paid for its first `Date` (about 2% of a connection-per-request profile).
fn format_http_date(seconds: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = seconds.clamp(0, LAST_HTTP_DATE);
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = String::with_capacity(29);
    // 1 January 1970 was a Thursday.
    text.push_str(WEEKDAYS[(days % 7) as usize]);
    text.push_str(", ");
    push_two_digits(&mut text, day);
    text.push(' ');
    text.push_str(MONTHS[month as usize - 1]);
    text.push(' ');
    push_decimal(&mut text, year as u64);
    for (i, part) in [of_day / 3600, of_day / 60 % 60, of_day % 60]
        .into_iter()
        .enumerate()
    {
        text.push(if i == 0 { ' ' } else { ':' });
        push_two_digits(&mut text, part);
    }
    text.push_str(" GMT");
    text
}

/// `n` (0 to 99) as two digits.
fn push_two_digits(out: &mut String, n: i64) {
    out.push(char::from(b'0' + (n / 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// Year, month (1-12) and day (1-31) of `days` since 1 January 1970, days 0 and after
/// (Howard Hinnant's `civil_from_days`, for the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The small HTML body of an error status.
pub fn error_body(status: u16) -> String {
    let reason = reason(status);
    format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\
         <body><h1>{status} {reason}</h1></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_formatted_as_httpdate_formats_them() {
        // 1970 to 2097 in steps of a little under three hours, a spread up to the last
        // year, and the days around 29 February 2000 and 1 March 2100.
        let samples = (0..400_000)
            .map(|i| i * 10_007)
            .chain((0..100_000).map(|i| i * (LAST_HTTP_DATE / 100_000) + i % 86_400))
            .chain([LAST_HTTP_DATE, 951_782_400, 951_868_800, 4_107_542_400]);
        for seconds in samples {
            let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
            assert_eq!(
                format_http_date(seconds),
                httpdate::fmt_http_date(time),
                "{seconds}"
            );
        }
    }

    #[test]
    fn heads_carry_length_and_persistence() {
        let head = String::from_utf8(Head::new(404).field("X", 1).finish(10, false, 1)).unwrap();
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\nServer: serverkit-shttp\r\nDate: "));
        assert!(
            head.ends_with("X: 1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
        let head = String::from_utf8(Head::new(200).finish(0, true, 0)).unwrap();
        assert!(head.ends_with("Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"));
        let head = String::from_utf8(Head::new(200).finish(0, true, 1)).unwrap();
        assert!(!head.contains("Connection"));
    }

    #[test]
    fn dates_outside_the_format_are_clamped_not_a_panic() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_320_000), "Sun, 22 Nov 2026 04:00:00 GMT");
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            http_date(i64::MAX),
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "cached"
        );
        assert_eq!(
            http_date(0),
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "after another"
        );
    }

    #[test]
    fn numbers_are_written_as_format_would() {
        for n in [0, 1, 9, 10, 255, 4096, 1_795_320_000, u64::MAX] {
            let (mut decimal, mut hex) = (String::new(), String::new());
            push_decimal(&mut decimal, n);
            push_hex(&mut hex, n);
            assert_eq!(decimal, n.to_string());
            assert_eq!(hex, format!("{n:x}"));
        }
        let head = String::from_utf8(Head::new(206).field("N", 42u64).finish(0, true, 1)).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nN: 42\r\n"), "{head}");
    }
}
