//! The running trail: the way in for events that change nothing (queued, then written by
//! one batch for many within [`FLUSH_EVERY`]), the signing key, checkpoints (each after a
//! `tick` leaf, so time is in the log and an idle log still grows), node start and stop,
//! and exports that `stelectl audit verify` checks offline.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use stele_tlog::checkpoint::Checkpoint;
use stele_tlog::note::Signer;

use crate::audit::entry::Rendered;
use crate::audit::{AuditEvent, Entry, Outcome, Requester, log};
use crate::lock::Now;
use crate::meta::{Batch, Meta, MetaError};

/// How long an event that changes nothing may wait in the queue before it is written
/// (the group commit's period; the flusher worker runs at it).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The queue's bound: past it, an event is written at once by the caller (a flood of
/// refusals slows itself, never grows memory or drops events).
const QUEUE_MAX: usize = 10_000;

/// Why the trail could not write or sign.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// The metadata store refused the write or a read.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// No signing key was given to the trail (`Trail::set_key`).
    #[error("the audit trail has no signing key")]
    NoKey,
    /// The checkpoint could not be signed (a name or text the note format refuses).
    #[error("cannot sign the checkpoint: {0}")]
    Sign(#[from] stele_tlog::TlogError),
    /// The stored log does not end where its head says: it is not appended to (see
    /// [`Trail::open`]).
    #[error("the audit trail is inconsistent: {reason}; the node will not append to it")]
    Inconsistent {
        /// What does not hold.
        reason: String,
    },
    /// A report of a bucket that does not exist.
    #[error("no such bucket: {bucket}")]
    NoSuchBucket {
        /// The bucket asked for.
        bucket: String,
    },
    /// A blocking task that could not finish (a panic, or the runtime shutting down).
    #[error("the audit trail's task did not finish: {reason}")]
    Task {
        /// Why.
        reason: String,
    },
}

impl From<tokio::task::JoinError> for TrailError {
    fn from(e: tokio::task::JoinError) -> Self {
        TrailError::Task {
            reason: e.to_string(),
        }
    }
}

/// One node's audit trail. Cheap to share (`Arc`).
pub struct Trail {
    meta: Arc<Meta>,
    origin: String,
    queue: Mutex<Vec<Rendered>>,
    signer: OnceLock<Signer>,
}

impl std::fmt::Debug for Trail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trail")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// What an export holds: NDJSON, each leaf byte for byte as stored, each signed
/// checkpoint after the leaf that completes its size (`{"checkpoint":"<note>"}`), the last
/// covering every leaf.
#[derive(Debug, Clone)]
pub struct Export {
    /// The NDJSON text.
    pub ndjson: Vec<u8>,
    /// Leaves in it.
    pub leaves: u64,
    /// The checkpoint that covers them all.
    pub checkpoint: String,
}

impl Trail {
    /// The trail in `meta`'s `audit` family. Its origin, `stele/<log id>/audit/node`, is
    /// fixed the first time (a random 48-bit log id), so two nodes never sign under one
    /// name.
    ///
    /// # Errors
    /// A metadata read or write; [`TrailError::Inconsistent`] when the stored log does not
    /// end where its head says.
    pub fn open(meta: Arc<Meta>) -> Result<Self, TrailError> {
        let origin = meta.write_guarded(|m| {
            if let Some(o) = log::origin(m)? {
                return Ok::<_, MetaError>((Batch::default(), o));
            }
            let id = hex::encode(crate::crypto::random_bytes::<6>());
            let o = format!("stele/{id}/audit/node");
            let mut b = Batch::default();
            log::put_origin(&mut b, &o);
            Ok((b, o))
        })?;
        check_head(&meta)?;
        Ok(Self {
            meta,
            origin,
            queue: Mutex::new(Vec::new()),
            signer: OnceLock::new(),
        })
    }

    /// Whether a checkpoint of this log was ever signed (its key must then exist: a new
    /// key would sign the old leaves as if they were its own, and outsiders hold the old
    /// key's checkpoints).
    ///
    /// # Errors
    /// A metadata read's.
    pub fn has_signed(&self) -> Result<bool, MetaError> {
        Ok(log::head(&self.meta)?.checkpointed > 0
            || !log::checkpoints(&self.meta, 0, 1)?.is_empty())
    }

    /// The log's name: its checkpoints' origin and its key's name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log's id (the origin's second element): names the key file.
    pub fn log_id(&self) -> &str {
        self.origin.split('/').nth(1).unwrap_or("log")
    }

    /// Gives the trail its signing key (the Ed25519 seed kept sealed in the key folder).
    /// Once only: a second key is ignored.
    ///
    /// # Errors
    /// [`TrailError::Sign`] for a seed the key format refuses.
    pub fn set_key(&self, seed: &[u8; 32]) -> Result<(), TrailError> {
        let s = Signer::from_seed(&self.origin, seed)?;
        let _ = self.signer.set(s);
        Ok(())
    }

    /// The metadata store the log is in.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The signing key, once given: for the reports the node signs itself.
    pub(crate) fn signer(&self) -> Option<&Signer> {
        self.signer.get()
    }

    /// The public key in the note verifier format (`origin+keyid+base64`), what
    /// `stelectl audit verify --key` reads; `None` before [`Trail::set_key`].
    pub fn public_key(&self) -> Option<String> {
        self.signer.get().map(|s| s.verifier().encode())
    }

    /// Queues `entry` (an event that changes nothing); written within [`FLUSH_EVERY`] by
    /// the flusher, or at once when the queue is full.
    pub fn record(&self, entry: Entry) {
        // Rendered here, by the caller, not by the flush under the write guard.
        let entry = entry.render();
        let full = match self.queue.lock() {
            Ok(mut q) => {
                q.push(entry);
                q.len() >= QUEUE_MAX
            }
            Err(_) => false,
        };
        if full && let Err(e) = self.flush() {
            tracing::error!(error = %e, "cannot write the audit trail's queue");
        }
    }

    /// Logs `event` (target `stele::audit`) and queues its leaf, by `by`, at `now` —
    /// unless its change's own command wrote the leaf already
    /// ([`AuditEvent::recorded_with_its_change`]).
    pub fn event(&self, event: &AuditEvent, by: Option<&Requester>, now: Now) {
        event.emit();
        if !event.recorded_with_its_change() {
            self.record(entry_of(event, by, now));
        }
    }

    /// Writes every queued event in one synced batch; returns how many. On failure they
    /// stay queued, in order, for the next flush.
    ///
    /// # Errors
    /// The write's.
    pub fn flush(&self) -> Result<usize, TrailError> {
        if self.queue.lock().map(|q| q.is_empty()).unwrap_or(true) && !self.head_behind()? {
            return Ok(0);
        }
        self.append_and(None, |_, _| Ok(None)).map(|(n, _)| n)
    }

    /// Whether leaves were appended since the head was last written (commands keep it in
    /// memory only: [`log`]).
    fn head_behind(&self) -> Result<bool, MetaError> {
        Ok(log::stored_head(&self.meta)?.size != log::head(&self.meta)?.size)
    }

    /// Writes the queue, then a `tick` leaf at `now` (trusted and wall time, the size of
    /// the previous checkpoint), and signs a checkpoint of the new size: at the interval,
    /// idle or not, so a log cut short shows as missing ticks. Returns (size, note).
    ///
    /// # Errors
    /// [`TrailError::NoKey`] before [`Trail::set_key`]; the write's.
    pub fn tick(&self, now: Now) -> Result<(u64, String), TrailError> {
        let (_, signed) = self.append_and(Some(now), |h, _| Ok(Some(h.checkpointed)))?;
        signed.ok_or(TrailError::NoKey)
    }

    /// Writes the queue and signs a checkpoint of the log as it then is (none made if that
    /// size has one). Returns (size, note).
    ///
    /// # Errors
    /// [`TrailError::NoKey`] before [`Trail::set_key`]; the write's.
    pub fn checkpoint(&self) -> Result<(u64, String), TrailError> {
        let (_, signed) = self.append_and(None, |_, _| Ok(Some(0)))?;
        signed.ok_or(TrailError::NoKey)
    }

    /// Under the write guard: appends the queue, then (if `tick`) a tick; if `sign` says
    /// so, signs a checkpoint. `sign` gets the head before the tick.
    fn append_and(
        &self,
        tick: Option<Now>,
        sign: impl FnOnce(&log::Head, &Meta) -> Result<Option<u64>, TrailError>,
    ) -> Result<(usize, Option<(u64, String)>), TrailError> {
        let queued = self
            .queue
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        let n = queued.len();
        let result = self.meta.write_guarded(|m| {
            let mut h = log::head(m)?;
            let behind = log::stored_head(m)?.size != h.size;
            let mut b = Batch::default();
            for e in &queued {
                log::append(&mut h, &mut b, e);
            }
            let wants = sign(&h, m)?;
            if let Some(now) = tick {
                let e = Entry::new("tick", now).with("previous_checkpoint", h.checkpointed);
                log::append(&mut h, &mut b, &e.render());
            }
            let mut signed = None;
            if wants.is_some() {
                let Some(signer) = self.signer.get() else {
                    return Err(TrailError::NoKey);
                };
                if h.checkpointed == h.size
                    && let Some(note) = log::checkpoint(m, h.size)?
                {
                    signed = Some((h.size, note));
                } else {
                    let note = Checkpoint::new(&self.origin, h.size, h.root()).sign(&[signer])?;
                    log::put_checkpoint(&mut b, h.size, &note);
                    h.checkpointed = h.size;
                    signed = Some((h.size, note));
                }
            }
            if !b.is_empty() || behind {
                log::put_head(&mut b, &h)?;
            }
            Ok((b, signed))
        });
        match result {
            Ok(signed) => Ok((n, signed)),
            Err(e) => {
                if let Ok(mut q) = self.queue.lock() {
                    let later = std::mem::replace(&mut *q, queued);
                    q.extend(later);
                }
                Err(e)
            }
        }
    }

    /// Records the node's start at `now`: `node-started`, saying whether the previous run
    /// ended with `node-stopped` (a clean stop) or not (a crash, a kill, power), so that a
    /// verifier tells a restart from a hole. Written at once.
    ///
    /// # Errors
    /// The write's.
    pub fn node_started(&self, now: Now, release: &str) -> Result<(), TrailError> {
        let h = log::head(&self.meta)?;
        let previous = match h.size.checked_sub(1) {
            None => "none",
            Some(last) => {
                let leaf = log::leaves(&self.meta, last, 1)?;
                let stopped = leaf.first().is_some_and(|(_, bytes)| {
                    serde_json::from_slice::<serde_json::Value>(bytes)
                        .ok()
                        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
                        .as_deref()
                        == Some("node-stopped")
                });
                if stopped { "clean" } else { "unclean" }
            }
        };
        self.record(
            Entry::new("node-started", now)
                .with("previous_stop", previous)
                .with("release", release),
        );
        self.flush().map(|_| ())
    }

    /// Records a clean stop at `now` and signs the last checkpoint (when the key is set).
    ///
    /// # Errors
    /// The write's.
    pub fn node_stopped(&self, now: Now) -> Result<(), TrailError> {
        self.record(Entry::new("node-stopped", now));
        if self.signer.get().is_some() {
            self.checkpoint().map(|_| ())
        } else {
            self.flush().map(|_| ())
        }
    }

    /// The whole log as NDJSON (see [`Export`]), after writing the queue and signing a
    /// checkpoint of everything.
    ///
    /// # Errors
    /// [`TrailError::NoKey`]; a metadata read or write.
    pub fn export(&self) -> Result<Export, TrailError> {
        let (size, note) = self.checkpoint()?;
        let mut out = Vec::new();
        let mut leaves = 0u64;
        let mut checkpoints = log::checkpoints(&self.meta, 1, usize::MAX)?
            .into_iter()
            .peekable();
        let push_note = |out: &mut Vec<u8>, n: &str| {
            out.extend(
                serde_json::json!({ "checkpoint": n })
                    .to_string()
                    .into_bytes(),
            );
            out.push(b'\n');
        };
        let mut expected = 0u64;
        let mut holes = 0u64;
        log::scan_leaves(&self.meta, 0, |seq, leaf| {
            if seq >= size {
                return std::ops::ControlFlow::Break(());
            }
            if seq != expected {
                holes += 1;
            }
            expected = seq + 1;
            out.extend_from_slice(leaf);
            out.push(b'\n');
            leaves += 1;
            while let Some((_, n)) = checkpoints.next_if(|(s, _)| *s <= seq + 1) {
                push_note(&mut out, &n);
            }
            std::ops::ControlFlow::Continue(())
        })?;
        // Leaves missing from the store (a hole, a cut tail) are exported as missing: every
        // checkpoint not yet written — the one signed now, which covers them all, included
        // — follows, so the verifier names where the leaves they cover are lacking.
        for (_, n) in checkpoints {
            push_note(&mut out, &n);
        }
        if leaves != size || holes > 0 {
            tracing::error!(
                size,
                leaves,
                "the audit trail misses leaves its checkpoints cover: exported as they are"
            );
        }
        Ok(Export {
            ndjson: out,
            leaves,
            checkpoint: note,
        })
    }

    /// The latest signed checkpoint, as (size, note); `None` before the first.
    ///
    /// # Errors
    /// A metadata read's.
    pub fn latest(&self) -> Result<Option<(u64, String)>, MetaError> {
        let h = log::head(&self.meta)?;
        if h.checkpointed == 0 {
            return Ok(None);
        }
        // The note may be in a batch whose fsync is still running: a checkpoint handed
        // out must never be undone by a power cut (a different tree signed at the same
        // size would look like equivocation).
        self.meta.sync_written()?;
        Ok(log::checkpoint(&self.meta, h.checkpointed)?.map(|n| (h.checkpointed, n)))
    }

    /// The log's size (leaves written; queued events not counted).
    ///
    /// # Errors
    /// A metadata read's.
    pub fn size(&self) -> Result<u64, MetaError> {
        Ok(log::head(&self.meta)?.size)
    }
}

/// Refuses a log whose stored head does not fit its leaves ([`log::load`]): the last
/// leaf the head names must be there and hash to its `last`, and every leaf after it
/// (appended after the head was last written, before a crash) must continue the chain. A
/// lost or rolled-back head would otherwise append over leaves already written (and
/// already covered by checkpoints outsiders hold): the node does not start rather than
/// rewrite history. The head so loaded is the one the node appends to, and is written.
fn check_head(meta: &Meta) -> Result<(), TrailError> {
    let (h, broken) = log::load(meta)?;
    if let Some(reason) = broken {
        return Err(TrailError::Inconsistent { reason });
    }
    meta.write_guarded(|_| {
        let mut b = Batch::default();
        log::put_head(&mut b, &h)?;
        Ok::<_, MetaError>((b, ()))
    })?;
    Ok(())
}

/// The leaf of an [`AuditEvent`]: its name, its fields as the detail, a refusal's outcome
/// for the events that are refusals.
pub fn entry_of(event: &AuditEvent, by: Option<&Requester>, now: Now) -> Entry {
    let mut e = Entry::new(&event.name(), now).by(by);
    if let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(event) {
        fields.remove("event");
        e.detail = fields;
    }
    match event {
        AuditEvent::AuthFailed { .. } => e.refused("authentication failed"),
        AuditEvent::AuthRateLimited { .. } => e.refused("too many authentication failures"),
        AuditEvent::AccessDenied { action, .. } => e.refused(action.clone()),
        AuditEvent::LockRefused { reason } => e.refused(reason.clone()),
        AuditEvent::ClockResyncRefused { reason, .. } => e.refused(reason.clone()),
        _ => {
            e.outcome = Outcome::Ok;
            e
        }
    }
}
