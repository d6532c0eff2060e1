//! Card networks, recognised by prefix, and the PAN lengths each allows
//! (the table in DOMAIN.md).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Network {
    UnionPay,
    Visa,
    Mastercard,
    Amex,
    Jcb,
    Diners,
    Discover,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::UnionPay => "unionpay",
            Network::Visa => "visa",
            Network::Mastercard => "mastercard",
            Network::Amex => "amex",
            Network::Jcb => "jcb",
            Network::Diners => "diners",
            Network::Discover => "discover",
        }
    }

    /// The network whose prefix `digits` starts with. More specific prefixes
    /// win: 6011 is Discover although 60 is UnionPay.
    pub(crate) fn detect(digits: &[u8]) -> Option<Network> {
        let prefix = |n: usize| -> Option<u32> {
            let head = digits.get(..n)?;
            Some(head.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
        };
        let p1 = prefix(1)?;
        let p2 = prefix(2);
        let p3 = prefix(3);
        let p4 = prefix(4);
        let in4 = |lo: u32, hi: u32| p4.is_some_and(|p| (lo..=hi).contains(&p));
        let in3 = |lo: u32, hi: u32| p3.is_some_and(|p| (lo..=hi).contains(&p));
        let in2 = |lo: u32, hi: u32| p2.is_some_and(|p| (lo..=hi).contains(&p));

        if in4(6011, 6011) || in3(644, 649) || in2(65, 65) {
            return Some(Network::Discover);
        }
        if in2(62, 62) || in2(60, 60) || p1 == 9 {
            return Some(Network::UnionPay);
        }
        if p1 == 4 {
            return Some(Network::Visa);
        }
        if in2(51, 55) || in4(2221, 2720) {
            return Some(Network::Mastercard);
        }
        if in2(34, 34) || in2(37, 37) {
            return Some(Network::Amex);
        }
        if in4(3528, 3589) {
            return Some(Network::Jcb);
        }
        if in3(300, 305) || in4(3095, 3095) || in2(36, 36) || in2(38, 39) {
            return Some(Network::Diners);
        }
        None
    }

    pub(crate) fn allows_length(self, len: usize) -> bool {
        match self {
            Network::UnionPay => (16..=19).contains(&len),
            Network::Visa => matches!(len, 13 | 16 | 19),
            Network::Mastercard => len == 16,
            Network::Amex => len == 15,
            Network::Jcb => (16..=19).contains(&len),
            Network::Diners => (14..=19).contains(&len),
            Network::Discover => (16..=19).contains(&len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(s: &str) -> Option<Network> {
        Network::detect(s.as_bytes())
    }

    #[test]
    fn prefixes_from_the_domain_table() {
        assert_eq!(detect("6222020000000000"), Some(Network::UnionPay));
        assert_eq!(detect("6000000000000000"), Some(Network::UnionPay));
        assert_eq!(detect("9555000000000000"), Some(Network::UnionPay));
        assert_eq!(detect("6011000000000000"), Some(Network::Discover));
        assert_eq!(detect("6440000000000000"), Some(Network::Discover));
        assert_eq!(detect("6500000000000000"), Some(Network::Discover));
        assert_eq!(detect("4242424242424242"), Some(Network::Visa));
        assert_eq!(detect("5555555555554444"), Some(Network::Mastercard));
        assert_eq!(detect("2221000000000000"), Some(Network::Mastercard));
        assert_eq!(detect("2720990000000000"), Some(Network::Mastercard));
        assert_eq!(detect("2721000000000000"), None);
        assert_eq!(detect("378282246310005"), Some(Network::Amex));
        assert_eq!(detect("3566002020360505"), Some(Network::Jcb));
        assert_eq!(detect("36227206271667"), Some(Network::Diners));
        assert_eq!(detect("3095000000000000"), Some(Network::Diners));
        assert_eq!(detect("3050000000000000"), Some(Network::Diners));
        assert_eq!(detect("3060000000000000"), None);
        assert_eq!(detect("8100000000000000"), None);
        assert_eq!(detect("1000000000000000"), None);
        assert_eq!(detect("7000000000000000"), None);
    }

    #[test]
    fn lengths_per_network() {
        assert!(Network::Visa.allows_length(13));
        assert!(!Network::Visa.allows_length(14));
        assert!(Network::Amex.allows_length(15));
        assert!(!Network::Amex.allows_length(16));
        assert!(Network::UnionPay.allows_length(19));
        assert!(!Network::UnionPay.allows_length(15));
        assert!(Network::Diners.allows_length(14));
    }
}
