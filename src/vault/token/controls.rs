//! Domain controls (域控) a payment token carries, and the check that reserves
//! against them. The check is a pure function of the stored state; atomicity
//! comes from the store transaction around it (see `vault::reserve`).

use super::lifecycle::TokenStatus;
use crate::domain::amount::{checked_sum, AmountCeiling};
use crate::domain::ids::{ChannelId, Currency, MerchantId};
use crate::domain::time::Timestamp;
use crate::domain::validation::{Field, Rule, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a caller asks for when issuing a token; `DomainControls::new` checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlsSpec {
    pub max_uses: u32,
    pub per_transaction_limit: u64,
    pub cumulative_limit: u64,
    pub currency: Currency,
    pub valid_from: Timestamp,
    pub valid_until: Timestamp,
    pub channels: BTreeSet<ChannelId>,
    /// `None`: any merchant. `Some(set)`: only these.
    pub merchants: Option<BTreeSet<MerchantId>>,
}

/// Checked domain controls: at least one use, positive limits with the
/// per-transaction limit within the cumulative one, a non-empty validity
/// window, at least one channel, and no empty merchant list. Re-checked when
/// read back from the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ControlsSpec", into = "ControlsSpec")]
pub struct DomainControls(ControlsSpec);

impl DomainControls {
    pub fn new(spec: ControlsSpec) -> Result<Self, ValidationError> {
        let err = |rule, detail| Err(ValidationError::new(Field::TokenControls, rule, detail));
        if spec.max_uses == 0 {
            return err(Rule::OutOfRange, "max_uses must be at least 1");
        }
        if spec.per_transaction_limit == 0 || spec.cumulative_limit == 0 {
            return err(Rule::OutOfRange, "amount limits must be positive (minor units)");
        }
        AmountCeiling::MAX.check(Field::TokenControls, spec.cumulative_limit)?;
        if spec.per_transaction_limit > spec.cumulative_limit {
            return err(
                Rule::OutOfRange,
                "per_transaction_limit cannot exceed cumulative_limit",
            );
        }
        if spec.valid_until <= spec.valid_from {
            return err(Rule::WindowOrder, "valid_until must be after valid_from");
        }
        if spec.channels.is_empty() {
            return err(Rule::Empty, "at least one channel must be allowed");
        }
        if spec.merchants.as_ref().is_some_and(BTreeSet::is_empty) {
            return err(
                Rule::Empty,
                "an allowed-merchant list cannot be empty (omit it to allow any merchant)",
            );
        }
        Ok(DomainControls(spec))
    }

    pub fn spec(&self) -> &ControlsSpec {
        &self.0
    }
}

impl TryFrom<ControlsSpec> for DomainControls {
    type Error = ValidationError;
    fn try_from(spec: ControlsSpec) -> Result<Self, ValidationError> {
        DomainControls::new(spec)
    }
}
impl From<DomainControls> for ControlsSpec {
    fn from(c: DomainControls) -> ControlsSpec {
        c.0
    }
}

/// What a token has used: settled (committed) and held (reserved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub uses_committed: u32,
    pub uses_reserved: u32,
    pub amount_committed: u64,
    pub amount_reserved: u64,
}

/// One attempted use of a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseRequest {
    pub amount: u64,
    pub currency: Currency,
    pub channel: ChannelId,
    pub merchant: MerchantId,
}

/// The control a use was refused by. `control()` is a stable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlRefusal {
    #[error("the token is {}", .0.as_str())]
    Status(TokenStatus),
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's validity period has ended")]
    Expired,
    #[error("the token may not be used on this channel")]
    Channel,
    #[error("the token may not be used at this merchant")]
    Merchant,
    #[error("the token is for another currency")]
    Currency,
    #[error("the amount must be positive")]
    ZeroAmount,
    #[error("the amount exceeds the token's per-transaction limit")]
    PerTransactionAmount,
    #[error("the token has no uses left")]
    UseCount,
    #[error("the amount would exceed the token's cumulative limit")]
    CumulativeAmount,
}

impl ControlRefusal {
    pub fn control(self) -> &'static str {
        match self {
            ControlRefusal::Status(_) => "status",
            ControlRefusal::NotYetValid | ControlRefusal::Expired => "validity_period",
            ControlRefusal::Channel => "channel",
            ControlRefusal::Merchant => "merchant",
            ControlRefusal::Currency => "currency",
            ControlRefusal::ZeroAmount | ControlRefusal::PerTransactionAmount => "per_transaction_amount",
            ControlRefusal::UseCount => "use_count",
            ControlRefusal::CumulativeAmount => "cumulative_amount",
        }
    }
}

/// Checks every control and, if all pass, holds one use and the amount.
pub(crate) fn reserve(
    status: TokenStatus,
    controls: &DomainControls,
    usage: &mut Usage,
    request: &UseRequest,
    now: Timestamp,
) -> Result<(), ControlRefusal> {
    let c = controls.spec();
    if status != TokenStatus::Active {
        return Err(ControlRefusal::Status(status));
    }
    if now < c.valid_from {
        return Err(ControlRefusal::NotYetValid);
    }
    if now >= c.valid_until {
        return Err(ControlRefusal::Expired);
    }
    if !c.channels.contains(&request.channel) {
        return Err(ControlRefusal::Channel);
    }
    if c.merchants
        .as_ref()
        .is_some_and(|m| !m.contains(&request.merchant))
    {
        return Err(ControlRefusal::Merchant);
    }
    if request.currency != c.currency {
        return Err(ControlRefusal::Currency);
    }
    if request.amount == 0 {
        return Err(ControlRefusal::ZeroAmount);
    }
    if request.amount > c.per_transaction_limit {
        return Err(ControlRefusal::PerTransactionAmount);
    }
    let uses = u64::from(usage.uses_committed) + u64::from(usage.uses_reserved);
    if uses >= u64::from(c.max_uses) {
        return Err(ControlRefusal::UseCount);
    }
    // Checked sums: a total past the bound (or `u64`) is over any limit,
    // and nothing wraps into the stored usage.
    let total = checked_sum(usage.amount_committed, usage.amount_reserved)
        .and_then(|spent| checked_sum(spent, request.amount));
    let (Some(total), Some(amount_reserved)) = (total, checked_sum(usage.amount_reserved, request.amount))
    else {
        return Err(ControlRefusal::CumulativeAmount);
    };
    if total > c.cumulative_limit {
        return Err(ControlRefusal::CumulativeAmount);
    }
    usage.uses_reserved = usage
        .uses_reserved
        .checked_add(1)
        .ok_or(ControlRefusal::UseCount)?;
    usage.amount_reserved = amount_reserved;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::amount::MAX_MINOR_UNITS;

    pub(crate) fn spec() -> ControlsSpec {
        ControlsSpec {
            max_uses: 2,
            per_transaction_limit: 500,
            cumulative_limit: 700,
            currency: Currency::parse("CNY").unwrap(),
            valid_from: Timestamp(100),
            valid_until: Timestamp(200),
            channels: [ChannelId::parse("icbc-quickpay").unwrap()].into(),
            merchants: Some([MerchantId::parse("M001").unwrap()].into()),
        }
    }

    fn request(amount: u64) -> UseRequest {
        UseRequest {
            amount,
            currency: Currency::parse("CNY").unwrap(),
            channel: ChannelId::parse("icbc-quickpay").unwrap(),
            merchant: MerchantId::parse("M001").unwrap(),
        }
    }

    #[test]
    fn every_control_is_checked_and_named() {
        let controls = DomainControls::new(spec()).unwrap();
        let mut usage = Usage::default();
        let r = |status, usage: &mut Usage, req: &UseRequest, now| {
            reserve(status, &controls, usage, req, Timestamp(now))
        };
        let ok = request(300);
        assert_eq!(
            r(TokenStatus::Suspended, &mut usage, &ok, 150)
                .unwrap_err()
                .control(),
            "status"
        );
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &ok, 99).unwrap_err(),
            ControlRefusal::NotYetValid
        );
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &ok, 200).unwrap_err(),
            ControlRefusal::Expired
        );
        let mut other = ok.clone();
        other.channel = ChannelId::parse("ccb").unwrap();
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &other, 150).unwrap_err(),
            ControlRefusal::Channel
        );
        let mut other = ok.clone();
        other.merchant = MerchantId::parse("M002").unwrap();
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &other, 150).unwrap_err(),
            ControlRefusal::Merchant
        );
        let mut other = ok.clone();
        other.currency = Currency::parse("USD").unwrap();
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &other, 150).unwrap_err(),
            ControlRefusal::Currency
        );
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &request(501), 150).unwrap_err(),
            ControlRefusal::PerTransactionAmount
        );
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &request(0), 150).unwrap_err(),
            ControlRefusal::ZeroAmount
        );
        assert_eq!(usage, Usage::default(), "refusals reserve nothing");
        r(TokenStatus::Active, &mut usage, &ok, 150).unwrap();
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &request(500), 150).unwrap_err(),
            ControlRefusal::CumulativeAmount
        );
        r(TokenStatus::Active, &mut usage, &request(400), 150).unwrap();
        assert_eq!(
            r(TokenStatus::Active, &mut usage, &request(1), 150).unwrap_err(),
            ControlRefusal::UseCount
        );
        assert_eq!(
            usage,
            Usage {
                uses_reserved: 2,
                amount_reserved: 700,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn invalid_specs_are_refused_even_when_read_back() {
        let mut s = spec();
        s.max_uses = 0;
        assert!(DomainControls::new(s).is_err());
        let mut s = spec();
        s.per_transaction_limit = 900;
        assert!(DomainControls::new(s).is_err());
        let mut s = spec();
        s.valid_until = s.valid_from;
        assert_eq!(
            DomainControls::new(s.clone()).unwrap_err().rule,
            Rule::WindowOrder
        );
        let mut s = spec();
        s.channels.clear();
        assert!(DomainControls::new(s).is_err());
        let mut s = spec();
        s.merchants = Some(BTreeSet::new());
        assert!(DomainControls::new(s.clone()).is_err());
        let bytes = postcard::to_allocvec(&s).unwrap();
        assert!(postcard::from_bytes::<DomainControls>(&bytes).is_err());
        assert!(ChannelId::parse("bad channel").is_err());
        assert!(Currency::parse("cny").is_err());
    }

    #[test]
    fn limits_past_the_amount_bound_are_refused() {
        let mut s = spec();
        s.per_transaction_limit = MAX_MINOR_UNITS;
        s.cumulative_limit = MAX_MINOR_UNITS;
        assert!(DomainControls::new(s.clone()).is_ok());
        s.cumulative_limit = MAX_MINOR_UNITS + 1;
        assert_eq!(DomainControls::new(s.clone()).unwrap_err().rule, Rule::OutOfRange);
        s.per_transaction_limit = u64::MAX;
        s.cumulative_limit = u64::MAX;
        assert_eq!(DomainControls::new(s).unwrap_err().rule, Rule::OutOfRange);
        assert_eq!(Currency::parse("XTS").unwrap_err().rule, Rule::UnknownCurrency);
        assert_eq!(Currency::parse("ABC").unwrap_err().rule, Rule::UnknownCurrency);
        assert!(Currency::parse("JPY").is_ok());
    }

    /// Limits at the bound: two reservations that together pass it are
    /// refused, never wrapped; a usage already at the bound (a stored
    /// record written before the bound) refuses instead of overflowing.
    #[test]
    fn sums_across_the_bound_are_refused_not_wrapped() {
        let mut s = spec();
        s.max_uses = 10;
        s.per_transaction_limit = MAX_MINOR_UNITS;
        s.cumulative_limit = MAX_MINOR_UNITS;
        let controls = DomainControls::new(s).unwrap();
        let now = Timestamp(150);
        let mut usage = Usage::default();
        reserve(
            TokenStatus::Active,
            &controls,
            &mut usage,
            &request(MAX_MINOR_UNITS - 1),
            now,
        )
        .unwrap();
        reserve(TokenStatus::Active, &controls, &mut usage, &request(1), now).unwrap();
        assert_eq!(usage.amount_reserved, MAX_MINOR_UNITS);
        assert_eq!(
            reserve(TokenStatus::Active, &controls, &mut usage, &request(1), now).unwrap_err(),
            ControlRefusal::CumulativeAmount
        );
        let mut corrupt = Usage {
            amount_reserved: u64::MAX,
            amount_committed: u64::MAX,
            ..Usage::default()
        };
        assert_eq!(
            reserve(TokenStatus::Active, &controls, &mut corrupt, &request(1), now).unwrap_err(),
            ControlRefusal::CumulativeAmount
        );
    }

    proptest::proptest! {
        /// Any sequence of reservations (0, 1, the bound, around it) keeps
        /// the held amount within the cumulative limit and the use count
        /// within max_uses; a refusal changes nothing.
        #[test]
        fn reservations_never_pass_a_limit(
            limit in proptest::prop_oneof![
                proptest::prelude::Just(MAX_MINOR_UNITS),
                proptest::prelude::Just(MAX_MINOR_UNITS - 1),
                1u64..=MAX_MINOR_UNITS,
            ],
            amounts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(0u64),
                    proptest::prelude::Just(1u64),
                    proptest::prelude::Just(MAX_MINOR_UNITS),
                    proptest::prelude::Just(MAX_MINOR_UNITS - 1),
                    proptest::prelude::Just(MAX_MINOR_UNITS + 1),
                    proptest::prelude::Just(u64::MAX),
                    proptest::prelude::any::<u64>(),
                ],
                1..12,
            ),
        ) {
            let mut s = spec();
            s.max_uses = 8;
            s.per_transaction_limit = limit;
            s.cumulative_limit = limit;
            let controls = DomainControls::new(s).unwrap();
            let mut usage = Usage::default();
            for amount in amounts {
                let before = usage;
                match reserve(TokenStatus::Active, &controls, &mut usage, &request(amount), Timestamp(150)) {
                    Ok(()) => proptest::prop_assert_eq!(usage.amount_reserved, before.amount_reserved + amount),
                    Err(_) => proptest::prop_assert_eq!(usage, before),
                }
                proptest::prop_assert!(usage.amount_reserved <= limit);
                proptest::prop_assert!(usage.uses_reserved <= 8);
            }
        }
    }
}
