//! The in-memory mirror of a KV bucket the reconcile pass reads (docs/FLEET.md,
//! "Applications"), against a real nats-server 2.9: what was there before it started, puts,
//! updates, deletes, its bound, and its recovery when the server is killed and restarted on the
//! same port and store.

mod common;

use std::collections::BTreeMap;

use common::polling::until;
use wasmbed_gateway::fleet::apps::{AppStore, BUCKET_APPS, BUCKET_APP_STATUS};
use wasmbed_gateway::fleet::harness::NatsServer;
use wasmbed_gateway::fleet::mirror::Mirror;

fn view(m: &Mirror) -> Option<BTreeMap<String, String>> {
    Some(
        m.snapshot()?
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect(),
    )
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits until the mirror shows exactly `want`.
async fn shows(m: &Mirror, what: &str, want: BTreeMap<String, String>) {
    shows_within(m, what, want, 20).await
}

/// [`shows`] with its own bound in seconds.
async fn shows_within(m: &Mirror, what: &str, want: BTreeMap<String, String>, secs: u64) {
    until(what, secs, || async {
        (view(m).as_ref() == Some(&want)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_follows_puts_updates_deletes_and_a_server_restart() {
    let mut nats = NatsServer::start().unwrap();
    let nc = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(nc);
    let store = AppStore::open(&js, 1).await.unwrap();
    let kv = store.apps.clone();
    kv.put("before", "0".into()).await.unwrap();
    kv.put("gone-before", "0".into()).await.unwrap();
    kv.delete("gone-before").await.unwrap();

    let m = Mirror::spawn(js.clone(), BUCKET_APPS);
    let mut changes = m.changes();
    shows(&m, "the values before the watch", map(&[("before", "0")])).await;

    // An empty bucket is synced at once (no entry with delta 0 ever comes).
    let empty = Mirror::spawn(js.clone(), BUCKET_APP_STATUS);
    shows(&empty, "an empty bucket", map(&[])).await;

    changes.borrow_and_update();
    kv.put("a", "1".into()).await.unwrap();
    shows(&m, "a put", map(&[("a", "1"), ("before", "0")])).await;
    assert!(changes.has_changed().unwrap(), "a put raises changes()");
    kv.put("a", "2".into()).await.unwrap();
    kv.delete("before").await.unwrap();
    shows(&m, "an update and a delete", map(&[("a", "2")])).await;
    kv.put("b", "1".into()).await.unwrap();
    kv.purge("a").await.unwrap();
    shows(&m, "a purge", map(&[("b", "1")])).await;
    let opened = m.watches_opened();
    assert_eq!(opened, 1);

    // The server dies and comes back on the same port and store: the mirror follows again,
    // changes made after the restart included.
    nats.restart().unwrap();
    until("the bucket writable after the restart", 30, || async {
        kv.put("c", "1".into()).await.ok()
    })
    .await;
    kv.delete("b").await.unwrap();
    // The watch's consumer is recreated after missed heartbeats (async-nats), which under load
    // takes longer than a plain change.
    shows_within(&m, "the changes after a restart", map(&[("c", "1")]), 90).await;
    kv.put("c", "2".into()).await.unwrap();
    shows(&m, "an update after a restart", map(&[("c", "2")])).await;
    eprintln!("watches opened: {}", m.watches_opened());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_holds_at_most_its_cap() {
    let nats = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let kv = AppStore::open(&js, 1).await.unwrap().apps;
    for k in ["a", "b", "c"] {
        kv.put(k, "1".into()).await.unwrap();
    }
    let m = Mirror::spawn_with_cap(js.clone(), BUCKET_APPS, 2);
    until("synced", 20, || async { m.snapshot() }).await;
    assert_eq!(m.snapshot().unwrap().len(), 2, "the third key is left out");
    kv.delete("a").await.unwrap();
    kv.put("d", "1".into()).await.unwrap();
    until("room after a delete", 20, || async {
        let v = view(&m)?;
        (v.len() == 2 && v.contains_key("d")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_of_a_missing_bucket_is_unsynced_until_it_exists() {
    let nats = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let m = Mirror::spawn(js.clone(), BUCKET_APPS);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        m.snapshot().is_none(),
        "no bucket: no view, the pass reads it"
    );
    let kv = AppStore::open(&js, 1).await.unwrap().apps;
    kv.put("x", "1".into()).await.unwrap();
    shows(&m, "the bucket once created", map(&[("x", "1")])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_reopens_its_watch_and_rebuilds_when_the_bucket_is_recreated() {
    let nats = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let kv = AppStore::open(&js, 1).await.unwrap().apps;
    kv.put("old", "1".into()).await.unwrap();
    let m = Mirror::spawn(js.clone(), BUCKET_APPS);
    shows(&m, "the first bucket", map(&[("old", "1")])).await;

    // The bucket's stream goes away under the watch: the watch fails, the mirror is unsynced
    // (the pass reads the bucket itself) until a watch opens on the new bucket, and is rebuilt
    // from it: nothing of the old one survives.
    js.delete_stream(format!("KV_{BUCKET_APPS}")).await.unwrap();
    until("unsynced once the watch failed", 60, || async {
        m.snapshot().is_none().then_some(())
    })
    .await;
    let kv = AppStore::open(&js, 1).await.unwrap().apps;
    kv.put("new", "1".into()).await.unwrap();
    shows(&m, "the recreated bucket", map(&[("new", "1")])).await;
    assert!(m.watches_opened() >= 2, "the watch was opened again");
}

/// A bucket with `max_age` (as the claims): JetStream sends nothing when a value ages out, the
/// mirror expires it itself, from its write time for the values it found when it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_expires_values_of_a_max_age_bucket() {
    let nats = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    // Made by hand as member.rs does for nats-server 2.9 (see `bucket` there).
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "KV_short".into(),
        subjects: vec!["$KV.short.>".into()],
        max_messages_per_subject: 1,
        max_age: std::time::Duration::from_secs(2),
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let kv = js.get_key_value("short").await.unwrap();
    kv.put("found", "1".into()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let m = Mirror::spawn(js.clone(), "short");
    shows(&m, "the value found", map(&[("found", "1")])).await;
    kv.put("later", "1".into()).await.unwrap();
    shows(&m, "a later value", map(&[("found", "1"), ("later", "1")])).await;
    // `found` was written about 1 s before the mirror started: it goes first.
    shows(&m, "the found value expired", map(&[("later", "1")])).await;
    shows(&m, "the later value expired", map(&[])).await;
}

fn max_age_bucket_config(
    name: &str,
    max_age: std::time::Duration,
) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// A host whose clock runs a minute ahead of the server's.
fn clock_ahead() -> u64 {
    wasmbed_gateway::fleet::now_ms() + 60_000
}

/// A host whose clock runs a minute behind the server's.
fn clock_behind() -> u64 {
    wasmbed_gateway::fleet::now_ms().saturating_sub(60_000)
}

/// The ages of the values found at start are measured on the server's clock: a gateway whose
/// clock is ahead of the server's by more than the claims' TTL saw every live claim as expired
/// (its devices offline: the reconcile pass then removed their applications until the next
/// renewal), one whose clock is behind kept an expired claim alive a whole TTL longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_expiry_of_values_found_does_not_depend_on_the_hosts_clock() {
    let nats = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let ttl = std::time::Duration::from_secs(8);
    js.create_stream(max_age_bucket_config("skew", ttl))
        .await
        .unwrap();
    let kv = js.get_key_value("skew").await.unwrap();
    kv.put("live", "1".into()).await.unwrap();
    let written = std::time::Instant::now();

    let ahead = Mirror::spawn_with_clock(js.clone(), "skew", 100, clock_ahead);
    until("synced", 20, || async { ahead.snapshot() }).await;
    assert_eq!(
        view(&ahead),
        Some(map(&[("live", "1")])),
        "a claim written just now looks expired to a host whose clock is ahead"
    );

    // Written 4 s before the mirror starts: 4 s left on the server's clock. A host whose clock is
    // behind must not hold it the whole TTL again (it would outlive `written + ttl` by 4 s).
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let behind = Mirror::spawn_with_clock(js.clone(), "skew", 100, clock_behind);
    until("synced", 20, || async { behind.snapshot() }).await;
    let left = (written + ttl).saturating_duration_since(std::time::Instant::now());
    tokio::time::sleep(left + std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        view(&behind),
        Some(map(&[])),
        "a claim expired on the server still looks live to a host whose clock is behind"
    );
}

/// Log lines of the whole test binary (the mirror's task runs on other threads).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A watch that can never open (here: the stream's consumer limit is taken) leaves the pass
/// reading the whole bucket each time; that is said at warning level, not only in debug lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_that_cannot_open_its_watch_warns() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("the only test of this binary installing a subscriber");
    let nats = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            max_consumers: 1,
            ..max_age_bucket_config("full", std::time::Duration::ZERO)
        })
        .await
        .unwrap();
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("taken".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    js.get_key_value("full")
        .await
        .unwrap()
        .put("k", "1".into())
        .await
        .unwrap();
    let m = Mirror::spawn(js.clone(), "full");
    until(
        "a warning that the bucket cannot be followed",
        60,
        || async {
            let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
            text.contains("cannot follow the bucket").then_some(())
        },
    )
    .await;
    assert!(m.snapshot().is_none(), "never synced");
}
