//! Why an input was refused: the field and the rule, never the value.
//!
//! The rule codes are stable strings: the API turns them into problem documents
//! and callers match on them, so renaming one is a breaking change.

use super::error_code::ErrorCode;
use std::fmt;

/// The input field a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    Pan,
    Name,
    IdNumber,
    Phone,
    TokenControls,
    Currency,
    Channel,
    Merchant,
    Amount,
    Reference,
    TokenNumber,
    Cvn,
    Expiry,
    Password,
    User,
    Code,
    Order,
    OrderExpiry,
    Refund,
    KeyVersion,
    Date,
    Reason,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Pan => "pan",
            Field::Name => "name",
            Field::IdNumber => "id_number",
            Field::Phone => "phone",
            Field::TokenControls => "controls",
            Field::Currency => "currency",
            Field::Channel => "channel",
            Field::Merchant => "merchant",
            Field::Amount => "amount",
            Field::Reference => "reference",
            Field::TokenNumber => "token",
            Field::Cvn => "cvn",
            Field::Expiry => "expiry",
            Field::Password => "password",
            Field::User => "user_id",
            Field::Code => "code",
            Field::Order => "order_id",
            Field::OrderExpiry => "expires_at",
            Field::Refund => "refund_id",
            Field::KeyVersion => "version",
            Field::Date => "date",
            Field::Reason => "reason",
        }
    }
}

/// The rule an input broke. `code()` is the stable identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    Empty,
    NotDigits,
    UnknownNetwork,
    LengthForNetwork,
    Luhn,
    InTokenRange,
    TooLong,
    InvalidCharacter,
    MisplacedDot,
    Length,
    AreaCode,
    BirthDate,
    BirthDateInFuture,
    CheckCharacter,
    MobilePrefix,
    Format,
    OutOfRange,
    WindowOrder,
    Expired,
    RepeatedDigits,
    AscendingRun,
    DescendingRun,
    IdNumberRun,
    PhoneRun,
    FewDistinctDigits,
    /// Three letters that are not an active ISO 4217 currency.
    UnknownCurrency,
    /// A free-form identifier holding what looks like a card number.
    CardNumberLike,
    /// ... a resident ID number.
    IdNumberLike,
    /// ... a mobile number.
    PhoneNumberLike,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::Empty => "empty",
            Rule::NotDigits => "digits_only",
            Rule::UnknownNetwork => "unknown_network",
            Rule::LengthForNetwork => "length_for_network",
            Rule::Luhn => "luhn",
            Rule::InTokenRange => "in_token_range",
            Rule::TooLong => "too_long",
            Rule::InvalidCharacter => "invalid_character",
            Rule::MisplacedDot => "misplaced_middle_dot",
            Rule::Length => "length",
            Rule::AreaCode => "area_code",
            Rule::BirthDate => "birth_date",
            Rule::BirthDateInFuture => "birth_date_in_future",
            Rule::CheckCharacter => "check_character",
            Rule::MobilePrefix => "mobile_prefix",
            Rule::Format => "format",
            Rule::OutOfRange => "out_of_range",
            Rule::WindowOrder => "window_order",
            Rule::Expired => "expired",
            Rule::RepeatedDigits => "repeated_digits",
            Rule::AscendingRun => "ascending_run",
            Rule::DescendingRun => "descending_run",
            Rule::IdNumberRun => "id_number_run",
            Rule::PhoneRun => "phone_run",
            Rule::FewDistinctDigits => "few_distinct_digits",
            Rule::UnknownCurrency => "iso_4217",
            Rule::CardNumberLike => "card_number_like",
            Rule::IdNumberLike => "id_number_like",
            Rule::PhoneNumberLike => "phone_number_like",
        }
    }
}

/// A refused input. Carries a human explanation that never quotes the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}: {detail}", field = .field.as_str(), rule = .rule.code())]
pub struct ValidationError {
    pub field: Field,
    pub rule: Rule,
    pub detail: &'static str,
}

impl ValidationError {
    pub const fn new(field: Field, rule: Rule, detail: &'static str) -> Self {
        ValidationError { field, rule, detail }
    }

    pub fn code(&self) -> ErrorCode {
        ErrorCode::invalid(self.field.as_str(), self.rule.code()).public_detail(self.detail)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
