//! One batch of raw stream records: each ends emitted, deduplicated, dead-lettered with a
//! reason, or dropped with a reason, and the tally says which.
//!
//! I/O is per batch, not per record (one read and one write per store), and it is ordered
//! so that a retry after a transient failure is harmless: dead letters and emitted events
//! go out first, then the dedup claims (keyed by stream position, so a retried record
//! recognises its own claim), then the per-device state. A failure anywhere fails the
//! whole batch, which is retried from its first record.

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hub_telemetry::{
    accounting::{Outcome, Tally},
    payload, unpack_raw, MessageKind, SkewPolicy,
};

use hub_runtime::stream::{Processed, StreamRecord};

use crate::ports::{DeadLetter, DedupStore, DeviceStates, Outputs, PortError, Registry};

#[derive(Debug, Clone)]
pub struct Config {
    pub skew: SkewPolicy,
    /// Messages per device per minute; the excess is dead-lettered as `rate_limited`.
    pub rate_limit_per_minute: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            skew: SkewPolicy::default(),
            rate_limit_per_minute: 600,
        }
    }
}

/// What happened to each record (nothing when a store or stream failed and every record
/// is retried).
pub type BatchResult = Processed<Tally, PortError>;

pub struct Ports<'a, R, S, D, O> {
    pub registry: &'a R,
    pub states: &'a S,
    pub dedup: &'a D,
    pub outputs: &'a O,
}

struct Parsed {
    position: String,
    raw: hub_telemetry::RawMessage,
    message: hub_telemetry::DeviceMessage,
    original: Vec<u8>,
}

pub async fn process<R, S, D, O>(
    ports: &Ports<'_, R, S, D, O>,
    config: &Config,
    records: &[StreamRecord],
) -> BatchResult
where
    R: Registry,
    S: DeviceStates,
    D: DedupStore,
    O: Outputs,
{
    Processed::whole(run(ports, config, records).await, records)
}

async fn run<R, S, D, O>(
    ports: &Ports<'_, R, S, D, O>,
    config: &Config,
    records: &[StreamRecord],
) -> Result<Tally, PortError>
where
    R: Registry,
    S: DeviceStates,
    D: DedupStore,
    O: Outputs,
{
    let mut tally = Tally::default();
    let mut letters = Vec::new();
    let mut parsed = Vec::with_capacity(records.len());
    for record in records {
        let raw = match unpack_raw(&record.data) {
            Ok(raw) => raw,
            Err(err) => {
                letters.push(letter(err.code(), err.to_string(), None, record, None));
                tally.record(&Outcome::DeadLettered(err.code()));
                continue;
            }
        };
        match payload::parse(&raw.payload) {
            Ok(message) => parsed.push(Parsed {
                position: record.position.clone(),
                raw,
                message,
                original: record.data.clone(),
            }),
            Err(err) => {
                let received = Some(raw.received_at);
                letters.push(letter(
                    err.code(),
                    err.to_string(),
                    Some(&raw.device_id),
                    record,
                    received,
                ));
                tally.record(&Outcome::DeadLettered(err.code()));
            }
        }
    }

    let devices: Vec<String> = parsed
        .iter()
        .map(|p| p.raw.device_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let dedup_keys: Vec<String> = parsed
        .iter()
        .map(|p| dedup_key(&p.raw.device_id, &p.message))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let registry = if devices.is_empty() {
        HashMap::new()
    } else {
        ports.registry.devices(&devices).await?
    };
    let mut states = if devices.is_empty() {
        HashMap::new()
    } else {
        ports.states.load(&devices).await?
    };
    let mut claimed = if dedup_keys.is_empty() {
        HashMap::new()
    } else {
        ports.dedup.claimed(&dedup_keys).await?
    };

    let mut new_claims = Vec::new();
    let mut events = Vec::new();
    for p in &parsed {
        let device_id = &p.raw.device_id;
        let device = registry.get(device_id).cloned().unwrap_or_default();
        if device.quarantined {
            tally.record(&Outcome::Dropped("quarantined"));
            continue;
        }
        // Whether an earlier, failed attempt at this batch already emitted this record, and
        // the dedup key to claim once the record passes the rate limit.
        let mut already_emitted = false;
        let mut to_claim = None;
        let key = dedup_key(device_id, &p.message);
        match claimed.get(&key) {
            // Claimed by another stream record: the device (or the network) sent it twice.
            Some(position) if *position != p.position => {
                tally.record(&Outcome::Deduplicated);
                continue;
            }
            // Claimed by this very record: claims are written only after the emit
            // succeeded, so the event is out already; emitting it again would double it.
            Some(_) => already_emitted = true,
            None => to_claim = Some(key),
        }
        let state = states.entry(device_id.clone()).or_default();
        let minute = p.raw.received_at.timestamp().div_euclid(60);
        if state.window_minute != minute {
            state.window_minute = minute;
            state.window_count = 0;
        }
        if state.window_count >= config.rate_limit_per_minute {
            let detail = format!(
                "device sent more than {} messages in the minute from {}",
                config.rate_limit_per_minute,
                DateTime::from_timestamp(minute * 60, 0).unwrap_or_default()
            );
            letters.push(dead_letter_of(p, "rate_limited", detail));
            tally.record(&Outcome::DeadLettered("rate_limited"));
            continue;
        }
        state.window_count += 1;
        // Claimed only now: a rate-limited record replayed from its dead letter later must
        // not find its own key taken.
        if let Some(key) = to_claim {
            claimed.insert(key.clone(), p.position.clone());
            new_claims.push((key, p.position.clone()));
        }
        if let Some(seq) = p.message.seq {
            let ts = p.message.device_ts.timestamp_millis();
            let restarted = matches!(
                (state.last_seq, state.last_seq_ts_ms),
                (Some(last), Some(last_ts)) if seq < last && ts > last_ts
            );
            match state.last_seq {
                // A lower seq with a newer device time: the device restarted its counter
                // (a reboot, a reflash). A new run of sequence numbers begins here.
                _ if restarted => tally.sequence_resets += 1,
                // Checked: a device may send any u64, u64::MAX included.
                Some(last) if seq > last.saturating_add(1) => {
                    let missed = seq - last - 1;
                    state.gaps = state.gaps.saturating_add(missed);
                    tally.sequence_gaps = tally.sequence_gaps.saturating_add(missed);
                }
                // A late reading (not a duplicate: those were caught above) fills a gap.
                Some(last) if seq < last => state.gaps = state.gaps.saturating_sub(1),
                _ => {}
            }
            if restarted || state.last_seq.is_none_or(|last| seq >= last) {
                state.last_seq = Some(seq);
                state.last_seq_ts_ms = Some(ts);
            }
        }
        if p.message.kind == MessageKind::Heartbeat {
            tally.record(&Outcome::Dropped("heartbeat"));
            continue;
        }
        let (mut event, timing) =
            hub_telemetry::normalize(&p.raw, &p.message, &config.skew, device.context);
        // The same raw record always becomes the same event id, so consumers can tell a
        // re-emitted event (after a partial emit failure) from a new one.
        event.id = event_id(&p.position);
        if timing.corrected {
            tally.clock_skew_corrected += 1;
        }
        if !already_emitted {
            events.push((device_id.clone(), event.to_vec()));
        }
        tally.record(&Outcome::Stored);
    }

    if !letters.is_empty() {
        ports.outputs.dead_letter(&letters).await?;
    }
    if !events.is_empty() {
        ports.outputs.emit(events).await?;
    }
    if !new_claims.is_empty() {
        ports.dedup.claim(&new_claims).await?;
    }
    if !states.is_empty() {
        ports.states.save(&states).await?;
    }
    Ok(tally)
}

/// Names the normalized events this function writes (a v5 UUID namespace of its own).
const EVENT_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("3f1c6a52-8d0e-4b7a-9c55-2e1f0b7d9a61");

/// The normalized event id of the raw record at `position`.
pub fn event_id(position: &str) -> String {
    uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, position.as_bytes()).to_string()
}

/// Names the identities of readings without a seq (a v5 UUID namespace of its own).
const READING_NAMESPACE: uuid::Uuid = uuid::uuid!("8a4f3e1d-2b6c-4d09-a7e5-6c1b9f2d3e70");

/// A reading's identity, the same for every copy of one message however it was
/// redelivered (the bridge or the broker resending it, a rule action retried): the
/// device, its seq and its own time of the reading. A device that restarts its counter
/// repeats the seq with a new time, so its new readings are not taken for the old ones.
/// A message without a seq (the v1 form) is known by its time and content instead.
fn dedup_key(device_id: &str, message: &hub_telemetry::DeviceMessage) -> String {
    let ts = message.device_ts.timestamp_millis();
    match message.seq {
        Some(seq) => format!("{device_id}#{seq}#{ts}"),
        None => {
            let content = serde_json::json!({
                "kind": format!("{:?}", message.kind),
                "metrics": message.metrics,
                "status": message.status,
            });
            let digest = uuid::Uuid::new_v5(&READING_NAMESPACE, content.to_string().as_bytes());
            format!("{device_id}#-#{ts}#{digest}")
        }
    }
}

fn dead_letter_of(p: &Parsed, reason: &'static str, detail: String) -> DeadLetter {
    DeadLetter {
        reason,
        detail,
        device_id: Some(p.raw.device_id.clone()),
        position: p.position.clone(),
        received_at: Some(p.raw.received_at.to_rfc3339()),
        original: base64::engine::general_purpose::STANDARD.encode(&p.original),
    }
}

fn letter(
    reason: &'static str,
    detail: String,
    device_id: Option<&str>,
    record: &StreamRecord,
    received_at: Option<DateTime<Utc>>,
) -> DeadLetter {
    DeadLetter {
        reason,
        detail,
        device_id: device_id.map(str::to_owned),
        position: record.position.clone(),
        received_at: received_at.map(|t| t.to_rfc3339()),
        original: base64::engine::general_purpose::STANDARD.encode(&record.data),
    }
}
