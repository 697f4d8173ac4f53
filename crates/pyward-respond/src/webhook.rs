//! HTTP webhook sink: `POST` of Falco's JSON alert to falcosidekick (`http://host:2801/`) or
//! any `http://` endpoint.
//!
//! The event path only serialises the alert and `try_send`s it into a bounded queue; a worker
//! thread delivers, retrying connect errors, timeouts and 5xx answers with exponential
//! backoff. A full queue or exhausted retries count as drops: the sensor is never slowed
//! down by a slow or dead collector, and no loss is silent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyward_rules::Alert;

use crate::sink::{Sink, SinkError, SinkStats};

/// Webhook settings; [`WebhookConfig::new`] gives sensible defaults.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// `http://host[:port]/path`. `https://` is refused (this build has no TLS).
    pub url: String,
    /// Alerts waiting for delivery at most; more are dropped and counted.
    pub queue_capacity: usize,
    /// Attempts after the first one for one alert.
    pub max_retries: u32,
    /// Delay before the first retry; doubled at each retry up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest delay between two attempts.
    pub max_backoff: Duration,
    /// Time limit of one attempt (connect, send, answer).
    pub timeout: Duration,
}

impl WebhookConfig {
    /// Defaults: queue of 1024 alerts, 5 retries from 100 ms doubling to 5 s, 5 s per attempt.
    pub fn new(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.to_owned(),
            queue_capacity: 1024,
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    retried: AtomicU64,
}

/// Shutdown signal: the deadline by which the worker must be gone.
#[derive(Default)]
struct Shutdown {
    deadline: Mutex<Option<Instant>>,
    cv: Condvar,
}

impl Shutdown {
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleep `d`, or less if shutdown asks to hurry; `false` if the deadline has passed.
    fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        let mut g = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            if let Some(dl) = *g {
                if now >= dl {
                    return false;
                }
            }
            let until = match *g {
                Some(dl) => end.min(dl),
                None => end,
            };
            if now >= until {
                return g.is_none_or(|dl| now < dl);
            }
            g = match self.cv.wait_timeout(g, until - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// The webhook sink. Drop or [`Sink::close`] it to stop the worker.
pub struct WebhookSink {
    name: String,
    tx: Option<SyncSender<Vec<u8>>>,
    counters: Arc<Counters>,
    shutdown: Arc<Shutdown>,
    worker: Option<JoinHandle<()>>,
}

/// Check a webhook URL: `http://` with a host. Returns the URL to use.
pub fn validate_url(url: &str) -> Result<String, SinkError> {
    let err = |m: String| SinkError::Config {
        sink: "webhook".into(),
        message: m,
    };
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(err(format!(
            "{url}: https:// is not supported by this build of pyward (no TLS); \
             send to falcosidekick over http:// on the same host or network \
             (e.g. http://127.0.0.1:2801/) and let it forward over TLS"
        )));
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return Err(err(format!(
            "{url}: not an http:// URL; give the endpoint as http://HOST[:PORT][/PATH], \
             e.g. http://127.0.0.1:2801/ for falcosidekick"
        )));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(err(format!(
            "{url}: the URL has no host (or has credentials or spaces); use http://HOST[:PORT][/PATH]"
        )));
    }
    Ok(url.trim().to_owned())
}

impl WebhookSink {
    /// Start the worker thread. Fails only on a bad configuration (never on the network:
    /// an unreachable endpoint is retried and then counted as drops).
    pub fn new(config: WebhookConfig) -> Result<WebhookSink, SinkError> {
        let url = validate_url(&config.url)?;
        if config.queue_capacity == 0 {
            return Err(SinkError::Config {
                sink: "webhook".into(),
                message: "the queue capacity must be at least 1".into(),
            });
        }
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(config.queue_capacity);
        let counters = Arc::new(Counters::default());
        let shutdown = Arc::new(Shutdown::default());
        let worker = {
            let counters = Arc::clone(&counters);
            let shutdown = Arc::clone(&shutdown);
            let config = WebhookConfig { url, ..config };
            std::thread::Builder::new()
                .name("pyward-webhook".into())
                .spawn(move || worker(config, rx, &counters, &shutdown))
                .map_err(|e| SinkError::Io {
                    sink: "webhook".into(),
                    what: "cannot start the delivery thread".into(),
                    source: e,
                })?
        };
        Ok(WebhookSink {
            name: "webhook".into(),
            tx: Some(tx),
            counters,
            shutdown,
            worker: Some(worker),
        })
    }

    /// Rename (several webhooks: `webhook`, `pager`).
    pub fn named(mut self, name: &str) -> WebhookSink {
        self.name = name.to_owned();
        self
    }

    fn stop(&mut self, grace: Duration) {
        {
            let mut g = self
                .shutdown
                .deadline
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *g = Some(Instant::now() + grace);
        }
        self.shutdown.cv.notify_all();
        // Closing the channel lets the worker drain the queue and end.
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        let drop = |me: &Self, reason: &str| {
            me.counters.dropped.fetch_add(1, Ordering::Relaxed);
            Err(SinkError::Dropped {
                sink: me.name.clone(),
                reason: reason.into(),
            })
        };
        let Some(tx) = &self.tx else {
            return drop(self, "the webhook sink is closed");
        };
        let body = match serde_json::to_vec(alert) {
            Ok(b) => b,
            Err(_) => return drop(self, "the alert cannot be serialised"),
        };
        match tx.try_send(body) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => drop(
                self,
                "the delivery queue is full (the endpoint is slow or down)",
            ),
            Err(TrySendError::Disconnected(_)) => drop(self, "the delivery thread has stopped"),
        }
    }

    fn stats(&self) -> SinkStats {
        SinkStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            retried: self.counters.retried.load(Ordering::Relaxed),
            rate_limited: 0,
        }
    }

    fn close(&mut self, grace: Duration) -> Result<(), SinkError> {
        self.stop(grace);
        Ok(())
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.stop(Duration::from_secs(2));
        }
    }
}

enum Attempt {
    Delivered,
    /// Worth retrying: transport error, timeout, 5xx.
    Retry,
    /// Refused for good (4xx, redirect): retrying cannot help.
    Rejected,
}

fn worker(config: WebhookConfig, rx: Receiver<Vec<u8>>, counters: &Counters, shutdown: &Shutdown) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(config.timeout))
        .user_agent("pyward")
        .build()
        .into();
    while let Ok(body) = rx.recv() {
        let mut backoff = config.initial_backoff;
        let mut tries = 0u32;
        loop {
            if shutdown.deadline().is_some_and(|d| Instant::now() >= d) {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                break;
            }
            // An attempt never outlives the shutdown deadline.
            let limit = match shutdown.deadline() {
                Some(d) => config
                    .timeout
                    .min(d.saturating_duration_since(Instant::now())),
                None => config.timeout,
            };
            match attempt(&agent, &config.url, &body, limit) {
                Attempt::Delivered => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Attempt::Rejected => {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Attempt::Retry if tries >= config.max_retries => {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Attempt::Retry => {
                    if !shutdown.sleep(backoff) {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    tries += 1;
                    counters.retried.fetch_add(1, Ordering::Relaxed);
                    backoff = (backoff * 2).min(config.max_backoff);
                }
            }
        }
    }
}

fn attempt(agent: &ureq::Agent, url: &str, body: &[u8], limit: Duration) -> Attempt {
    match agent
        .post(url)
        .header("Content-Type", "application/json")
        .config()
        .timeout_global(Some(limit.max(Duration::from_millis(1))))
        .build()
        .send(body)
    {
        Ok(resp) => {
            let code = resp.status().as_u16();
            match code {
                200..=299 => Attempt::Delivered,
                500..=599 | 408 | 429 => Attempt::Retry,
                _ => Attempt::Rejected,
            }
        }
        Err(_) => Attempt::Retry,
    }
}
