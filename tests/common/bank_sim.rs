//! Starts `tokenvault bank-sim` as its own process on 127.0.0.1 port 0,
//! with cardholders and flags chosen by the test, and drives its admin API
//! (faults, SMS outbox, agreements) over mutual TLS as `sim-admin`.

use super::service::{spawn_announcing, Client, Tls};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use tokenvault::tls::pki::PkiLayout;

pub struct BankSim {
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    /// The public key it signs notifications with (PEM).
    pub signing_public: PathBuf,
    admin: Client,
    child: Child,
}

/// One cardholder line of the simulator's CSV.
pub struct Holder<'a> {
    pub card_no: &'a str,
    pub name: &'a str,
    pub id_no: &'a str,
    pub phone: &'a str,
    /// `debit`, or `credit` with (cvn, expiry MMYY).
    pub credit: Option<(&'a str, &'a str)>,
}

impl BankSim {
    pub fn start(
        keys: &PkiLayout,
        dir: &Path,
        name: &str,
        holders: &[Holder<'_>],
        flags: &[&str],
    ) -> BankSim {
        let csv = dir.join(format!("{name}-cardholders.csv"));
        let mut text = String::new();
        for h in holders {
            let (kind, cvn, expiry) = match h.credit {
                Some((cvn, expiry)) => ("credit", cvn, expiry),
                None => ("debit", "", ""),
            };
            text.push_str(&format!(
                "{},{},{},{},{kind},{cvn},{expiry},1000000\n",
                h.card_no, h.name, h.id_no, h.phone
            ));
        }
        std::fs::write(&csv, text).unwrap();
        let log_path = dir.join(format!("{name}.log"));
        let mut args = vec![
            "bank-sim",
            "--listen",
            "127.0.0.1:0",
            "--expose-sms",
            "--keys-dir",
            keys.dir.to_str().unwrap(),
            "--cardholders",
            csv.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        let (child, addr) = spawn_announcing(&args, &log_path, "bank-sim listening on https://");
        let admin = Client::new(
            addr,
            &keys.ca_cert(),
            Some((&keys.client_cert("sim-admin"), &keys.client_key("sim-admin"))),
            Tls::V13,
        );
        BankSim {
            addr,
            log_path,
            signing_public: keys.bank_sim_signing_public(),
            admin,
            child,
        }
    }

    /// TOML adding this simulator as gateway channel `id`.
    pub fn channel_config(&self, id: &str) -> String {
        format!(
            "[[gateway.channels]]\nid = \"{id}\"\nendpoint = \"https://127.0.0.1:{}\"\nnotify_identity = \"spiffe://tokenvault/bank-sim\"\nnotify_public_key = \"{}\"\n",
            self.addr.port(),
            self.signing_public.display()
        )
    }

    /// Seeds the ledger with `count` payments of `merchant` traded at
    /// `at` (`tokenvault::sim::seed`), for the reconciliation benchmark.
    pub async fn seed_ledger(&self, merchant: &str, count: u64, at: i64) {
        let body =
            serde_json::to_vec(&serde_json::json!({ "merchant_id": merchant, "count": count, "at": at }))
                .unwrap();
        let r = self
            .admin
            .send(
                "POST",
                "/sim/admin/ledger/seed",
                &[("Content-Type", "application/json")],
                Some(&body),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }

    pub fn pid(&self) -> Option<u32> {
        Some(self.child.id())
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// Messages the bank or the carrier sent to `phone`, oldest first.
    pub async fn sms(&self, phone: &str) -> Vec<serde_json::Value> {
        let r = self.admin.get(&format!("/sim/admin/sms/{phone}")).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().as_array().unwrap().clone()
    }

    /// The code of the newest message to `phone`, and who sent it.
    pub async fn last_code(&self, phone: &str) -> (String, String) {
        let all = self.sms(phone).await;
        let last = all.last().expect("an SMS was sent");
        (
            last["code"].as_str().unwrap().to_owned(),
            last["sender"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn set_faults(&self, faults: serde_json::Value) {
        let body = serde_json::to_vec(&faults).unwrap();
        let r = self
            .admin
            .send(
                "PUT",
                "/sim/admin/faults",
                &[("Content-Type", "application/json")],
                Some(&body),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// The bank's back office decides order `order_no` (`paid` or
    /// `closed`) without notifying anyone.
    pub async fn decide(&self, order_no: &str, outcome: &str) -> serde_json::Value {
        let body = serde_json::to_vec(&serde_json::json!({ "outcome": outcome })).unwrap();
        let r = self
            .admin
            .send(
                "POST",
                &format!("/sim/admin/orders/{order_no}/decision"),
                &[("Content-Type", "application/json")],
                Some(&body),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    pub async fn agreements(&self) -> Vec<serde_json::Value> {
        self.admin
            .get("/sim/admin/agreements")
            .await
            .unwrap()
            .json()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The bank's orders (no card numbers): status, amount, refunded,
    /// notifications delivered.
    pub async fn orders(&self) -> Vec<serde_json::Value> {
        let r = self.admin.get("/sim/admin/orders").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().as_array().unwrap().clone()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends a signal (`HUP`) to the simulator process.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for BankSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
