//! The simulated bank's books: applications for signing, agreements, the
//! SMS outbox. All rules run under one lock; the simulator is a test tool,
//! not a performance reference for the bank side.

use crate::channel::protocol::{
    ApplyRequest, ApplyResponse, ApplyResult, CancelRequest, ConfirmRequest, ConfirmResponse, Refusal,
    RefusalCode, SmsRequest,
};
use crate::sim::cardholders::Cardholders;
use crate::sim::faults::{Faults, VerifyMode};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// An application (and its SMS code) lives this long.
const APPLY_TTL: Duration = Duration::from_secs(300);
/// Wrong codes before the bank kills the application.
const MAX_CODE_ATTEMPTS: u32 = 5;

fn refuse(code: RefusalCode, message: &str) -> Refusal {
    Refusal {
        code,
        message: message.to_owned(),
    }
}

enum ApplyState {
    Open,
    Locked,
    Signed(String),
}

struct Application {
    card_no: Zeroizing<String>,
    merchant_id: String,
    user_ref: String,
    code: Option<Zeroizing<String>>,
    attempts: u32,
    created: Instant,
    state: ApplyState,
}

struct Agreement {
    card_no: Zeroizing<String>,
    merchant_id: String,
    user_ref: String,
    active: bool,
}

/// One message the bank or the carrier sent, as the admin API shows it.
#[derive(Clone, Serialize)]
pub struct SentSms {
    pub seq: u64,
    pub sender: &'static str,
    pub phone: String,
    pub text: String,
    /// The first 6-digit run of the text: the code a user would type.
    pub code: Option<String>,
}

/// What the admin API shows of an agreement: never the full card number.
#[derive(Clone, Serialize)]
pub struct AgreementView {
    pub merchant_id: String,
    pub user_ref: String,
    pub card_last4: String,
    pub active: bool,
}

/// Agreements by number, and the active one of each (merchant, user, card).
#[derive(Default)]
struct AgreementBook {
    by_number: HashMap<String, Agreement>,
    active: HashMap<(String, String, String), String>,
}

#[derive(Default)]
struct Books {
    applications: HashMap<String, Application>,
    agreements: AgreementBook,
    /// request_no → the first answer, so a repeated apply is answered alike.
    answered: HashMap<String, Result<ApplyResponse, RefusalCode>>,
    outbox: Vec<SentSms>,
}

pub struct Bank {
    pub(super) holders: Cardholders,
    faults: RwLock<Faults>,
    books: Mutex<Books>,
    pub(super) orders: Mutex<crate::sim::payments::Orders>,
    /// The file last rendered, which the parts after the first are cut from.
    pub(super) rendered: Mutex<Option<crate::sim::statement::Rendered>>,
}

fn random_digits(n: usize) -> Result<String, Refusal> {
    (0..n)
        .map(|_| {
            crate::domain::random::below(10)
                .map(|d| char::from(b'0' + d as u8))
                .map_err(|_| refuse(RefusalCode::SystemError, "no randomness"))
        })
        .collect()
}

/// Constant-time for equal lengths (codes, CVNs): no early exit on the
/// first differing byte.
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn first_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    bytes
        .windows(6)
        .enumerate()
        .find(|(i, w)| {
            w.iter().all(u8::is_ascii_digit)
                && bytes.get(i + 6).is_none_or(|b| !b.is_ascii_digit())
                && (*i == 0 || !bytes[i - 1].is_ascii_digit())
        })
        .map(|(_, w)| String::from_utf8_lossy(w).into_owned())
}

impl Bank {
    pub fn new(holders: Cardholders, faults: Faults) -> Self {
        Bank {
            holders,
            faults: RwLock::new(faults),
            books: Mutex::new(Books::default()),
            orders: Mutex::new(crate::sim::payments::Orders::default()),
            rendered: Mutex::new(None),
        }
    }

    pub fn faults(&self) -> Faults {
        self.faults.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn apply(&self, request: &ApplyRequest) -> Result<ApplyResponse, Refusal> {
        let faults = self.faults();
        let mut books = self.books();
        if let Some(first) = books.answered.get(&request.request_no) {
            return first.clone().map_err(|code| refuse(code, "repeated request"));
        }
        let answer = self.apply_new(&mut books, &faults, request);
        let remembered = match &answer {
            Ok(response) => Ok(response.clone()),
            Err(refusal) => Err(refusal.code),
        };
        books.answered.insert(request.request_no.clone(), remembered);
        answer
    }

    fn apply_new(
        &self,
        books: &mut Books,
        faults: &Faults,
        request: &ApplyRequest,
    ) -> Result<ApplyResponse, Refusal> {
        let holder = self
            .holders
            .get(request.card_no.as_str())
            .ok_or_else(|| refuse(RefusalCode::CardUnknown, "card not issued by this bank"))?;
        // Identity first, then "already signed", the way banks answer.
        let name_ok = same(&holder.name, &request.name);
        let rest_ok = faults.verify == VerifyMode::CardAndName
            || (same(&holder.id_no, &request.id_no.to_ascii_uppercase())
                && same(&holder.phone, &request.phone));
        if !(name_ok && rest_ok) {
            return Err(refuse(
                RefusalCode::ElementsMismatch,
                "cardholder information does not match",
            ));
        }
        if books
            .agreements
            .is_signed(&request.merchant_id, &request.user_ref, &request.card_no)
        {
            return Err(refuse(RefusalCode::AlreadySigned, "an agreement already exists"));
        }
        let apply_no = format!("AP{}", random_digits(16)?);
        let mut application = Application {
            card_no: request.card_no.clone(),
            merchant_id: request.merchant_id.clone(),
            user_ref: request.user_ref.clone(),
            code: None,
            attempts: 0,
            created: Instant::now(),
            state: ApplyState::Open,
        };
        let (result, agreement_no) = if faults.verify == VerifyMode::CardAndName {
            let agreement_no =
                books
                    .agreements
                    .sign(&request.card_no, &request.merchant_id, &request.user_ref)?;
            application.state = ApplyState::Signed(agreement_no.clone());
            (ApplyResult::Signed, Some(agreement_no))
        } else if faults.sends_sms {
            let code = random_digits(6)?;
            let text = format!("【模拟银行】验证码{code}，用于快捷支付签约，5分钟内有效。");
            push_sms(books, "bank", &holder.phone, &text);
            application.code = Some(Zeroizing::new(code));
            (ApplyResult::SmsSent, None)
        } else {
            (ApplyResult::SmsNotSent, None)
        };
        books.applications.insert(apply_no.clone(), application);
        Ok(ApplyResponse {
            result,
            apply_no,
            card_kind: holder.kind,
            agreement_no,
        })
    }

    pub fn confirm(&self, request: &ConfirmRequest) -> Result<ConfirmResponse, Refusal> {
        let mut books = self.books();
        let books = &mut *books;
        let application = books
            .applications
            .get_mut(&request.apply_no)
            .filter(|a| a.merchant_id == request.merchant_id)
            .ok_or_else(|| refuse(RefusalCode::ApplyUnknown, "no such application"))?;
        match &application.state {
            ApplyState::Signed(agreement_no) => {
                return Ok(ConfirmResponse {
                    agreement_no: Zeroizing::new(agreement_no.clone()),
                })
            }
            ApplyState::Locked => return Err(refuse(RefusalCode::SmsCodeLocked, "too many wrong codes")),
            ApplyState::Open => {}
        }
        if application.created.elapsed() > APPLY_TTL {
            return Err(refuse(RefusalCode::ApplyExpired, "the application has expired"));
        }
        if let Some(expected) = &application.code {
            let given = request.sms_code.as_ref().map_or("", |c| c.as_str());
            if !same(expected, given) {
                application.attempts += 1;
                if application.attempts >= MAX_CODE_ATTEMPTS {
                    application.state = ApplyState::Locked;
                    return Err(refuse(RefusalCode::SmsCodeLocked, "too many wrong codes"));
                }
                return Err(refuse(RefusalCode::SmsCodeMismatch, "wrong SMS code"));
            }
        }
        let holder = self
            .holders
            .get(application.card_no.as_str())
            .ok_or_else(|| refuse(RefusalCode::CardUnknown, "card not issued by this bank"))?;
        if let (Some(cvn), Some(expiry)) = (&holder.cvn, &holder.expiry) {
            let given_cvn = request.cvn.as_ref().map_or("", |c| c.as_str());
            let given_expiry = request.expiry.as_ref().map_or("", |e| e.as_str());
            if !(same(cvn, given_cvn) && same(expiry, given_expiry)) {
                return Err(refuse(
                    RefusalCode::CardVerificationFailed,
                    "card verification failed",
                ));
            }
        }
        let agreement_no = books.agreements.sign(
            &application.card_no,
            &application.merchant_id,
            &application.user_ref,
        )?;
        application.state = ApplyState::Signed(agreement_no.clone());
        Ok(ConfirmResponse {
            agreement_no: Zeroizing::new(agreement_no),
        })
    }

    /// Ends an agreement. Cancelling one already cancelled answers alike.
    pub fn cancel(&self, request: &CancelRequest) -> Result<(), Refusal> {
        let mut books = self.books();
        let books = &mut *books;
        let agreement = books
            .agreements
            .by_number
            .get_mut(request.agreement_no.as_str())
            .filter(|a| a.merchant_id == request.merchant_id)
            .ok_or_else(|| refuse(RefusalCode::AgreementUnknown, "no such agreement"))?;
        if agreement.active {
            agreement.active = false;
            books.agreements.active.remove(&(
                agreement.merchant_id.clone(),
                agreement.user_ref.clone(),
                agreement.card_no.to_string(),
            ));
        }
        Ok(())
    }

    /// The card of an active agreement of `merchant_id`.
    pub(super) fn agreement_card(&self, merchant_id: &str, agreement_no: &str) -> Option<Zeroizing<String>> {
        self.books()
            .agreements
            .by_number
            .get(agreement_no)
            .filter(|a| a.active && a.merchant_id == merchant_id)
            .map(|a| a.card_no.clone())
    }

    /// The SMS carrier: the platform's own codes, where a bank sends none.
    pub fn carrier_send(&self, request: &SmsRequest) -> String {
        let mut books = self.books();
        push_sms(&mut books, "carrier", &request.phone, &request.text)
    }

    pub fn outbox(&self, phone: Option<&str>) -> Vec<SentSms> {
        self.books()
            .outbox
            .iter()
            .filter(|m| phone.is_none_or(|p| m.phone == p))
            .cloned()
            .collect()
    }

    pub fn agreements(&self) -> Vec<AgreementView> {
        self.books()
            .agreements
            .by_number
            .values()
            .map(|a| AgreementView {
                merchant_id: a.merchant_id.clone(),
                user_ref: a.user_ref.clone(),
                card_last4: a.card_no[a.card_no.len().saturating_sub(4)..].to_owned(),
                active: a.active,
            })
            .collect()
    }
}

impl AgreementBook {
    fn is_signed(&self, merchant_id: &str, user_ref: &str, card_no: &str) -> bool {
        self.active
            .contains_key(&(merchant_id.to_owned(), user_ref.to_owned(), card_no.to_owned()))
    }

    /// A new active agreement, unless this user already has one for the card.
    fn sign(
        &mut self,
        card_no: &Zeroizing<String>,
        merchant_id: &str,
        user_ref: &str,
    ) -> Result<String, Refusal> {
        if self.is_signed(merchant_id, user_ref, card_no) {
            return Err(refuse(RefusalCode::AlreadySigned, "an agreement already exists"));
        }
        let agreement_no = format!("AG{}", random_digits(18)?);
        self.by_number.insert(
            agreement_no.clone(),
            Agreement {
                card_no: card_no.clone(),
                merchant_id: merchant_id.to_owned(),
                user_ref: user_ref.to_owned(),
                active: true,
            },
        );
        self.active.insert(
            (merchant_id.to_owned(), user_ref.to_owned(), card_no.to_string()),
            agreement_no.clone(),
        );
        Ok(agreement_no)
    }
}

fn push_sms(books: &mut Books, sender: &'static str, phone: &str, text: &str) -> String {
    let seq = books.outbox.len() as u64 + 1;
    books.outbox.push(SentSms {
        seq,
        sender,
        phone: phone.to_owned(),
        text: text.to_owned(),
        code: first_code(text),
    });
    format!("SMS{seq:08}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_request(request_no: &str, phone: &str) -> ApplyRequest {
        ApplyRequest {
            merchant_id: "m".into(),
            user_ref: "u".into(),
            request_no: request_no.into(),
            card_no: Zeroizing::new("6222020000000000018".into()),
            name: Zeroizing::new("张三".into()),
            id_no: Zeroizing::new("11010519491231002x".into()),
            phone: Zeroizing::new(phone.into()),
        }
    }

    #[test]
    fn identity_is_checked_before_already_signed_and_repeats_answer_alike() {
        let bank = Bank::new(super::super::cardholders::embedded().unwrap(), Faults::default());
        let first = bank.apply(&apply_request("r1", "13800138000")).unwrap();
        assert_eq!(first.result, ApplyResult::SmsSent);
        let code = bank.outbox(Some("13800138000"))[0].code.clone().unwrap();
        let confirm = |code: &str| ConfirmRequest {
            merchant_id: "m".into(),
            apply_no: first.apply_no.clone(),
            sms_code: Some(Zeroizing::new(code.into())),
            cvn: None,
            expiry: None,
        };
        let wrong = if code == "000000" { "000001" } else { "000000" };
        assert_eq!(
            bank.confirm(&confirm(wrong)).err().unwrap().code,
            RefusalCode::SmsCodeMismatch
        );
        let signed = bank.confirm(&confirm(&code)).unwrap();
        // Confirming again gives the same agreement, not a second one.
        assert_eq!(
            *bank.confirm(&confirm(&code)).unwrap().agreement_no,
            *signed.agreement_no
        );
        // A repeated request number is answered as the first time.
        assert_eq!(
            bank.apply(&apply_request("r1", "13800138000")).unwrap().apply_no,
            first.apply_no
        );
        // Signed already: wrong elements are still "mismatch" (identity first) …
        let mismatch = bank.apply(&apply_request("r2", "13900139000")).err().unwrap();
        assert_eq!(mismatch.code, RefusalCode::ElementsMismatch);
        // … and right ones are "already signed".
        let again = bank.apply(&apply_request("r3", "13800138000")).err().unwrap();
        assert_eq!(again.code, RefusalCode::AlreadySigned);
        assert_eq!(bank.agreements().len(), 1);
        assert_eq!(bank.agreements()[0].card_last4, "0018");
    }

    #[test]
    fn the_code_is_the_first_run_of_exactly_six_digits() {
        assert_eq!(first_code("验证码123456，5分钟").as_deref(), Some("123456"));
        assert_eq!(first_code("ref 1234567 code 654321").as_deref(), Some("654321"));
        assert_eq!(first_code("no code"), None);
    }
}
