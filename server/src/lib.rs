//! The Stele node binary's library: flags, the S3 listener (s3s) and the admin listener
//! (axum). Each handler translates a request, calls one core method, and translates the
//! answer; no storage logic lives here.

pub mod admin;
pub mod alerts;
pub mod args;
pub mod cluster;
pub mod limiter;
pub mod listener;
pub mod metrics;
pub mod replication;
pub mod s3;
#[cfg(feature = "test-clock")]
mod test_clock;
pub mod tls;

use std::sync::Arc;

use anyhow::Context;
use stele::lock::{Monotonic, SystemMonotonic};
use stele::{NodeConfig, SharedClock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Opens the node and serves both listeners until SIGINT/SIGTERM.
pub async fn serve(args: args::Args, config: NodeConfig) -> anyhow::Result<()> {
    let s3_addr = args.s3_addr()?;
    let admin_addr = args.admin_addr()?;
    let (wall, mono) = clocks(&args);
    let given = match (args.access_key.clone(), args.secret_key.clone()) {
        (Some(a), Some(s)) => Some((a, s)),
        (None, None) => None,
        _ => anyhow::bail!("STELE_ACCESS_KEY and STELE_SECRET_KEY go together"),
    };
    let admin_given = match (args.admin_key.clone(), args.admin_secret.clone()) {
        (Some(a), Some(s)) => Some((a, s)),
        (None, None) => None,
        _ => anyhow::bail!("STELE_ADMIN_KEY and STELE_ADMIN_SECRET go together"),
    };
    let alert_clock = wall.clone();
    let key_dir = args.key_dir()?;
    let node = stele::Node::open(
        config,
        wall,
        mono,
        &key_dir,
        std::time::Duration::from_secs(args.alert_retry_max),
    )
    .await?;
    let store = node.store().clone();
    let rpc_listener = match &args.cluster_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (node-to-node)"))?,
        ),
        None => None,
    };
    let rpc_local = rpc_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    if let (Some(addr), Some(token), Some(fp)) =
        (&args.join, &args.join_token, &args.ca_fingerprint)
    {
        // Where the others reach this node's listener: it joins the Raft group there.
        let advertised = rpc_local
            .filter(|a| !a.ip().is_unspecified())
            .map(|a| a.to_string())
            .context(
                "--join needs --cluster-addr with an address the other nodes reach (not 0.0.0.0): \
                 the node joins the cluster's Raft group there",
            )?;
        // The group's state replaces a joiner's buckets and objects (the first snapshot
        // it installs): a node that holds any joins no cluster, rather than lose them.
        let buckets = node
            .store()
            .meta()
            .buckets()
            .context("cannot read the buckets")?;
        let replicates = stele::replication::configured(node.store().meta())
            .context("cannot read the replication records")?;
        if replicates && !cluster::Files::new(&key_dir).has_node_certificate() {
            anyhow::bail!(
                "this node replicates (peers, rules or a replica bucket): replication to or \
                 from a cluster is not built yet; remove its replication, or join with a fresh \
                 data folder"
            );
        }
        if !buckets.is_empty() && !cluster::Files::new(&key_dir).has_node_certificate() {
            anyhow::bail!(
                "this data folder holds {} bucket(s) ({}...): a node joins a cluster empty, \
                 since the cluster's metadata replaces its own; copy them into the cluster \
                 with any S3 copy tool (replication to a cluster is not built yet) and join \
                 with a fresh data folder",
                buckets.len(),
                buckets[0].name
            );
        }
        cluster::join_cluster(&cluster::Files::new(&key_dir), addr, token, fp, advertised)
            .await
            .context("cannot join the cluster")?;
    }
    let member = cluster::Files::new(&key_dir).has_node_certificate();
    let cluster = cluster::Cluster::new(&key_dir, node.clone(), rpc_local)
        .context("cannot load the cluster certificates")?;
    cluster
        .start_group()
        .await
        .context("cannot start this node's member of the cluster's Raft group")?;
    let (tx, rx) = watch::channel(false);
    // Served first: a node that just joined receives the cluster's records (its users
    // among them) there before it is ready, and a move of keys under the cluster's
    // identity key (below) may need this node's vote.
    let rpc_task = rpc_listener.map(|l| tokio::spawn(cluster::run(cluster.clone(), l, rx.clone())));
    if member {
        cluster.use_identity_key().await?;
    }
    let s3_listener = TcpListener::bind(&s3_addr)
        .await
        .with_context(|| format!("cannot listen on {s3_addr} (S3)"))?;
    let admin_listener = TcpListener::bind(&admin_addr)
        .await
        .with_context(|| format!("cannot listen on {admin_addr} (admin)"))?;
    let (s3_local, admin_local) = (s3_listener.local_addr()?, admin_listener.local_addr()?);
    let (tls_cert, tls_key) = args.tls_files()?;
    let cert_given = tls_cert.is_some() || tls_key.is_some();
    if cert_given && args.tls == tls::Mode::Off {
        tracing::warn!(
            "--tls off: the given certificate is not used; both listeners serve plain HTTP"
        );
    }
    let s3_tls = args.tls.serves_tls(s3_local.ip(), cert_given);
    let admin_tls = args.tls.serves_tls(admin_local.ip(), cert_given);
    let tls = if s3_tls || admin_tls {
        let names = tls::names_for(&[s3_local, admin_local], &args.tls_names);
        let source = tls::Source::resolve(tls_cert, tls_key, &key_dir, &names)?;
        let t = tls::Tls::new(source).context("cannot set up TLS")?;
        println!(
            "stele-server TLS certificate sha256 {} ({}{})",
            t.fingerprint(),
            if t.source().generated {
                "self-signed, "
            } else {
                ""
            },
            t.source().cert.display()
        );
        Some(t)
    } else {
        None
    };
    // A first start that would generate an admin credential must be able to keep it:
    // checked before any user is made, so a refused start leaves no credential nobody saw
    // (two nodes whose data folders share a parent share the default key folder).
    if !member
        && admin_given.is_none()
        && stele::identity::keyfile::first_admin_exists(&key_dir)
        && node
            .would_generate_admin()
            .await
            .context("cannot read the users")?
    {
        anyhow::bail!(
            "the key folder {} already keeps a first admin credential (first-admin) that \
             this data folder does not know (another node's, or one of an earlier data \
             folder): give this node its own key folder (--key-dir), or move that file \
             away once its credential is kept elsewhere",
            key_dir.display()
        );
    }
    let (new_admin, new_s3) = if member {
        // The cluster's users are every member's: none is generated here, and given ones
        // are checked once this node holds the cluster's records (a node that just joined
        // receives them with the group's snapshot).
        cluster
            .until_caught_up(std::time::Duration::from_secs(30))
            .await;
        match node.bootstrap_member(admin_given, given).await {
            Ok(notes) => {
                for note in notes {
                    tracing::warn!("{note}");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the given credentials could not be checked against the cluster's (they may not work yet)");
            }
        }
        (None, None)
    } else {
        node.bootstrap(admin_given, given)
            .await
            .context("cannot create the first credentials")?
    };
    if let Some(k) = new_admin {
        stele::identity::keyfile::write_first_admin(&key_dir, &k.record.access_key, &k.secret)
            .context("cannot keep the first admin credential in the key folder")?;
        println!(
            "stele-server created the first admin credential (shown once; also in {}): key {} secret {}",
            key_dir.join("first-admin").display(),
            k.record.access_key,
            k.secret
        );
    }
    if let Some(k) = new_s3 {
        println!(
            "stele-server created the first S3 credential (shown once): access key {} secret key {}",
            k.record.access_key, k.secret
        );
    }
    for d in node.disks().await? {
        tracing::info!(disk = %d.id, path = %d.path.display(), state = ?d.state, "disk");
    }
    // Tests and scripts wait for this line; with port 0 it is how they learn the ports.
    // Before the ready line: a SIGHUP sent once the node is ready must never find the
    // default action (which ends the process).
    reload_on_sighup(tls.clone());
    let scheme = |on: bool| if on { "https" } else { "http" };
    println!(
        "stele-server ready s3={}://{s3_local} admin={}://{admin_local}{}",
        scheme(s3_tls),
        scheme(admin_tls),
        rpc_local
            .map(|a| format!(" cluster={a}"))
            .unwrap_or_default(),
    );
    let acceptor = |on: bool| tls.as_ref().filter(|_| on).map(tls::Tls::acceptor);
    let metrics = Arc::new(metrics::Metrics::default());
    let alerts = node.alerts().clone();
    let s3 = tokio::spawn(s3::run(
        node.clone(),
        metrics.clone(),
        args.domain.clone(),
        s3_listener,
        acceptor(s3_tls),
        rx.clone(),
    ));
    let lifecycle = stele::background::lifecycle::LifecycleWorker::new(
        store.clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(args.lifecycle_interval.max(1)),
        1000,
    );
    let lifecycle_task = tokio::spawn(stele::background::runner::run(
        lifecycle.clone(),
        rx.clone(),
    ));
    let delivery = alerts::DeliveryWorker::new(alerts.clone());
    let alerts_task = tokio::spawn(stele::background::runner::run(delivery.clone(), rx.clone()));
    let watchdog = stele::background::watchdog::Watchdog::new(
        store.clone(),
        alerts.clone(),
        alert_clock,
        std::time::Duration::from_secs(args.watch_interval.max(1)),
    );
    let watch_task = tokio::spawn(stele::background::runner::run(watchdog.clone(), rx.clone()));
    let scrub = stele::background::scrub::ScrubWorker::new(
        store.clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(args.scrub_interval.max(1)),
        args.scrub_rate.saturating_mul(1_000_000).max(1),
    );
    let scrub_task = tokio::spawn(stele::background::runner::run(scrub.clone(), rx.clone()));
    let drill = stele::background::drill::DrillWorker::new(
        store.clone(),
        alerts.clone(),
        std::time::Duration::from_secs(args.drill_interval.max(1)),
        args.drill_sample,
    );
    let drill_task = tokio::spawn(stele::background::runner::run(drill.clone(), rx.clone()));
    let repair = stele::background::drill::RepairWorker::new(
        store.clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(args.repair_interval.max(1)),
        std::time::Duration::from_secs(args.rebalance_grace),
        std::time::Duration::from_secs(args.site_unsafe_alert),
    );
    let repair_task = tokio::spawn(stele::background::runner::run(repair.clone(), rx.clone()));
    let rebalance = stele::background::rebalance::RebalanceWorker::new(
        store.clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(args.rebalance_interval.max(1)),
        args.rebalance_rate.saturating_mul(1_000_000).max(1),
        std::time::Duration::from_secs(args.rebalance_grace),
    );
    let rebalance_task = tokio::spawn(stele::background::runner::run(
        rebalance.clone(),
        rx.clone(),
    ));
    // A pass with nothing to backfill reads the rules and their marks only: every few
    // seconds, so that a rule set through S3 starts its backfill soon.
    let backfill = Arc::new(stele::background::backfill::BackfillWorker::new(
        node.store().clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(5),
    ));
    let backfill_task = tokio::spawn(stele::background::runner::run(backfill.clone(), rx.clone()));
    // One sender per replication peer, each stopped by the same shutdown; peers added
    // later start their own.
    node.start_replication(Arc::new(replication::HttpsConnector), rx.clone())
        .await?;
    let audit = Arc::new(stele::background::replication_audit::AuditWorker::new(
        node.store().clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(args.replication_audit_interval.max(1)),
        node.transport_of(),
        tokio::runtime::Handle::current(),
    ));
    let audit_task = tokio::spawn(stele::background::runner::run(audit.clone(), rx.clone()));
    let checkpoints = stele::background::trail::CheckpointWorker::new(
        store.clone(),
        Some(alerts.clone()),
        std::time::Duration::from_secs(args.audit_checkpoint_interval.max(1)),
    );
    let checkpoint_task = tokio::spawn(stele::background::runner::run(
        checkpoints.clone(),
        rx.clone(),
    ));
    let trail_flush =
        stele::background::trail::FlushWorker::new(store.clone(), Some(alerts.clone()));
    let flush_task = tokio::spawn(stele::background::runner::run(
        trail_flush.clone(),
        rx.clone(),
    ));
    let disks_task = tokio::spawn(cluster::keep_disks(cluster.clone(), rx.clone()));
    let admin = tokio::spawn(admin::run(
        admin::Admin {
            node: node.clone(),
            lifecycle,
            scrub,
            watchdog,
            drill,
            repair,
            rebalance,
            delivery,
            backfill,
            audit,
            checkpoints,
            trail_flush,
            metrics,
            limiter: Arc::new(limiter::AuthLimiter::default()),
            tls: tls.clone().map(|t| (t, s3_tls, admin_tls)),
            cluster: cluster.clone(),
        },
        admin_listener,
        acceptor(admin_tls),
        rx,
    ));
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = tx.send(true);
    // Everything ends before the trail's last word, whatever failed on the way.
    let s3_end = s3.await.map_err(anyhow::Error::from).and_then(|r| r);
    let admin_end = admin.await.map_err(anyhow::Error::from).and_then(|r| r);
    let mut failed = s3_end.err().or(admin_end.err());
    if let Some(t) = rpc_task
        && let Err(e) = t.await
    {
        tracing::error!(error = %e, "the node-to-node listener did not end cleanly");
    }
    if let Err(e) = disks_task.await {
        tracing::error!(error = %e, "the cluster's disk list did not end cleanly");
    }
    cluster.stop_group().await;
    for (name, task) in [
        ("lifecycle", lifecycle_task),
        ("scrub", scrub_task),
        ("alerts", alerts_task),
        ("drill", drill_task),
        ("repair", repair_task),
        ("rebalance", rebalance_task),
        ("backfill", backfill_task),
        ("replication audit", audit_task),
        ("watchdog", watch_task),
        ("audit checkpoint", checkpoint_task),
        ("audit flush", flush_task),
    ] {
        if let Err(e) = task.await {
            tracing::error!(worker = name, error = %e, "worker task did not end cleanly");
        }
    }
    // Last: every request has ended, so the trail's last leaf says the stop was clean
    // (and what the queue still held is written with it).
    node.audit_stopped()
        .await
        .context("cannot record the stop in the audit trail")?;
    match failed.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// SIGHUP reloads the listeners' certificate: new handshakes get the new one, open
/// connections keep theirs; files that do not load leave the current one in use. Without
/// TLS it is logged and changes nothing (it never stops the node).
fn reload_on_sighup(tls: Option<tls::Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP: the TLS certificate reloads only on restart");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!(
                    "SIGHUP: no TLS certificate to reload (the listeners serve plain HTTP)"
                );
                continue;
            };
            match tls.reload() {
                Ok(fingerprint) => {
                    tracing::info!(%fingerprint, "TLS certificate reloaded");
                    println!("stele-server TLS certificate reloaded sha256 {fingerprint}");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; the previous one stays")
                }
            }
        }
    });
}

/// The wall and monotonic clocks: the system's, or (test builds with `--test-clock`) the
/// system's moved by the offsets in a file.
fn clocks(args: &args::Args) -> (SharedClock, Arc<dyn Monotonic>) {
    #[cfg(feature = "test-clock")]
    if let Some(path) = &args.test_clock {
        tracing::warn!(path = %path.display(), "TEST CLOCK in use: time is driven by a file");
        return (
            Arc::new(test_clock::FileWall(path.clone())),
            Arc::new(test_clock::FileMono(
                path.clone(),
                std::time::Instant::now(),
            )),
        );
    }
    let _ = args;
    (Arc::new(SystemClock), Arc::new(SystemMonotonic::default()))
}
