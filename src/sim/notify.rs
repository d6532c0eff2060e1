//! Delivering payment notifications to the platform the way banks do:
//! after a delay, several times, concurrently, over mutual TLS with the
//! bank's own certificate, each signed with the bank's key. Deliveries are not retried on failure; the
//! platform's query is the fallback.

use crate::channel::{signature, ChannelClient};
use crate::sim::payments::Delivery;
use crate::sim::routes::Sim;
use std::sync::Arc;
use std::time::Duration;

/// `https://host:port/path` → (`https://host:port`, `/path`).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("https://")?;
    let slash = rest.find('/')?;
    Some(url.split_at("https://".len() + slash))
}

pub(super) async fn deliver(sim: Arc<Sim>, delivery: Delivery) {
    tokio::time::sleep(Duration::from_millis(delivery.delay_ms)).await;
    let order_no = delivery.notification.order_no.clone();
    if !sim.bank.settle(&order_no) {
        return;
    }
    let Some((base, path)) = split_url(&delivery.notify_url) else {
        tracing::warn!(url = %delivery.notify_url, "notification URL is not https://host/path");
        return;
    };
    let client = match ChannelClient::new(base, &sim.notify_tls, Duration::from_secs(10)) {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the notification client");
            return;
        }
    };
    let body = match serde_json::to_vec(&delivery.notification) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode a notification");
            return;
        }
    };
    let Ok(nonce) = crate::domain::random::array::<16>() else {
        tracing::warn!("no randomness for a notification's nonce");
        return;
    };
    let signed = signature::sign(
        &sim.signing_key,
        &body,
        crate::domain::time::Timestamp::now().seconds(),
        crate::hex::encode(&nonce),
    );
    let headers = [
        (signature::TIMESTAMP_HEADER, signed.timestamp.to_string()),
        (signature::NONCE_HEADER, signed.nonce),
        (signature::SIGNATURE_HEADER, signed.signature),
    ];
    let sends = (0..delivery.repeats).map(|_| {
        let (client, body, path, sim, order_no, headers) = (
            client.clone(),
            body.clone(),
            path.to_owned(),
            Arc::clone(&sim),
            order_no.clone(),
            headers.clone(),
        );
        tokio::spawn(async move {
            match client.post_json_with(&path, body, &headers).await {
                Ok(reply) if (200..300).contains(&reply.status) => sim.bank.count_notification(&order_no),
                Ok(reply) => tracing::warn!(status = reply.status, %order_no, "notification refused"),
                Err(e) => tracing::warn!(error = %e, %order_no, "notification not delivered"),
            }
        })
    });
    for send in sends.collect::<Vec<_>>() {
        let _delivered_or_logged = send.await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_at_the_path() {
        assert_eq!(
            super::split_url("https://127.0.0.1:8443/v1/channel-notifications/a"),
            Some(("https://127.0.0.1:8443", "/v1/channel-notifications/a"))
        );
        assert_eq!(super::split_url("http://x/y"), None);
        assert_eq!(super::split_url("https://x"), None);
    }
}
