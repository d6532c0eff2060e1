//! The vault checks itself: every token's committed uses and amount
//! against the payments that committed them (succeeded, and not taken
//! after the platform released their use), and every payment's refunds
//! against what it captured. There should be no drift; any found is
//! reported with the payment or binding it concerns, never a card number.
//!
//! Two kinds of token drift have causes outside a fault, which the report
//! names: payments deleted by retention leave their token's uses counted
//! (committed above the payments), and a card erased takes its tokens
//! with it (payments with no token left are counted, not drift).

use super::super::binding::BindingId;
use super::super::payment::{PaymentId, PaymentRecord, PaymentStatus, PAID_AFTER_RELEASE};
use super::super::{OrchestrationError, Orchestrator};
use crate::audit::Actor;
use crate::store::{keyspace, Store};
use crate::vault::token::{TokenNumber, Usage};
use crate::vault::{decode, Layer, Vault};
use std::collections::BTreeMap;

/// What the payments committed on one token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    pub uses: u64,
    pub amount: u64,
    /// The binding the token belongs to, to name it in a report.
    pub binding: Option<BindingId>,
}

/// One disagreement the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drift {
    /// The token's committed uses or amount is not what its payments add
    /// up to. `above` when the token counts more: deleted payments can
    /// explain that, nothing explains the other way.
    TokenUsage {
        binding: Option<BindingId>,
        token_last4: String,
        token_uses: u64,
        payment_uses: u64,
        token_amount: u64,
        payment_amount: u64,
    },
    /// Refunds (succeeded or in flight) add up to more than the payment captured.
    RefundsExceedCapture {
        payment: PaymentId,
        captured: u64,
        refunds: u64,
    },
    /// A refund on a payment that never succeeded.
    RefundOfUnpaid {
        payment: PaymentId,
        status: PaymentStatus,
    },
}

impl Drift {
    pub fn kind(&self) -> &'static str {
        match self {
            Drift::TokenUsage { .. } => "token_usage",
            Drift::RefundsExceedCapture { .. } => "refunds_exceed_capture",
            Drift::RefundOfUnpaid { .. } => "refund_of_unpaid",
        }
    }
}

/// The check's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerReport {
    pub tokens: u64,
    pub payments: u64,
    /// Payments whose token is gone (its card erased).
    pub payments_without_token: u64,
    pub drift: Vec<Drift>,
}

/// What the payments say of each token, and the refund drift of each
/// payment, one payment at a time (the check holds no payment, only a
/// tally per token).
#[derive(Default)]
pub struct Tally {
    pub by_token: BTreeMap<TokenNumber, Committed>,
    pub drift: Vec<Drift>,
    pub payments: u64,
}

impl Tally {
    pub fn add(&mut self, payment: &PaymentRecord) {
        self.payments += 1;
        let committed = payment.status == PaymentStatus::Succeeded
            && payment.failure.as_deref() != Some(PAID_AFTER_RELEASE);
        let entry = self.by_token.entry(payment.token.clone()).or_default();
        entry.binding.get_or_insert_with(|| payment.binding.clone());
        if committed {
            entry.uses += 1;
            entry.amount = entry.amount.saturating_add(payment.amount);
        }
        let refunds = payment.refunds_claimed();
        if payment.status != PaymentStatus::Succeeded && !payment.refunds.is_empty() {
            self.drift.push(Drift::RefundOfUnpaid {
                payment: payment.id.clone(),
                status: payment.status,
            });
        } else if refunds > payment.amount {
            self.drift.push(Drift::RefundsExceedCapture {
                payment: payment.id.clone(),
                captured: payment.amount,
                refunds,
            });
        }
    }
}

/// A token's usage against what its payments committed, as drift if they differ.
pub fn token_drift(number: &TokenNumber, usage: &Usage, committed: Option<&Committed>) -> Option<Drift> {
    let nothing = Committed::default();
    let committed = committed.unwrap_or(&nothing);
    let (uses, amount) = (u64::from(usage.uses_committed), usage.amount_committed);
    (uses != committed.uses || amount != committed.amount).then(|| {
        let text = number.to_string();
        Drift::TokenUsage {
            binding: committed.binding.clone(),
            token_last4: text[text.len().saturating_sub(4)..].to_owned(),
            token_uses: uses,
            payment_uses: committed.uses,
            token_amount: amount,
            payment_amount: committed.amount,
        }
    })
}

impl Orchestrator {
    /// Runs the ledger check as `actor`, audited with what it found.
    pub async fn ledger_check<S: Store>(
        &self,
        vault: &Vault<S>,
        actor: &Actor,
    ) -> Result<LedgerReport, OrchestrationError> {
        let mut tally = Tally::default();
        vault
            .store_view(Layer::Orchestration)
            .for_each_under(keyspace::PAYMENT.as_bytes(), |_, raw| {
                tally.add(&decode::<PaymentRecord>(raw, "payment")?);
                Ok(())
            })
            .await?;
        let Tally {
            by_token: mut committed,
            mut drift,
            payments: count,
        } = tally;
        let mut tokens = 0u64;
        vault
            .for_each_token_usage(|number, usage| {
                tokens += 1;
                let mine = committed.remove(number);
                drift.extend(token_drift(number, usage, mine.as_ref()));
            })
            .await?;
        // What is left has no token: its card was erased.
        let without_token = committed.values().filter(|c| c.uses > 0).count() as u64;
        let report = LedgerReport {
            tokens,
            payments: count,
            payments_without_token: without_token,
            drift,
        };
        let detail = format!(
            "ledger tokens={} payments={} drift={}",
            report.tokens,
            report.payments,
            report.drift.len()
        );
        super::queue::read_recorded(vault, actor, detail).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(uses: u32, amount: u64) -> Usage {
        Usage {
            uses_committed: uses,
            uses_reserved: 0,
            amount_committed: amount,
            amount_reserved: 0,
        }
    }

    #[test]
    fn a_token_agreeing_with_its_payments_is_no_drift_and_any_difference_is() {
        let number = TokenNumber::parse("8100000000001232").unwrap();
        let committed = Committed {
            uses: 2,
            amount: 700,
            binding: None,
        };
        assert_eq!(token_drift(&number, &usage(2, 700), Some(&committed)), None);
        assert_eq!(token_drift(&number, &usage(0, 0), None), None, "an unused token");
        let drift = token_drift(&number, &usage(3, 700), Some(&committed)).unwrap();
        assert!(
            matches!(&drift, Drift::TokenUsage { token_last4, token_uses: 3, payment_uses: 2, .. } if token_last4 == "1232"),
            "{drift:?}"
        );
        assert!(token_drift(&number, &usage(2, 701), Some(&committed)).is_some());
        assert!(
            token_drift(&number, &usage(1, 100), None).is_some(),
            "uses no payment made"
        );
    }
}
